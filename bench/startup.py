"""Start-up benchmark: `netns-sim --version` and `netns-sim validate` as whole processes.

Each command runs as a child process (``.venv/bin/netns-sim`` when present, else
``python -m sim``) in interleaved rounds; the child's CPU time (user + system, from
``resource.getrusage(RUSAGE_CHILDREN)``) and its wall time are recorded per round and the
medians printed, with the target of issue 16 (``--version`` well under 0.3 s).

Run: ``.venv/bin/python bench/startup.py [--rounds 9]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION_TARGET_S = 0.3


def command() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "netns-sim"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("netns-sim")
    return [found] if found else [sys.executable, "-m", "sim"]


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of one child process running `argv`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--scenario", default="scenarios/rfc2006-schemes.yaml")
    a = ap.parse_args(argv)
    base = command()
    cases = {"--version": base + ["--version"], "validate": base + ["validate", a.scenario, "--quiet"]}
    for argv_ in cases.values():                      # warm the page cache and .pyc files
        timed(argv_)
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
    for _ in range(a.rounds):
        for name, argv_ in cases.items():
            got[name].append(timed(argv_))
    print(f"netns-sim start-up, {a.rounds} interleaved rounds, load average {os.getloadavg()[0]:.2f} "
          f"(1 min) at the end; command: {' '.join(base)}")
    for name, runs in got.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        line = f"  {name:<10} median wall {wall:6.3f} s (range {min(r[0] for r in runs):.3f}-" \
               f"{max(r[0] for r in runs):.3f}), median CPU {cpu:6.3f} s"
        if name == "--version":
            line += f"   target wall < {VERSION_TARGET_S} s: {'met' if wall < VERSION_TARGET_S else 'not met'}"
        print(line)


if __name__ == "__main__":
    main()
