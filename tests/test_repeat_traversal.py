"""A repeat traversal (``repeat_ns``): the second and later time one packet runs a stage on one
host costs ``repeat_ns``, not ``base_ns``, when the profile gives one (docs/calibration.md, "A
repeat traversal costs less than the first").  Checked against the plan's traversal counts,
the analytic round trip, the perf estimate and the robustness decomposition."""

import pytest

from analysis import robustness
from sim.calibrate import perfprofile
from sim.calibrate.predict import path_units, predict_rtt_ns, simulate_rtt_ns
from sim.calibrate.setups import SETUPS, by_name
from sim.core.costs import CostProfile, load_profile
from sim.core.simulate import simulate

FLOW = {"name": "rr", "kind": "rr", "src": "h:ns0", "dst": "h:ns1", "size": {"dist": "const", "bytes": 64}}


def _one_transaction(scheme: str, stages: dict | None = None):
    """The request and response of one unloaded transaction: (delivered rows, plan counts)."""
    sc = {"name": "repeat", "hosts": [{"name": "h", "scheme": scheme, "cores": 2, "namespaces": 2}],
          "flows": [FLOW], "run": {"duration_ns": 1e9, "max_packets": 2, "seed": 3},
          "cost_overrides": {"stages": stages or {}}}
    res = simulate(sc)
    d = res.packets[res.packets.status == "delivered"].sort_values("t_sent_ns").reset_index(drop=True)
    assert len(d) == 2
    return d


def _plan(scheme: str) -> dict[str, int]:
    """How many times the scheme's ns_to_ns plan names each stage (`robustness.plan_counts`)."""
    no_factors = type("Result", (), {"runs": [], "factors": []})()
    return robustness.plan_counts(no_factors, scheme, "ns_to_ns")


@pytest.mark.parametrize("scheme,stage", [("l2-routed", "ip_rcv"), ("l2-routed", "dev_xmit"),
                                          ("l2-bridged", "veth_xmit"), ("l2-routed", "route_input")])
def test_a_repeat_costs_repeat_ns_and_the_first_base_ns(scheme, stage):
    """Of the n traversals the default prices at n * base (plus entries), n - 1 now cost
    repeat_ns: the stage's column falls by (n - 1) * (base - repeat), every other stage's column
    is unchanged, and an unloaded packet's latency falls by exactly the same."""
    profile = load_profile("default")
    base = profile.stages[stage].base_ns
    before = _one_transaction(scheme)
    after = _one_transaction(scheme, {stage: {"repeat_ns": base / 4}})
    n = _plan(scheme)[stage]
    assert n >= 2, "the test needs a stage the trip runs more than once"
    saved = (n - 1) * base * 3 / 4
    assert (before[f"{stage}_ns"] - after[f"{stage}_ns"]).to_list() == pytest.approx([saved, saved])
    assert (before.latency_ns - after.latency_ns).to_list() == pytest.approx([saved, saved])
    others = [f"{s}_ns" for s in profile.stages if s != stage and f"{s}_ns" in before.columns]
    assert (before[others].fillna(0) == after[others].fillna(0)).all().all()


def test_repeat_equal_to_base_changes_nothing():
    """A repeat priced at base gives the very same packets (the plan's repeat-aware copies are
    priced apart but alike)."""
    stages = {s: {"repeat_ns": c.base_ns} for s, c in load_profile("default").stages.items()}
    a, b = _one_transaction("l2-bridged"), _one_transaction("l2-bridged", stages)
    cols = [c for c in a.columns if c.endswith("_ns")]
    assert (a[cols].fillna(-1) == b[cols].fillna(-1)).all().all()


@pytest.mark.parametrize("setup", [by_name(n) for n in ("veth", "routed", "chain2", "bridge", "routed-fw100")],
                         ids=lambda s: s.name)
