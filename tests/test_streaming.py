"""Streaming records and summaries equal the in-memory ones (issue: scale)."""

import numpy as np
import pandas as pd
import pytest

from sim.core.netfilter import PolicyScope
from sim.core.simulate import simulate
from sim.core.summary import QUANTILE_RELATIVE_ERROR, Summarizer, summarize
from tests.test_core_invariants import every_trip


def streamed(scenario: dict, chunk_rows: int):
    chunks = []
    res = simulate(scenario, on_packets=chunks.append, chunk_rows=chunk_rows)
    return chunks, res


def test_streamed_records_equal_the_in_memory_frame():
    sc = every_trip("l2-bridged", seed=3, duration_ns=2e6)
    whole = simulate(sc).packets
    chunks, res = streamed(sc, chunk_rows=700)
    assert len(chunks) > 3 and all(len(c) <= 700 for c in chunks)
    assert len(res.packets) == 0                      # nothing kept in memory
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)


def test_streaming_summary_equals_the_one_shot_summary_and_exact_values_within_bound():
    sc = every_trip("l2-routed", seed=4, duration_ns=3e6)
    sc["run"]["warmup_ns"] = 5e5
    whole = simulate(sc)
    chunks, res = streamed(sc, chunk_rows=500)
    s = Summarizer(5e5, 3e6, PolicyScope.of(res.scenario.hosts))
    for c in chunks:
        s.add(c)
    streamed_table = s.table(res.cores)
    from_results = res.summary[res.summary.metric != "memory_bytes"].reset_index(drop=True)
    pd.testing.assert_frame_equal(from_results, streamed_table)     # simulate() streams the same summary
    one_shot = summarize(whole.packets, whole.cores, 5e5, 3e6, PolicyScope.of(res.scenario.hosts))
    pd.testing.assert_frame_equal(streamed_table.drop(columns="value"), one_shot.drop(columns="value"))
    np.testing.assert_allclose(streamed_table.value, one_shot.value, rtol=1e-12)
    # against exact values computed from the frame
    p = whole.packets
    after = p[p.t_sent_ns >= 5e5]
    for (scheme, trip), g in after.groupby(["scheme", "trip"], observed=True):
        rows = one_shot[(one_shot.scheme == scheme) & (one_shot.trip == trip)].set_index("metric").value
        lat = g[g.status == "delivered"].latency_ns.to_numpy()
        assert rows["sent"] == len(g) and rows["delivered"] == len(lat)
        latency = ("latency_mean_ns", "latency_p50_ns", "latency_p99_ns", "latency_p999_ns")
        if len(lat) == 0:                   # this overloaded scenario may deliver none of a trip after warm-up
            assert all(np.isnan(rows[m]) for m in latency if m in rows), (scheme, trip)
        else:
            assert rows["latency_mean_ns"] == pytest.approx(lat.mean(), rel=1e-12)
            for metric, q in (("latency_p50_ns", .5), ("latency_p99_ns", .99), ("latency_p999_ns", .999)):
                exact = np.quantile(lat, q, method="inverted_cdf")
                assert abs(rows[metric] - exact) <= QUANTILE_RELATIVE_ERROR * exact + 1e-9, (scheme, trip, metric)
        drops = g[g.status == "dropped"].drop_reason.astype(str).value_counts()
        for reason, n in drops.items():
            assert rows[f"drops_{reason}"] == n


@pytest.mark.parametrize("scheme", ["l2-bridged", "shortcut-socket"])
def test_summary_from_category_codes_equals_the_generic_path(scheme):
    """`Summarizer.add` on the records' frame (categorical columns: `_add_coded`) gives the
    table of the generic path (the same frame with those columns as text), bit for bit."""
    sc = every_trip(scheme, seed=5, duration_ns=2e6)
    sc["run"]["warmup_ns"] = 3e5
    sc["hosts"][0]["nf_rules"] = {"root": {"forward": 100, "input": 3}, "child": {"output": 2}}
    res = simulate(sc)
    frame = res.packets
    assert set(frame["status"].astype(str)) == {"delivered", "dropped", "in_flight"}
    text = frame.astype({c: object for c in ("scheme", "trip", "status")})   # drop_reason keeps the reasons
    policy = PolicyScope.of(res.scenario.hosts)
    tables = []
    for f in (frame, text):
        s = Summarizer(3e5, 2e6, policy)
        for start in range(0, len(f), 900):
            s.add(f.iloc[start:start + 900])
        tables.append(s.table(res.cores))
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)


def test_arrow_table_of_the_columns_equals_the_frame_through_pandas():
    """`sim.sweep.store.arrow_table` builds the records' Arrow table from their columns: the
    schema and values of ``pa.Table.from_pandas`` of their frame with the categoricals cast to
    strings (NaN and missing codes as nulls)."""
    import pyarrow as pa

    from sim.sweep.store import arrow_table
    sc = every_trip("l2-bridged", seed=5, duration_ns=2e6)
    columns = simulate(sc).packet_columns
    frame = columns.frame()
    assert set(frame["status"].astype(str)) == {"delivered", "dropped", "in_flight"}
    via_pandas = pa.Table.from_pandas(frame, preserve_index=False)
    via_pandas = pa.table([c.cast(pa.string()) if pa.types.is_dictionary(c.type) else c for c in via_pandas.columns],
                          names=via_pandas.column_names)
    direct = arrow_table(columns)
    assert direct.schema.equals(via_pandas.schema) and direct.equals(via_pandas)
    assert direct.column("drop_node").null_count > 0 and direct.column("latency_ns").null_count > 0
