"""The result tables of a study, computed from the per-point markers (never by loading packets).

Every table starts with the identity of its run: the swept / ``compare:`` keys (one column
each, named by key path), ``run_id`` (the point's content key, `sim.sweep.keys`), ``point``
(``p00003-r0``: variant index and replication), ``replication`` and ``seed``.

`run_tables` — ``points.csv`` (every run's tidy summary rows: ``scheme, trip, host, core,
metric, value, unit``, see `sim.core.summary`, plus ``memory_bytes`` per host), ``memory.csv``
(``scheme, namespaces, structure, bytes`` and what the bytes are made of,
`sim.core.memory.TERM_COLUMNS`), ``cores.csv`` (``host, scheme, core, busy_ns, utilisation``) and
``flows.csv`` (``flow, kind, src, dst, sent, transactions_per_s, transaction_mean_ns``:
`sim.core.simulate.FLOW_COLUMNS`).

`summary_table` — ``summary.csv``: per (swept keys, scheme, trip, host, core, metric, unit):
``n`` (finished replications), ``mean``, ``std`` (sample, ddof 1), ``ci95_low``,
``ci95_high``, ``ci95_half``: the 95 % confidence interval of the mean (`sim.results.stats`; NaN with
one replication).  NaN values (e.g. latency with nothing delivered) are left out of n.

`latency_percentiles` — per point, exact latency percentiles scanned straight from the
partitioned Parquet dataset one file (one point) at a time, reading two columns: memory is
bounded by the largest point, not the sweep.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.dataset as ds

from sim.core.memory import TERM_COLUMNS
from sim.core.simulate import CORE_COLUMNS, FLOW_COLUMNS
from sim.results.stats import t_quantile
from sim.sweep.store import Store

KEY_COLS = ["scheme", "trip", "host", "core", "metric", "unit"]
ID_COLS = ["run_id", "point", "replication", "seed"]
TABLE_COLUMNS = {
    "points.csv": ("summary", ["scheme", "trip", "host", "core", "metric", "value", "unit"]),
    "memory.csv": ("memory", ["scheme", "namespaces", "structure", "bytes", *TERM_COLUMNS]),
    "cores.csv": ("cores", CORE_COLUMNS),
    "flows.csv": ("flows", FLOW_COLUMNS),
}


def run_tables(store: Store, keys: Optional[Iterable[str]] = None,
               factor_names: Sequence[str] = (), markers: Optional[list[dict]] = None) -> dict[str, pd.DataFrame]:
    """{file name: table} of every finished point (see the module docstring); `markers`, when
    given, are ``store.markers(keys)`` already read."""
    markers = sorted(store.markers(keys) if markers is None else markers, key=lambda m: m["id"])   # point order
    out = {}
    for name, (part, cols) in TABLE_COLUMNS.items():
        rows = []
        for m in markers:
            ident = {**{n: m["levels"].get(n) for n in factor_names}, "run_id": m["key"], "point": m["id"],
                     "replication": m["replication"], "seed": m.get("seed")}
            rows += [{**ident, **r} for r in m.get(part, [])]
        table = pd.DataFrame(rows, columns=list(factor_names) + ID_COLS + cols)
        if "core" in cols:
            table["core"] = pd.array([None if c is None or c != c else int(c) for c in table["core"]], dtype="Int64")
        out[name] = table
    return out


def summary_table(points: pd.DataFrame, factor_names: Sequence[str] = ()) -> pd.DataFrame:
    by = list(factor_names) + KEY_COLS
    out_cols = by + ["n", "mean", "std", "ci95_low", "ci95_high", "ci95_half"]
    if points.empty:
        return pd.DataFrame(columns=out_cols)
    p = points.copy()
    for c in by:                       # groupby drops NaN keys otherwise; "" = not applicable
        p[c] = p[c].astype(object).where(p[c].notna(), "")
    g = p.groupby(by, sort=True, dropna=False)["value"]
    s = g.agg(n="count", mean="mean", std="std").reset_index()
    tq = s["n"].map(lambda n: t_quantile(int(n) - 1))
    half = tq * s["std"] / np.sqrt(s["n"].where(s["n"] > 0))
    s["ci95_half"] = half.where(s["n"] > 1)
    s["ci95_low"] = s["mean"] - s["ci95_half"]
    s["ci95_high"] = s["mean"] + s["ci95_half"]
    return s[out_cols]


def latency_percentiles(store: Store, quantiles: Sequence[float] = (0.5, 0.99), warmup_ns: Optional[float] = None,
                        keys: Optional[Iterable[str]] = None) -> pd.DataFrame:
    """Exact delivered-latency percentiles per point (one file = one point), scanned from
    the dataset with a column projection and a filter pushed into the scan; packets sent
    before ``warmup_ns`` (default: each point's own run.warmup_ns) are left out."""
    markers = {m["key"]: m for m in store.markers(keys)}
    dset = store.dataset(list(markers))
    part_names = [f.name for f in dset.partitioning.schema] if dset.partitioning else []
    rows = []
    for frag in dset.get_fragments():
        key = frag.path.rsplit("part-", 1)[1][:-len(".parquet")]
        m = markers[key]
        warm = m["config"]["run"]["warmup_ns"] if warmup_ns is None else warmup_ns
        flt = (pc.field("status") == "delivered") & (pc.field("t_sent_ns") >= warm)
        lat = frag.to_table(columns=["latency_ns"], filter=flt, schema=dset.schema)["latency_ns"]
        values = lat.to_numpy()
        parts = ds.get_partition_keys(frag.partition_expression)
        row = {**{n: parts.get(n) for n in part_names}, "run_id": key, "replication": m["replication"],
               "delivered": len(values)}
        for q in quantiles:
            row[f"latency_p{q * 100:g}_ns"] = float(np.quantile(values, q, method="inverted_cdf")) \
                if len(values) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)
