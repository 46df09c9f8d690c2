"""Engine benchmark: netns-sim against ns.py and plain simpy, plus an l2-routed fan-in.

Run:  make bench                      (= .venv/bin/python bench/engine.py)
      .venv/bin/python bench/engine.py --quick          (20,000 packets, fast check)
      .venv/bin/python bench/engine.py --packets 100000 --mem-packets 20000

(a) The 5-hop store-and-forward chain at 70 % load: Poisson arrivals of 1000-byte
    packets over 5 links of 1 Gb/s with 1000 ns propagation each (4 switches between
    hosts ``a`` and ``b``).  The same chain is run by netns-sim (`sim.core.simulate.simulate`),
    ns.py and plain simpy (`bench/baselines.py`).  netns-sim also models the two hosts'
    stack passes (a send pass on ``a``, a receive pass on ``b``), so it does strictly
    more modelling work per packet than the baselines.
    Timing: 3 interleaved repetitions (ours, ns.py, simpy, ours, ...), medians reported;
    wall time covers model construction and the run, not post-processing.
    Memory: a separate run per simulator under tracemalloc, peak traced bytes divided by
    delivered packets.  netns-sim is measured twice: simulate() only (compact columnar
    records) and simulate()+Results.packets (the full per-packet DataFrame).
    Ratios: netns-sim pkts/s / ns.py pkts/s (target >= 3) and netns-sim bytes/packet /
    ns.py bytes/packet (target <= 0.5).

(b) Wire -> namespace traffic on one ``l2-routed`` host with 100 namespaces and 2 cores:
    100 Poisson flows ``h:wire -> h:nsK``.  A 1,000-packet unloaded probe measures the CPU
    time of one packet (sum of its stage costs); the total rate is then set to 50 % of the
    host's capacity (cores / CPU time per packet).  Reports delivered packets per
    wall-second, engine events per packet, p50/p99 latency and per-core utilisation
    (busy_ns from Results.cores over the simulated span).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baselines import (chain_theory_latency_s, peak_memory_per_packet,  # noqa: E402
                             run_nspy_chain, run_simpy_chain)
from sim.core.records import DELIVERED, STAGE_COLUMNS  # noqa: E402
from sim.core.simulate import simulate  # noqa: E402
from sim.frontdoor.scenario import Scenario  # noqa: E402
from sim.core.units import pps_from_load  # noqa: E402

CHAIN = dict(hops=5, load=0.7, size_bytes=1000, rate_bps=1e9, delay_s=1e-6, seed=1)
REPEATS = 3
PPS_TARGET = 3.0
BYTES_TARGET = 0.5


# --------------------------------------------------------------------------- header


def cpu_name() -> str:
    """platform.processor(), or the model name from /proc/cpuinfo when that is empty."""
    name = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{name or '-'} ({line.split(':', 1)[1].strip()})"
    except OSError:
        pass
    return name or "unknown"


def print_header() -> None:
    print("netns-sim engine benchmark")
    print(f"python {platform.python_version()} | simpy {version('simpy')} | ns.py {version('ns.py')} | "
          f"numpy {version('numpy')} | pandas {version('pandas')}")
    print(f"cpu: {cpu_name()} | cpu_count {os.cpu_count()} | {platform.platform()}")


# --------------------------------------------------------------------------- netns-sim chain


def chain_scenario(n_packets: int, hops: int = 5, load: float = 0.7, size_bytes: int = 1000,
                   rate_bps: float = 1e9, delay_s: float = 1e-6, seed: int = 1) -> Scenario:
    """Hosts a, b joined through hops-1 switches; one Poisson flow a:ns0 -> b:ns0."""
    nodes = ["a"] + [f"s{i}" for i in range(1, hops)] + ["b"]
    return Scenario.model_validate({
        "name": "bench-chain",
        "hosts": [{"name": "a", "scheme": "host", "namespaces": 1, "cores": 1},
                  {"name": "b", "scheme": "host", "namespaces": 1, "cores": 1}],
        "switches": [{"name": s} for s in nodes[1:-1]],
        "links": [{"a": x, "b": y, "rate_bps": rate_bps, "delay_ns": delay_s * 1e9}
                  for x, y in zip(nodes, nodes[1:])],
        "flows": [{"kind": "poisson", "src": "a:ns0", "dst": "b:ns0",
                   "rate_pps": pps_from_load(load, size_bytes, rate_bps), "size": {"bytes": size_bytes}}],
        "run": {"duration_ns": 1e15, "max_packets": n_packets, "seed": seed},
    })


def model_summary(model, wall_s: float) -> dict:
    """Delivered count, events and mean latency (s) from the compact records (no DataFrame)."""
    rec = model.recorder
    ok = rec.column("status") == DELIVERED
    lat_ns = rec.column("t_done_ns")[ok] - rec.column("t_sent_ns")[ok]
    delivered = int(ok.sum())
    return {"delivered": delivered, "wall_s": wall_s, "events": model.engine.events,
            "mean_latency_s": float(lat_ns.mean()) * 1e-9 if delivered else float("nan")}


def run_ours_chain(n_packets: int, **chain) -> dict:
    """netns-sim, simulate() only; wall time includes validation and model construction."""
    t0 = time.perf_counter()
    res = simulate(chain_scenario(n_packets, **chain))
    return model_summary(res.model, time.perf_counter() - t0)


def mem_ours_simulate(n_packets: int, **chain) -> dict:
    """netns-sim, simulate() only, for a memory run: no per-packet work after the run."""
    res = simulate(chain_scenario(n_packets, **chain))
    return {"delivered": res.model.recorder.count(DELIVERED)}


def mem_ours_collect(n_packets: int, **chain) -> dict:
    """netns-sim, simulate() then Results.packets (the full per-packet DataFrame), for a memory run."""
    res = simulate(chain_scenario(n_packets, **chain))
    res.packets
    return {"delivered": res.model.recorder.count(DELIVERED)}


RUNNERS = {"netns-sim": run_ours_chain, "ns.py": run_nspy_chain, "simpy": run_simpy_chain}


# --------------------------------------------------------------------------- (a) chain


def time_chain(n_packets: int) -> dict[str, list[dict]]:
    """REPEATS interleaved timing runs of every simulator."""
    for fn in RUNNERS.values():
        fn(2000, **CHAIN)                       # warm-up: imports, caches
    runs: dict[str, list[dict]] = {name: [] for name in RUNNERS}
    for _ in range(REPEATS):
        for name, fn in RUNNERS.items():
            runs[name].append(fn(n_packets, **CHAIN))
    return runs


def memory_chain(n_packets: int) -> dict[str, float]:
    """Peak traced bytes per delivered packet, one separate run each."""
    fns = {"netns-sim simulate()": mem_ours_simulate,
           "netns-sim +collect()": mem_ours_collect,
           "ns.py": run_nspy_chain, "simpy": run_simpy_chain}
    mem_ours_collect(2000, **CHAIN)             # warm-up the collect() path too (pandas imports)
    return {name: peak_memory_per_packet(fn, n_packets, **CHAIN) for name, fn in fns.items()}


def median_of(runs: list[dict], key) -> float:
    return statistics.median(key(r) for r in runs)


def print_chain(n_packets: int, mem_packets: int, runs: dict, mem: dict) -> None:
    theory_us = chain_theory_latency_s(**{k: CHAIN[k] for k in ("hops", "load", "size_bytes",
                                                                 "rate_bps", "delay_s")}) * 1e6
    print()
    print(f"(a) 5-hop store-and-forward chain, load {CHAIN['load']}, {CHAIN['size_bytes']} B packets, "
          f"1 Gb/s, 1000 ns per link")
    print(f"    timing: {n_packets:,} packets, median of {REPEATS} interleaved runs; "
          f"memory: {mem_packets:,} packets, separate tracemalloc runs")
    print("    NOTE: netns-sim also models both hosts' stack passes (send pass on a, receive pass on b),")
    print("    i.e. strictly more work per packet than the ns.py and simpy chains (links only).")
    print(f"    theory mean latency of the links-only chain: {theory_us:.3f} us")
    print()
    head = f"    {'simulator':<22}{'delivered':>10}{'wall s':>9}{'pkts/wall-s':>13}{'events/pkt':>12}" \
           f"{'mean lat us':>13}{'peak B/pkt':>12}"
    print(head)
    print("    " + "-" * (len(head) - 4))
    mem_col = {"netns-sim": "netns-sim simulate()"}
    for name, rs in runs.items():
        wall = median_of(rs, lambda r: r["wall_s"])
        pps = median_of(rs, lambda r: r["delivered"] / r["wall_s"])
        ev = median_of(rs, lambda r: r["events"] / r["delivered"])
        lat = median_of(rs, lambda r: r["mean_latency_s"]) * 1e6
        label = mem_col.get(name, name)
        print(f"    {label:<22}{rs[0]['delivered']:>10,}{wall:>9.2f}{pps:>13,.0f}{ev:>12.2f}"
              f"{lat:>13.3f}{mem[label]:>12,.0f}")
    print(f"    {'netns-sim +collect()':<22}{'':>10}{'':>9}{'':>13}{'':>12}{'':>13}"
          f"{mem['netns-sim +collect()']:>12,.0f}")
    lat = {n: median_of(rs, lambda r: r["mean_latency_s"]) * 1e6 for n, rs in runs.items()}
    print()
    print(f"    latency: netns-sim - theory = {lat['netns-sim'] - theory_us:+.3f} us (the two host stack passes "
          f"and queueing for a's core;")
    print(f"    netns-sim has its own RNG stream); ns.py - simpy = {lat['ns.py'] - lat['simpy']:+.1e} us "
          f"(same sample path)")
    print("    recorded per packet: ns.py PacketSink defaults = 3 Python floats in lists (waits, arrivals,")
    print("    packet_times); plain simpy = 1 float; netns-sim = one columnar row, 61 B + 12 B per pass (2 here).")
    pps = {n: median_of(rs, lambda r: r["delivered"] / r["wall_s"]) for n, rs in runs.items()}
    speed = pps["netns-sim"] / pps["ns.py"]
    print()
    print(f"    netns-sim pkts/s / ns.py pkts/s = {speed:.2f}x   (target >= {PPS_TARGET:g}x: "
          f"{'MET' if speed >= PPS_TARGET else 'NOT MET'})")
    print(f"    netns-sim pkts/s / simpy pkts/s = {pps['netns-sim'] / pps['simpy']:.2f}x   (for reference)")
    for label in ("netns-sim simulate()", "netns-sim +collect()"):
        ratio = mem[label] / mem["ns.py"]
        print(f"    {label} B/pkt / ns.py B/pkt = {ratio:.2f}   (target <= {BYTES_TARGET:g}: "
              f"{'MET' if ratio <= BYTES_TARGET else 'NOT MET'})")


# --------------------------------------------------------------------------- (b) l2-routed


def l2_scenario(n_packets: int, total_pps: float, namespaces: int = 100, cores: int = 2) -> Scenario:
    """One l2-routed host; one Poisson flow h:wire -> h:nsK per namespace, total_pps in all."""
    return Scenario.model_validate({
        "name": "bench-l2-routed",
        "hosts": [{"name": "h", "scheme": "l2-routed", "namespaces": namespaces, "cores": cores}],
        "flows": [{"kind": "poisson", "src": "h:wire", "dst": f"h:ns{k}", "rate_pps": total_pps / namespaces,
                   "size": {"bytes": 1000}} for k in range(namespaces)],
        "run": {"duration_ns": 1e15, "max_packets": n_packets},
    })


def probe_cpu_ns() -> float:
    """CPU ns of one wire->ns packet: mean of the stage-cost sum over an unloaded 1,000-packet run."""
    pk = simulate(l2_scenario(1000, total_pps=1000.0)).packets
    return float(pk[list(STAGE_COLUMNS)].sum(axis=1).mean())


def run_l2(n_packets: int, target_util: float = 0.5, cores: int = 2) -> None:
    cpu_ns = probe_cpu_ns()
    capacity_pps = cores * 1e9 / cpu_ns
    rate = target_util * capacity_pps
    t0 = time.perf_counter()
    res = simulate(l2_scenario(n_packets, rate, cores=cores))
    wall = time.perf_counter() - t0
    pk = res.packets
    ok = pk["status"] == "delivered"
    lat_us = pk.loc[ok, "latency_ns"].to_numpy() / 1e3
    span_ns = pk["t_done_ns"].max()
    util = res.cores["busy_ns"].to_numpy() / span_ns
    delivered = int(ok.sum())
    print()
    print(f"(b) wire -> namespace, l2-routed host, 100 namespaces, {cores} cores, 100 Poisson flows, "
          f"1000 B, {n_packets:,} packets")
    print(f"    probe (1,000 packets, unloaded): CPU per packet {cpu_ns:.0f} ns -> capacity "
          f"{capacity_pps:,.0f} pps on {cores} cores; offered {rate:,.0f} pps ({target_util:.0%})")
    print(f"    delivered {delivered:,} (dropped {int((pk['status'] == 'dropped').sum()):,}) in {wall:.2f} s "
          f"-> {delivered / wall:,.0f} delivered/wall-s; events/pkt {res.stats['events'] / n_packets:.2f}")
    print(f"    latency p50 {np.percentile(lat_us, 50):.3f} us, p99 {np.percentile(lat_us, 99):.3f} us; "
          f"utilisation (busy_ns / simulated span {span_ns / 1e6:.1f} ms) per core: "
          + ", ".join(f"{u:.3f}" for u in util))


# --------------------------------------------------------------------------- main


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=200_000, help="packets per run (default 200,000)")
    ap.add_argument("--mem-packets", type=int, default=None,
                    help="packets per memory run (default: --packets, as the issue measures at 200,000)")
    ap.add_argument("--quick", action="store_true", help="20,000 packets everywhere")
    args = ap.parse_args(argv)
    n = 20_000 if args.quick else args.packets
    mem_n = args.mem_packets or n
    t0 = time.perf_counter()
    print_header()
    runs = time_chain(n)
    mem = memory_chain(mem_n)
    print_chain(n, mem_n, runs, mem)
    run_l2(n)
    print(f"\n(total benchmark time {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
