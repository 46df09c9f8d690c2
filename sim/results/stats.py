"""The one statistics helper: mean and 95 % confidence interval over replications.

Used by the result tables (`sim.sweep.aggregate`, summary.csv) and the report (`analysis`), so both
give the same interval on the same data.  The interval is Student's t: mean ±
t(0.975, n-1) · s / √n with the sample standard deviation s (ddof 1), t from scipy.  One
replication gives no interval (NaN half-width); NaN values are left out (a latency with
nothing delivered).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

CONFIDENCE = 0.95


def t_quantile(dof: int) -> float:
    """Two-sided 95 % Student t quantile t(0.975, dof); NaN for dof < 1.  scipy.stats (about a
    second to import) is imported here, at the first interval: one replication needs none."""
    if dof < 1:
        return math.nan
    from scipy.stats import t as student_t
    return float(student_t.ppf(0.5 + CONFIDENCE / 2, dof))


def mean_ci(values) -> tuple[float, float, int]:
    """(mean, half-width of the 95 % interval, n) of the non-NaN `values`."""
    x = np.asarray([v for v in values if v == v], dtype=float)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, 0
    if n == 1:
        return float(x[0]), math.nan, 1
    return float(x.mean()), t_quantile(n - 1) * float(x.std(ddof=1)) / math.sqrt(n), n


def aggregate(frame: pd.DataFrame, keys: list[str], value: str = "value") -> pd.DataFrame:
    """One row per group of `keys` (NaN keys kept): ``mean, ci, n`` of `value`."""
    rows = []
    for k, g in frame.groupby(keys, sort=False, dropna=False):
        m, h, n = mean_ci(g[value])
        rows.append((*(k if isinstance(k, tuple) else (k,)), m, h, n))
    return pd.DataFrame(rows, columns=[*keys, "mean", "ci", "n"])
