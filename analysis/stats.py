"""Mean and 95% confidence interval over replications.

`mean_ci(values) -> (mean, half_width, n)`: Student-t interval of the mean of independent
replications (``half_width`` is NaN for one replication: no interval without replications).
`aggregate(frame, keys, value)` applies it per group.  No scipy: two-sided 97.5% t
quantiles are tabulated for 1..30 degrees of freedom, 1.96 beyond.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
         2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
         2.052, 2.048, 2.045, 2.042]


def t975(dof: int) -> float:
    return _T975[dof - 1] if 1 <= dof <= len(_T975) else 1.96


def mean_ci(values) -> tuple[float, float, int]:
    x = np.asarray([v for v in values if v == v], dtype=float)     # drop NaN
    n = len(x)
    if n == 0:
        return math.nan, math.nan, 0
    if n == 1:
        return float(x[0]), math.nan, 1
    return float(x.mean()), t975(n - 1) * float(x.std(ddof=1)) / math.sqrt(n), n


def aggregate(frame: pd.DataFrame, keys: list[str], value: str = "value") -> pd.DataFrame:
    """One row per group of ``keys``: ``mean, ci, n`` of ``value`` over the group's rows."""
    rows = []
    for k, g in frame.groupby(keys, sort=False, dropna=False):
        m, h, n = mean_ci(g[value])
        rows.append((*(k if isinstance(k, tuple) else (k,)), m, h, n))
    return pd.DataFrame(rows, columns=[*keys, "mean", "ci", "n"])
