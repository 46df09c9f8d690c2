"""The Python API, for notebooks and scripts: the command line's front door and runner as calls.

    import sim.api as ns
    res = ns.run({"hosts": [...], "flows": [...], "compare": {"hosts.*.scheme": ["host", "l2-routed"]}})
    res.summary                 # DataFrame: one row per (run, scheme, trip, metric)
    res.packets(["latency_ns"]) # DataFrame of packet records (read from the result's Parquet dataset)

Contract:
- A scenario is a path to a YAML file, a mapping with the same keys as a file (``extends:``
  relative to `base_dir`, ``topology:`` generators, ``compare:`` grids, ``sweep:`` blocks), or
  a `sim.frontdoor.scenario.Scenario` (pydantic) model.  `sets` are ``--set`` overrides
  (``"hosts.*.cores=4"``), `seed` is ``--seed``.  Bad input raises `ScenarioError` (its
  `str` is the command line's ``WHERE: key.path: message (fix: ...)`` lines).
- `run` writes the same result directory as ``netns-sim run`` (or, for a scenario with a
  ``sweep:`` block, ``netns-sim sweep``) through the same runner (`sim.sweep.runner`), to
  `out` or a new temporary directory, and returns it read back (`sim.results.reader.Results`): the
  frames ``summary``, ``memory``, ``cores``, ``flows``, the ``factors`` that vary, and
  ``packets(columns)``.  ``netns-sim report DIR`` works on it like on any result.
- `simulate` runs one validated `Scenario` in memory (no files): `sim.core.simulate.Results`.
- `plan` returns the points that `run` would run (variants x replications), without running.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional, Union

from sim.core.simulate import simulate
from sim.frontdoor.loader import Document, ScenarioError, document_from_mapping, read_document
from sim.frontdoor.scenario import Scenario
from sim.results.reader import Results, load
from sim.sweep.spec import Expanded, expand_document

Source = Union[str, Path, dict, Scenario]

__all__ = ["Results", "ScenarioError", "Scenario", "document", "load", "plan", "run", "simulate"]


def document(scenario: Source, sets: tuple | list = (), seed: Optional[int] = None,
             base_dir: str | Path = ".") -> Document:
    """Read `scenario` (path, mapping or `Scenario`) as the front door does, unvalidated."""
    if isinstance(scenario, Scenario):
        scenario = scenario.model_dump(mode="json")
    if isinstance(scenario, dict):
        return document_from_mapping(scenario, sets, seed, base_dir)
    return read_document(scenario, sets, seed)


def plan(scenario: Source, sets: tuple | list = (), seed: Optional[int] = None,
         base_dir: str | Path = ".") -> Expanded:
    """Every point `run` would run; every variant validated (`ScenarioError` otherwise)."""
    doc = document(scenario, sets, seed, base_dir)
    return expand_document(doc, partial=doc.sweep is not None)


def run(scenario: Source, out: str | Path | None = None, *, sets: tuple | list = (), seed: Optional[int] = None,
        base_dir: str | Path = ".", force: bool = False, jobs: Optional[int] = None) -> Results:
    """Run every point of `scenario` into the result directory `out` (default: a new temporary
    directory) and return it read back.  Without a ``sweep:`` block this is ``netns-sim run``
    (in this process; `out` replaced only when complete, and only with `force` if it exists);
    with one it is ``netns-sim sweep`` (resumable into the same `out`), in this process, or on a
    local pool of `jobs` > 1 processes — from a script, that needs the ``if __name__ ==
    "__main__":`` guard of Python's multiprocessing.  A failed point raises
    `sim.sweep.runner.StudyFailed`."""
    from sim.sweep.runner import StudyFailed, run_atomic, run_study
    doc = document(scenario, sets, seed, base_dir)
    exp = expand_document(doc, partial=doc.sweep is not None)
    if out is None:
        out = Path(tempfile.mkdtemp(prefix=f"netns-sim-{exp.name}-")) / "result"
    out = Path(out)
    if doc.sweep is not None:
        from sim.sweep.executors import InlineExecutor, make_executor
        executor = make_executor("local", jobs) if jobs and jobs > 1 else InlineExecutor()
        try:
            report = run_study(exp, out, executor)
        finally:
            executor.close()
        if report.failed:
            raise StudyFailed(report)
    else:
        run_atomic(exp, out, force=force)
    return load(out)
