"""`sim.results.stats.aggregate` (groups cut from one sort) gives the frame of iterating pandas' groups."""

import numpy as np
import pandas as pd
import pytest

from sim.results.stats import aggregate, mean_ci


def aggregate_slow(frame: pd.DataFrame, keys: list[str], value: str = "value") -> pd.DataFrame:
    """The reference: `aggregate` by iterating pandas' groups, as it was written before."""
    rows = []
    for k, g in frame.groupby(keys, sort=False, dropna=False):
        m, h, n = mean_ci(g[value])
        rows.append((*(k if isinstance(k, tuple) else (k,)), m, h, n))
    return pd.DataFrame(rows, columns=[*keys, "mean", "ci", "n"])


def _frame(rng, n):
    return pd.DataFrame({
        "scheme": rng.choice(["host", "l2-routed", "vnic"], n),
        "trip": pd.Series(rng.choice(["wire_to_ns", "ns_to_ns", None], n), dtype=object),
        "load": rng.choice([5e4, 2.5e5, np.nan], n),
        "namespaces": rng.choice([100, 10000], n),
        "value": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
    })


@pytest.mark.parametrize("n", [0, 1, 7, 300])
@pytest.mark.parametrize("keys", [["scheme"], ["scheme", "trip", "load"], ["namespaces", "load", "trip"]])
def test_aggregate_is_the_groupwise_loop(n, keys):
    f = _frame(np.random.default_rng(n), n)
    fast, slow = aggregate(f, keys), aggregate_slow(f, keys)
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert [list(map(type, r)) for r in fast.itertuples(index=False)] == \
        [list(map(type, r)) for r in slow.itertuples(index=False)]
