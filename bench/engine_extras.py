"""bench/engine.py --extras: peak memory per recorded packet on the chain, and the
``l2-routed`` wire -> namespace case.

Memory: a separate run per simulator under tracemalloc, peak traced bytes divided by
delivered packets; netns-sim twice: simulate() only (compact columnar records) and
simulate() + Results.packets (the full per-packet DataFrame).

l2-routed: one host with 100 namespaces and 2 cores, 100 Poisson flows ``h:wire -> h:nsK``.
A 1,000-packet unloaded probe measures the CPU time of one packet (sum of its stage costs);
the total rate is then set to 50 % of the host's capacity.  Reports delivered packets per
CPU-second, engine events per packet, p50/p99 latency and per-core utilisation.
"""

from __future__ import annotations

import time

import numpy as np

from bench.baselines import PEER_CHAIN as CHAIN
from bench.baselines import peak_memory_per_packet, run_heapq_chain, run_nspy_chain, run_simpy_chain
from bench.engine import chain_scenario
from sim.core.records import DELIVERED, STAGE_COLUMNS
from sim.core.simulate import simulate
from sim.frontdoor.scenario import Scenario


def mem_ours_simulate(n_packets: int, **chain) -> dict:
    res = simulate(chain_scenario(n_packets, **chain))
    return {"delivered": res.model.recorder.count(DELIVERED)}


def mem_ours_collect(n_packets: int, **chain) -> dict:
    res = simulate(chain_scenario(n_packets, **chain))
    _ = res.packets                             # builds the full per-packet DataFrame
    return {"delivered": res.model.recorder.count(DELIVERED)}


def memory(n_packets: int) -> None:
    fns = {"netns-sim simulate()": mem_ours_simulate, "netns-sim +packets": mem_ours_collect,
           "ns.py": run_nspy_chain, "simpy": run_simpy_chain, "heapq": run_heapq_chain}
    mem_ours_collect(2000, **CHAIN)             # warm-up (pandas imports, caches)
    got = {name: peak_memory_per_packet(fn, n_packets, **CHAIN) for name, fn in fns.items()}
    print(f"\nmemory: peak traced bytes per delivered packet, {n_packets:,} packets, one run each")
    for name, b in got.items():
        print(f"    {name:<22}{b:>10,.0f} B   ({b / got['ns.py']:.2f}x ns.py)")


def l2_scenario(n_packets: int, total_pps: float, namespaces: int = 100, cores: int = 2) -> Scenario:
    return Scenario.model_validate({
        "name": "bench-l2-routed",
        "hosts": [{"name": "h", "scheme": "l2-routed", "namespaces": namespaces, "cores": cores}],
        "flows": [{"kind": "poisson", "src": "h:wire", "dst": f"h:ns{k}", "rate_pps": total_pps / namespaces,
                   "size": {"bytes": 1000}} for k in range(namespaces)],
        "run": {"duration_ns": 1e15, "max_packets": n_packets},
    })


def l2_routed(n_packets: int, target_util: float = 0.5, cores: int = 2) -> None:
    probe = simulate(l2_scenario(1000, total_pps=1000.0)).packets
    cpu_ns = float(probe[list(STAGE_COLUMNS)].sum(axis=1).mean())
    rate = target_util * cores * 1e9 / cpu_ns
    c0 = time.process_time()
    res = simulate(l2_scenario(n_packets, rate, cores=cores))
    cpu = time.process_time() - c0
    pk = res.packets
    ok = pk["status"] == "delivered"
    lat_us = pk.loc[ok, "latency_ns"].to_numpy() / 1e3
    util = res.cores["busy_ns"].to_numpy() / pk["t_done_ns"].max()
    print(f"\nl2-routed wire -> namespace, 100 namespaces, {cores} cores, {n_packets:,} packets at "
          f"{target_util:.0%} of capacity ({cpu_ns:.0f} ns of CPU per packet)")
    print(f"    {int(ok.sum()) / cpu:,.0f} delivered per CPU-s (simulate() only); events/pkt "
          f"{res.stats['events'] / n_packets:.2f}; latency p50 {np.percentile(lat_us, 50):.3f} us, "
          f"p99 {np.percentile(lat_us, 99):.3f} us; utilisation " + ", ".join(f"{u:.3f}" for u in util))


def extras(n_packets: int) -> None:
    memory(n_packets)
    l2_routed(n_packets)
