"""Re-running one variant of a result with moved costs (analysis.reruns), and the claims'
robustness that needs it: the latency parts, and the rules that compare namespace counts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import sim.api as api
from analysis import claims, reruns, robustness
from analysis.conditions import roles as find_roles
from analysis.figures import packet_columns

ROOT = Path(__file__).resolve().parent.parent
SCHEMES = ["host", "host-ns-compiled", "l2-routed", "shortcut-routing", "shortcut-socket", "l3-bind", "vnic"]
NS = [10, 200]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("reruns") / "res"
    res = api.run({"extends": str(ROOT / "scenarios" / "rfc2006-schemes.yaml"), "name": "reruns",
                   "run": {"duration_ns": 3.0e6, "warmup_ns": 0.5e6},
                   "compare": {"hosts.*.scheme": SCHEMES, "hosts.*.namespaces": NS, "flows.0.rate_pps": [50000]}},
                  out)
    roles = find_roles(res.summary, res.factors)
    ref = roles.reference()
    packets = res.packets(columns=packet_columns(res))
    return {"res": res, "roles": roles, "ref": ref, "packets": packets}


def _stored(res, scheme: str, fixed: dict) -> pd.DataFrame:
    s = res.summary
    for k, v in fixed.items():
        s = s[s[k] == v]
    return s[s["scheme"] == scheme]


def test_a_rerun_at_the_runs_costs_reproduces_every_summary_row(result):
    """The rebuilt variant is the variant: re-run with no cost moved, every points.csv value of
    every scheme at both namespace counts comes back exactly (same seed, same traffic)."""
    res, rr = result["res"], reruns.Rerunner(result["res"], reuse_stored=False)
    for scheme in SCHEMES:
        for n in NS:
            fixed = {**result["ref"], "hosts.*.namespaces": n}
            stored, again = _stored(res, scheme, fixed), rr.summary(scheme, fixed, {})
            stored, again = (f[f["core"].isna() | (f["core"] == "")].set_index(["trip", "metric"])["value"]
                             for f in (stored, again))
            again = again[again.index.isin(stored.index)]
            assert len(again) == len(stored) > 20
            pd.testing.assert_series_equal(again.sort_index(), stored.sort_index(), check_names=False,
                                           rtol=1e-9, atol=1e-9)
    assert rr.runs == len(SCHEMES) * len(NS)
    rr.summary("host", result["ref"], {})                     # cached: no new simulation
    assert rr.runs == len(SCHEMES) * len(NS)


def test_at_the_runs_costs_the_stored_rows_answer_as_a_rerun_would(result):
    """With no cost moved the variant's own rows stand in for a re-run (the test above shows
    they are what it gives): the same metric values, and no simulation."""
    res, fixed = result["res"], result["ref"]
    stored, simulated = reruns.Rerunner(res), reruns.Rerunner(res, reuse_stored=False)
    for scheme in ("host", "l2-routed"):
        for trip in ("wire_to_ns", "ns_to_ns", "ns_to_self", "multicast"):
            for metric in ("latency_p50_ns", "delivered", "sent"):
                a = stored.metric(scheme, trip, metric, fixed, {})
                b = simulated.metric(scheme, trip, metric, fixed, {})
                assert a == pytest.approx(b, rel=1e-9, abs=1e-9), (scheme, trip, metric)
    assert stored.runs == 0 and simulated.runs == 2
    moved = {("socket_enqueue", "base_ns"): 500.0}
    stored.metric("host", "wire_to_ns", "latency_p50_ns", fixed, moved)      # a moved cost is simulated
    assert stored.runs == 1


def test_a_cost_on_one_path_moves_only_that_paths_latency(result):
    """veth_xmit is on l2-routed's wire_to_ns path, not on host's: moving it to the top of its
    range leaves host's re-run identical and raises l2-routed's p50 by about the extra CPU of
    its veth crossings (one per packet; the load is low, so queueing adds little).  Not by all
    of it: a packet's second pass can wait behind the wake-up CPU its core spends for the
    packet before (wakeup_*_send_ns), and a longer first pass waits less for it (at the
    default profile's prices: +174 ns of p50 for +250 ns of veth_xmit; +251 with no wake-up CPU)."""
    rr, ref = reruns.Rerunner(result["res"]), result["ref"]
    nominal, ranges = robustness.nominal_and_ranges(rr.profile)
    t = ("veth_xmit", "base_ns")
    hi = ranges[t][1]
    assert hi > nominal[t]
    h0, h1 = (rr.metric("host", "wire_to_ns", "latency_p50_ns", ref, c) for c in ({}, {t: hi}))
    l0, l1 = (rr.metric("l2-routed", "wire_to_ns", "latency_p50_ns", ref, c) for c in ({}, {t: hi}))
    assert h1 == h0
    extra = hi - nominal[t]
    assert 0.6 * extra <= l1 - l0 <= 1.5 * extra


def test_variant_scenario_names_what_it_cannot_rebuild(result):
    res = result["res"]
    with pytest.raises(reruns.RerunUnavailable, match="no run of the result matches"):
        res2 = type(res)(**{**res.__dict__})
        res2._run_factor_values = {"hosts.0.cores": {res.runs[0].name: 2}}
        reruns.variant_scenario(res2, "host", {"hosts.0.cores": 4})
    doc = reruns.variant_scenario(res, "vnic", {**result["ref"], "hosts.*.namespaces": 200})
    assert "compare" not in doc and all(h["scheme"] == "vnic" and h["namespaces"] == 200 for h in doc["hosts"])


def _claim(cl, start: str):
    return next(c for c in cl if c.claim.startswith(start))


def test_claims_comparing_namespace_counts_get_a_robustness_label(result):
    """Scaling and socket-lookup switching compare two namespace counts: their affine models are
    built at each count, so they are labelled like the others, and the label agrees with the
    rule at the worst corner."""
    cl, _ = claims.build(result["res"], result["roles"], result["ref"], result["packets"], rerun=False)
    for start in ("The design must scale", "Switching namespace at socket lookup"):
        c = _claim(cl, start)
        assert c.verdict in (claims.SUPPORTED, claims.CONTRADICTED)
        r = c.robustness
        assert r is not None and r.label in (robustness.HOLDS, robustness.DEPENDS, robustness.DEFINITION), r
        assert r.label == robustness.DEFINITION or r.bars            # terms with a range were varied
        if r.label == robustness.HOLDS:
            lim = r.threshold
            assert (r.worst <= lim) == (r.nominal <= lim)            # both rules: supported at or below


def test_latency_parts_are_rerun_or_say_why_not(result):
    """With re-runs the p50 parts report their value at two corners; without, they say they were
    not asked for — never a silent "holds"."""
    args = (result["res"], result["roles"], result["ref"], result["packets"])
    with_runs, _ = claims.build(*args)
    without, _ = claims.build(*args, rerun=False)
    for start in ("Layer-3 bind filtering", "VNIC:", "\"A Layer 2 approach"):
        a, b = _claim(with_runs, start), _claim(without, start)
        assert "the p50 part, re-run at the corners" in a.robustness_text, a.robustness_text
        assert "re-runs not asked for (--no-reruns)" in b.robustness_text
    # the multicast claim's whole robustness is its p50 part
    mc = _claim(with_runs, "Application containers")
    assert mc.robustness.label in (robustness.HOLDS, robustness.DEPENDS)
    assert _claim(without, "Application containers").robustness.label == robustness.NEEDS_RERUNS


def test_a_p50_part_that_changes_at_a_corner_is_labelled_depends():
    """`Costs.latency_part` with a p50 rule met at the run's costs but not at one corner (and the
    rest of the rule met): the verdict depends on the costs; met at both: unchanged."""
    class FakeReruns:
        def __init__(self, p50):
            self.p50 = p50

        def metric(self, scheme, trip, metric, fixed, costs):
            return self.p50(scheme, costs)

    aff = {"host": robustness.Affine({("a", "base_ns"): 1.0}), "x": robustness.Affine({("a", "base_ns"): 1.0}, 100.0)}
    c = claims.Costs.__new__(claims.Costs)
    c.profile, c.ref, c.nominal, c.ranges = object(), {}, {("a", "base_ns"): 100.0}, {("a", "base_ns"): (50.0, 200.0)}
    c.affine = lambda s, t, *a, **k: aff[s]
    # x's extra CPU is 100 ns over host's a: smallest at a = 200, largest at a = 50.  p50 = CPU + 1000:
    # x vs host +9.1% at the run's a = 100, +8.3% at 200, +9.5% at 50
    c.reruns = FakeReruns(lambda s, costs: aff[s].at({("a", "base_ns"): 100.0, **costs}) + 1000)
    r = c.latency_part(robustness.Robustness(robustness.HOLDS, "holds"), "x", "wire_to_ns", lambda d: d <= 0.092, True)
    assert r.label == robustness.DEPENDS and "p50 +8.3% and +9.5%" in r.text and "only at the smallest" in r.text
    r = c.latency_part(robustness.Robustness(robustness.HOLDS, "holds"), "x", "wire_to_ns", lambda d: d <= 0.10, True)
    assert r.label == robustness.HOLDS and "the rule met at both" in r.text
    # the rest of the rule is not met: the p50 part cannot flip the verdict
    r = c.latency_part(robustness.Robustness(robustness.HOLDS, "holds"), "x", "wire_to_ns", lambda d: d <= 0.092, False)
    assert r.label == robustness.HOLDS
