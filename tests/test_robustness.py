"""Verdicts with uncertainty (analysis.robustness): the affine model of CPU per packet in the
cost terms reproduces the packets, a claim labelled "depends on X" really flips when a re-run
moves X past the printed flip point (and not just before it), and a claim whose compared paths
are the same by construction is labelled "decided by the scheme's definition".

One shortened run of the default scenario's CPU-claim schemes (10 namespaces, one load, 5 ms)
feeds the tests; the flip test re-runs it twice with a changed profile.  The profile is the
default with the per-poll stage napi_poll at 0 and no range (`_profile_data`): then vnic runs
host's stages by construction (with a poll cost, its per-namespace queues batch less than
host's one queue, a difference of the execution model: tests/test_napi_poll.py), and the
short-cuts' claim has the single-term flip point (ns_switch) these tests exercise."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from analysis import claims, robustness
from analysis.conditions import roles as find_roles
from analysis.conditions import select
from analysis.figures import packet_columns
from sim.core.host import CHILD_ROUTES, ROOT_ROUTES, fib_depth
from sim.core.schemes import builtin_registry
from sim.results.reader import load

pytestmark = pytest.mark.slow            # runs the CLI on scenarios (~20 s in all)

ROOT = Path(__file__).resolve().parent.parent
SCHEMES = ["host", "host-ns-compiled", "l2-routed", "l2-bridged", "shortcut-routing", "shortcut-postrouting",
           "shortcut-socket", "l3-bind", "vnic"]
NS = 10


def _run(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "sim", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    return p


def _profile_data() -> dict:
    """default.yaml with napi_poll at 0 and no range (see the module docstring)."""
    data = yaml.safe_load((ROOT / "sim" / "profiles" / "default.yaml").read_text())
    data["name"] = "default-no-poll"
    data["stages"]["napi_poll"] = {"base_ns": 0.0, "per_byte_ns": 0.0, "per_entry_ns": 0.0,
                                   "source": "0 in these tests (module docstring)"}
    return data


def _scenario(path: Path, profile: Path | None = None) -> Path:
    doc = {"extends": str(ROOT / "scenarios" / "rfc2006-schemes.yaml"), "name": "robustness",
           "run": {"duration_ns": 5.0e6, "warmup_ns": 1.0e6}, "memory_namespace_counts": [1, NS],
           "compare": {"hosts.*.scheme": SCHEMES, "hosts.*.namespaces": [NS],
                       "flows.0.rate_pps": [50000, 400000]}}
    if profile is not None:
        doc["cost_profile"] = str(profile)
    path.write_text(yaml.safe_dump(doc))
    return path


def _built(resdir: Path):
    res = load(resdir)
    roles = find_roles(res.summary, res.factors)
    ref = roles.reference()
    packets = res.packets(columns=packet_columns(res))
    cl, _ = claims.build(res, roles, ref, packets)
    return res, ref, packets, cl


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("robust")
    out = tmp / "res"
    prof = tmp / "default-no-poll.yaml"
    prof.write_text(yaml.safe_dump(_profile_data()))
    _run("run", str(_scenario(tmp / "s.yaml", prof)), "--out", str(out), "--quiet")
    res, ref, packets, cl = _built(out)
    return {"tmp": tmp, "res": res, "ref": ref, "packets": packets, "claims": cl, "dir": out}


def _delivered(run, scheme, trip):
    d = select(run["packets"], run["ref"])
    return d[(d["scheme"] == scheme) & (d["trip"] == trip) & (d["status"].astype(str) == "delivered")]


def test_term_counts_reproduce_the_stage_columns(run):
    """Per scheme and trip, the counts times the run's profile give every stage column's mean and
    the mean CPU per packet; traversals equal what the scheme's plan names, and the FIB lookups'
    entries are the trie depths of `sim.core.host`."""
    res = run["res"]
    prof = robustness.result_profile(res)
    nominal, ranges = robustness.nominal_and_ranges(prof)
    for scheme in SCHEMES:
        for trip in ("wire_to_ns", "ns_to_ns"):
            d = _delivered(run, scheme, trip)
            plan = robustness.plan_counts(res, scheme, trip)
            a = robustness.decompose(d, prof, plan, ranges, robustness.plain_netfilter(res))
            assert a.held == [] and a.held_ns == 0.0, (scheme, trip, a.held)
            cpu = d[claims.stage_columns(d.columns)].fillna(0).sum(axis=1).mean()
            assert a.at(nominal) == pytest.approx(cpu, rel=1e-12), (scheme, trip)
            for stage in prof.stages:
                want = d[f"{stage}_ns"].fillna(0).mean()
                got = sum(a.counts.get((stage, t), 0.0) * nominal[(stage, t)] for t in robustness.TERMS)
                if stage == "bridge":
                    got += a.counts.get(robustness.BR_NF, 0.0) * nominal[robustness.BR_NF]
                assert got == pytest.approx(want, rel=1e-12, abs=1e-9), (scheme, trip, stage)
            for stage, n in plan.items():
                if stage == "bridge+br_nf" or stage.startswith("nf_") or \
                        (stage == "ns_switch" and trip == "ns_to_ns"):
                    continue                      # hooks: only registered ones cost; ns_switch to itself is free
                if not any(nominal[(stage, t)] or (stage, t) in ranges for t in robustness.TERMS):
                    continue                      # costs 0 with no range (vnic_demux): moot, not counted
                assert a.counts[(stage, "base_ns")] == pytest.approx(n), (scheme, trip, stage)
    # route_input of host on wire_to_ns: one lookup in the root's FIB, whose depth the host sets
    a = robustness.decompose(_delivered(run, "host", "wire_to_ns"), prof,
                             robustness.plan_counts(res, "host", "wire_to_ns"), ranges)
    addrs = builtin_registry().get("host").spec.addresses_per_container
    assert a.counts[("route_input", "per_entry_ns")] == pytest.approx(fib_depth(ROOT_ROUTES + NS * addrs))
    a = robustness.decompose(_delivered(run, "l2-routed", "wire_to_ns"), prof,
                             robustness.plan_counts(res, "l2-routed", "wire_to_ns"), ranges)
    l2addrs = builtin_registry().get("l2-routed").spec.addresses_per_container
    assert a.counts[("route_input", "per_entry_ns")] == pytest.approx(
        fib_depth(ROOT_ROUTES + NS * l2addrs) + fib_depth(CHILD_ROUTES))


def _verdict_after(run, name: str, term, value: float):
    """The claims of a re-run of the scenario with a profile: the run's with `term` = `value`."""
    data = _profile_data()
    data["name"] = name

    def merge(node: dict, over: dict) -> None:
        for k, v in over.items():
            if isinstance(v, dict):
                merge(node.setdefault(k, {}), v)
            else:
                node[k] = v
    merge(data, robustness.override_for(term, value))
    prof = run["tmp"] / f"{name}.yaml"
    prof.write_text(yaml.safe_dump(data))
    out = run["tmp"] / f"res-{name}"
    _run("run", str(_scenario(run["tmp"] / f"{name}-s.yaml", prof)), "--out", str(out), "--quiet")
    return _built(out)[3]


