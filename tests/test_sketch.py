"""The streaming quantile sketch keeps its documented relative-error bound."""

import numpy as np
import pytest

from sim.core.sketch import QuantileSketch


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quantiles_within_relative_error_of_exact(seed):
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.lognormal(8, 1.5, 200_000), np.zeros(500), rng.exponential(1e6, 1000)])
    sk = QuantileSketch(alpha=0.005)
    for chunk in np.array_split(rng.permutation(values), 37):     # streamed in pieces
        sk.add(chunk)
    for q in (0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0):
        exact = np.quantile(values, q, method="inverted_cdf")
        got = sk.quantile(q)
        assert abs(got - exact) <= 0.005 * exact + 1e-12, q
    assert sk.count == len(values) and sk.mean == pytest.approx(values.mean())
    assert sk.min == values.min() and sk.max == values.max()


def test_merge_equals_one_sketch_over_everything():
    rng = np.random.default_rng(3)
    a, b = rng.exponential(1000, 5000), rng.exponential(50, 7000)
    one, left, right = QuantileSketch(), QuantileSketch(), QuantileSketch()
    one.add(np.concatenate([a, b]))
    left.add(a)
    right.add(b)
    left.merge(right)
    assert left.buckets == one.buckets and left.count == one.count
    assert [left.quantile(q) for q in (0.1, 0.5, 0.99)] == [one.quantile(q) for q in (0.1, 0.5, 0.99)]


def test_negative_values_are_refused():
    with pytest.raises(ValueError):
        QuantileSketch().add([-1.0])
