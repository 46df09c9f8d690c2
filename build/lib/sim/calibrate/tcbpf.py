"""A tc BPF program that hands IPv4 packets to a veth peer (``bpf_redirect_peer``), built and
attached without a compiler: the real kernel's side of the ``veth-bpf-peer`` scheme.

The program (eBPF, 8 instructions, assembled here from the encoding in
include/uapi/linux/bpf.h and include/linux/filter.h)::

    r0 = *(u32 *)(r1 + 16)          # __sk_buff->protocol (network byte order)
    if r0 != htons(ETH_P_IP) goto +4
    r1 = TARGET_IFINDEX
    r2 = 0
    call bpf_redirect_peer          # helper 155 (Linux >= 5.10)
    exit                            # TC_ACT_REDIRECT
    r0 = 0                          # TC_ACT_OK: ARP and the rest go up the device's own stack
    exit

With helper 152 (``bpf_redirect_neigh``, four argument registers: ifindex, then no nexthop
parameters and no flags) the same program sends the packet out of the target device instead
(below).

What the kernel does with it (Linux 6.18): the device's clsact ingress hook
(``sch_handle_ingress`` in net/core/dev.c) runs it through ``tcf_classify``/``cls_bpf_classify``
(direct-action); ``bpf_redirect_peer`` (net/core/filter.c) records the target with
``BPF_F_PEER``; on ``TC_ACT_REDIRECT`` ``skb_do_redirect`` takes the target's peer
(``skb_get_peer_dev`` -> ``veth_peer_dev``), which must be in another namespace, sets
``skb->dev`` to it, scrubs the packet (``skb_scrub_packet``: ``pkt_type = PACKET_HOST``, so the
destination MAC does not matter) and returns ``-EAGAIN``; ``__netif_receive_skb_core`` then
goes round again as if the peer had received it, in the peer's namespace, in the same softirq
pass: no ``ip_rcv``, netfilter or forwarding in the namespace the program runs in, and no
second backlog.  With ``BPF_F_NEIGH`` (``bpf_redirect_neigh``) ``skb_do_redirect`` calls
``__bpf_redirect_neigh`` -> ``bpf_out_neigh_v4``: ``ip_route_output_flow`` in the program's
namespace, the nexthop's neighbour (``ip_neigh_for_gw``, ``neigh_output``) and
``dev_queue_xmit`` on the target: the namespace's output path from the route on, without its
``ip_rcv``, netfilter hooks or ``ip_forward``.

Loading: ``bpf(BPF_PROG_LOAD)`` through ``ctypes`` (the program type is
``BPF_PROG_TYPE_SCHED_CLS``, licence GPL).  Attaching: iproute2's ``tc filter ... bpf da
object-pinned PATH`` takes a pinned program, so the program is pinned in a bpf filesystem
mounted on a directory of this run's own (``bpf_mount``), the filter is attached, and the pin,
the mount and the directory are removed again before `attach_redirect` returns; the
filter holds the program, which the kernel frees with the namespace.  Nothing is left behind
and nothing of the machine's (``/sys/fs/bpf`` included) is touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import platform
import struct
import tempfile
from typing import Iterator

from sim.calibrate.netns import Lab, sh

BPF_PROG_LOAD = 5
BPF_OBJ_PIN = 6
BPF_PROG_TYPE_SCHED_CLS = 3
HELPER_REDIRECT_NEIGH = 152
HELPER_REDIRECT_PEER = 155
ETH_P_IP_BE = 0x0008            # htons(0x0800) as the u32 the context load gives on little-endian
SKB_PROTOCOL_OFFSET = 16        # offsetof(struct __sk_buff, protocol)
BPF_SYSCALL = {"x86_64": 321, "aarch64": 280}
LOG_BYTES = 65536


class BpfUnavailable(RuntimeError):
    """This machine cannot load or attach the program (no bpf syscall, verifier refusal, ...)."""


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One ``struct bpf_insn``: u8 code, u8 dst:4|src:4, s16 off, s32 imm (little-endian)."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def redirect_program(target_ifindex: int, helper: int = HELPER_REDIRECT_PEER) -> bytes:
    """The program above, for the device with `target_ifindex` in the namespace it runs in.
    `helper` is `HELPER_REDIRECT_PEER` or `HELPER_REDIRECT_NEIGH`; both take (ifindex, then
    zeros: no flags, and for bpf_redirect_neigh no nexthop parameters, so the kernel looks the
    route up itself)."""
    if not 0 < target_ifindex < 2**31:
        raise ValueError(f"ifindex {target_ifindex} out of range")
    ldx_w, jne_k, mov64_k, call, exit_ = 0x61, 0x55, 0xB7, 0x85, 0x95
    args = [_insn(mov64_k, dst=1, imm=target_ifindex)] + [_insn(mov64_k, dst=r, imm=0) for r in (2, 3, 4)]
    return b"".join([
        _insn(ldx_w, dst=0, src=1, off=SKB_PROTOCOL_OFFSET),
        _insn(jne_k, dst=0, off=len(args) + 2, imm=ETH_P_IP_BE),
        *args,
        _insn(call, imm=helper),
        _insn(exit_),
        _insn(mov64_k, dst=0, imm=0),
        _insn(exit_),
    ])


def _bpf(cmd: int, attr: bytes) -> int:
    nr = BPF_SYSCALL.get(platform.machine())
    if nr is None:
        raise BpfUnavailable(f"the bpf syscall number for {platform.machine()} is not known here")
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    buf = ctypes.create_string_buffer(attr, len(attr))
    ret = libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), buf, ctypes.c_uint(len(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(ret)


def load_sched_cls(insns: bytes, name: str) -> int:
    """Load `insns` as a tc classifier; returns its file descriptor (the caller closes it).
    A verifier refusal raises `BpfUnavailable` with the verifier's log."""
    licence = ctypes.create_string_buffer(b"GPL")
    code = ctypes.create_string_buffer(insns, len(insns))
    log = ctypes.create_string_buffer(LOG_BYTES)
    attr = struct.pack("<IIQQIIQII16sII", BPF_PROG_TYPE_SCHED_CLS, len(insns) // 8,
                       ctypes.addressof(code), ctypes.addressof(licence), 1, LOG_BYTES,
                       ctypes.addressof(log), 0, 0, name.encode()[:15], 0, 0)
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except OSError as e:
        raise BpfUnavailable(f"bpf(BPF_PROG_LOAD) failed: {e.strerror}; verifier: "
                             f"{log.value.decode(errors='replace').strip() or '(no log)'}") from e


