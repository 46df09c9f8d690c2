"""The statistics helpers: mean and 95 % confidence interval over replications, and a
distribution-free interval for a median (`median_ci`, for measurements of the real kernel).

Used by the result tables (`sim.sweep.aggregate`, summary.csv) and the report (`analysis`), so both
give the same interval on the same data.  The interval is Student's t: mean ±
t(0.975, n-1) · s / √n with the sample standard deviation s (ddof 1), t from scipy.  One
replication gives no interval (NaN half-width); NaN values are left out (a latency with
nothing delivered).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

CONFIDENCE = 0.95


@lru_cache(maxsize=None)
def t_quantile(dof: int) -> float:
    """Two-sided 95 % Student t quantile t(0.975, dof); NaN for dof < 1.  (scipy is imported
    here, on first use: importing scipy.stats takes 1.3-1.9 s, and one replication never needs it.)"""
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


def median_ci(values, confidence: float = CONFIDENCE) -> tuple[float, float, float] | None:
    """Distribution-free confidence interval of the median of the non-NaN `values`: the order
    statistics (x_(k), x_(n+1-k)) with the largest k whose coverage 1 - 2 P(B <= k - 1),
    B ~ Binomial(n, 1/2), is at least `confidence` (the sign-test interval; it assumes only
    independent draws of one continuous distribution).  Returns (low, high, coverage), or
    None when even the whole range covers less (at 95 %: fewer than 6 values)."""
    x = sorted(float(v) for v in values if v == v)
    n = len(x)
    best = None
    below = 0        # P(B <= k - 1) * 2**n
    for k in range(1, n // 2 + 1):
        below += math.comb(n, k - 1)
        coverage = 1.0 - 2.0 * below / 2 ** n
        if coverage < confidence:
            break
        best = (x[k - 1], x[n - k], coverage)
    return best


def aggregate(frame: pd.DataFrame, keys: list[str], value: str = "value") -> pd.DataFrame:
    """One row per group of `keys` (NaN keys kept), in order of first appearance: ``mean, ci, n``
    of `value`.  (The groups are numbered by pandas, then cut from one stable sort of the
    rows: no DataFrame per group.)"""
    groups = frame.groupby(keys, sort=False, dropna=False)
    codes = groups.ngroup().to_numpy()
    order = np.argsort(codes, kind="stable")            # each group's rows in their own order
    bounds = np.searchsorted(codes[order], np.arange(groups.ngroups + 1))
    first = order[bounds[:-1]]
    key_rows = zip(*(frame[k].take(first).tolist() for k in keys)) if len(keys) else iter(())
    values = frame[value].to_numpy()
    rows = [(*k, *mean_ci(values[order[a:b]])) for k, a, b in zip(key_rows, bounds[:-1], bounds[1:])]
    return pd.DataFrame(rows, columns=[*keys, "mean", "ci", "n"])
