"""Declared stages (issue 11, docs/stages.md): a scenario's (or a profile's) ``stages:`` block
adds stages that user schemes run; each gets a ``<stage>_ns`` column in packets.parquet equal
to its declared cost per traversal, and lands in its group of the report's breakdown."""

from pathlib import Path

import pyarrow.dataset as pads
import pytest
import yaml

from analysis import stages as astages
from sim.cli import main
from sim.core.costs import PROFILE_DIR, CostProfile, load_profile
from sim.core.stages import GROUPS, STAGE_NAMES, STAGES
from sim.frontdoor.loader import load
from sim.results.reader import load as load_results

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "declared-stage.yaml"


def _packets(out: Path):
    return pads.dataset(out / "packets", partitioning="hive").to_table().to_pandas()


def _run(tmp_path: Path, name: str, *extra: str) -> Path:
    out = tmp_path / name
    assert main(["run", str(SCENARIO), "--out", str(out), "--quiet", *extra]) == 0
    return out


def test_declared_stage_column_is_its_cost_per_traversal_and_in_the_report(tmp_path, capsys):
    out = _run(tmp_path, "base")
    p = _packets(out)
    assert "tc_policy_ns" in p.columns
    d = p[p.status.astype(str) == "delivered"]
    tc, plain = d[d.scheme.astype(str) == "l3-bind-tc"], d[d.scheme.astype(str) == "l3-bind"]
    assert len(tc) > 10 and len(plain) > 10
    assert (tc.tc_policy_ns == 40.0).all()                    # one traversal per wire_to_ns packet
    assert (plain.tc_policy_ns == 0.0).all()
    # the stage is part of the latency: the stage columns still add up
    stage_cols = [f"{s}_ns" for s in STAGE_NAMES] + ["tc_policy_ns"]
    parts = d[stage_cols].sum(axis=1) + d.wire_ns + d.link_queue_ns + d.queue_ns
    assert (abs(parts - d.latency_ns) < 1e-6 * d.latency_ns.abs().max()).all()
    # the report's breakdown has it in its group, BPF programs
    res = load_results(out)
    assert astages.declared_groups(res) == {"tc_policy": "bpf"}
    b = astages.breakdown(res.packets(), ["scheme"], astages.declared_groups(res)).set_index("scheme")
    assert b.loc["l3-bind-tc", "BPF programs"] == pytest.approx(40.0)
    assert b.loc["l3-bind", "BPF programs"] == 0.0
    assert b.loc["l3-bind-tc", "cpu_ns"] - b.loc["l3-bind", "cpu_ns"] == pytest.approx(40.0)
    assert main(["report", str(out)]) == 0
    md = (out / "report.md").read_text()
    lines = md.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("| scheme | passes |"))   # stages-wire_to_ns
    assert "BPF programs (ns)" in lines[at]
    cells = [c.strip() for c in lines[at].split("|")]
    row = next(line for line in lines[at:] if line.startswith("| l3-bind-tc |"))
    assert [c.strip() for c in row.split("|")][cells.index("BPF programs (ns)")] == "40.0"


def test_declared_per_byte_term_and_override(tmp_path, capsys):
    out = _run(tmp_path, "per-byte", "--set", "stages.tc_policy.per_byte_ns=0.5",
               "--set", "cost_overrides.stages.tc_policy.base_ns=10")
    d = _packets(out)
    tc = d[(d.scheme.astype(str) == "l3-bind-tc") & (d.status.astype(str) == "delivered")]
    assert len(tc) and (tc.tc_policy_ns == 10.0 + 0.5 * tc.size_bytes).all()


def test_a_profile_declares_a_stage_too(tmp_path, capsys):
    prof = yaml.safe_load((PROFILE_DIR / "default.yaml").read_text())
    prof["name"] = "with-tc"
    prof["stages"]["tc_policy"] = {"base_ns": 25.0, "group": "bpf"}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(prof))
    assert load_profile(str(tmp_path / "p.yaml")).stage_set.declared == {"tc_policy": "bpf"}
    doc = yaml.safe_load(SCENARIO.read_text())
    del doc["stages"]
    doc["cost_profile"] = str(tmp_path / "p.yaml")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "s.yaml"), "--out", str(out), "--quiet"]) == 0
    d = _packets(out)
    tc = d[(d.scheme.astype(str) == "l3-bind-tc") & (d.status.astype(str) == "delivered")]
    assert len(tc) and (tc.tc_policy_ns == 25.0).all()
    assert astages.declared_groups(load_results(out)) == {"tc_policy": "bpf"}
    # the scenario may not declare it again: the profile already has it
    doc["stages"] = {"tc_policy": {"base_ns": 1, "group": "bpf"}}
    (tmp_path / "s2.yaml").write_text(yaml.safe_dump(doc))
    assert main(["validate", str(tmp_path / "s2.yaml")]) == 2
    assert "cost_overrides.stages.tc_policy" in capsys.readouterr().err


def test_a_profile_stage_without_a_group_is_refused():
    data = load_profile("default").model_dump()
    data["stages"]["tc_policy"] = {"base_ns": 1.0}
    with pytest.raises(ValueError, match="give it a group"):
        CostProfile.model_validate(data)
    data["stages"]["tc_policy"] = {"base_ns": 1.0, "group": "nope"}
    with pytest.raises(ValueError, match="unknown group 'nope'"):
        CostProfile.model_validate(data)


def test_every_stage_of_a_run_is_in_exactly_one_report_group():
    # built-ins: each names a known group, and analysis folds it into exactly that one
    assert all(s.group in GROUPS for s in STAGES)
    in_groups = [s for g in astages.GROUPS.values() for s in g]
    assert sorted(in_groups) == sorted(STAGE_NAMES)
    # a run's columns, declared stages included, and a stage column no list knows
    profile = load_profile("default").with_stages(load(SCENARIO).variants[0].scenario.stages)
    cols = [*profile.stage_set.columns, "mystery_ns", "latency_ns", "wire_ns", "pass1_queue_ns"]
    groups = astages.stage_groups(cols, profile.stage_set.declared)
    placed = [c for g in groups.values() for c in g]
    assert sorted(placed) == sorted([*profile.stage_set.columns, "mystery_ns"])
    assert "tc_policy_ns" in groups["BPF programs"] and "mystery_ns" in groups["other stages"]
    assert set(groups) == set(astages.CPU_GROUPS)