def test_a_claim_flips_when_a_rerun_moves_its_cost_past_the_printed_flip_point(run):
    """THE done-when test (issue 13): a claim labelled "depends on X (flips when X crosses v)";
    re-run with X just past v: the verdict has flipped; with X just before v: it has not."""
    dep = [(i, c) for i, c in enumerate(run["claims"]) if c.robustness is not None
           and c.robustness.label == robustness.DEPENDS and c.robustness.flip_term is not None]
    assert dep, [c.robustness_text for c in run["claims"]]
    i, c = dep[0]
    r = c.robustness
    assert robustness.term_name(r.flip_term) in c.robustness_text
    assert robustness.fmt_term_value(r.flip_term, r.flip_value) in c.robustness_text      # the printed v
    lo, hi = robustness.nominal_and_ranges(robustness.result_profile(run["res"]))[1][r.flip_term]
    assert lo <= r.flip_value <= hi
    past, before = (1.03, 0.97) if r.flip_direction == "above" else (0.97, 1.03)
    flipped = _verdict_after(run, "past", r.flip_term, r.flip_value * past)[i]
    kept = _verdict_after(run, "before", r.flip_term, r.flip_value * before)[i]
    assert c.verdict in (claims.SUPPORTED, claims.CONTRADICTED)
    assert flipped.verdict != c.verdict and flipped.verdict in (claims.SUPPORTED, claims.CONTRADICTED)
    assert kept.verdict == c.verdict
    # the re-run just before v: X still flips it alone (now closer, so possibly with more company)
    assert r.flip_term in [kept.robustness.flip_term, *kept.robustness.others]


