"""The measured setups: how to build each in the kernel, and how to simulate it.

Each `Setup` says how to build it inside a `sim.calibrate.netns.Lab` (returning the client
and server `Endpoints`) and how the simulator sees the same path: a scheme (built-in, or one
of `CUSTOM_SCHEMES`, written in the data format of ``sim/data/schemes.yaml``), the number of
child namespaces on the simulated host, the FORWARD rules in the routing namespace and the
idle namespaces present.  The simulated flow is an ``rr`` flow from ``ns0`` to ``ns1`` (to
``ns0`` itself for loopback).

The routing/bridging "root" is a namespace of its own (``nsim-<id>-r``...), not the real
root namespace: the kernel path is the same (a namespace's forwarding code does not know
whether it is init_net), and nothing of the machine's own network is touched.  Likewise
"root <-> child over a veth pair" is router-namespace <-> child.

``train`` marks the setups of the default training set (fit on these, predict the rest):
loopback, one crossing, the routed path and the routed path with 1000 FORWARD rules (one
rule count is needed to learn the per-rule cost at all; 0 and 100 rules are predicted).
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from typing import Callable

from sim.calibrate import tcbpf
from sim.calibrate.netns import Lab, sh
from sim.core.schemes import builtin_registry

PORT = 17001
SIZE_BYTES = 32            # UDP payload of the measuring program
UDP_IP_HEADERS = 28        # a datagram of N payload bytes is an IP packet of N + 8 + 20 bytes in the model
SIM_PACKET_BYTES = SIZE_BYTES + UDP_IP_HEADERS


@dataclass(frozen=True)
class Endpoints:
    client_ns: str
    server_ns: str
    server_addr: str
    size: int = SIZE_BYTES       # UDP payload bytes the measuring program sends (message bytes over TCP)
    tcp: bool = False            # measure over TCP (sockperf --tcp) instead of UDP


@dataclass(frozen=True)
class Setup:
    name: str
    description: str
    build: Callable[[Lab], Endpoints]
    scheme: str                  # built-in scheme or a key of CUSTOM_SCHEMES
    namespaces: int = 2          # child namespaces of the simulated host
    same_ns: bool = False        # client and server in one namespace (loopback)
    forward_rules: int = 0       # FORWARD rules in the routing namespace
    idle: int = 0                # idle namespaces present (added to `namespaces` in the model)
    needs: tuple[str, ...] = ()  # "iptables", "macvlan", "tc-bpf"
    train: bool = False
    crossings: int = 0           # namespace boundaries crossed one way (for ordering checks)
    tags: tuple[str, ...] = field(default_factory=tuple)
    size: int = SIZE_BYTES       # UDP payload bytes (the model's packet is size + UDP_IP_HEADERS)
    fit_never: bool = False      # held out of every fit (issue 12's held-out set), never offered to --train

    @property
    def packet_bytes(self) -> int:
        return self.size + UDP_IP_HEADERS


# -- custom schemes (same format as sim/data/schemes.yaml) ----------------------------------
_OUT = ["socket_send", "route_output", "nf_local_out", "ip_output", "nf_postrouting", "dev_xmit"]
_FWD = ["l2_demux", "ip_rcv", "nf_prerouting", "route_input", "nf_forward", "ip_forward", "nf_postrouting",
        "ip_output", "dev_xmit", "veth_xmit"]
_IN = ["l2_demux", "ip_rcv", "nf_prerouting", "route_input", "nf_local_in", "socket_lookup", "socket_enqueue"]


def _derived(base: str, description: str, ns_to_ns: list[dict]) -> dict:
    spec = builtin_registry().get(base).spec.model_dump()
    spec["description"] = description
    spec["trips"]["ns_to_ns"] = ns_to_ns
    return spec


CUSTOM_SCHEMES: dict[str, dict] = {
    "veth-pair": _derived(
        "l2-routed", "Two namespaces joined by one veth pair: output path, veth_xmit, then the peer's input path.",
        [{"ns": "src", "queue": "process", "stages": _OUT + ["veth_xmit"]},
         {"ns": "dst", "queue": "backlog", "stages": _IN}]),
    "l2-bridged-nf": _derived(
        "l2-bridged", "l2-bridged with bridge netfilter (br_netfilter, bridge-nf-call-iptables=1): the bridged "
        "IPv4 frame also passes ip header checks and the PREROUTING, FORWARD and POSTROUTING hooks.",
        [{"ns": "src", "queue": "process", "stages": _OUT + ["veth_xmit"]},
         {"ns": "root", "queue": "backlog", "stages": ["l2_demux", "bridge", "ip_rcv", "nf_prerouting",
                                                       "nf_forward", "nf_postrouting", "dev_xmit", "veth_xmit"]},
         {"ns": "dst", "queue": "backlog", "stages": _IN}]),
    # macvlan_queue_xmit in bridge mode: a hash lookup of the destination MAC among the lower
    # device's macvlans, then dev_forward_skb -> netif_rx into the peer's backlog, i.e. the work
    # veth_xmit does; the catalogue has no macvlan stage, so the hop is priced as veth_xmit.
    # two routers in a row: the middle passes of l2-routed twice
    "l2-routed-chain2": _derived(
        "l2-routed", "Child to child through two forwarding namespaces in a row (three veth pairs).",
        [{"ns": "src", "queue": "process", "stages": _OUT + ["veth_xmit"]},
         *[{"ns": "root", "queue": "backlog", "stages": _FWD} for _ in range(2)],
         {"ns": "dst", "queue": "backlog", "stages": _IN}]),
    # veth-bpf-peer's way out (its ns_to_wire: the host veth's program calls bpf_redirect_neigh)
    # with the NIC played by a veth to the other child: bpf_out_neigh_v4's route, neighbour and
    # dev_queue_xmit, then veth_xmit into the child's backlog
    "veth-bpf-neigh": _derived(
        "veth-bpf-peer", "Two children behind one namespace whose tc ingress programs call bpf_redirect_neigh: "
        "output path and veth_xmit, then one pass in the middle namespace (l2_demux, the program, route, "
        "neighbour output, dev_queue_xmit, veth_xmit), then the receiver's input path.",
        [{"ns": "src", "queue": "process", "stages": _OUT + ["veth_xmit"]},
         {"ns": "root", "queue": "backlog", "stages": ["l2_demux", "tc_bpf", "route_output", "ip_output", "dev_xmit",
                                                       "veth_xmit"]},
         {"ns": "dst", "queue": "backlog", "stages": _IN}]),
    "macvlan-bridge": _derived(
        "l2-routed", "Two macvlan devices (bridge mode) on one lower device: output path, a MAC hash lookup and "
        "dev_forward_skb (priced as veth_xmit), then the peer's input path.",
        [{"ns": "src", "queue": "process", "stages": _OUT + ["veth_xmit"]},
         {"ns": "dst", "queue": "backlog", "stages": _IN}]),
}


# -- builders -------------------------------------------------------------------------------
def build_loopback(lab: Lab) -> Endpoints:
    ns = lab.add_ns("lo")
    return Endpoints(ns, ns, "127.0.0.1")


def build_veth(lab: Lab, tag: str = "v") -> Endpoints:
    r, c = lab.add_ns(f"{tag}r"), lab.add_ns(f"{tag}c")
    a, b = lab.veth(r, f"{tag}a", c, f"{tag}b")
    net = lab.next_subnet()
    lab.addr(r, a, f"{net}.1/24")
    lab.addr(c, b, f"{net}.2/24")
    return Endpoints(r, c, f"{net}.2")


def _two_children(lab: Lab, tag: str) -> tuple[str, str, str, list[tuple[str, str]]]:
    """Namespaces r, c1, c2 with a veth pair from r to each child, a /24 per pair (r .1, the
    child .2) and each child's default route via r: (r, c1, c2, [(r's veth, child address)]
    for c1 then c2)."""
    r, c1, c2 = lab.add_ns(f"{tag}r"), lab.add_ns(f"{tag}1"), lab.add_ns(f"{tag}2")
    ends = []
    for c, side in ((c1, "1"), (c2, "2")):
        a, b = lab.veth(r, f"{tag}{side}r", c, f"{tag}{side}c")
        net = lab.next_subnet()
        lab.addr(r, a, f"{net}.1/24")
        lab.addr(c, b, f"{net}.2/24")
        lab.ip(c, "route", "add", "default", "via", f"{net}.1")
        ends.append((a, f"{net}.2"))
    return r, c1, c2, ends


def build_routed(lab: Lab, tag: str = "r", rules: int | None = None) -> Endpoints:
    """c1 -- r -- c2 with r forwarding; `rules` non-matching FORWARD rules in r (None: no
    netfilter table at all)."""
    r, c1, c2, (_, (_, server)) = _two_children(lab, tag)
    lab.sysctl(r, "net.ipv4.ip_forward", "1")
    if rules is not None:
        lab.exec(r, "iptables-restore", input=forward_rules_text(rules))
    return Endpoints(c1, c2, server)


def build_chain(lab: Lab, tag: str = "c", routers: int = 2) -> Endpoints:
    """c1 -- r1 -- r2 ... -- c2: `routers` forwarding namespaces in a row, routers + 1 veth
    pairs (three veth hops for two routers); static routes both ways."""
    hops = [lab.add_ns(f"{tag}1")] + [lab.add_ns(f"{tag}r{i}") for i in range(routers)] + [lab.add_ns(f"{tag}2")]
    nets = []
    for i, (left, right) in enumerate(zip(hops, hops[1:])):
        a, b = lab.veth(left, f"{tag}{i}a", right, f"{tag}{i}b")
        net = lab.next_subnet()
        lab.addr(left, a, f"{net}.1/24")
        lab.addr(right, b, f"{net}.2/24")
        nets.append(net)
    for r in hops[1:-1]:
        lab.sysctl(r, "net.ipv4.ip_forward", "1")
    # link j joins hops j (.1) and j+1 (.2): hop i reaches a link j > i via its right
    # neighbour and a link j < i - 1 via its left neighbour
    for i, ns in enumerate(hops):
        for j, net in enumerate(nets):
            if j > i:
                lab.ip(ns, "route", "add", f"{net}.0/24", "via", f"{nets[i]}.2")
            elif j < i - 1:
                lab.ip(ns, "route", "add", f"{net}.0/24", "via", f"{nets[i - 1]}.1")
    return Endpoints(hops[0], hops[-1], f"{nets[-1]}.2")


def forward_rules_text(n: int) -> str:
    """An iptables-restore script: filter table, FORWARD policy ACCEPT, `n` rules that never
    match (sources in 10.251.255.0/24... 10.251.250.0/24, which no setup uses)."""
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    for i in range(n):
        lines.append(f"-A FORWARD -s 10.251.{250 + i // 250}.{i % 250 + 1}/32 -j DROP")
    return "\n".join(lines + ["COMMIT", ""])


def build_bridge(lab: Lab, tag: str = "b", nf: bool = False, rules: int | None = None) -> Endpoints:
    r, c1, c2 = lab.add_ns(f"{tag}r"), lab.add_ns(f"{tag}1"), lab.add_ns(f"{tag}2")
    br = lab.link_name(f"{tag}br")
    lab.ip(r, "link", "add", br, "type", "bridge")
    lab.ip(r, "link", "set", br, "up")
    net = lab.next_subnet()
    for i, c in enumerate((c1, c2), start=1):
        a, b = lab.veth(r, f"{tag}{i}r", c, f"{tag}{i}c")
        lab.ip(r, "link", "set", a, "master", br)
        lab.addr(c, b, f"{net}.{i + 1}/24")
    key = "/proc/sys/net/bridge/bridge-nf-call-iptables"
    have = lab.exec(r, "test", "-e", key, check=False).returncode == 0
    if nf and not have:
        raise RuntimeError("bridge netfilter (br_netfilter) is not available in this kernel")
    if have:
        lab.sysctl(r, "net.bridge.bridge-nf-call-iptables", "1" if nf else "0")
    if rules is not None:
        lab.exec(r, "iptables-restore", input=forward_rules_text(rules))
    return Endpoints(c1, c2, f"{net}.3")


def build_bpf_redirect(lab: Lab, tag: str = "p", helper: int = tcbpf.HELPER_REDIRECT_PEER) -> Endpoints:
    """c1 -- r -- c2 as `build_routed`, but r does not forward: a tc ingress program on each of
    r's veths redirects IPv4 packets to the other veth (`sim.calibrate.tcbpf`).  With
    ``bpf_redirect_peer`` a packet from c1 leaves r's softirq pass in c2's namespace; with
    ``bpf_redirect_neigh`` r routes it and transmits it on the other veth (no ip_rcv, netfilter
    or ip_forward in r), and c2 receives it in a backlog pass of its own.  ARP is passed up r's
    stack, so the children resolve their gateways (r's addresses) as usual, and r resolves the
    children for bpf_redirect_neigh."""
    r, c1, c2, ((a1, _), (a2, server)) = _two_children(lab, tag)
    tcbpf.attach_redirect(lab, r, a1, a2, helper)
    tcbpf.attach_redirect(lab, r, a2, a1, helper)
    return Endpoints(c1, c2, server)


def build_veth_sized(lab: Lab, size: int, tag: str = "s") -> Endpoints:
    return dataclasses.replace(build_veth(lab, tag), size=size)


def build_macvlan(lab: Lab, tag: str = "m") -> Endpoints:
    r, c1, c2 = lab.add_ns(f"{tag}r"), lab.add_ns(f"{tag}1"), lab.add_ns(f"{tag}2")
    low, low_peer = lab.link_name(f"{tag}low"), lab.link_name(f"{tag}lop")
    # the lower device is one end of a veth pair (dummy is not in every kernel)
    lab.ip(r, "link", "add", low, "type", "veth", "peer", "name", low_peer)
    lab.ip(r, "link", "set", low, "up")
    lab.ip(r, "link", "set", low_peer, "up")
    net = lab.next_subnet()
    for i, c in enumerate((c1, c2), start=1):
        m = lab.link_name(f"{tag}{i}")
        lab.ip(r, "link", "add", "link", low, "name", m, "netns", c, "type", "macvlan", "mode", "bridge")
        lab.ip(c, "link", "set", m, "up")
        lab.addr(c, m, f"{net}.{i + 1}/24")
    return Endpoints(c1, c2, f"{net}.3")


SETUPS: tuple[Setup, ...] = (
    Setup("loopback", "client and server in one namespace over lo (no crossing)", build_loopback,
          "l2-routed", namespaces=1, same_ns=True, train=True, crossings=0),   # its ns_to_self trip: own lo
    Setup("veth", "router namespace <-> child over one veth pair (one crossing)", build_veth,
          "veth-pair", train=True, crossings=1),
    Setup("routed", "child <-> child, a router namespace forwarding between two veth pairs "
          "(input, forward/output, input)", build_routed, "l2-routed", train=True, crossings=2),
    Setup("bridge", "child <-> child through a Linux bridge in the router namespace, bridge netfilter off",
          lambda lab: build_bridge(lab, "b", nf=False), "l2-bridged", crossings=2),
    Setup("bridge-nf", "as bridge, with bridge netfilter on (bridge-nf-call-iptables=1)",
          lambda lab: build_bridge(lab, "n", nf=True), "l2-bridged-nf", crossings=2),
    Setup("macvlan", "child <-> child over two macvlan devices in bridge mode", build_macvlan,
          "macvlan-bridge", needs=("macvlan",), crossings=1),
    Setup("routed-fw0", "routed, with an empty iptables filter table (FORWARD policy ACCEPT)",
          lambda lab: build_routed(lab, "f", 0), "l2-routed", needs=("iptables",), crossings=2),
    Setup("routed-fw100", "routed, with 100 non-matching FORWARD rules",
          lambda lab: build_routed(lab, "g", 100), "l2-routed", forward_rules=100, needs=("iptables",), crossings=2),
    Setup("routed-fw1000", "routed, with 1000 non-matching FORWARD rules",
          lambda lab: build_routed(lab, "h", 1000), "l2-routed", forward_rules=1000, needs=("iptables",),
          train=True, crossings=2),
    # held out of every fit (issue 12): shapes the training setups do not contain
    Setup("chain2", "child -> router -> router -> child: two forwarding namespaces, three veth pairs",
          build_chain, "l2-routed-chain2", namespaces=2, crossings=3, fit_never=True),
    Setup("bridge-nf-fw100", "bridge with bridge netfilter on and 100 non-matching FORWARD rules",
          lambda lab: build_bridge(lab, "w", nf=True, rules=100), "l2-bridged-nf", forward_rules=100,
          needs=("iptables",), crossings=2, fit_never=True),
    Setup("veth-1400", "one veth crossing with 1,400-byte datagrams",
          lambda lab: build_veth_sized(lab, 1400), "veth-pair", crossings=1, size=1400, fit_never=True),
    # issue 15: a modern short-cut, held out too (the fit never sees tc_bpf)
    Setup("veth-bpf-peer", "child <-> child through the router namespace's tc ingress programs "
          "(bpf_redirect_peer to the other veth's peer; the router does not forward)",
          build_bpf_redirect, "veth-bpf-peer", needs=("tc-bpf",), crossings=2, fit_never=True),
    Setup("veth-bpf-neigh", "child <-> child through the router namespace's tc ingress programs "
          "(bpf_redirect_neigh out of the other veth: route and neighbour, no ip_rcv or forwarding)",
          lambda lab: build_bpf_redirect(lab, "q", tcbpf.HELPER_REDIRECT_NEIGH), "veth-bpf-neigh",
          needs=("tc-bpf",), crossings=2, fit_never=True),
)

IDLE_COUNTS = (1, 100, 1000)


def idle_setup(n: int) -> Setup:
    """The one-crossing setup measured while `n` idle namespaces exist (built in a phase of
    its own: the idle namespaces are added to the veth setup's lab)."""
    return Setup(f"veth-idle{n}", f"one crossing (veth) with {n} idle namespaces present", build_veth,
                 "veth-pair", idle=n, crossings=1)


def by_name(name: str) -> Setup:
    for s in SETUPS:
        if s.name == name:
            return s
    if name.startswith("veth-idle") and name[len("veth-idle"):].isdigit():
        return idle_setup(int(name[len("veth-idle"):]))
    raise KeyError(f"unknown setup {name!r}; setups: {[s.name for s in SETUPS]} and veth-idleN")


def availability(lab: Lab | None = None) -> dict[str, str]:
    """What this machine lacks, per need: {need: reason} (empty when everything is there)."""
    missing = {}
    if shutil.which("iptables-restore") is None:
        missing["iptables"] = "iptables is not installed (apt-get install iptables)"
    if not _kernel_has_macvlan(lab):
        missing["macvlan"] = "the kernel has no macvlan support"
    if shutil.which("tc") is None:
        missing["tc-bpf"] = "tc (iproute2) is not installed"
    elif lab is not None and (why := tcbpf.probe()) is not None:
        missing["tc-bpf"] = f"this kernel does not load a tc program calling bpf_redirect_peer (Linux >= 5.10): {why}"
    return missing


def _kernel_has_macvlan(lab: Lab | None) -> bool:
    if lab is None:
        return True
    ns = lab.add_ns("probe")
    try:
        lab.ip(ns, "link", "add", lab.link_name("pd"), "type", "veth", "peer", "name", lab.link_name("pe"))
        cp = sh(["ip", "-n", ns, "link", "add", "link", lab.link_name("pd"), "name", lab.link_name("pm"),
                 "type", "macvlan", "mode", "bridge"], check=False)
        return cp.returncode == 0
    finally:
        lab.del_idle([ns])
