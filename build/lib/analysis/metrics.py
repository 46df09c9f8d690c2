"""Summary metrics per condition, averaged over replications (from points.csv only).

`metric(res, name)` -> rows ``scheme, trip, <factors>, mean, ci, n``: the points.csv value
of ``name`` for each (scheme, trip, factor levels), mean over replications with its 95%
t-interval half-width (``ci``, NaN with one replication).  Latency percentiles are taken as
points.csv states them (whatever estimator the simulator used), never recomputed here.
`drop_fraction(res)` = sum of ``drops_*`` / ``sent`` per run, then averaged likewise.
`utilisation(res)` = per-core ``utilisation`` rows, keyed by host and core as well.
`memory_total(res)` = bytes summed over structures per (scheme, namespaces, factors).
Each is computed once per loaded result (`per_result`: the report asks for the same metric from
its figures, tables and claims) and every call returns a fresh copy the caller may change.
"""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

import pandas as pd

from sim.results.reader import Results
from sim.results.stats import aggregate

F = TypeVar("F", bound=Callable)


def per_result(fn: F) -> F:
    """Cache ``fn(res, *args)`` on `res` (a loaded result's tables do not change; the key holds the
    identity of its summary and memory frames all the same); each call returns a copy (None stays None)."""
    @functools.wraps(fn)
    def cached(res, *args):
        memo = res.__dict__.setdefault("_per_result", {})
        key = (fn.__module__, fn.__qualname__, id(res.summary), id(res.memory), args)
        if key not in memo:
            memo[key] = fn(res, *args)
        value = memo[key]
        return None if value is None else value.copy()
    return cached  # type: ignore[return-value]


def keys(res: Results, *extra: str) -> list[str]:
    return ["scheme", *extra, *[f for f in res.factors if f in res.summary.columns]]


@per_result
def metric(res: Results, name: str) -> pd.DataFrame:
    s = res.summary[res.summary["metric"] == name]
    return aggregate(s, keys(res, "trip"))


@per_result
def drop_fraction(res: Results, which: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Fraction of sent packets dropped (every ``drops_*`` metric), or of the metrics ``which``
    (e.g. ``("in_flight",)``: still inside the model when the run ended)."""
    s = res.summary
    ident = ["run_dir", "run_id", "scheme", "trip"]
    sel = s["metric"].isin(which) if which else s["metric"].str.startswith("drops_")
    drops = s[sel].groupby(ident, sort=False)["value"].sum()
    sent = s[s["metric"] == "sent"].set_index(ident)
    sent = sent.assign(drops=drops.reindex(sent.index).fillna(0.0).to_numpy())
    sent["frac"] = sent["drops"] / sent["value"].where(sent["value"] > 0)
    return aggregate(sent.reset_index(), keys(res, "trip"), "frac")


@per_result
def utilisation(res: Results) -> pd.DataFrame:
    s = res.summary[res.summary["metric"] == "utilisation"]
    return aggregate(s, keys(res, "host", "core"))


@per_result
def memory_total(res: Results) -> pd.DataFrame:
    m = res.memory
    fac = [f for f in res.factors if f in m.columns]
    per_run = m.groupby(["run_dir", "run_id", "scheme", "namespaces", *fac], sort=False, dropna=False)["bytes"].sum()
    return aggregate(per_run.reset_index(), ["scheme", "namespaces", *fac], "bytes")


@per_result
def memory_by_structure(res: Results) -> pd.DataFrame:
    m = res.memory
    fac = [f for f in res.factors if f in m.columns]
    return aggregate(m, ["scheme", "namespaces", "structure", *fac], "bytes")
