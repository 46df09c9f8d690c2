"""sockperf, the field's UDP latency/throughput tool, as the measuring program.

`available()` says whether the ``sockperf`` binary is on PATH (`INSTALL_HINT` says how to
get it; without it the driver falls back to the Python `pingpong.py` and labels the record
so).  Both functions start the server with `Lab.popen` (so it is killed by pid on every exit
path) and wait until its socket is bound; the client runs with a time bound (``-t``) and a
subprocess timeout.

- `pingpong`: ``sockperf ping-pong --full-rtt`` (one message in flight), the client's round
  trip percentiles in ns.  sockperf discards its own warm-up (0.4 s) before the timed part.
  With ``spin=True`` both ends open non-blocking sockets (``--nonblocked``) and loop on
  ``recvfrom()`` until a message is there (`SPIN`): neither ever sleeps, so the round trip
  holds no wake-up and no scheduling, only the CPU on the path, the two programs' system
  calls and, with the ends on two CPUs, the cache-line hand-offs between them.  (sockperf's
  ``--lls``, SO_BUSY_POLL, polls the NAPI context a socket last received from instead:
  include/net/busy_poll.h ``sk_can_busy_loop`` needs ``sk->sk_napi_id``, which loopback and a
  veth without GRO or XDP never set, as they deliver through the per-CPU backlog.)
- `throughput`: ``sockperf throughput`` (the client sends back to back, the server only
  receives); the *delivered* rate is counted by the kernel itself: the server namespace's UDP
  ``InDatagrams`` (``/proc/net/snmp`` is per namespace) before and after, over the client's
  sending time (``pps``).  The sink is one more recvfrom per datagram on its own CPU and is
  usually slower than the sender, so datagrams that crossed the whole kernel path and were
  dropped at the full socket buffer (``RcvbufErrors``) are counted too: ``path_pps`` =
  (InDatagrams + RcvbufErrors) / time is the rate of the sender's core, which runs the
  whole path (softirq included) for every datagram - the kernel-path packet rate.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time

from sim.calibrate.netns import Lab
from sim.calibrate.setups import PORT, Endpoints

INSTALL_HINT = "sockperf is not installed (Debian/Ubuntu: apt-get install sockperf)"
_PCT = re.compile(r"percentile\s+([\d.]+)\s*=\s*([\d.]+)")


def available() -> bool:
    return shutil.which("sockperf") is not None


SPIN = ("--nonblocked",)


def _server(lab: Lab, ep: Endpoints, cpu: int | None, timeout_s: float = 10.0, extra: tuple = ()):
    srv = lab.popen(ep.server_ns, ["sockperf", "server", "-i", ep.server_addr, "-p", str(PORT), *_proto(ep),
                                   *extra], cpu=cpu)
    listing = "-Hnlt" if ep.tcp else "-Hnlu"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if srv.poll() is not None:
            raise RuntimeError(f"sockperf server exited early: {srv.stderr.read().strip() if srv.stderr else ''}")
        if f":{PORT} " in lab.exec(ep.server_ns, "ss", listing, check=False).stdout:
            return srv
        time.sleep(0.02)
    lab.reap(srv)
    raise RuntimeError("sockperf server did not bind in time")


def _proto(ep: Endpoints) -> list[str]:
    """sockperf's protocol option for `ep` (UDP is sockperf's default)."""
    return ["--tcp"] if ep.tcp else []


def _nodelay(ep: Endpoints) -> list[str]:
    """sockperf's throughput client enables Nagle by default over TCP (its ping-pong does not);
    ``--tcp-avoid-nodelay`` toggles that, so each message leaves as soon as it is written
    (TCP_NODELAY), as in the ping-pong and in the model's TCP."""
    return ["--tcp-avoid-nodelay"] if ep.tcp else []


def _whole_seconds(seconds: float) -> str:
    """sockperf's ``-t`` takes whole seconds (at least 1)."""
    return str(max(1, round(seconds)))


def version() -> str:
    out = subprocess.run(["sockperf", "--version"], capture_output=True, text=True, timeout=10).stdout
    m = re.search(r"version\s+(\S+)", out)
    return m.group(1) if m else "unknown version"


def _pids_in(lab: Lab, ep: Endpoints, timeout_s: float = 5.0) -> set[int]:
    """Wait (bounded) until both sockperf processes are inside their namespaces."""
    deadline = time.monotonic() + timeout_s
    while True:
        pids = {int(p) for ns in {ep.client_ns, ep.server_ns} for p in lab.ip_netns_pids(ns)}
        if len(pids) >= 2 or time.monotonic() > deadline:
            return pids
        time.sleep(0.02)


def parse_pingpong(text: str) -> dict:
    """The client's report -> {median_ns, p25_ns, p75_ns, p90_ns, p99_ns, mean_ns, round_trips, lost}."""
    pct = {float(p): float(v) * 1000 for p, v in _PCT.findall(text)}
    avg = re.search(r"avg-rtt=([\d.]+)", text)
    valid = re.search(r"\[Valid Duration\].*?SentMessages=(\d+); ReceivedMessages=(\d+)", text)
    dropped = re.search(r"# dropped messages = (\d+)", text)
    if not pct or avg is None or valid is None:
        raise RuntimeError(f"could not read sockperf's report:\n{text[-600:]}")
    return {"median_ns": pct[50.0], "p25_ns": pct.get(25.0), "p75_ns": pct.get(75.0), "p90_ns": pct.get(90.0),
            "p99_ns": pct.get(99.0), "mean_ns": float(avg.group(1)) * 1000, "round_trips": int(valid.group(2)),
            "lost": int(dropped.group(1)) if dropped else 0}


