"""Sweep throughput: points per minute on the local process pool with 1 and 2 workers.

A small sweep (8 points x 2 replications = 16 runs, 2 ms simulated each, one host, two
Poisson flows) is run from scratch into a temporary directory with ``--jobs 1`` and
``--jobs 2``.  Wall time includes starting the pool, writing partitions and markers and the
final summary.  Usage: ``PYTHONPATH=. .venv/bin/python bench/sweep.py [--duration-ns 2e6]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-ns", type=float, default=2e6)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    from sim.sweep.executors import LocalExecutor
    from sim.sweep.runner import run_study
    from sim.sweep.spec import expand
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench-sweep.yaml"
        path.write_text(SCENARIO.format(duration=args.duration_ns))
        exp = expand(path)
        variants = len({p.index for p in exp.points})
        print(f"sweep: {variants} points x {exp.spec.replications} replications = {len(exp.points)} runs, "
              f"{args.duration_ns / 1e6:g} ms simulated each")
        base = None
        for jobs in args.jobs:
            t0 = time.perf_counter()
            ex = LocalExecutor(jobs)
            try:
                r = run_study(exp, Path(d) / f"out-{jobs}", ex)
            finally:
                ex.close()
            wall = time.perf_counter() - t0
            assert r.ok and r.done == len(exp.points)
            ppm = variants / wall * 60
            base = base or ppm
            print(f"jobs={jobs}: {wall:6.2f} s wall, {ppm:7.1f} points/min ({len(exp.points) / wall * 60:7.1f} "
                  f"runs/min), speed-up x{ppm / base:.2f}")


if __name__ == "__main__":
    main()
