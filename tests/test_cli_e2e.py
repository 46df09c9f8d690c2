"""End-to-end: the real command as a subprocess (`python -m sim`, same code as `netns-sim`)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

GOOD = """\
name: tiny
description: two hosts, two schemes
hosts:
  - name: h0
    cores: 2
    namespaces: 4
  - name: h1
    namespaces: 2
switches:
  - name: s0
links:
  - {a: h0, b: s0, rate_bps: 1.0e10}
  - {a: h1, b: s0, rate_bps: 1.0e10}
flows:
  - name: in
    src: h0:wire
    dst: h0:ns1
    rate_pps: 200000
  - name: across
    src: h0:ns0
    dst: h1:ns1
    rate_pps: 100000
    size: {dist: uniform, min_bytes: 64, max_bytes: 512}
run:
  duration_ns: 2.0e6
  warmup_ns: 2.0e5
compare:
  hosts.*.scheme: [host, l2-routed]
"""

PACKET_COLUMNS = {"run_id", "point", "seed", "replication", "hosts.*.scheme", "packet_id", "flow",
                  "trip", "scheme", "src_host", "dst_host", "src_netns", "dst_netns", "size_bytes", "t_sent_ns",
                  "t_done_ns", "latency_ns", "status", "drop_reason", "queue_ns"}
POINTS_COLUMNS = ["hosts.*.scheme", "run_id", "point", "replication", "seed", "scheme", "trip", "host",
                  "core", "metric", "value", "unit"]
SUMMARY_COLUMNS = ["hosts.*.scheme", "scheme", "trip", "host", "core", "metric", "unit", "n", "mean", "std",
                   "ci95_low", "ci95_high", "ci95_half"]
LAYOUT = ["sweep.json", "metadata.json", "scenario.resolved.yaml", "points.csv", "summary.csv", "memory.csv",
          "cores.csv", "flows.csv", "packets", "points", "failed"]


def tree(path: Path) -> dict:
    """{relative path: bytes} of every file below `path`."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def netns_sim(*args, cwd, timeout=120):
    return subprocess.run([sys.executable, "-m", "sim", *map(str, args)], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_good_run_writes_every_file_with_documented_columns(tmp_path):
    (tmp_path / "tiny.yaml").write_text(GOOD)
    r = netns_sim("run", "tiny.yaml", "--set", "hosts.1.cores=3", "--seed", "5", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "results" / "tiny"
    assert LAYOUT[:8] == [n for n in LAYOUT if (out / n).is_file()]
    assert {n for n in LAYOUT if (out / n).is_dir()} == {"packets", "points", "failed"}
    packets = ds.dataset(out / "packets", format="parquet", partitioning="hive").to_table().to_pandas()
    assert json.loads((out / ".netns-sim").read_text())["kind"] == "run"
    assert PACKET_COLUMNS <= set(packets.columns)
    assert set(packets["point"]) == {"p00000-r0", "p00001-r0"}
    assert set(packets["hosts.*.scheme"].astype(str)) == {"host", "l2-routed"}
    assert set(packets["trip"]) == {"wire_to_ns", "ns_to_remote_ns"}
    assert list(pd.read_csv(out / "summary.csv").columns) == SUMMARY_COLUMNS
    summary = pd.read_csv(out / "points.csv")
    assert list(summary.columns) == POINTS_COLUMNS
    metrics = set(summary["metric"])
    for m in ("latency_p50_ns", "latency_p90_ns", "latency_p99_ns", "latency_p999_ns", "latency_mean_ns",
              "throughput_pps", "offered_pps", "sent", "delivered", "in_flight", "drops_backlog_full",
              "utilisation", "memory_bytes"):
        assert m in metrics
    lat = summary[(summary.metric == "latency_p50_ns") & (summary.trip == "wire_to_ns")]
    assert len(lat) == 2 and (lat.value > 0).all()
    memory = pd.read_csv(out / "memory.csv")
    assert {"point", "scheme", "namespaces", "structure", "bytes"} <= set(memory.columns)
    cores = pd.read_csv(out / "cores.csv")
    assert {"point", "host", "core", "busy_ns", "utilisation"} <= set(cores.columns)
    # --set reaches the resolved scenario and the results; --seed too
    assert len(cores[(cores.host == "h1") & (cores.point == "p00000-r0")]) == 3
    resolved = yaml.safe_load((out / "scenario.resolved.yaml").read_text())
    assert resolved["hosts"][1]["cores"] == 3 and resolved["run"]["seed"] == 5
    assert resolved["hosts"][0]["sockets_per_namespace"] == 1           # defaults filled in
    assert resolved["compare"] == {"hosts.*.scheme": ["host", "l2-routed"]}
    meta = json.loads((out / "metadata.json").read_text())
    for key in ("seed", "replications", "packages", "git", "wall_s", "hostname", "python", "sim_version", "command",
                "points", "factors"):
        assert key in meta
    assert meta["git"]["commit"] and len(meta["points"]) == 2
    assert meta["seed"] == 5 and set(summary["seed"]) == {5}
    assert not [p for p in tmp_path.joinpath("results").iterdir() if p.name.startswith(".")]
    # the resolved scenario is itself a valid scenario
    assert netns_sim("validate", out / "scenario.resolved.yaml", cwd=tmp_path).returncode == 0


def _lines_with(text, marker):
    return [i + 1 for i, line in enumerate(text.splitlines()) if marker in line]


BAD = [
    # id, change to GOOD (old, new) or full text, extra args, key path in message, line marker or --set text
    ("unknown_key", ("    namespaces: 4\n", "    namespaces: 4\n    colour: red\n"), [], "hosts[0].colour", "colour"),
    ("wrong_type", ("    cores: 2\n", "    cores: two\n"), [], "hosts[0].cores", "cores: two"),
    ("negative_rate", ("rate_pps: 200000", "rate_pps: -5"), [], "flows[0].rate_pps", "rate_pps: -5"),
    ("zero_rate", ("rate_pps: 100000", "rate_pps: 0"), [], "flows[1].rate_pps", "rate_pps: 0"),
    ("zero_cores", ("    cores: 2\n", "    cores: 0\n"), [], "hosts[0].cores", "cores: 0"),
    ("missing_namespace", ("dst: h1:ns1", "dst: h1:ns7"), [], "flows[1].dst", "dst: h1:ns7"),
    ("unknown_host", ("dst: h1:ns1", "dst: h9:ns1"), [], "flows[1].dst", "dst: h9:ns1"),
    ("unknown_scheme", ("  hosts.*.scheme: [host, l2-routed]", "  hosts.*.scheme: [host, l2-routd]"), [],
     "hosts[0].scheme", "hosts.*.scheme"),
    ("no_route", ("  - {a: h1, b: s0, rate_bps: 1.0e10}\n", ""), [], "flows[1]", "- name: across"),
    ("bad_extends", "extends: nowhere/base.yaml\nname: x\n", [], "extends", "extends:"),
    ("malformed_yaml", ("    namespaces: 4\n", "    namespaces: [4\n"), [], "malformed YAML", None),
    ("bad_set_path", None, ["--set", "hosts.5.cores=2"], "--set hosts.5.cores=2", None),
    ("set_unknown_key", None, ["--set", "run.durration_ns=5"], "run.durration_ns", None),
    ("uniform_min_gt_max", ("min_bytes: 64, max_bytes: 512", "min_bytes: 600, max_bytes: 512"), [],
     "flows[1].size", "size:"),
    ("duplicate_host", ("  - name: h1\n", "  - name: h0\n"), [], "hosts[1].name", "  - name: h0"),
    ("warmup_too_long", ("  warmup_ns: 2.0e5", "  warmup_ns: 3.0e6"), [], "run", "run:"),
    ("unknown_generator", "topology: {generator: torus}\nrun: {duration_ns: 1e6}\n", [], "topology.generator",
     "topology:"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_scenario_fails_with_path_and_line_and_writes_nothing(tmp_path, case):
    name, change, extra, key_path, marker = case
    if isinstance(change, str):
        text = change
    elif change is None:
        text = GOOD
    else:
        assert change[0] in GOOD, name
        text = GOOD.replace(change[0], change[1], 1)
    (tmp_path / "bad.yaml").write_text(text)
    r = netns_sim("run", "bad.yaml", "--out", "res", *extra, cwd=tmp_path)
    assert r.returncode == 2, (name, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert key_path in r.stderr, r.stderr
    if marker is not None:
        lines = _lines_with(text, marker)
        assert any(f"bad.yaml:{n}:" in r.stderr for n in lines), (r.stderr, lines)
    elif not extra:
        assert "bad.yaml:" in r.stderr                  # malformed YAML: line from the parser
    if name == "unknown_scheme":
        assert "did you mean 'l2-routed'" in r.stderr
    if name == "set_unknown_key":
        assert "did you mean 'duration_ns'" in r.stderr
    assert not (tmp_path / "res").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def _long_run(tmp_path, out, *extra):
    return subprocess.Popen([sys.executable, "-m", "sim", "run", "tiny.yaml", "--out", out, "--force", "--quiet",
                             "--set", "run.duration_ns=5e9", *extra], cwd=tmp_path, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_tmp(tmp_path, proc, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        tmps = [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-res-")]
        if tmps:
            return tmps
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the run never created its temporary directory")


@pytest.mark.slow
def test_killed_run_leaves_no_result_and_keeps_the_earlier_one(tmp_path):
    (tmp_path / "tiny.yaml").write_text(GOOD)
    assert netns_sim("run", "tiny.yaml", "--out", "res", "--quiet", cwd=tmp_path).returncode == 0
    before = tree(tmp_path / "res")
    proc = _long_run(tmp_path, "res")
    _wait_for_tmp(tmp_path, proc)
    time.sleep(0.5)
    proc.kill()
    proc.wait()
    assert tree(tmp_path / "res") == before   # untouched
    # a run killed before its first result leaves no result directory either
    proc = _long_run(tmp_path, "fresh")
    t0 = time.time()
    while not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-fresh-")] and time.time() - t0 < 60:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert not (tmp_path / "fresh").exists()
    # the next run cleans up what the killed ones left behind
    assert netns_sim("run", "tiny.yaml", "--out", "res", "--force", "--quiet", cwd=tmp_path).returncode == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".tmp-res-", ".old-res-"))]


def test_sigterm_cleans_up_and_exits_nonzero(tmp_path):
    (tmp_path / "tiny.yaml").write_text(GOOD)
    proc = _long_run(tmp_path, "res")
    _wait_for_tmp(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not (tmp_path / "res").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.slow
def test_existing_result_needs_force(tmp_path):
    (tmp_path / "tiny.yaml").write_text(GOOD)
    assert netns_sim("run", "tiny.yaml", "--out", "res", "-q", cwd=tmp_path).returncode == 0
    r = netns_sim("run", "tiny.yaml", "--out", "res", "-q", cwd=tmp_path)
    assert r.returncode == 2 and "--force" in r.stderr


@pytest.mark.slow
def test_run_refuses_a_sweep_file_and_validate_checks_every_point(tmp_path):
    text = GOOD.replace("compare:\n  hosts.*.scheme: [host, l2-routed]\n",
                        "sweep:\n  replications: 2\n  grid:\n    hosts.*.scheme: [host, l2-routed]\n"
                        "    flows.0.rate_pps: [1000, 2000, 3000]\n")
    (tmp_path / "sw.yaml").write_text(text)
    line = text.splitlines().index("sweep:") + 1
    r = netns_sim("run", "sw.yaml", "--out", "res", "-q", cwd=tmp_path)
    assert r.returncode == 2 and not (tmp_path / "res").exists()
    assert f"sw.yaml:{line}: sweep:" in r.stderr and "use netns-sim sweep sw.yaml" in r.stderr
    v = netns_sim("validate", "sw.yaml", cwd=tmp_path)
    assert v.returncode == 0, v.stderr
    assert "sweep of 6 point(s) x 2 replication(s) = 12 run(s)" in v.stdout
    (tmp_path / "bad.yaml").write_text(text.replace("[1000, 2000, 3000]", "[1000, -1, 3000]"))
    b = netns_sim("validate", "bad.yaml", cwd=tmp_path)
    assert b.returncode == 2 and "2 of 6 sweep point(s) do not validate" in b.stderr
    assert f"bad.yaml:{line + 4}: flows[0].rate_pps" in b.stderr and "flows.0.rate_pps=-1" in b.stderr


@pytest.mark.slow
def test_help_on_every_subcommand(tmp_path):
    for sub in ([], ["run"], ["validate"], ["schemes"], ["describe"], ["sweep"]):
        r = netns_sim(*sub, "--help", cwd=tmp_path)
        assert r.returncode == 0 and "usage:" in r.stdout


@pytest.mark.slow
def test_schemes_and_describe(tmp_path):
    r = netns_sim("schemes", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    schemes = {s["name"]: s for s in json.loads(r.stdout)}
    assert len(schemes) >= 10
    assert schemes["l2-routed"]["passes"]["wire_to_ns"] == 2 and schemes["host"]["passes"]["wire_to_ns"] == 1
    assert "own_routes" in schemes["l2-routed"]["capabilities"]
    table = netns_sim("schemes", cwd=tmp_path)
    assert table.returncode == 0 and "shortcut-socket" in table.stdout
    d = netns_sim("describe", "l2-routed", cwd=tmp_path)
    assert d.returncode == 0 and "veth_xmit" in d.stdout and "base_ns" in d.stdout
    bad = netns_sim("describe", "l2-routd", cwd=tmp_path)
    assert bad.returncode == 2 and "did you mean 'l2-routed'" in bad.stderr and "Traceback" not in bad.stderr
