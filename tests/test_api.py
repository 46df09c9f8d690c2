"""One runner: the CLI's run, its sweep and the Python API build and run every model through
`sim.core.simulate.simulate` and write one result layout; the notebook example in docs/ runs."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest

import sim.api as ns
import sim.core.simulate
from sim.cli import main

ROOT = Path(__file__).resolve().parent.parent

SCENARIO = {
    "name": "api",
    "hosts": [{"name": "h0", "cores": 2, "namespaces": 6}],
    "flows": [{"name": "in", "src": "h0:wire", "dst": "h0:ns*", "rate_pps": 120_000},
              {"name": "local", "src": "h0:ns0", "dst": "h0:ns3", "rate_pps": 40_000}],
    "run": {"duration_ns": 2.0e6, "warmup_ns": 2.0e5, "seed": 11},
    "compare": {"hosts.*.scheme": ["host", "l2-routed", "vnic"]},
}


def _yaml(path: Path, data: dict) -> Path:
    import yaml
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _files(out: Path) -> set[str]:
    """The layout: every file, with content-keyed names generalised."""
    return {("points/KEY.json" if p.parent.name == "points" else
             "packets/.../part-KEY.parquet" if p.suffix == ".parquet" else str(p.relative_to(out)))
            for p in out.rglob("*") if p.is_file()}


@pytest.fixture
def calls(monkeypatch):
    """Count the models built and run, wherever they are built."""
    seen = []
    real = sim.core.simulate.simulate

    def counting(scenario, **kw):
        seen.append(scenario.hosts[0].scheme)
        return real(scenario, **kw)
    monkeypatch.setattr(sim.core.simulate, "simulate", counting)
    return seen


@pytest.mark.slow
def test_cli_run_sweep_and_api_go_through_one_simulate_and_write_one_layout(tmp_path, calls):
    path = _yaml(tmp_path / "api.yaml", SCENARIO)
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "-q"]) == 0
    assert sorted(calls) == ["host", "l2-routed", "vnic"]
    api = ns.run(SCENARIO, tmp_path / "api")
    assert len(calls) == 6
    # the same grid as a sweep: block with one replication, run by the study runner in process
    sweep = {k: v for k, v in SCENARIO.items() if k != "compare"}
    sweep["sweep"] = {"replications": 1, "grid": SCENARIO["compare"]}
    swept = ns.run(sweep, tmp_path / "sweep")
    assert len(calls) == 9
    assert _files(tmp_path / "run") == _files(tmp_path / "api") == _files(tmp_path / "sweep")
    # same scenario, same seed: the same runs (content keys) and the same numbers
    for name in ("points.csv", "summary.csv", "memory.csv", "cores.csv", "flows.csv"):
        a, b, c = (pd.read_csv(tmp_path / d / name) for d in ("run", "api", "sweep"))
        pd.testing.assert_frame_equal(a, b)
        pd.testing.assert_frame_equal(a, c)
    pk = [ds.dataset(tmp_path / d / "packets", partitioning="hive").to_table().to_pandas()
          .sort_values(["run_id", "packet_id"]).reset_index(drop=True) for d in ("run", "sweep")]
    pd.testing.assert_frame_equal(pk[0], pk[1])
    assert api.factors == swept.factors == ["hosts.*.scheme"]


def test_api_results_equal_an_in_memory_simulate_of_each_point(tmp_path):
    res = ns.run(SCENARIO, tmp_path / "out")
    for point in ns.plan(SCENARIO).points:
        mem = ns.simulate(point.config).summary
        mine = res.summary[res.summary["run_id"] == point.key]
        for metric in ("sent", "delivered", "latency_p99_ns"):
            got = mine[mine.metric == metric].set_index("trip")["value"].sort_index()
            want = mem[mem.metric == metric].set_index("trip")["value"].sort_index()
            pd.testing.assert_series_equal(got, want, check_names=False)
    n = res.summary[res.summary.metric == "sent"]["value"].sum()
    pk = res.packets(["latency_ns"])
    assert len(pk) == n and set(pk["hosts.*.scheme"]) == {"host", "l2-routed", "vnic"}


def test_api_takes_models_dicts_extends_and_reports_bad_input(tmp_path):
    from sim.frontdoor.scenario import Scenario
    model = Scenario.model_validate({k: v for k, v in SCENARIO.items() if k != "compare"})
    assert ns.plan(model).points[0].config["hosts"][0]["namespaces"] == 6
    _yaml(tmp_path / "base.yaml", {k: v for k, v in SCENARIO.items() if k != "compare"})
    exp = ns.plan({"extends": "base.yaml", "compare": {"hosts.*.namespaces": [4, 100]}}, base_dir=tmp_path,
                  sets=["hosts.0.cores=3"])
    assert [p.config["hosts"][0]["namespaces"] for p in exp.points] == [4, 100]
    assert {p.config["hosts"][0]["cores"] for p in exp.points} == {3}
    with pytest.raises(ns.ScenarioError, match=r"^<scenario>: flows\[0\]\.rate_pps: .*\(fix: "):
        ns.run({**SCENARIO, "flows": [{"src": "h0:wire", "dst": "h0:ns1", "rate_pps": -1}]}, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ns.ScenarioError, match="base scenario 'missing.yaml' not found"):
        ns.plan({"extends": "missing.yaml"}, base_dir=tmp_path)


@pytest.mark.slow
def test_notebook_example_in_docs_runs(tmp_path):
    # TMPDIR: the example's ns.run() calls without `out` make new temporary directories; keep them in tmp_path
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    p = subprocess.run([sys.executable, str(ROOT / "docs" / "examples" / "notebook.py")], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "l2-bridged" in p.stdout and "rate_pps" in p.stdout          # the DataFrames and the error shown
