"""`analysis.metrics.per_result`: each metric once per loaded result, a fresh copy per call."""

from types import SimpleNamespace

import pandas as pd

from analysis import metrics


def _result(values):
    summary = pd.DataFrame({"scheme": ["host"] * len(values), "trip": ["wire_to_ns"] * len(values),
                            "metric": ["latency_p50_ns"] * len(values), "value": values,
                            "run_dir": ["r"] * len(values), "run_id": [f"v{i}" for i in range(len(values))]})
    return SimpleNamespace(summary=summary, memory=pd.DataFrame(), factors=[])


def test_same_values_as_uncached_and_computed_once():
    calls = []

    @metrics.per_result
    def mean_value(res, scale):
        calls.append(scale)
        return pd.DataFrame({"mean": [res.summary["value"].mean() * scale]})

    res = _result([1.0, 3.0])
    assert mean_value(res, 2.0)["mean"].iloc[0] == 4.0
    assert mean_value(res, 2.0)["mean"].iloc[0] == 4.0
    assert mean_value(res, 1.0)["mean"].iloc[0] == 2.0
    assert calls == [2.0, 1.0]                      # once per argument tuple


def test_a_caller_changing_its_copy_does_not_change_the_next():
    res = _result([1.0, 3.0])
    first = metrics.metric(res, "latency_p50_ns")
    expected = first.copy()
    first["mean"] = -1.0
    pd.testing.assert_frame_equal(metrics.metric(res, "latency_p50_ns"), expected)


def test_each_result_has_its_own_values():
    a, b = _result([1.0, 3.0]), _result([10.0, 30.0])
    assert metrics.metric(a, "latency_p50_ns")["mean"].iloc[0] == 2.0
    assert metrics.metric(b, "latency_p50_ns")["mean"].iloc[0] == 20.0
