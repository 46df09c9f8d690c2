"""Does the real kernel deliver one TCP stream's segments out of order on a container path?
(issue 15: the model's claim that a veth path reorders, and a NIC path does not.)

Setup: c1 -- r -- c2 (`sim.calibrate.setups.build_routed`: r forwards, no netfilter table),
TSO, GSO and GRO off on every veth (`tcpstages.set_offloads`: one segment per skb), or with
``offloads`` on.  A bulk
stream, ``sockperf tp --tcp`` with 65,000-byte writes, from c1 to c2 for `seconds`, once per
CPU placement and round (placements interleaved within each round): sender and sink on two
CPUs, and both on one.  Counters of each end's namespace (TCP's MIBs are per namespace),
before and after (`netstat_counters`, `snmp`): the sink's ``TCPOFOQueue`` (segments queued
out of order: net/ipv4/tcp_input.c tcp_data_queue_ofo) and ``TCPDSACKOldSent`` (duplicates
it reported), the sender's ``OutSegs``, ``RetransSegs``, ``TCPSACKReorder`` and
``TCPTSReorder`` (reordering it detected, tcp_check_sack_reordering), ``TCPDSACKUndo``
(recoveries undone by D-SACK) and ``TCPSackRecovery``.

Why veth can reorder: veth_xmit hands each skb to the per-CPU backlog of the CPU that sent it
(__netif_rx -> enqueue_to_backlog(smp_processor_id()) without RPS), and a stream's data leaves
from two CPUs: the writer's, and the one whose softirq processes the ACKs and sends what they
let out (tcp_data_snd_check).  Root, iproute2, ethtool and sockperf; only namespaces of its
own run (`Lab`).
"""

from __future__ import annotations

import dataclasses
import shutil
import statistics
from typing import Callable

from sim.calibrate import sockperf
from sim.calibrate.hostinfo import loadavg
from sim.calibrate.netns import Lab, Unavailable
from sim.calibrate.setups import build_routed
from sim.calibrate.tcpstages import BULK_BYTES, ETHTOOL_HINT, set_offloads

SENDER = ("OutSegs", "RetransSegs", "TCPSACKReorder", "TCPTSReorder", "TCPDSACKRecv", "TCPDSACKUndo",
          "TCPSackRecovery")
SINK = ("InSegs", "TCPOFOQueue", "TCPDSACKOldSent")


def parse_netstat(text: str) -> dict[str, int]:
    """The ``TcpExt`` counters of a /proc/net/netstat text as {name: value} (a header line of
    names, then a line of values)."""
    rows = [ln.split() for ln in text.splitlines() if ln.startswith("TcpExt:")]
    if len(rows) < 2:
        raise RuntimeError("no TcpExt lines in /proc/net/netstat")
    return dict(zip(rows[0][1:], map(int, rows[1][1:])))


def counters(lab: Lab, ns: str) -> dict[str, int]:
    """TCP's counters of namespace `ns`: /proc/net/snmp's Tcp line and /proc/net/netstat's TcpExt."""
    return {**sockperf.snmp_counters(lab, ns, "Tcp"), **parse_netstat(lab.exec(ns, "cat", "/proc/net/netstat").stdout)}


def delta(before: dict[str, int], after: dict[str, int], names: tuple[str, ...]) -> dict[str, int]:
    """`after` - `before` for `names` (0 for a counter this kernel lacks)."""
    return {n: after.get(n, 0) - before.get(n, 0) for n in names}


def rates(c: dict[str, int]) -> dict[str, float]:
    """A run's counters as shares: segments queued out of order per segment received, and
    retransmitted per segment sent."""
    return {"ofo_per_segment": c["TCPOFOQueue"] / max(c["InSegs"], 1),
            "retrans_per_segment": c["RetransSegs"] / max(c["OutSegs"], 1)}


def run(rounds: int, seconds: float, placements: list[tuple[int, int]], log: Callable[[str], None],
        offloads: bool = False) -> dict:
    """Measure every (sender CPU, sink CPU) of `placements` `rounds` times, interleaved; return
    the record: per placement the runs (``runs``: counters, their shares (`rates`), segments
    received per second, load average) and the medians of the shares over the rounds.
    `offloads`: TSO, GSO and GRO on (veth's GRO is off by default; on, veth receives through
    its own NAPI poll) instead of off."""
    if shutil.which("ethtool") is None:
        raise Unavailable(ETHTOOL_HINT)
    if not sockperf.available():
        raise Unavailable(sockperf.INSTALL_HINT)
    per: dict[str, list[dict]] = {}
    with Lab() as lab:
        log(f"run {lab.run_id}: namespaces nsim-{lab.run_id}-*")
        ep = build_routed(lab, "ro")
        for ns in lab.namespaces:                   # the two ends and the router
            set_offloads(lab, ns, on=offloads)
        ep = dataclasses.replace(ep, tcp=True, size=BULK_BYTES)
        for rnd in range(rounds):
            for cpus in placements[::-1 if rnd % 2 else 1]:
                s0, k0 = counters(lab, ep.client_ns), counters(lab, ep.server_ns)
                flood = sockperf.throughput(lab, ep, seconds, cpus)
                c = {**delta(s0, counters(lab, ep.client_ns), SENDER),
                     **delta(k0, counters(lab, ep.server_ns), SINK)}
                one = {"cpus": list(cpus), "counters": c, **rates(c), "segments_per_s": flood["pps"],
                       "loadavg": loadavg()}
                key = f"{cpus[0]},{cpus[1]}"
                per.setdefault(key, []).append(one)
                log(f"  round {rnd + 1}: sender CPU {cpus[0]}, sink CPU {cpus[1]}: {c['InSegs']} segments in, "
                    f"{c['TCPOFOQueue']} queued out of order, {c['RetransSegs']} retransmitted; load {one['loadavg']}")
    return {"seconds": seconds, "rounds": rounds, "write_bytes": BULK_BYTES, "offloads": offloads,
            "placements": {k: {"runs": v, **{m: statistics.median(r[m] for r in v)
                                             for m in ("ofo_per_segment", "retrans_per_segment")}}
                           for k, v in per.items()}}


def table(rec: dict) -> list[str]:
    """Markdown lines: per placement, the medians and the per-round ranges."""
    out = ["| sender CPU, sink CPU | segments out of order per segment received | retransmitted per segment sent |",
           "|---|--:|--:|"]
    for k, p in rec["placements"].items():
        ofo = [r["ofo_per_segment"] for r in p["runs"]]
        rtx = [r["retrans_per_segment"] for r in p["runs"]]
        out.append(f"| {k} | {p['ofo_per_segment']:.2e} ({min(ofo):.1e}-{max(ofo):.1e}) "
                   f"| {p['retrans_per_segment']:.2e} ({min(rtx):.1e}-{max(rtx):.1e}) |")
    return out
