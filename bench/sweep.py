"""Sweep throughput: points per minute on the local process pool with 1 and 2 workers.

A small sweep (8 points x 2 replications = 16 runs, 20 ms simulated each by default, one host
with 10 namespaces, two Poisson flows) runs on `sim.sweep.executors.LocalExecutor`.  Each
round starts a pool per worker count (the order alternates from round to round), times its
start-up apart, then runs the whole study on that warm pool into a fresh output folder
(``run_study``: submitting, the points, writing partitions and markers, the final tables
and summary) and closes the pool.  Per round it records the study's wall time, the parent's
CPU time and the workers' CPU time (from /proc); the speed-up is the per-round ratio of
points per minute, 2 workers / 1 worker, and its median is compared with issue 16's target
(>= 1.6x on 20 ms points).

Usage: ``.venv/bin/python bench/sweep.py [--duration-ns 2e7] [--rounds 5] [--jobs 1 2]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SPEEDUP_TARGET = 1.6

SCENARIO = """\
name: bench-sweep
description: sweep throughput benchmark
hosts:
  - {{name: h0, cores: 2, scheme: host, namespaces: 10}}
flows:
  - {{name: wire_to_ns, kind: poisson, src: h0:wire, dst: h0:ns*, rate_pps: 100000}}
  - {{name: ns_to_ns, kind: poisson, src: h0:ns0, dst: h0:ns*, rate_pps: 100000}}
run: {{duration_ns: {duration}, warmup_ns: 0, seed: 1}}
sweep:
  replications: 2
  grid:
    hosts.*.scheme: [host, l2-routed, shortcut-socket, vnic]
    flows.*.rate_pps: [50000, 200000]
"""


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one(exp, jobs: int, work: Path, k: int) -> dict:
    """Start a pool of `jobs` workers (timed apart), run the study into a fresh folder, close."""
    from sim.sweep.executors import LocalExecutor
    from sim.sweep.runner import run_study
    t0 = time.perf_counter()
    ex = LocalExecutor(jobs)
    startup = time.perf_counter() - t0
    pids = [p.pid for p in ex.pool._processes.values()]
    w0 = sum(proc_cpu_s(p) for p in pids)
    out = Path(tempfile.mkdtemp(prefix=f"out-{jobs}-r{k}-", dir=work))      # fresh every time
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        r = run_study(exp, out / "study", ex)
        wall, parent_cpu = time.perf_counter() - t0, time.process_time() - c0
        workers_cpu = sum(proc_cpu_s(p) for p in pids) - w0
    finally:
        ex.close()
    assert r.ok and r.done == len(exp.points) and r.skipped == 0, r
    return {"startup_s": startup, "wall_s": wall, "parent_cpu_s": parent_cpu, "workers_cpu_s": workers_cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-ns", type=float, default=2e7)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from sim.sweep.spec import expand
    with tempfile.TemporaryDirectory(prefix="nsim-bench-sweep-") as d:
        work = Path(d)
        path = work / "bench-sweep.yaml"
        path.write_text(SCENARIO.format(duration=args.duration_ns))
        exp = expand(path)
        variants = len({p.index for p in exp.points})
        print(f"sweep: {variants} points x {exp.spec.replications} replications = {len(exp.points)} runs, "
              f"{args.duration_ns / 1e6:g} ms simulated each; {args.rounds} rounds, load average "
              f"{'/'.join(f'{x:.2f}' for x in os.getloadavg())} at start", flush=True)
        got: dict[int, list[dict]] = {j: [] for j in args.jobs}
        for k in range(args.rounds):
            order = args.jobs if k % 2 == 0 else args.jobs[::-1]
            for jobs in order:
                got[jobs].append(one(exp, jobs, work, k))
            print(f"  round {k + 1}: " + ", ".join(
                f"jobs={j} {got[j][-1]['wall_s']:.2f} s" for j in args.jobs), flush=True)
    base = args.jobs[0]
    for jobs, rs in got.items():
        wall = statistics.median(r["wall_s"] for r in rs)
        ppm = [variants / r["wall_s"] * 60 for r in rs]
        print(f"jobs={jobs}: pool start-up {statistics.median(r['startup_s'] for r in rs):.2f} s (apart); study "
              f"{wall:.2f} s wall, {statistics.median(ppm):.1f} points/min "
              f"({len(exp.points) / wall * 60:.1f} runs/min); "
              f"CPU: parent {statistics.median(r['parent_cpu_s'] for r in rs):.2f} s, workers "
              f"{statistics.median(r['workers_cpu_s'] for r in rs):.2f} s")
        if jobs != base:
            sp = [b["wall_s"] / r["wall_s"] for b, r in zip(got[base], rs)]
            med = statistics.median(sp)
            line = f"  speed-up jobs={jobs} / jobs={base}: median {med:.2f}x (rounds {min(sp):.2f}-{max(sp):.2f})"
            if (base, jobs) == (1, 2):
                ok = "met" if med >= SPEEDUP_TARGET else "NOT met"
                line += f"   target >= {SPEEDUP_TARGET}x on 20 ms points: {ok}"
            print(line)
    print(f"load average at end {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
