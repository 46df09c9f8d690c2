"""Report benchmark: wall time, CPU time and peak memory of `netns-sim report` at 1x and 10x packets
(issue 13, "report streams").

The result is scenarios/rfc2006-schemes.yaml (80 variants) with ``run.duration_ns`` set so that the
10x case has ten times the packets of the 1x case (``run.warmup_ns`` is kept).  Each command runs
in its own child process through the real command path; its peak resident memory is that child's
``ru_maxrss`` (the whole process: Python, numpy, pandas, pyarrow and matplotlib included), read
with ``os.wait4``.  The runs that make the results are measured the same way, so the report's peak
can be compared with the run's.  Rounds are interleaved (1x, 10x, 1x, 10x, ...) and the median of
each figure is printed, because the machine is shared and noisy; the load average is printed too.

Run: ``.venv/bin/python bench/report.py`` (``--duration-ns`` sets the 1x duration, default 2e7 ns,
the scenario's own; ``--rounds`` the report rounds, default 3; ``--svg`` passes ``--svg`` to the
report; ``--keep DIR`` keeps the results and reuses them next time).  The results are written once per
size under a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "rfc2006-schemes.yaml"
CLI = [sys.executable, "-m", "sim"]


def measure(cmd: list[str]) -> dict:
    """Run `cmd` as a child; its wall time, CPU time (user+sys) and peak RSS (MiB)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode() if p.stderr else ""
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{err[-2000:]}")
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "rss_mib": ru.ru_maxrss / 1024}


def packets(result: Path) -> int:
    import pyarrow.dataset as ds
    return ds.dataset(result / "packets", format="parquet", partitioning="hive").count_rows()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration-ns", type=float, default=2e7)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--svg", action="store_true")
    ap.add_argument("--keep", metavar="DIR", help="write the results here (kept) instead of a temporary directory; "
                    "results already there (with their run's figures in <size>.run.json) are reused")
    a = ap.parse_args(argv)
    base = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="bench-report-"))
    base.mkdir(parents=True, exist_ok=True)
    sizes = {"1x": a.duration_ns, "10x": a.duration_ns * 10}
    runs, reports = {}, {k: [] for k in sizes}
    for k, dur in sizes.items():
        out, saved = base / k, base / f"{k}.run.json"
        if a.keep and saved.is_file() and (out / "points.csv").is_file():
            runs[k] = json.loads(saved.read_text())        # --keep: the run made earlier, as measured then
        else:
            runs[k] = measure(CLI + ["run", str(SCENARIO), "--out", str(out), "--force",
                                     "--set", f"run.duration_ns={dur:g}"])
            runs[k]["packets"] = packets(out)
            saved.write_text(json.dumps(runs[k]))
        print(f"run {k}: {runs[k]['packets']:,} packet rows, {runs[k]['wall_s']:.1f} s wall, "
              f"{runs[k]['cpu_s']:.1f} s CPU, peak RSS {runs[k]['rss_mib']:.0f} MiB", flush=True)
    for i in range(a.rounds):
        for k in sizes:
            m = measure(CLI + ["report", str(base / k)] + (["--svg"] if a.svg else []))
            reports[k].append(m)
            print(f"round {i + 1} report {k}: {m['wall_s']:.1f} s wall, {m['cpu_s']:.1f} s CPU, "
                  f"peak RSS {m['rss_mib']:.0f} MiB, load average {os.getloadavg()[0]:.2f}", flush=True)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nmedians of {a.rounds} interleaved rounds (load average now {load}):")
    print(f"{'case':6} {'packets':>11} {'report wall s':>14} {'report CPU s':>13} {'report RSS MiB':>15} "
          f"{'run RSS MiB':>12} {'report/run RSS':>15}")
    for k in sizes:
        med = {f: statistics.median(m[f] for m in reports[k]) for f in ("wall_s", "cpu_s", "rss_mib")}
        print(f"{k:6} {runs[k]['packets']:>11,} {med['wall_s']:>14.1f} {med['cpu_s']:>13.1f} {med['rss_mib']:>15.0f} "
              f"{runs[k]['rss_mib']:>12.0f} {med['rss_mib'] / runs[k]['rss_mib']:>15.2f}")
    if not a.keep:
        print(f"(results in {base}; remove when done)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