def snmp_counters(lab: Lab, ns: str, proto: str = "Udp") -> dict[str, int]:
    """The namespace's `proto` line (``Udp``, ``Tcp``) of /proc/net/snmp as {field: value}."""
    lines = [ln.split() for ln in lab.exec(ns, "cat", "/proc/net/snmp").stdout.splitlines()
             if ln.startswith(f"{proto}:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:])))


def pingpong(lab: Lab, ep: Endpoints, seconds: float, cpus: tuple, during=None, spin: bool = False,
             mps: int | None = None) -> dict:
    """``sockperf ping-pong`` for `seconds`: the client's round-trip percentiles.  `during(pids)`,
    if given, is called while the ping-pong runs (the perf sampler, as in `throughput`) and its
    result returned under ``during``.  `spin`: both ends busy-poll their sockets (`SPIN`).
    `mps`: the client starts a round trip every 1 / `mps` s (``--mps``; default: as soon as
    the last one ends), so both ends sit idle between round trips."""
    client_cpu, server_cpu = cpus
    extra = SPIN if spin else ()
    srv = _server(lab, ep, server_cpu, extra=extra)
    argv = ["sockperf", "ping-pong", "-i", ep.server_addr, "-p", str(PORT), "-m", str(ep.size),
            "-t", _whole_seconds(seconds), "--full-rtt", *_proto(ep), *extra,
            *((f"--mps={mps}",) if mps else ())]
    try:
        if during is None:
            stdout = lab.run(ep.client_ns, argv, cpu=client_cpu, timeout=seconds + 20).stdout
        else:
            client = lab.popen(ep.client_ns, argv, cpu=client_cpu)
            extra = during(_pids_in(lab, ep))
            stdout, err = client.communicate(timeout=seconds + 20)
            lab.reap(client)
            if client.returncode:
                raise RuntimeError(f"sockperf ping-pong failed ({client.returncode}): {err.strip()[-300:]}")
    finally:
        lab.reap(srv)
    out = parse_pingpong(stdout)
    if not out["round_trips"]:
        raise RuntimeError(f"no round trip completed between {ep.client_ns} and {ep.server_ns}:{ep.server_addr}")
    if during is not None:
        out["during"] = extra
    return out


def _arrived(lab: Lab, ep: Endpoints) -> dict[str, int]:
    """What arrived at the server: its UDP counters, or for TCP its segments received
    (``InSegs`` as ``InDatagrams``: TCP has no receive-buffer drop, so ``RcvbufErrors`` 0)."""
    if not ep.tcp:
        return snmp_counters(lab, ep.server_ns)
    return {"InDatagrams": snmp_counters(lab, ep.server_ns, "Tcp")["InSegs"], "RcvbufErrors": 0}


def throughput(lab: Lab, ep: Endpoints, seconds: float, cpus: tuple, during=None, mps: int | None = None) -> dict:
    """Flood for `seconds` (back to back, or at `mps` messages per second: sockperf ``--mps``);
    `during(pids)`, if given, is called while the flood runs (the perf sampler; `pids` are the
    processes in the server's and client's namespaces, i.e. this flood's sockperf processes:
    only this run's processes live in its namespaces) and its result returned under ``during``.

    ``sent`` (sockperf's count) vs ``received + rcvbuf_drops``: what is missing was dropped
    inside the kernel before UDP, e.g. at a full per-CPU backlog (``netdev_max_backlog``)
    when the receive work has moved to ksoftirqd and the sender outruns it."""
    sender_cpu, sink_cpu = cpus
    srv = _server(lab, ep, sink_cpu)
    rate = ["--mps", str(mps)] if mps else []
    try:
        before = _arrived(lab, ep)
        client = lab.popen(ep.client_ns, ["sockperf", "throughput", "-i", ep.server_addr, "-p", str(PORT), "-m",
                                          str(ep.size), "-t", _whole_seconds(seconds), *rate, *_proto(ep),
                                          *_nodelay(ep)],
                           cpu=sender_cpu)
        t0 = time.monotonic()
        extra = during(_pids_in(lab, ep)) if during is not None else None
        out, _ = client.communicate(timeout=seconds + 20)
        wall = time.monotonic() - t0
        lab.reap(client)
        after = _arrived(lab, ep)
    finally:
        lab.reap(srv)
    sent = re.search(r"Total of (\d+) messages sent in ([\d.]+) sec", out)
    received = after["InDatagrams"] - before["InDatagrams"]
    drops = after["RcvbufErrors"] - before["RcvbufErrors"]
    secs = float(sent.group(2)) if sent else max(wall, 1e-9)
    res = {"received": received, "rcvbuf_drops": drops,
           "sent": int(sent.group(1)) if sent else None,
           "send_pps": int(sent.group(1)) / float(sent.group(2)) if sent else None,
           # over sockperf's own sending time (its warm-up adds only a few datagrams)
           "pps": received / secs, "path_pps": (received + drops) / secs, "wall_s": wall,
           "lost_before_udp": (int(sent.group(1)) - received - drops) if sent else None}
    if during is not None:
        res["during"] = extra
    return res