def test_the_analytic_round_trip_prices_repeats_as_the_simulator_does(setup, tmp_path):
    """`predict_rtt_ns` (path units: first and repeat traversals apart) equals a full
    simulation under a profile with repeat prices."""
    import yaml
    prof = load_profile("default").with_overrides(
        {"ip_rcv": {"repeat_ns": 11.0}, "route_input": {"repeat_ns": 23.0}, "dev_xmit": {"repeat_ns": 7.0},
         "veth_xmit": {"repeat_ns": 61.0}, "l2_demux": {"repeat_ns": 5.0}, "ip_output": {"repeat_ns": 0.0}})
    path = tmp_path / "rep.yaml"
    path.write_text(yaml.safe_dump(prof.model_dump(mode="json", exclude={"source_file"})))
    assert predict_rtt_ns(setup, prof, 1234.0) == pytest.approx(simulate_rtt_ns(setup, str(path), 1234.0, 20))
    units = path_units(setup)
    repeats = sum(v for (s, t), v in units.items() if t == "repeat")
    assert (repeats > 0) == (setup.name != "veth")       # a veth pair runs no IP stage twice


def test_perf_estimate_recovers_first_and_repeat_prices():
    """Samples that a profile with repeat prices would charge give back its base and repeat
    per stage; a stage no fitting setup pays twice keeps one price per traversal."""
    truth = load_profile("default").with_overrides(
        {"ip_rcv": {"base_ns": 170.0, "repeat_ns": 90.0}, "dev_xmit": {"base_ns": 370.0, "repeat_ns": 80.0},
         "veth_xmit": {"base_ns": 280.0, "repeat_ns": 200.0}})
    measured = {s.name: perfprofile.stage_ns(s, truth) for s in SETUPS if not s.name.startswith("veth-idle")}
    assert perfprofile.estimate(measured, truth)["dev_xmit"].repeat_ns is None     # one price unless asked
    est = perfprofile.estimate(measured, truth, repeat=True)
    for stage, (base, repeat) in {"ip_rcv": (170, 90), "dev_xmit": (370, 80), "veth_xmit": (280, 200)}.items():
        assert est[stage].base_ns == pytest.approx(base) and est[stage].repeat_ns == pytest.approx(repeat)
    assert est["socket_send"].repeat_ns is None
    data = perfprofile.with_estimates(truth, est, "test machine")
    assert data["stages"]["dev_xmit"]["repeat_ns"] == pytest.approx(80.0)
    assert "repeat_ns: measured (perf, test machine" in data["stages"]["dev_xmit"]["source"]


def test_robustness_holds_a_stage_priced_apart_on_a_repeat():
    """The decomposition cannot split a column into first and repeat traversals: it holds the
    stage at the run's value (and says so) rather than count it wrongly."""
    stage = "ip_rcv"
    prof = load_profile("default").with_overrides({stage: {"repeat_ns": 5.0}})
    d = _one_transaction("l2-routed", {stage: {"repeat_ns": 5.0}})
    a = robustness.decompose(d, prof, _plan("l2-routed"))
    assert (stage, "base_ns") not in a.counts
    assert any(h.startswith(stage) and "repeat_ns" in h for h in a.held)
    assert a.held_ns >= d[f"{stage}_ns"].mean() - 1e-9


def test_on_the_committed_record_a_repeat_is_cheaper_and_predicts_the_held_out_chain_better():
    """The third busy-poll perf record: the forwarding stages' repeat traversals cost less
    than their first, and with those prices the held-out chain2 (two routers in a row, never
    fitted) is predicted closer than with one price per traversal."""
    import json
    from pathlib import Path

    import sim
    rec = json.loads((Path(sim.__file__).parent / "profiles" / "amd-epyc-6.18.44.busy-poll-stages-2.json").read_text())
    prior = load_profile("default")
    errors = {}
    for repeat in (False, True):
        est = perfprofile.all_estimates(rec, prior, repeat)
        if repeat:
            for stage in ("l2_demux", "ip_rcv", "route_input", "dev_xmit", "veth_xmit"):
                assert est[stage].repeat_ns is not None and est[stage].repeat_ns < est[stage].base_ns, stage
        prof = CostProfile.model_validate(perfprofile.with_estimates(prior, est, "test"))
        row = {r["setup"]: r for r in perfprofile.check_table(perfprofile.record_measured(rec), prof)}["chain2"]
        errors[repeat] = abs(row["error_pct"])
    assert errors[True] < errors[False]
