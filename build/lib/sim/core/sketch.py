"""A streaming quantile sketch with a relative-error guarantee (the DDSketch construction).

Positive values fall into logarithmic buckets ``i = ceil(log_gamma(x))`` with
``gamma = (1 + alpha) / (1 - alpha)``; a bucket is reported by ``2 gamma^i / (gamma + 1)``,
which is within ``alpha`` (relative) of every value in the bucket.  So `quantile(q)` returns a
value within relative error `alpha` of the exact order statistic of rank ``ceil(q * n)``
(numpy's ``method="inverted_cdf"``).  Zeros are counted exactly; negative values are
rejected.  Count, sum (hence mean), min and max are exact.  Memory: one counter per
non-empty bucket, at most ``log_gamma(max / min)`` of them (about 2,300 for alpha = 0.005
over 1 ns .. 100 s), whatever the number of values.  Sketches merge exactly.
"""

from __future__ import annotations

import math

import numpy as np


class QuantileSketch:
    def __init__(self, alpha: float = 0.005) -> None:
        if not 0 < alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        self.alpha = alpha
        self.gamma = (1 + alpha) / (1 - alpha)
        self._log_gamma = math.log(self.gamma)
        self.buckets: dict[int, int] = {}
        self.zeros = 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, values) -> None:
        """Add an array of non-negative finite values (NaN are ignored)."""
        v = np.asarray(values, dtype=np.float64)
        v = v[~np.isnan(v)]
        if not len(v):
            return
        if (v < 0).any():
            raise ValueError("QuantileSketch takes non-negative values only")
        self.count += len(v)
        self.sum += float(v.sum())
        self.min = min(self.min, float(v.min()))
        self.max = max(self.max, float(v.max()))
        pos = v[v > 0]
        self.zeros += len(v) - len(pos)
        if len(pos):
            idx = np.ceil(np.log(pos) / self._log_gamma).astype(np.int64)
            keys, counts = np.unique(idx, return_counts=True)
            for k, c in zip(keys.tolist(), counts.tolist()):
                self.buckets[k] = self.buckets.get(k, 0) + c

    def merge(self, other: "QuantileSketch") -> None:
        if other.alpha != self.alpha:
            raise ValueError("can only merge sketches with the same alpha")
        for k, c in other.buckets.items():
            self.buckets[k] = self.buckets.get(k, 0) + c
        self.zeros += other.zeros
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else math.nan

    def quantile(self, q: float) -> float:
        """Value within relative error alpha of the rank-ceil(q*n) order statistic."""
        if not self.count:
            return math.nan
        rank = max(1, math.ceil(q * self.count))
        if rank <= self.zeros:
            return 0.0
        seen = self.zeros
        for k in sorted(self.buckets):
            seen += self.buckets[k]
            if seen >= rank:
                value = 2 * self.gamma ** k / (self.gamma + 1)
                return min(max(value, self.min), self.max)
        return self.max
