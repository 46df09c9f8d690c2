"""Every file in scenarios/ validates, runs in a shortened form (1 ms simulated per variant) and
reports: plain scenarios with ``netns-sim run``, files with a ``sweep:`` block with ``netns-sim
sweep`` (2 replications instead of the file's); both write one layout that ``report`` reads."""

from pathlib import Path

import browser
import pandas as pd
import pytest

from sim.cli import main
from sim.frontdoor.loader import load, read_document
from sim.sweep.spec import expand_document
from tests.scenarios_for_tests import MODERN

SCENARIOS = sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.yaml"))
SHORT = ["--set", "run.duration_ns=1e6", "--set", "run.warmup_ns=1e5"]
SWEEP_REPS = 2


def test_every_yaml_file_under_scenarios_is_covered():
    root = SCENARIOS[0].parent
    assert sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml")) == SCENARIOS, \
        "scenario files belong at the top of scenarios/, where these tests find them"
    assert {"sweep-load", "sweep-namespaces"} <= {p.stem for p in SCENARIOS if load(p).sweep is not None}


def test_the_four_issue_scenarios_exist():
    assert {"rfc2006-schemes", "hpc-multicast", "density", "datacenter"} <= {p.stem for p in SCENARIOS}


@pytest.mark.slow
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_validates_runs_shortened_and_reports(path, tmp_path, capsys):
    """run (a plain file) or sweep (a file with a sweep: block) write the same layout, and
    report reads it."""
    loaded = load(path)
    assert loaded.document.get("description"), "every scenario says what it is for"
    assert main(["validate", str(path)]) == 0
    out = tmp_path / path.stem
    if loaded.sweep is not None:
        assert main(["run", str(path), "--out", str(out), "--quiet", *SHORT]) == 2, "run refuses a sweep file"
        short = [*SHORT, "--set", f"sweep.replications={SWEEP_REPS}"]
        assert main(["sweep", str(path), "--out", str(out), "--quiet", "--jobs", "2", *short]) == 0
        reps = SWEEP_REPS
    else:
        short = SHORT
        assert main(["run", str(path), "--out", str(out), "--quiet", *short]) == 0
        reps = 1
    exp = expand_document(read_document(path, short[1::2]))
    assert not exp.rejected and exp.spec.replications == reps
    points = pd.read_csv(out / "points.csv")
    assert set(points["run_id"]) == {p.key for p in exp.points}
    sent = points[points.metric == "sent"].groupby("run_id")["value"].sum()
    assert len(sent) == len(exp.points) and (sent > 0).all(), "every variant sends packets"
    # (an overloaded variant may deliver nothing in 1 ms, e.g. l25-hybrid with 1000 classifier rules)
    assert points.loc[points.metric == "delivered", "value"].sum() > 0
    summary = pd.read_csv(out / "summary.csv")
    assert (summary.loc[summary.metric == "sent", "n"] == reps).all()
    capsys.readouterr()
    assert main(["report", str(out)]) == 0, capsys.readouterr().err
    assert (out / "report.html").stat().st_size > 10_000 and (out / "report.md").is_file()
    browser.check(out / "report.html", tmp_path)             # renders offline, no errors, no broken image


def test_rfc2006_covers_every_builtin_scheme_both_trips_and_namespace_counts():
    from sim.core.schemes import builtin_registry
    loaded = load(SCENARIOS[0].parent / "rfc2006-schemes.yaml")
    compare = {f.name: set(f.values) for f in loaded.factors}
    # the 2006 thread's schemes; issue 15's modern ones are scenarios/modern.yaml's
    assert compare["hosts.*.scheme"] == set(builtin_registry().names()) - set(MODERN)
    assert compare["hosts.*.namespaces"] == {100, 10000}       # hundreds, and up to 10,000
    assert len(compare["flows.0.rate_pps"]) >= 6                   # a load curve through saturation (issue 13)
    flows = {f.name: f for f in loaded.variants[0].scenario.flows}
    assert flows["wire_to_ns"].src.endswith(":wire") and flows["ns_to_ns_rr"].kind == "rr"
    assert flows["loopback"].src == flows["loopback"].dst and flows["multicast"].dst.startswith("group:")


def test_modern_covers_every_modern_scheme_and_its_references_on_three_trips():
    loaded = load(SCENARIOS[0].parent / "modern.yaml")
    compare = {f.name: set(f.values) for f in loaded.factors}
    assert compare["hosts.*.scheme"] == set(MODERN) | {"host", "l2-routed", "l2-bridged"}
    trips = {(f.src.endswith(":wire"), f.dst.endswith(":wire")) for f in loaded.variants[0].scenario.flows}
    assert trips == {(True, False), (False, False), (False, True)}
