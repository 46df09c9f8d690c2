"""`analysis.tables.Lookup` finds what `select`, then ``==`` filters, then the first row give."""

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.conditions import select
from analysis.tables import Lookup

SCHEMES = ["host", "l2-routed", None]
LOADS = [1.0, 2.0, float("nan")]


def _pandas_value(frame: pd.DataFrame, fixed: dict, **eq) -> float:
    """The old way: a mask per question."""
    d = select(frame, fixed)
    for k, v in eq.items():
        d = d[d[k] == v]
    return float(d["mean"].iloc[0]) if len(d) else math.nan


rows = st.lists(st.tuples(st.sampled_from(SCHEMES), st.sampled_from(LOADS), st.sampled_from(["a", "b"]),
                          st.floats(-1e6, 1e6)), min_size=0, max_size=12)


@settings(max_examples=200, deadline=None)
@given(rows=rows, scheme=st.sampled_from(SCHEMES), load=st.sampled_from(LOADS), trip=st.sampled_from(["a", "b"]),
       absent=st.booleans())
def test_lookup_matches_the_pandas_filter(rows, scheme, load, trip, absent):
    frame = pd.DataFrame(rows, columns=["scheme", "load", "trip", "mean"])
    frame["scheme"] = frame["scheme"].astype(object)
    fixed = {"load": load, **({"not_a_column": 3} if absent else {})}
    got = Lookup(frame).value(fixed, scheme=scheme, trip=trip)
    want = _pandas_value(frame, fixed, scheme=scheme, trip=trip)
    assert (math.isnan(got) and math.isnan(want)) or got == want


def test_a_pandas_na_key_never_matches():
    frame = pd.DataFrame({"scheme": pd.array(["host", pd.NA], dtype="string"), "mean": [1.0, 2.0]})
    assert Lookup(frame).value({}, scheme="host") == 1.0
    assert math.isnan(Lookup(frame).value({}, scheme="l3-bind"))
    assert np.isnan(Lookup(frame).value({"scheme": "host"}, scheme="l3-bind"))   # two values asked of one column
