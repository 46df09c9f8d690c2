"""`sim.results.stats`: `aggregate` (groups cut from one sort) gives the frame of iterating pandas' groups; `median_ci` is the sign-test interval and covers as often as it says."""

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


def test_median_ci_is_the_sign_test_interval():
    from sim.results.stats import median_ci
    lo, hi, coverage = median_ci(range(10, 0, -1))        # n = 10: (x_(2), x_(9))
    assert (lo, hi) == (2.0, 9.0)
    assert coverage == pytest.approx(1 - 2 * (1 + 10) / 2 ** 10)
    assert median_ci([1, 2, 3, 4, 5]) is None                 # 5 values cover at most 93.75 %
    lo, hi, coverage = median_ci([3, 1, 2, 6, 5, 4, float("nan")])
    assert (lo, hi) == (1.0, 6.0) and coverage == pytest.approx(1 - 2 / 64)


def test_median_ci_covers_the_true_median_as_often_as_it_says():
    """Monte Carlo: intervals from 12 draws of a skewed distribution (lognormal, median 1)
    contain the median in the stated share of 4000 trials (coverage 96.1 %: within 3 binomial
    standard errors)."""
    from sim.results.stats import median_ci
    rng = np.random.default_rng(7)
    hits, coverage = 0, None
    trials = 4000
    for _ in range(trials):
        lo, hi, coverage = median_ci(rng.lognormal(0.0, 1.0, 12))
        hits += lo <= 1.0 <= hi
    assert coverage == pytest.approx(1 - 2 * (1 + 12 + 66) / 2 ** 12)
    se = (coverage * (1 - coverage) / trials) ** 0.5
    assert abs(hits / trials - coverage) < 3 * se
