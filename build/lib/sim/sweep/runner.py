"""Run a study: the points of a scenario (a ``sweep:`` block, or the ``compare:`` grid of
``netns-sim run``) -> one result directory.

`run_study` is the one runner behind ``netns-sim run`` (an in-process executor writing into a
temporary directory that `sim.results.results_io.ResultDir` renames into place) and ``netns-sim
sweep`` (a process pool or Dask, resumable in place).  It skips points whose marker exists,
submits the rest (each runs `sim.sweep.worker.run_point`, which calls `sim.core.simulate`),
collects them, and writes the study's files, so both commands produce the same layout:

    packets/, points/, failed/   partitioned packet records and per-point markers (`sim.sweep.store`)
    sweep.json              what was asked: scenario, swept keys, replications, points
    metadata.json           provenance (`sim.results.provenance`), scenario, factors, seed, per-point stats
    scenario.resolved.yaml  the first variant's resolved scenario, the grid as compare:
    points.csv, memory.csv, cores.csv, flows.csv, summary.csv   (`sim.sweep.aggregate`)

Failed points are recorded under ``failed/`` with their configuration and error and do not
stop the others; `StudyReport.failed` lists them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from sim.frontdoor.outpath import FULL_DISK
from sim.results.provenance import provenance
from sim.sweep import aggregate
from sim.sweep.progress import NoProgress
from sim.sweep.spec import Expanded
from sim.sweep.store import Store, atomic_write_bytes, atomic_write_json, packets_path
from sim.sweep.worker import run_point


@dataclass
class StudyReport:
    out: Path
    total: int
    skipped: int = 0
    done: int = 0
    failed: list[dict] = field(default_factory=list)
    wall_s: float = 0.0
    summary_rows: int = 0
    records: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed


def _csv(path: Path, frame) -> None:
    atomic_write_bytes(path, frame.to_csv(index=False).encode())


class _Background:
    """`fn()` in a daemon thread, started now; `result()` waits for it.  Used for the
    provenance record (git subprocesses, package metadata) and the import of scipy.stats for
    the confidence intervals: work that does not depend on the points, kept off the critical
    path of a sweep while the workers run."""

    def __init__(self, fn: Callable[[], dict]) -> None:
        self._out: dict = {}
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True, name="provenance")
        self._thread.start()

    def _run(self, fn) -> None:
        try:
            self._out["value"] = fn()
        except BaseException as e:   # noqa: BLE001 - re-raised by result(), in the caller's thread
            self._out["error"] = e

    def result(self) -> dict:
        self._thread.join()
        if "error" in self._out:
            raise self._out["error"]
        return self._out["value"]


def run_study(exp: Expanded, out: str | Path, executor, progress=None,
              log: Optional[Callable[[str], None]] = None) -> StudyReport:
    """Run every point of `exp` not yet done in `out` on `executor`; write the study's files."""
    t0 = time.perf_counter()
    started = datetime.now(timezone.utc)
    prov = _Background(lambda: _provenance(intervals=exp.spec.replications > 1))
    progress = progress or NoProgress()
    store = Store(out)
    store.prepare()
    names = exp.factor_names
    atomic_write_json(store.root / "sweep.json", {
        "scenario": exp.name, "scenario_file": exp.path, "factors": names,
        "replications": exp.spec.replications,
        "points": [{"key": p.key, "id": p.id, "levels": p.levels, "replication": p.replication}
                   for p in exp.points],
        "rejected": [{"key": r.key, "levels": r.levels, "replication": r.replication} for r in exp.rejected]})
    report = StudyReport(store.root, len(exp.points) + len(exp.rejected))
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
            except OSError as e:
                if e.errno in FULL_DISK:
                    raise
                res = _died(p, exp, e)
            except Exception as e:                               # the worker itself died
                res = _died(p, exp, e)
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
    markers = store.markers(keys)                               # read once: the tables and metadata.json
    tables = aggregate.run_tables(store, keys, names, markers=markers)
    for name, table in tables.items():
        _csv(store.root / name, table)
    summary = aggregate.summary_table(tables["points.csv"], names)
    _csv(store.root / "summary.csv", summary)
    atomic_write_bytes(store.root / "scenario.resolved.yaml", exp.resolved_yaml.encode())
    report.summary_rows = len(summary)
    report.records = sum(int(m.get("packets", 0)) for m in markers)
    report.wall_s = time.perf_counter() - t0
    atomic_write_json(store.root / "metadata.json", {
        "scenario": exp.name, "scenario_file": exp.path, "description": exp.description,
        "factors": names, "replications": exp.spec.replications,
        "seed": exp.points[0].config["run"]["seed"] if exp.points else None,
        "points": [{"run_id": m["key"], "point": m["id"], "levels": m["levels"], "replication": m["replication"],
                    "seed": m.get("seed"), **m.get("stats", {})} for m in markers],
        **prov.result(), "started_utc": started.isoformat(), "wall_s": round(report.wall_s, 3)})
    return report


class StudyFailed(RuntimeError):
    """A point's simulation raised (a bug): `report.failed` has each traceback; nothing was written."""

    def __init__(self, report: StudyReport) -> None:
        super().__init__(f"{len(report.failed)} point(s) failed")
        self.report = report


def run_atomic(exp: Expanded, out: str | Path, force: bool = False, progress=None) -> StudyReport:
    """``netns-sim run`` and `sim.api.run`: every point of `exp` in this process, written into a
    temporary directory beside `out` that replaces `out` only when complete (`ResultDir`).
    A failed point raises `StudyFailed` and an interruption propagates; either way nothing is
    written and an earlier result at `out` is left intact."""
    from sim.results.results_io import ResultDir
    from sim.sweep.executors import InlineExecutor
    with ResultDir(out, force=force) as rd:
        executor = InlineExecutor(on_progress=getattr(progress, "point", None))
        report = run_study(exp, rd.tmp, executor, progress=progress)
        if report.failed:
            raise StudyFailed(report)
        rd.commit()
    report.out = Path(out)
    return report


def _provenance(intervals: bool) -> dict:
    """`provenance()`, after importing scipy.stats when summary.csv will have intervals
    (`sim.results.stats.t_quantile` imports it at the first one)."""
    if intervals:
        import scipy.stats  # noqa: F401
    return provenance()


def _died(p, exp: Expanded, e: BaseException) -> dict:
    """The failure record of a point whose worker raised instead of returning one."""
    return {"ok": False, "failure": {"key": p.key, "id": p.id, "levels": p.levels, "replication": p.replication,
                                     "scenario": exp.name, "config": p.config, "error": f"{type(e).__name__}: {e}",
                                     "traceback": None}}


def _levels(levels: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in levels.items()) or "no swept keys"
