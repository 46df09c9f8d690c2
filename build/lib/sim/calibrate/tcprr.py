"""TCP_RR on the real kernel across calibration setups (issue 15's published-figure check).

For each named setup of `sim.calibrate.setups` (e.g. ``routed-fw100``: two containers joined
by a forwarding namespace with 100 FORWARD rules, like a routed CNI; ``macvlan``: two macvlans
in bridge mode), a ``sockperf ping-pong --tcp`` of `size_bytes` messages, the setups taken in
turn within each round (interleaved, so a change in the machine's load hits all of them), and
the medians over rounds.  The per-round ratio of each setup's median round trip to the first
setup's is what a published "A vs B" TCP_RR comparison is checked against; the load average
is recorded with each round (`sim.calibrate.hostinfo.loadavg`).  Root, iproute2 and sockperf;
only namespaces of its own run (`Lab`).
"""

from __future__ import annotations

import statistics
from typing import Callable

from sim.calibrate import sockperf
from sim.calibrate.hostinfo import loadavg
from sim.calibrate.netns import Lab
from sim.calibrate.setups import Endpoints, by_name


def run(setups: list[str], rounds: int, seconds: float, size_bytes: int, cpus: tuple[int, int],
        log: Callable[[str], None]) -> dict:
    """{"setups": {name: {"median_ns": [per round], ...}}, "ratio_to_first": {name: median of per-round
    ratios}, "loadavg": [per round]}; every setup is built once, all are torn down at the end."""
    chosen = [by_name(n) for n in setups]
    per: dict[str, list[float]] = {s.name: [] for s in chosen}
    loads = []
    with Lab() as lab:
        log(f"run {lab.run_id}: namespaces nsim-{lab.run_id}-*")
        eps: dict[str, Endpoints] = {}
        for s in chosen:
            ep = s.build(lab)
            eps[s.name] = Endpoints(ep.client_ns, ep.server_ns, ep.server_addr, size_bytes, tcp=True)
        for r in range(rounds):
            for s in chosen:
                out = sockperf.pingpong(lab, eps[s.name], seconds, cpus)
                per[s.name].append(out["median_ns"])
            loads.append(loadavg())
            log(f"round {r + 1}/{rounds}: " + ", ".join(f"{n} {v[-1] / 1e3:.2f} us" for n, v in per.items()))
    first = chosen[0].name
    ratio = {n: statistics.median(v[i] / per[first][i] for i in range(rounds)) for n, v in per.items()}
    return {"size_bytes": size_bytes, "cpus": list(cpus), "rounds": rounds, "seconds": seconds,
            "setups": {n: {"median_ns": v, "median_of_rounds_ns": statistics.median(v)} for n, v in per.items()},
            "ratio_to_first": ratio, "loadavg": loads}
