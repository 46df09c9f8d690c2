"""`make run` of this tree against an earlier commit: CPU and wall time, interleaved rounds.

Run:  .venv/bin/python bench/makerun.py --ref 47cbd70                 (5 rounds)
      .venv/bin/python bench/makerun.py --ref 47cbd70 --rounds 7 --base-tree /path/to/checkout

What is timed is what ``make run`` runs once its venv exists: ``netns-sim run SCENARIO --out DIR
--force`` then ``netns-sim report DIR`` (default scenario: scenarios/rfc2006-schemes.yaml), each
as a child process (``python -m sim``, the console script's entry) of this venv's Python with
the tree first on ``sys.path``.  The earlier commit is checked out with ``git worktree add``
into a temporary directory (removed afterwards), unless ``--base-tree`` names a checkout.

Each round runs both trees, in alternating order (this tree first in odd rounds); a round's
figures are the ratios baseline / this tree of the children's CPU time (user + system, from
``resource.getrusage(RUSAGE_CHILDREN)``) and of wall time, for the run, the report and both.
Reported: the median of the per-round ratios, their range, and each tree's median seconds; the
load average before and after.  Output directories are fresh per round and tree.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = "scenarios/rfc2006-schemes.yaml"


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one child process; raises if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env={**os.environ, "PYTHONPATH": str(cwd)},
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} in {cwd} failed:\n{r.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def make_run(tree: Path, scenario: str, out: Path) -> dict[str, float]:
    """One ``make run`` of `tree` into `out`: CPU and wall seconds of the run and the report."""
    py = sys.executable
    run_cpu, run_wall = timed([py, "-m", "sim", "run", scenario, "--out", str(out), "--force", "-q"], tree)
    rep_cpu, rep_wall = timed([py, "-m", "sim", "report", str(out)], tree)
    return {"run_cpu": run_cpu, "run_wall": run_wall, "report_cpu": rep_cpu, "report_wall": rep_wall,
            "cpu": run_cpu + rep_cpu, "wall": run_wall + rep_wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", default="HEAD~1", help="the earlier commit (default HEAD~1)")
    ap.add_argument("--base-tree", help="a checkout of the earlier commit to use instead of a new worktree")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scenario", default=SCENARIO)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}")
    tmp = Path(tempfile.mkdtemp(prefix="makerun-"))
    base = Path(args.base_tree) if args.base_tree else tmp / "base"
    try:
        if not args.base_tree:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.ref],
                           check=True, capture_output=True)
        trees = {"this": ROOT, "base": base}
        runs: dict[str, list[dict]] = {"this": [], "base": []}
        for k in range(args.rounds):
            order = ["this", "base"] if k % 2 == 0 else ["base", "this"]
            for name in order:
                out = tmp / f"out-{name}-{k}"
                runs[name].append(make_run(trees[name], args.scenario, out))
                shutil.rmtree(out, ignore_errors=True)
            r = {m: runs["base"][-1][m] / runs["this"][-1][m] for m in ("cpu", "wall")}
            print(f"round {k + 1}: base/this CPU {r['cpu']:.2f}x, wall {r['wall']:.2f}x "
                  f"(this {runs['this'][-1]['cpu']:.1f} s CPU, base {runs['base'][-1]['cpu']:.1f} s CPU)", flush=True)
        print(f"\n{args.rounds} interleaved rounds, {args.scenario}, ref {args.ref}")
        for m in ("run_cpu", "report_cpu", "cpu", "run_wall", "report_wall", "wall"):
            ratios = [b[m] / t[m] for b, t in zip(runs["base"], runs["this"])]
            print(f"{m:12s} base {statistics.median(r[m] for r in runs['base']):6.1f} s  "
                  f"this {statistics.median(r[m] for r in runs['this']):6.1f} s  "
                  f"speed-up median {statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f})")
        print(f"load average after: {os.getloadavg()}")
    finally:
        if not args.base_tree:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
