"""Sweep-wide tables, computed from the per-point markers (never by loading all packets).

`points_table` — every finished point's summary rows, tidy: swept keys..., ``point_key,
replication, seed, scheme, trip, host, core, metric, value, unit``.

`summary_table` — per (swept keys, scheme, trip, host, core, metric, unit): ``n`` (finished
replications), ``mean``, ``std`` (sample, ddof 1), ``ci95_low``, ``ci95_high``,
``ci95_half``: the 95 % confidence interval of the mean, mean ± t(0.975, n-1) · std / √n
(Student t; NaN with one replication).  NaN values (e.g. latency with nothing delivered)
are left out of that cell's n.

`latency_percentiles` — per point, exact latency percentiles scanned straight from the
partitioned Parquet dataset one file (one point) at a time, reading two columns: memory is
bounded by the largest point, not the sweep.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.dataset as ds

from sim.sweep.store import Store

KEY_COLS = ["scheme", "trip", "host", "core", "metric", "unit"]

# two-sided 95 % Student t quantiles t(0.975, df), df 1..30, then 40, 60, 120, inf
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
         10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
         18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
         26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def t975(df: int) -> float:
    """t(0.975, df): scipy if installed, else the table (linear in 1/df between entries)."""
    if df < 1:
        return float("nan")
    try:
        from scipy.stats import t
        return float(t.ppf(0.975, df))
    except ImportError:
        pass
    if df in _T975:
        return _T975[df]
    knots = sorted(_T975) + [math.inf]
    vals = [_T975[k] for k in sorted(_T975)] + [1.960]
    for lo, hi, vlo, vhi in zip(knots, knots[1:], vals, vals[1:]):
        if lo < df < hi:
            x, xlo, xhi = 1 / df, 1 / lo, (0.0 if hi == math.inf else 1 / hi)
            return vhi + (vlo - vhi) * (x - xhi) / (xlo - xhi)
    return 1.960


def points_table(store: Store, keys: Optional[Iterable[str]] = None, factor_names: Sequence[str] = ()) -> pd.DataFrame:
    rows = []
    for m in store.markers(keys):
        ident = {**{n: m["levels"].get(n) for n in factor_names}, "point_key": m["key"],
                 "replication": m["replication"], "seed": m.get("seed")}
        rows += [{**ident, **r} for r in m["summary"]]
    cols = list(factor_names) + ["point_key", "replication", "seed"] + KEY_COLS[:-2] + ["metric", "value", "unit"]
    out = pd.DataFrame(rows, columns=cols)
    out["core"] = pd.array([None if c is None or c != c else int(c) for c in out["core"]], dtype="Int64")
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
    tq = s["n"].map(lambda n: t975(int(n) - 1))
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
        row = {**{n: parts.get(n) for n in part_names}, "point_key": key, "replication": m["replication"],
               "delivered": len(values)}
        for q in quantiles:
            row[f"latency_p{q * 100:g}_ns"] = float(np.quantile(values, q, method="inverted_cdf")) \
                if len(values) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)
