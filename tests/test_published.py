"""Published figures beside the model (analysis/published.py, analysis/published.yaml; issue 15)."""

import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from analysis import published
from sim.core.schemes import builtin_registry
from sim.frontdoor.loader import load

ROOT = Path(__file__).resolve().parent.parent


def _fake_result(values: dict[tuple[str, str], float], metric: str, scenario: str = "s"):
    """A result holding only what `published.compare` reads: flows.csv rows and the scenario name."""
    rows = [{"hosts.*.scheme": scheme, "flow": flow, metric: v} for (scheme, flow), v in values.items()]
    run = SimpleNamespace(metadata={"scenario": scenario}, resolved={"name": scenario})
    return SimpleNamespace(runs=[run], flows=pd.DataFrame(rows))


def _figure(**kw) -> published.Figure:
    base = dict(id="f", source="src", setup="setup", scenario="s", flow="rr", metric="transaction_mean_ns",
                scale=1000.0, baseline="a", published={"a": 100.0, "b": 50.0, "c": 80.0},
                schemes={"a": "l2-routed", "b": "macvlan-bridge", "c": "sriov-vf"})
    base.update(kw)
    return published.Figure(**base)


def test_deltas_and_error_follow_the_stated_formula():
    fig = _figure()
    res = _fake_result({("l2-routed", "rr"): 20_000.0, ("macvlan-bridge", "rr"): 11_000.0,
                        ("sriov-vf", "rr"): 30_000.0, ("host", "rr"): 1.0}, "transaction_mean_ns")
    rows = published.compare(res, [fig])
    assert [r.config for r in rows] == ["b", "c"]                    # the baseline is not a row
    b, c = rows
    assert b.published_delta == pytest.approx(-0.5) and b.predicted_delta == pytest.approx(-0.45)
    assert b.error == pytest.approx((-0.45 + 0.5) / 0.5) and b.matches   # +0.1: within 30%
    assert c.published_delta == pytest.approx(-0.2) and c.predicted_delta == pytest.approx(0.5)
    assert c.error == pytest.approx(3.5) and not c.matches
    cells = published.table_rows(rows)
    assert cells[0][2:] == ["-50%", "-45%", "+0.10", "yes", "guessed"] and cells[1][5] == "no"
    assert "Setups matched: 0 of 0 rows" in published.summary(rows)
    matched = published.compare(res, [fig.model_copy(update={"matched": True})])
    assert published.table_rows(matched)[0][6] == "matched"
    assert published.summary(matched).startswith("Setups matched: 1 of 2 rows within 30%")


def test_replications_are_averaged_and_a_missing_flow_gives_no_number():
    fig = _figure(published={"a": 1.0, "b": 2.0}, schemes={"a": "host", "b": "netkit"}, metric="throughput_bytes_per_s")
    res = _fake_result({("host", "rr"): 10.0, ("netkit", "rr"): 30.0}, "throughput_bytes_per_s")
    res.flows = pd.concat([res.flows, pd.DataFrame([{"hosts.*.scheme": "netkit", "flow": "rr",
                                                      "throughput_bytes_per_s": 10.0}])])
    (row,) = published.compare(res, [fig])
    assert row.predicted_delta == pytest.approx(1.0) and row.published_delta == pytest.approx(1.0)   # mean(30, 10)
    (row,) = published.compare(res, [fig.model_copy(update={"flow": "other"})])
    assert math.isnan(row.predicted_delta) and published.table_rows([row])[0][3:6] == ["n/a", "n/a", "n/a"]
    assert published.compare(res, [fig.model_copy(update={"scenario": "another"})]) == []


def test_a_figure_with_mismatched_configurations_is_refused_by_name():
    with pytest.raises(ValueError, match="figure f: `published` and `schemes`"):
        _figure(schemes={"a": "host", "b": "netkit"})
    with pytest.raises(ValueError, match="baseline 'z'"):
        _figure(baseline="z")


def test_every_shipped_figure_names_a_shipped_flow_builtin_schemes_and_a_flows_column():
    schemes = set(builtin_registry().names())
    figs = published.figures()
    assert figs and len({f.id for f in figs}) == len(figs)
    for f in figs:
        scen = load(ROOT / "scenarios" / f"{f.scenario}.yaml")
        compared = {str(v) for fac in scen.factors if fac.name == "hosts.*.scheme" for v in fac.values}
        assert set(f.schemes.values()) <= schemes & compared, f.id
        assert f.flow in {fl.name for fl in scen.variants[0].scenario.flows}, f.id


def test_the_modern_scenario_gives_every_figure_a_number_and_the_report_shows_them(tmp_path):
    from analysis.report import write
    from sim import api
    res = api.run(ROOT / "scenarios" / "modern.yaml", tmp_path / "m", base_dir=ROOT,
                  sets=["run.duration_ns=3e6", "run.warmup_ns=5e5"])
    rows = published.compare(res)
    assert {r.figure.id for r in rows} == {f.id for f in published.figures() if f.scenario == "modern"}
    assert all(math.isfinite(r.predicted_delta) for r in rows)
    for r in rows:                                           # each figure's metric is a flows.csv column
        assert r.figure.metric in res.flows.columns
    write(tmp_path / "m")
    md = (tmp_path / "m" / "report.md").read_text()
    assert "### Published figures" in md and all(r.figure.id in md for r in rows)


def test_the_command_prints_the_table_or_says_which_scenario_to_run(tmp_path, capsys):
    from sim import api
    res_dir = tmp_path / "tcp"
    api.run(ROOT / "scenarios" / "tcp.yaml", res_dir, base_dir=ROOT, sets=["run.duration_ns=1e6", "run.warmup_ns=0"])
    assert published.main([str(res_dir)]) == 2
    assert "scenarios/modern.yaml" in capsys.readouterr().err


@pytest.mark.parametrize("argv, says", [(["--cpus", "0"], "--cpus takes two CPUs"),
                                        (["--setups", "routed,nosuch"], "unknown setup 'nosuch'")])
def test_tcp_rr_refuses_bad_options_before_building_anything(argv, says, capsys):
    from sim.calibrate.__main__ import main
    assert main(["tcp-rr", *argv, "--out", "/nonexistent/x.json"]) == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("figure, record", [("this-machine-rr", "amd-epyc-6.18.44.tcp-rr.json"),
                                            ("this-machine-rr-bpf", "amd-epyc-6.18.44.tcp-rr-bpf.json")])
def test_the_recorded_tcp_rr_measurement_is_the_figure_it_backs(figure, record):
    """The this-machine figures' numbers are their records' medians (no number typed in by hand);
    each configuration is the calibration setup of the same name."""
    import json
    rec = json.loads((ROOT / "sim" / "profiles" / record).read_text())
    (fig,) = [f for f in published.figures() if f.id == figure]
    for config in fig.published:
        assert fig.published[config] == pytest.approx(rec["setups"][config]["median_of_rounds_ns"] / 1e3, abs=0.005)
