"""Sweeps (#5): spec expansion, identical results under the local pool and Dask, kill -9 and
resume, failing points, CI summary and dataset scans."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from sim.cli import main
from sim.sweep import aggregate
from sim.sweep.executors import DaskExecutor, LocalExecutor
from sim.sweep.runner import run_study
from sim.sweep.spec import SweepError, expand, parse
from sim.sweep.store import Store

ROOT = Path(__file__).resolve().parent.parent
PY = str(Path(sys.executable))
VENV_BIN = Path(sys.executable).parent

SMALL = """\
name: small-sweep
description: a tiny sweep for tests
hosts:
  - {name: h0, cores: 1, scheme: host, namespaces: 2}
flows:
  - {name: f, kind: poisson, src: h0:wire, dst: h0:ns*, rate_pps: 50000}
run: {duration_ns: 1.0e6, warmup_ns: 1.0e5, seed: 7}
sweep:
  replications: 2
  grid:
    hosts.*.scheme: [host, l2-routed]
    flows.*.rate_pps: [50000, 300000]
"""


@pytest.fixture
def small(tmp_path):
    p = tmp_path / "small.yaml"
    p.write_text(SMALL)
    return p


def _run_local(spec, out: Path, jobs: int):
    """Run sweep `spec` into `out` on a local pool of `jobs` workers, closing the pool."""
    ex = LocalExecutor(jobs)
    try:
        return run_study(expand(spec), out, ex)
    finally:
        ex.close()


def _packets(out: Path) -> pd.DataFrame:
    t = Store(out).dataset().to_table().to_pandas()
    return t.sort_values(["run_id", "packet_id"]).reset_index(drop=True)


def _summary(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "summary.csv")


# -- spec ---------------------------------------------------------------------------------

def test_spec_grid_zip_replications(tmp_path):
    s = parse({"replications": 3, "grid": {"a.b": [1, 2]}, "zip": {"c": [1, 2, 3], "d": [4, 5, 6]}})
    assert s.replications == 3 and [f.name for f in s.grid] == ["a.b"] and len(s.zipped) == 2
    assert parse({"x.y": [1, 2]}).grid[0].name == "x.y"          # shorthand: the mapping is the grid
    with pytest.raises(SweepError, match="same length"):
        parse({"zip": {"c": [1, 2], "d": [1]}})
    with pytest.raises(SweepError, match="replications"):
        parse({"replications": 0, "grid": {"a": [1]}})
    p = tmp_path / "z.yaml"
    p.write_text(SMALL.replace("  grid:\n    hosts.*.scheme: [host, l2-routed]\n",
                               "  zip:\n    hosts.*.scheme: [host, l2-routed, vnic]\n"
                               "    hosts.*.namespaces: [1, 3, 5]\n  grid:\n"))
    e = expand(p)
    assert len(e.points) == 3 * 2 * 2 and not e.rejected
    combos = {(pt.levels["hosts.*.scheme"], pt.levels["hosts.*.namespaces"]) for pt in e.points}
    assert combos == {("host", 1), ("l2-routed", 3), ("vnic", 5)}
    for pt in e.points:                        # the swept values really are in the config
        assert pt.config["hosts"][0]["namespaces"] == pt.levels["hosts.*.namespaces"]
        assert pt.config["run"]["replication"] == pt.replication and pt.config["run"]["seed"] == 7
    assert len({pt.key for pt in e.points}) == len(e.points)
    assert [pt.key for pt in expand(p).points] == [pt.key for pt in e.points]   # stable keys


def test_sweep_errors_name_the_file_and_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(SMALL.replace("replications: 2", "replications: 0"))
    with pytest.raises(SweepError, match=f"^{p}:9: sweep.replications"):
        expand(p)
    p.write_text(SMALL.replace("[host, l2-routed]", "[host, l2-routd]"))
    e = expand(p)                                # the bad scheme's points are rejected, with its line
    assert len(e.points) == 4 and len(e.rejected) == 4
    assert all(r.error.startswith(f"{p}:11: hosts[0].scheme: unknown scheme 'l2-routd'") for r in e.rejected)
    assert not list(tmp_path.glob(".*")), "no hidden copy of the file"
    assert len(expand(p, ["sweep.replications=1", "sweep.grid.hosts.*.scheme=[host]"]).points) == 2


def test_shipped_sweep_scenarios_expand():
    for name, n in (("sweep-load", 10 * 6 * 3), ("sweep-namespaces", 10 * 5 * 3)):
        e = expand(ROOT / "scenarios" / f"{name}.yaml")
        assert len(e.points) == n and not e.rejected and e.name == name


# -- executors give the same records --------------------------------------------------------

@pytest.mark.slow
def test_local_pool_and_inprocess_dask_give_the_same_results(small, tmp_path):
    ex = LocalExecutor(2)
    try:
        r1 = run_study(expand(small), tmp_path / "local", ex)
    finally:
        ex.close()
    assert r1.ok and r1.done == 8
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cl, \
            Client(cl) as client:
        r2 = run_study(expand(small), tmp_path / "dask", DaskExecutor(client=client))
    assert r2.ok and r2.done == 8
    pd.testing.assert_frame_equal(_summary(tmp_path / "local"), _summary(tmp_path / "dask"))
    a, b = _packets(tmp_path / "local"), _packets(tmp_path / "dask")
    assert len(a) > 1000
    pd.testing.assert_frame_equal(a, b)
    # replications are independent streams, the CI is there
    s = _summary(tmp_path / "local")
    lat = s[(s.metric == "latency_mean_ns") & (s.n == 2)]
    assert len(lat) == 4 and (lat.ci95_half > 0).all() and (lat.ci95_low < lat["mean"]).all()


@pytest.mark.slow
def test_real_dask_scheduler_and_worker_subprocesses(small, tmp_path):
    _run_local(small, tmp_path / "local", jobs=1)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    sched_file = tmp_path / "scheduler.json"
    procs = []
    try:
        procs.append(subprocess.Popen([str(VENV_BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                       "--no-dashboard", "--scheduler-file", str(sched_file)],
                                      cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        procs.append(subprocess.Popen([str(VENV_BIN / "dask"), "worker", "--scheduler-file", str(sched_file),
                                       "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
                                      cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client
        with Client(address, timeout=60) as c:
            c.wait_for_workers(1, timeout=60)
        rc = main(["sweep", str(small), "--out", str(tmp_path / "dask"), "--executor", "dask",
                   "--scheduler", address, "--quiet"])
        assert rc == 0
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    pd.testing.assert_frame_equal(_summary(tmp_path / "local"), _summary(tmp_path / "dask"))
    pd.testing.assert_frame_equal(_packets(tmp_path / "local"), _packets(tmp_path / "dask"))
    meta = [json.loads(p.read_text()) for p in (tmp_path / "dask" / "points").glob("*.json")]
    assert len({m["pid"] for m in meta} - {os.getpid()}) == 1, "points ran in the dask worker process"


# -- kill -9 and resume ---------------------------------------------------------------------

@pytest.mark.slow
def test_sweep_killed_with_sigkill_resumes_with_every_point_exactly_once(tmp_path):
    p = tmp_path / "kill.yaml"
    p.write_text(SMALL.replace("replications: 2", "replications: 4").replace("duration_ns: 1.0e6", "duration_ns: 3.0e6"))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [PY, "-m", "sim", "sweep", str(p), "--out", str(out), "--jobs", "1", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and len(list((out / "points").glob("*.json"))) < 2:
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)             # the command and its pool workers, at once
        proc.wait()
    store = Store(out)
    done = store.done_keys()
    assert 2 <= len(done) < 16, "killed mid-way"
    # what a reader sees is only complete, committed points
    seen = store.dataset().to_table(columns=["run_id"]).column("run_id").unique().to_pylist()
    assert set(seen) == done
    for f in (out / "packets").rglob("part-*.parquet"):
        ds.dataset(str(f)).count_rows()                  # no corrupt partition
    # resume
    assert main(["sweep", str(p), "--out", str(out), "--jobs", "2", "--quiet"]) == 0
    keys = {pt.key for pt in expand(p).points}
    assert store.done_keys() == keys and len(keys) == 16
    files = list((out / "packets").rglob("part-*.parquet"))
    assert len(files) == 16 and not [f for f in out.rglob(".tmp-*")]
    t = store.dataset().to_table(columns=["run_id", "packet_id"]).to_pandas()
    assert set(t.run_id) == keys
    assert not t.duplicated(["run_id", "packet_id"]).any(), "every point exactly once"
    s = _summary(out)
    assert (s[s.metric == "sent"].n == 4).all()
    # a second resume runs nothing
    ex = LocalExecutor(1)
    try:
        r = run_study(expand(p), out, ex)
    finally:
        ex.close()
    assert r.done == 0 and r.skipped == 16


# -- failures -------------------------------------------------------------------------------

def test_a_point_that_does_not_validate_is_reported_and_the_others_run(tmp_path, capsys):
    p = tmp_path / "bad.yaml"
    p.write_text(SMALL.replace("    flows.*.rate_pps: [50000, 300000]\n", "    hosts.*.namespaces: [0, 2]\n"))
    out = tmp_path / "out"
    assert main(["sweep", str(p), "--out", str(out), "--jobs", "2", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "hosts.*.namespaces=0" in err and "has 0 namespace(s)" in err
    assert len(Store(out).done_keys()) == 4                      # 2 schemes x 1 good count x 2 reps
    failed = Store(out).failures()
    assert len(failed) == 4 and all(f["levels"]["hosts.*.namespaces"] == 0 for f in failed)


def test_a_point_that_raises_in_the_worker_is_reported_and_the_others_run(small, tmp_path):
    e = expand(small)
    bad = e.points[3]
    bad.config["hosts"][0]["cores"] = -1                         # the worker's own validation raises
    ex = LocalExecutor(2)
    try:
        r = run_study(e, tmp_path / "out", ex)
    finally:
        ex.close()
    assert not r.ok and r.done == 7 and len(r.failed) == 1
    f = r.failed[0]
    assert f["key"] == bad.key and f["config"]["hosts"][0]["cores"] == -1 and "ValidationError" in f["error"]
    assert f["levels"] == bad.levels and "Traceback" in f["traceback"]
    assert bad.key not in Store(tmp_path / "out").done_keys()
    assert json.loads((tmp_path / "out" / "failed" / f"{bad.key}.json").read_text())["error"] == f["error"]


# -- summary and scans ----------------------------------------------------------------------

def test_t_quantiles_and_ci():
    from sim.results.stats import mean_ci, t_quantile
    assert t_quantile(1) == pytest.approx(12.706, abs=1e-3)          # textbook t(0.975, df)
    assert t_quantile(10) == pytest.approx(2.228, abs=1e-3)
    assert t_quantile(40) == pytest.approx(2.021, abs=1e-3)
    assert t_quantile(1000) == pytest.approx(1.962, abs=2e-3)
    # the result tables (summary.csv) and the report (sim.results.stats.mean_ci) give the same interval,
    # also beyond 30 degrees of freedom where two hand-made tables used to disagree
    values = np.random.default_rng(1).normal(10.0, 2.0, 45)
    many = pd.DataFrame({"k": "a", "scheme": "s", "trip": None, "host": None, "core": None,
                         "metric": "m", "unit": "u", "value": values})
    m, h, n = mean_ci(values)
    row = aggregate.summary_table(many, ["k"]).iloc[0]
    assert n == row["n"] == 45 and row["mean"] == pytest.approx(m) and row["ci95_half"] == pytest.approx(h)
    pts = pd.DataFrame({"k": ["a"] * 3, "scheme": "s", "trip": None, "host": None, "core": None,
                        "metric": "m", "unit": "u", "value": [1.0, 2.0, 3.0]})
    s = aggregate.summary_table(pts, ["k"])
    half = 4.303 * 1.0 / np.sqrt(3)
    assert s["n"].iloc[0] == 3 and s["mean"].iloc[0] == 2.0
    assert s["ci95_half"].iloc[0] == pytest.approx(half, rel=1e-3)


def test_latency_percentiles_scanned_from_the_dataset_match_pandas(small, tmp_path):
    _run_local(small, tmp_path / "out", jobs=2)
    store = Store(tmp_path / "out")
    scan = aggregate.latency_percentiles(store, (0.5, 0.99)).set_index("run_id")
    assert len(scan) == 8 and set(scan["hosts.*.scheme"]) == {"host", "l2-routed"}
    pk = _packets(tmp_path / "out")
    for key, g in pk.groupby("run_id"):
        d = g[(g.status == "delivered") & (g.t_sent_ns >= 1e5)].latency_ns.to_numpy()
        assert scan.loc[key, "latency_p99_ns"] == np.quantile(d, 0.99, method="inverted_cdf")
        assert scan.loc[key, "delivered"] == len(d)
    # the per-point summary in the markers agrees with the packets it describes
    pts = pd.read_csv(tmp_path / "out" / "points.csv")
    sent = pts[pts.metric == "sent"].set_index("run_id")["value"]
    for key, g in pk.groupby("run_id"):
        assert sent[key] == (g.t_sent_ns >= 1e5).sum()
