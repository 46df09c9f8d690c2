"""`sim.results.reader._summary_typed`: a partition column in the summary's dtype, whichever way
it is converted, holds the values the text route (format, then parse) gives."""

import numpy as np
import pandas as pd
import pytest

from sim.results.reader import _summary_typed


@pytest.mark.parametrize("source", [np.array([0, 50_000, 2_000_000, -3], dtype=np.int32),
                                    np.array([1, 10_000], dtype=np.int64)])
@pytest.mark.parametrize("target", ["int64", "float64", "int32"])
def test_integer_partitions_cast_like_the_text_route(source, target):
    col = pd.Series(source)
    got = _summary_typed(col, np.dtype(target))
    pd.testing.assert_series_equal(got, col.astype(str).astype(np.dtype(target)))


def test_text_and_bool_partitions_keep_the_text_route():
    text = pd.Series(["host", "l2-routed"])
    pd.testing.assert_series_equal(_summary_typed(text, text.dtype), text.astype(str).astype(text.dtype))
    flags = pd.Series(["True", "false"])
    assert _summary_typed(flags, np.dtype(bool)).tolist() == [True, False]
