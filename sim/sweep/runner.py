"""Run a sweep: expand points, skip finished ones, submit the rest, collect, summarise.

`run_sweep` is the Python entry point of ``netns-sim sweep``; it returns a `SweepReport`
(finished, skipped, failed points) after writing ``summary.csv`` and ``points.csv`` from
every finished marker of this sweep.  Failed points are recorded under ``failed/`` with
their configuration and error and do not stop the others.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from sim.sweep import aggregate
from sim.sweep.progress import NoProgress
from sim.sweep.spec import Expanded, expand
from sim.sweep.store import Store, atomic_write_bytes, atomic_write_json, packets_path
from sim.sweep.worker import run_point


@dataclass
class SweepReport:
    out: Path
    total: int
    skipped: int = 0
    done: int = 0
    failed: list[dict] = field(default_factory=list)
    wall_s: float = 0.0
    summary_rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed


def _csv(path: Path, frame) -> None:
    atomic_write_bytes(path, frame.to_csv(index=False).encode())


def run_sweep(scenario: str | Path, out: str | Path, executor, sets=(), seed: Optional[int] = None,
              progress=None, expanded: Optional[Expanded] = None, log=None) -> SweepReport:
    t0 = time.perf_counter()
    progress = progress or NoProgress()
    exp = expanded or expand(scenario, list(sets), seed)
    store = Store(out)
    store.prepare()
    names = exp.factor_names
    atomic_write_json(store.root / "sweep.json", {
        "scenario": exp.name, "scenario_file": str(scenario), "factors": names,
        "replications": exp.spec.replications,
        "points": [{"key": p.key, "id": p.id, "levels": p.levels, "replication": p.replication}
                   for p in exp.points],
        "rejected": [{"key": r.key, "levels": r.levels, "replication": r.replication} for r in exp.rejected]})
    report = SweepReport(store.root, len(exp.points) + len(exp.rejected))
    for r in exp.rejected:                                      # did not validate: failed as is
        info = {"key": r.key, "id": None, "levels": r.levels, "replication": r.replication,
                "scenario": exp.name, "config": None, "error": f"invalid configuration: {r.error}",
                "traceback": None}
        store.record_failure(info)
        report.failed.append(info)
    done = store.done_keys()
    todo = [p for p in exp.points if p.key not in done]
    report.skipped = len(exp.points) - len(todo)
    progress.start(report.total, report.skipped)
    handles = {}
    try:
        for p in todo:
            rel = str(packets_path(store.root, p.levels, names, p.key).relative_to(store.root))
            h = executor.submit(run_point, {**p.task(), "scenario": exp.name}, str(store.root.resolve()), rel, exp.name)
            handles[h] = p
        progress.update(0, min(executor.workers, len(todo)), len(report.failed))
        finished = 0
        for h in executor.as_completed(list(handles)):
            finished += 1
            p = handles[h]
            try:
                res = executor.result(h)
            except Exception as e:                               # the worker itself died
                res = {"ok": False, "failure": {"key": p.key, "id": p.id, "levels": p.levels,
                                                "replication": p.replication, "scenario": exp.name,
                                                "config": p.config, "error": f"{type(e).__name__}: {e}",
                                                "traceback": None}}
            if res["ok"]:
                if res["packets"] is not None or not store.marker(p.key).exists():
                    store.commit_point(res["marker"], res["packets"])
                report.done += 1
            else:
                store.record_failure(res["failure"])
                report.failed.append(res["failure"])
                if log:
                    log(f"point {p.id} failed ({_levels(p.levels)}): {res['failure']['error']}")
            progress.update(report.done, min(executor.workers, len(todo) - finished), len(report.failed))
    finally:
        progress.stop()
    keys = [p.key for p in exp.points]
    points = aggregate.points_table(store, keys, names)
    summary = aggregate.summary_table(points, names)
    _csv(store.root / "points.csv", points)
    _csv(store.root / "summary.csv", summary)
    report.summary_rows = len(summary)
    report.wall_s = time.perf_counter() - t0
    return report


def _levels(levels: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in levels.items()) or "no swept keys"
