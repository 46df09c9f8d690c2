"""Issue 13: every claim of the thread is in the default report's claims table, measured (with a
robustness label) or stated as outside the model with the reason; the multicast claim is measured.

One shortened default run (two loads, 10 and 100 namespaces, 2 ms) and the claims built from it;
the rules' flips are checked on synthetic inputs where that is cheap."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from analysis import claims
from analysis.conditions import roles as find_roles
from analysis.figures import packet_columns
from sim.results.reader import load

pytestmark = pytest.mark.slow            # one shortened run of the default scenario

ROOT = Path(__file__).resolve().parent.parent

# issue 13's list -> a word that the claim's text must contain
ISSUE_CLAIMS = {
    "double input path of full separation": "input again",
    "short-cut at routing vs at post-routing": "post-routing hook",
    "socket-lookup switching, shared hashes, permutation": "socket lookup, with shared socket hashes",
    "layer 2.5 for application containers and multicast": "Layer 2.5",
    "layer-3 bind isolation": "Layer-3 bind",
    "VNIC demultiplexing": "VNIC",
    "memory per namespace and the hash-table trade-off": "waste memory",
    "scaling to hundreds and thousands of containers": "hundreds and thousands",
    "compiled-in-but-unused overhead": "compiled in, unused",
    "per-namespace loopback": "own loopback",
    "migration with the container's IP": "migrate",
    "asynchronous namespace switch": "asynchronous",
    "multicast for application containers": "multicast",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("coverage")
    scen = tmp / "s.yaml"
    scen.write_text(yaml.safe_dump({
        "extends": str(ROOT / "scenarios" / "rfc2006-schemes.yaml"), "name": "coverage",
        "run": {"duration_ns": 2.0e6, "warmup_ns": 5.0e5}, "memory_namespace_counts": [100, 10000],
        "compare": {"flows.0.rate_pps": [50000, 500000], "hosts.*.namespaces": [10, 100]}}))
    out = tmp / "res"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "sim", "run", str(scen), "--out", str(out), "--quiet"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    res = load(out)
    roles = find_roles(res.summary, res.factors)
    ref = roles.reference()
    packets = res.packets(columns=packet_columns(res))
    cl, ev = claims.build(res, roles, ref, packets)
    return {"res": res, "roles": roles, "ref": ref, "packets": packets, "claims": cl, "evidence": ev}


def test_every_claim_of_the_issue_is_in_the_table_with_a_label_or_outside_the_model(built):
    cl = built["claims"]
    for item, word in ISSUE_CLAIMS.items():
        hits = [c for c in cl if word.lower() in c.claim.lower()]
        assert hits, item
    for c in cl:
        assert c.verdict != claims.NOT_MEASURED, c.claim           # the default scenario measures them all
        if c.verdict.startswith(claims.OUTSIDE):
            assert len(c.verdict) > len(claims.OUTSIDE) + 20 and c.verdict[len(claims.OUTSIDE)] == ":", c.verdict
        else:
            assert c.verdict in (claims.SUPPORTED, claims.CONTRADICTED)
            assert c.robustness is not None and c.robustness_text not in ("", "—"), c.claim


def test_the_multicast_claim_is_measured(built):
    mc = next(c for c in built["claims"] if "multicast" in c.claim.lower() and "2 IPs" in c.claim)
    assert mc.verdict in (claims.SUPPORTED, claims.CONTRADICTED)
    assert "multicast fan-out" in mc.figure and "CPU per delivered copy" in mc.figure


def test_switch_point_rule_follows_the_plans():
    """shortcut-routing runs nf_local_in in the container's namespace, shortcut-postrouting does not."""
    from sim.core.schemes import builtin_registry
    reg = builtin_registry()
    spec = {n: reg.get(n).spec.model_dump() for n in ("shortcut-routing", "shortcut-postrouting", "l2-routed")}
    assert claims.child_chains(spec["shortcut-routing"], "wire_to_ns") == ["nf_local_in"]
    assert claims.child_chains(spec["shortcut-postrouting"], "wire_to_ns") == []
    assert "nf_local_in" in claims.child_chains(spec["l2-routed"], "wire_to_ns")
    # a synthetic plan that switches after its LOCAL_IN hook: no chain of the container's
    fake = {"trips": {"wire_to_ns": [{"ns": "root", "stages": ["nf_local_in", "ns_switch:dst", "socket_lookup"]}]}}
    assert claims.child_chains(fake, "wire_to_ns") == []


def test_scaling_rule_flips_when_a_scheme_grows(built):
    """The scaling claim is contradicted exactly when some scheme's CPU per packet grows past the threshold:
    with the threshold raised above every growth it is supported."""
    sc = next(c for c in built["claims"] if "hundreds and thousands" in c.claim)
    grew = "growing more than" in sc.figure
    assert sc.verdict == (claims.CONTRADICTED if grew else claims.SUPPORTED)
    old = claims.RULES["scaling_cpu"]
    try:
        claims.RULES["scaling_cpu"] = 1e9
        b = built
        again = claims.build(b["res"], b["roles"], b["ref"], b["packets"])[0]
        assert next(c for c in again if "hundreds and thousands" in c.claim).verdict == claims.SUPPORTED
        claims.RULES["scaling_cpu"] = -1.0
        again = claims.build(b["res"], b["roles"], b["ref"], b["packets"])[0]
        assert next(c for c in again if "hundreds and thousands" in c.claim).verdict == claims.CONTRADICTED
    finally:
        claims.RULES["scaling_cpu"] = old