def test_identical_paths_are_decided_by_definition_not_holds(run):
    """vnic takes host's stages on wire_to_ns (its demux costs 0, no range): claim 6 says its CPU part
    is decided by definition (its p50 part, queueing alone, is re-run: it may still move); and a
    rule comparing two short-cuts that run the same stages is never "holds for every plausible cost"."""
    vn = run["claims"][5]
    assert vn.verdict in (claims.SUPPORTED, claims.CONTRADICTED)
    assert vn.robustness.label in (robustness.DEFINITION, robustness.DEPENDS)
    assert f"{robustness.DEFINITION}: vnic's extra CPU per packet vs host is +0.0%" in vn.robustness_text
    assert robustness.HOLDS not in vn.robustness_text
    costs = claims.Costs(run["res"], run["ref"], run["packets"])
    pair = ("shortcut-routing", "shortcut-postrouting")
    a, b = (costs.affine(s, "wire_to_ns") for s in pair)
    assert a.counts == pytest.approx(b.counts)            # the same stages, by how the schemes are written
    for lim in (0.01, -0.01):                              # whether the rule holds or not: by definition
        r = costs.assess(robustness.CpuRule(
            pair, quantity=lambda c: c[pair[1]] / c[pair[0]] - 1,
            margin=lambda c, lim=lim: lim - abs(c[pair[1]] / c[pair[0]] - 1), threshold=lim, what="difference"),
            "wire_to_ns")
        assert r.label == robustness.DEFINITION and r.text.startswith(robustness.DEFINITION)
    # claim 5's socket tables are made of sizes with no range (exact struct sizes): by definition, and why
    mem = run["claims"][4].robustness
    assert mem.label == robustness.DEFINITION and "which have no range" in mem.text


def test_flip_point_of_a_simple_rule_is_the_closed_form():
    """x's CPU = 1000 ns + t, host's 1000 ns; "within 5%" flips at t = 50 ns."""
    t = ("ns_switch", "base_ns")
    aff = {"host": robustness.Affine({}, 1000.0), "x": robustness.Affine({t: 1.0}, 1000.0)}
    rule = robustness.CpuRule(("host", "x"), quantity=lambda c: c["x"] / c["host"] - 1,
                              margin=lambda c: 0.05 - (c["x"] / c["host"] - 1), threshold=0.05, what="extra")
    r = robustness.assess(rule, aff, {t: 30.0}, {t: (5.0, 100.0)})
    assert r.label == robustness.DEPENDS and r.flip_direction == "above"
    assert r.flip_value == pytest.approx(50.0, abs=1e-6) and "50 ns" in r.text
    r = robustness.assess(rule, aff, {t: 30.0}, {t: (5.0, 45.0)})
    assert r.label == robustness.HOLDS and math.isclose(r.worst, 0.045)
    assert np.isclose(r.bars[0].q_low, 0.005)


def test_report_shows_the_robustness_column_and_the_tornado(run, tmp_path):
    out = tmp_path / "rep" / "r.html"
    _run("report", str(run["dir"]), "--out", str(out))
    text = out.read_text()
    assert "<th>robustness</th>" in text
    md = out.with_suffix(".md").read_text()
    assert "| verdict | robustness |" in md and "Flip point:" in md
    assert robustness.DEFINITION in md and robustness.NO_RANGE not in md    # memory: evaluated (claim 5)
    assert (out.parent / "r_figures" / "claims_tornado.png").is_file()
    assert not (out.parent / "r_figures" / "claims_tornado.svg").exists()      # SVG only with --svg
    assert md.count("claims_tornado.png") == 1


def test_a_held_stage_is_named_and_never_makes_a_claim_by_definition():
    """A difference that sits in a stage the model could not decompose (held at the run's value)
    is not "decided by definition": the label says what was not varied."""
    t = ("ip_rcv", "base_ns")
    aff = {"host": robustness.Affine({t: 1.0}, 0.0),
           "x": robustness.Affine({t: 1.0}, 40.0, ["nf_forward (a registered netfilter hook with rules)"])}
    rule = robustness.CpuRule(("host", "x"), quantity=lambda c: c["x"] - c["host"],
                              margin=lambda c: 100.0 - (c["x"] - c["host"]), threshold=100.0, what="diff",
                              unit="ns")
    r = robustness.assess(rule, aff, {t: 45.0}, {t: (20.0, 100.0)})
    assert r.label == robustness.HOLDS and "nf_forward" in r.text and "not varied" in r.text