def pin(fd: int, path: str) -> None:
    """``bpf(BPF_OBJ_PIN)``: make the program at `fd` reachable at `path` (on a bpf filesystem)."""
    name = ctypes.create_string_buffer(path.encode())
    _bpf(BPF_OBJ_PIN, struct.pack("<QII", ctypes.addressof(name), fd, 0))


@contextlib.contextmanager
def bpf_mount(run_id: str) -> Iterator[str]:
    """A bpf filesystem mounted on a fresh directory named for the run; unmounted and the
    directory removed on exit.  The caller unlinks what it pinned (a new bpffs also shows the
    kernel's own ``maps.debug``/``progs.debug``, which go with the unmount)."""
    where = tempfile.mkdtemp(prefix=f"nsim-{run_id}-bpffs-")
    try:
        sh(["mount", "-t", "bpf", "bpf", where])
        try:
            yield where
        finally:
            sh(["umount", where])
    finally:
        os.rmdir(where)


def ifindex(lab: Lab, ns: str, dev: str) -> int:
    """The interface index of `dev` in namespace `ns` (``ip -o link show`` begins 'N: name')."""
    return int(lab.ip(ns, "-o", "link", "show", "dev", dev).split(":", 1)[0])


def attach_redirect(lab: Lab, ns: str, dev: str, target: str, helper: int = HELPER_REDIRECT_PEER) -> None:
    """On `dev`'s tc ingress in `ns`, redirect IPv4 with `helper`: to the peer of `target` (a
    veth in `ns` whose peer lives in another namespace of the lab; bpf_redirect_peer) or out of
    `target` after a route and neighbour lookup in `ns` (bpf_redirect_neigh)."""
    name = "nsim_peer" if helper == HELPER_REDIRECT_PEER else "nsim_neigh"
    fd = load_sched_cls(redirect_program(ifindex(lab, ns, target), helper), name)
    try:
        with bpf_mount(lab.run_id) as where:
            path = os.path.join(where, f"{dev}-ingress")
            pin(fd, path)
            try:
                lab.exec(ns, "tc", "qdisc", "add", "dev", dev, "clsact")
                lab.exec(ns, "tc", "filter", "add", "dev", dev, "ingress", "bpf", "da", "object-pinned", path)
            finally:
                os.unlink(path)
    finally:
        os.close(fd)


def probe() -> str | None:
    """None when this kernel loads both programs (bpf syscall, SCHED_CLS, ``bpf_redirect_peer``
    and ``bpf_redirect_neigh``, Linux >= 5.10), else why not."""
    try:
        for helper in (HELPER_REDIRECT_PEER, HELPER_REDIRECT_NEIGH):
            os.close(load_sched_cls(redirect_program(1, helper), "nsim_probe"))
    except (BpfUnavailable, OSError) as e:
        return str(e)
    return None
