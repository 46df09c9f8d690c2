"""The report's streamed packet aggregates equal the in-memory computation (issue 13, "report streams").

One short run of a cut-down default scenario (3 schemes, two of them with the same costs, the
default scenario's loads, 10 and 100 namespaces) is read twice: with `analysis.packetstats.aggregate` (one streaming scan, per-group sums) and with
`Results.packets` (every record in one frame, pandas means), and everything the report derives
from packets must agree to 1e-9: per-group means and counts, the stage breakdown, the claims'
``packets/[...] mean(col)`` evidence, and the latency histogram's total.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def res(tmp_path_factory):
    from sim.results.reader import load

    tmp = tmp_path_factory.mktemp("pstats")
    scen = tmp / "s.yaml"
    scen.write_text(yaml.safe_dump({
        "extends": str(ROOT / "scenarios" / "rfc2006-schemes.yaml"), "name": "pstats",
        "run": {"duration_ns": 3.0e6, "warmup_ns": 1.0e6},
        "memory_namespace_counts": [10, 100],
        "compare": {"hosts.*.scheme": ["host", "host-ns-compiled", "l2-routed"], "hosts.*.namespaces": [10, 100]}}))
    out = tmp / "res"
    p = subprocess.run([sys.executable, "-m", "sim", "run", str(scen), "--out", str(out), "--quiet"], cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return load(out)


def _rel(a: float, b: float) -> float:
    return 0.0 if a == b else abs(a - b) / max(abs(a), abs(b))


def test_group_means_equal_pandas(res):
    from analysis import packetstats
    from analysis.figures import packet_columns

    cols = packet_columns(res)
    st = packetstats.aggregate(res, cols)
    raw = res.packets(columns=cols)
    d = raw[raw["status"] == "delivered"]
    assert (d["t_sent_ns"] >= res.runs[0].warmup_ns).all()
    want = d.groupby(st.keys, sort=False)
    means, sizes = want[[c for c in cols if c in d.columns]].mean(), want.size()
    got = st.means.set_index(st.keys)
    assert len(got) == len(means) and int(got["packets"].sum()) == len(d)
    assert st.hist.sum() == len(d)
    for key, row in means.iterrows():
        g = got.loc[key]
        assert int(g["packets"]) == int(sizes.loc[key])
        assert st.hist[st.means.index[(st.means[st.keys] == pd_key(st.keys, key)).all(axis=1)][0]].sum() == sizes.loc[key]
        for c, v in row.items():
            if isinstance(v, float) and math.isnan(v):
                assert math.isnan(g[c])
            else:
                assert _rel(float(g[c]), float(v)) <= 1e-9, (key, c, g[c], v)


def pd_key(keys, key):
    return dict(zip(keys, key if isinstance(key, tuple) else (key,)))


def test_breakdown_and_claims_evidence_equal(res):
    from analysis import claims, packetstats, stages
    from analysis.conditions import roles as find_roles
    from analysis.conditions import select
    from analysis.figures import packet_columns

    cols = packet_columns(res)
    st = packetstats.aggregate(res, cols)
    raw = res.packets(columns=cols)
    roles = find_roles(res.summary, res.factors)
    ref = roles.reference()
    declared = stages.declared_groups(res)
    for fixed in (ref, {}):                       # one condition, and every condition pooled (weighted)
        a = stages.breakdown(select(st.means, fixed), ["trip", "scheme"], declared).set_index(["trip", "scheme"])
        b = stages.breakdown(select(raw, fixed), ["trip", "scheme"], declared).set_index(["trip", "scheme"])
        assert sorted(a.index) == sorted(b.index)
        for c in b.columns:
            for k in b.index:
                x, y = float(a.loc[k, c]), float(b.loc[k, c])
                assert (math.isnan(x) and math.isnan(y)) or _rel(x, y) <= 1e-9, (fixed, k, c, x, y)
    _, ev_stream = claims.build(res, roles, ref, st.means)
    _, ev_raw = claims.build(res, roles, ref, raw)
    assert [e.source for e in ev_stream] == [e.source for e in ev_raw]
    packet_items = [(e, f) for e, f in zip(ev_stream, ev_raw) if e.source.startswith("packets/")]
    assert packet_items
    for e, f in packet_items:
        assert (math.isnan(e.value) and math.isnan(f.value)) or _rel(e.value, f.value) <= 1e-9, (e.source, e.value, f.value)


def test_iter_packets_filters_in_the_scan(res):
    """`fixed` and `delivered` give the same rows as filtering the whole frame afterwards."""
    from analysis.conditions import roles as find_roles

    ref = find_roles(res.summary, res.factors).reference()
    whole = res.packets(columns=["latency_ns"])
    fixed = {**ref, "scheme": "l2-routed", "trip": "wire_to_ns"}
    part = res.packets(columns=["latency_ns"], fixed=fixed, delivered=True)
    m = np.ones(len(whole), dtype=bool)
    for k, v in fixed.items():
        m &= (whole[k] == v).to_numpy()
    m &= (whole["status"] == "delivered").to_numpy()
    assert len(part) == int(m.sum()) > 0
    assert sorted(part["latency_ns"]) == sorted(whole.loc[m, "latency_ns"])


def test_coinciding_schemes_are_marked_and_named_in_the_caption(res):
    """host and host-ns-compiled have the same latency here: their CDFs coincide; the caption names
    them and the later one is drawn with a marker; l2-routed (a second pass) is not named."""
    import matplotlib
    matplotlib.use("Agg")
    from analysis import packetstats, plots
    from analysis.figures import figures, packet_columns

    made = figures(res, ["latency_cdf"], packets=packetstats.aggregate(res, packet_columns(res)))
    caption, fig = made["latency_cdf"]
    assert "Curves that coincide" in caption and "host and host-ns-compiled" in caption
    assert "l2-routed" not in caption
    markers = {ln.get_marker() for ax in fig.axes for ln in ax.get_lines() if ln.get_label() == "host-ns-compiled"}
    assert markers - {None, "None", ""}          # drawn with a marker where it coincides with host
    plots.plt.close(fig)


def test_readability_helpers():
    from analysis import plots

    assert plots.coinciding({"a": np.array([1.0, 2.0]), "b": np.array([1.005, 2.01]), "c": np.array([1.0, 3.0])}) \
        == [["a", "b"]]
    assert plots.coinciding({"a": np.array([1.0, 2.0]), "c": np.array([1.0, 3.0])}) == []
    cut = plots._cut_at(np.array([1.0, 1.2, 1.1, 50.0]))
    assert cut is not None and 1.2 < cut < 50.0
    assert plots._cut_at(np.array([1.0, 1.2, 5.0])) is None
