"""Netfilter per namespace and hook, br_netfilter, conntrack and policy as a result (issue 11).

Invariants, not one run's numbers: per pass, no hook registered < a registered empty chain <
N rules (and the difference is the profile's terms); br_netfilter makes bridged frames pay the
root's FORWARD rules; conntrack charges the first packet of a connection the creation and
every other its lookup, once per namespace with conntrack it crosses; the policy metrics say
which declared rules a trip skipped; the records keep it per pass, not per packet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sim.api as ns
from sim.core.costs import load_profile
from sim.core.model import Model
from sim.core.netfilter import SIDES, br_netfilter_trips, policy_bit, registered_hooks
from sim.core.nscodes import WIRE_NS
from sim.core.packet import Packet
from sim.core.records import ROW
from sim.core.schemes import builtin_registry
from sim.core.simulate import simulate
from sim.core.stages import NF_CHAINS, STAGE_NAMES
from sim.frontdoor.scenario import Scenario
from tests.scenarios_for_tests import SCHEMES, delivered, one_host

ROOT = Path(__file__).resolve().parent.parent
COST = load_profile("default")
NF = COST.netfilter
REG = builtin_registry()
NF_STAGES = [f"{s}_ns" for s in STAGE_NAMES if s.startswith("nf_")]
ALL_RULES = {c: 10 for c in NF_CHAINS}


class _Flow:
    class spec:
        connections = 1


def pass_totals(scheme: str, trip: str, **host) -> list[float]:
    """Total ns of every pass of `trip` on a one-host model of `scheme` with `host` options, for
    a 64-byte packet from container 0 (or the wire) to container 1 (or the wire)."""
    sc = Scenario.model_validate(one_host(scheme, namespaces=2, duration_ns=1e6, **host))
    h = Model(sc).hosts[0]
    src = WIRE_NS if trip.startswith("wire") else 0
    dst = WIRE_NS if trip.endswith("wire") else 1
    pkt = Packet(0, 0, 1, 0, 0, src, 0, dst, 0, 64, 0.0, _Flow())
    return [h.pass_cost(p, pkt)[1] for p in h.trip_plans[trip]]


def crossed_hooks(scheme: str, trip: str) -> list[list[str]]:
    return [[STAGE_NAMES[st.index] for st in p.stages if STAGE_NAMES[st.index].startswith("nf_")]
            for p in REG.get(scheme).trips[trip]]


# -- the three states ----------------------------------------------------------------

@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("trip", ["wire_to_ns", "ns_to_wire", "ns_to_ns"])
def test_no_hook_costs_less_than_an_empty_chain_which_costs_less_than_rules_per_pass(scheme, trip):
    own = REG.get(scheme).spec.capabilities.own_netfilter
    groups = ("root", "child") if own else ("root",)
    none = pass_totals(scheme, trip, nf_hooks=dict.fromkeys(groups, "none"), br_netfilter=False)
    empty = pass_totals(scheme, trip, nf_hooks=dict.fromkeys(groups, "all"), br_netfilter=False)
    rules = pass_totals(scheme, trip, nf_rules=dict.fromkeys(groups, ALL_RULES), br_netfilter=False)
    declared_empty = pass_totals(scheme, trip, nf_rules=dict.fromkeys(groups, dict.fromkeys(NF_CHAINS, 0)),
                                 br_netfilter=False)
    assert pass_totals(scheme, trip, br_netfilter=False) == none     # the default: nothing declared, no hook
    assert declared_empty == empty               # a chain declared with 0 rules is registered and empty
    for k, hooks in enumerate(crossed_hooks(scheme, trip)):
        if not hooks:
            assert none[k] == empty[k] == rules[k]
            continue
        assert none[k] < empty[k] < rules[k], (scheme, trip, k)
        # the difference is exactly the profile's terms: a base per hook, a per-rule term per rule
        assert empty[k] - none[k] == pytest.approx(sum(COST.stages[h].base_ns for h in hooks))
        assert rules[k] - empty[k] == pytest.approx(sum(10 * COST.stages[h].per_entry_ns for h in hooks))


def test_more_rules_cost_more_and_legacy_costs_its_extra_per_hook_and_rule():
    costs = [sum(pass_totals("l2-routed", "wire_to_ns", nf_rules={"root": {"forward": n}})) for n in (0, 10, 100)]
    assert costs[0] < costs[1] < costs[2]
    nft = sum(pass_totals("l2-routed", "wire_to_ns", nf_rules={"root": {"forward": 100}}))
    legacy = sum(pass_totals("l2-routed", "wire_to_ns", nf_rules={"root": {"forward": 100}},
                             nf_backend="iptables-legacy"))
    # legacy's filter table registers INPUT, FORWARD and OUTPUT: only FORWARD is on this path
    extra = NF.backends["iptables-legacy"]
    assert legacy - nft == pytest.approx(extra.base_ns + 100 * extra.per_entry_ns)


def test_a_table_registers_its_hooks_by_backend():
    assert registered_hooks("declared", {"forward": 5}, "nftables", False) == {"forward"}
    assert registered_hooks("declared", {"forward": 5}, "iptables-legacy", False) == {"input", "forward", "output"}
    assert registered_hooks("declared", {"prerouting": 1}, "iptables-legacy", False) == set(NF_CHAINS)
    assert registered_hooks("declared", {}, "nftables", True) == {"prerouting", "input", "output", "postrouting"}
    assert registered_hooks("declared", {}, "nftables", False, br_prerouting=True) == {"prerouting"}
    assert registered_hooks("none", {}, "nftables", False) == set()
    assert registered_hooks("all", {}, "nftables", False) == set(NF_CHAINS)
    # legacy: the locally delivered packet now pays INPUT's empty chain the filter table brought
    host = dict(nf_rules={"root": {"forward": 5}})
    nft = pass_totals("host", "wire_to_ns", **host)
    legacy = pass_totals("host", "wire_to_ns", nf_backend="iptables-legacy", **host)
    input_base = COST.stages["nf_local_in"].base_ns + NF.backends["iptables-legacy"].base_ns
    assert legacy[0] - nft[0] == pytest.approx(input_base)


# -- br_netfilter ----------------------------------------------------------------------

def _bridged(br: bool, rules: int, flows=None) -> "object":
    flows = flows or [{"name": "in", "kind": "constant", "src": "h1:wire", "dst": "h1:ns0", "rate_pps": 10_000},
                      {"name": "nn", "kind": "constant", "src": "h1:ns0", "dst": "h1:ns1", "rate_pps": 10_000}]
    return delivered(simulate(one_host("l2-bridged", namespaces=2, flows=flows, duration_ns=1e6, br_netfilter=br,
                                       nf_rules={"root": {"forward": rules}})).packets)


def cpu(d) -> float:
    """Mean CPU ns per packet: the sum of its stage columns."""
    return float(d[[f"{s}_ns" for s in STAGE_NAMES]].sum(axis=1).mean())


def test_br_netfilter_makes_bridged_traffic_pay_the_roots_forward_rules():
    forward = COST.stages["nf_forward"]
    for flow in ("in", "nn"):
        on = {n: _bridged(True, n) for n in (0, 100)}
        off = {n: _bridged(False, n) for n in (0, 100)}
        on = {n: d[d.flow == flow] for n, d in on.items()}
        off = {n: d[d.flow == flow] for n, d in off.items()}
        assert (on[100].nf_forward_ns == forward.base_ns + 100 * forward.per_entry_ns).all()
        assert (off[100].nf_forward_ns == 0).all() and (off[0].nf_forward_ns == 0).all()
        # the rules add their cost to the bridged packet's CPU with br_netfilter only (0 rules
        # declared: the chain is registered and empty, so its base is paid either way)
        assert (on[0].nf_forward_ns == forward.base_ns).all()
        assert cpu(on[100]) - cpu(on[0]) == pytest.approx(100 * forward.per_entry_ns)
        assert cpu(off[100]) == pytest.approx(cpu(off[0]))
        # br_netfilter's own work sits in the bridge stage
        assert on[0].bridge_ns.mean() - off[0].bridge_ns.mean() == pytest.approx(NF.br_netfilter.base_ns)


def test_br_netfilter_rewrites_only_frames_from_a_port():
    trips = br_netfilter_trips(REG.get("l2-bridged"))
    names = {t: [[STAGE_NAMES[s.index] for s in p.stages] for p in ps] for t, ps in trips.items()}
    assert names["wire_to_ns"][0][:6] == ["nic_rx", "l2_demux", "bridge", "nf_prerouting", "nf_forward",
                                          "nf_postrouting"]
    assert names["ns_to_ns"][1] == ["l2_demux", "bridge", "nf_prerouting", "nf_forward", "nf_postrouting",
                                    "dev_xmit", "veth_xmit"]
    # up to br0: PREROUTING once (ip_sabotage_in skips the second), no FORWARD
    assert names["wire_to_root"][0].count("nf_prerouting") == 1 and "nf_forward" not in names["wire_to_root"][0]
    # the root's own frames through br0 are not bridged-in frames: unchanged
    assert names["root_to_wire"] == [[STAGE_NAMES[s.index] for s in p.stages]
                                     for p in REG.get("l2-bridged").trips["root_to_wire"]]
    assert br_netfilter_trips(REG.get("l2-routed")) is None and br_netfilter_trips(REG.get("vnic")) is None


# -- conntrack ------------------------------------------------------------------------

CT_HOOKS = ["nf_prerouting_ns", "nf_local_out_ns"]


def _ct_run(conntrack: dict, connections: int, scheme="l2-routed", kind="constant"):
    flow = {"name": "f", "kind": kind, "src": "h1:ns0", "dst": "h1:ns1", "connections": connections}
    if kind != "rr":
        flow["rate_pps"] = 20_000
    res = simulate(one_host(scheme, namespaces=2, flows=[flow], duration_ns=2e6, conntrack=conntrack))
    return res, delivered(res.packets).sort_values("seq")


@pytest.mark.parametrize("scheme", ["l2-routed", "l2-bridged", "vnic", "host"])
def test_conntrack_creates_on_the_first_packet_of_a_connection_and_looks_up_on_the_rest(scheme):
    own = REG.get(scheme).spec.capabilities.own_netfilter
    on = {"root": True, "child": True} if own else {"root": True}
    _, base = _ct_run({}, 3, scheme)
    res, ct = _ct_run(on, 3, scheme)
    extra = ct[NF_STAGES].sum(axis=1).to_numpy() - base[NF_STAGES].sum(axis=1).to_numpy()
    # the namespaces with conntrack whose PREROUTING or LOCAL_OUT the path crosses (a namespace
    # crossed twice, as the root over its own loopback, creates its entry once)
    host = res.model.hosts[0]
    uids = {p.uid for p in host.trip_plans["ns_to_ns"]}
    n_sites = len({ns for k, v in host._sites.items() if k[0] in uids for ns in v})
    assert n_sites >= 1
    first, rest = extra[:3], extra[3:]
    assert len(rest) > 10
    assert np.allclose(rest, rest[0]) and np.allclose(first, first[0])
    assert first[0] - rest[0] == pytest.approx(n_sites * NF.conntrack_create.base_ns)
    lookups = ct[CT_HOOKS].sum(axis=1).to_numpy()[3:] - base[CT_HOOKS].sum(axis=1).to_numpy()[3:]
    assert (lookups >= n_sites * NF.conntrack_lookup.base_ns - 1e-9).all()
    summary = res.summary
    assert summary[summary.metric == "conntrack_entries"].value.item() == 3 * n_sites


def test_the_reply_belongs_to_its_connection_and_each_connection_is_tracked_once():
    res, ct = _ct_run({"root": True, "child": True}, 2, kind="rr")
    req, rsp = ct[ct.direction == "request"], ct[ct.direction == "response"]
    create = NF.conntrack_create.base_ns
    # transactions 1 and 2 open the two connections (one per source port) in src, root and dst
    assert (req[req.seq <= 2].nf_prerouting_ns + req[req.seq <= 2].nf_local_out_ns >= 3 * create).all()
    assert (req[req.seq > 2].nf_prerouting_ns + req[req.seq > 2].nf_local_out_ns < create).all()
    assert (rsp.nf_prerouting_ns + rsp.nf_local_out_ns < create).all()     # a reply creates nothing
    mem = res.summary.set_index("metric").value
    assert mem["conntrack_entries"] == 2 * 3
    b = COST.memory_bytes
    assert mem["conntrack_bytes"] == b.conntrack_hash_buckets * b.socket_hash_bucket + 6 * b.conntrack_entry


# -- policy as a result -----------------------------------------------------------------

def test_policy_bits_are_kept_per_pass_not_per_packet():
    assert ROW.size == 61                       # no byte per row for the policy
    d = delivered(simulate(one_host("l2-routed", namespaces=2, flows=[
        {"kind": "constant", "src": "h1:ns0", "dst": "h1:ns1", "rate_pps": 10_000}], duration_ns=1e6)).packets)
    want = 0
    for side, chains in (("src", ("output", "postrouting")), ("src_root", ("prerouting", "forward", "postrouting")),
                         ("dst", ("prerouting", "input"))):
        for c in chains:
            want |= policy_bit(SIDES.index(side), NF_CHAINS.index(c))
    assert (d.nf_chains == want).all()


def policy(scheme, br=True, rules=None, flows=None, namespaces=4):
    flows = flows or [{"name": "in", "kind": "constant", "src": "h1:wire", "dst": "h1:ns*", "rate_pps": 20_000},
                      {"name": "nn", "kind": "constant", "src": "h1:ns0", "dst": "h1:ns1", "rate_pps": 20_000}]
    s = simulate(one_host(scheme, namespaces=namespaces, flows=flows, duration_ns=1e6, br_netfilter=br,
                          nf_rules=rules or {"root": {"forward": 100}})).summary
    return s[s.metric.str.startswith("policy_")].pivot_table(index="trip", columns="metric", values="value",
                                                              observed=True)


def test_the_root_forward_rules_are_bypassed_exactly_where_the_path_skips_the_forward_hook():
    for scheme, br, skipped in (("l2-routed", True, 0), ("l2-bridged", True, 0), ("l2-bridged", False, 100),
                                ("vnic", True, 100), ("shortcut-routing", True, 100), ("host", True, 100)):
        p = policy(scheme, br)
        for trip in ("wire_to_ns", "ns_to_ns"):
            assert p.loc[trip, "policy_declared"] == 100, (scheme, trip)
            assert p.loc[trip, "policy_bypassed"] == skipped, (scheme, br, trip)
            assert p.loc[trip, "policy_bypassed_root_forward"] == skipped


def test_rules_that_do_not_apply_to_a_packet_are_not_counted_and_met_ones_are():
    # a container's INPUT rules apply to what it receives, not to what it sends
    p = policy("l2-routed", rules={"child": {"input": 5, "output": 3}})
    assert p.loc["ns_to_ns", "policy_declared"] == 5 + 3 and p.loc["ns_to_ns", "policy_bypassed"] == 0
    assert p.loc["wire_to_ns", "policy_declared"] == 5
    # the root's INPUT applies to a root end, and is met wherever the path crosses it
    p = policy("shortcut-postrouting", rules={"root": {"input": 7}})
    assert p.loc["wire_to_ns", "policy_declared"] == 7 and p.loc["wire_to_ns", "policy_bypassed"] == 0
    p = policy("l2-routed", rules={"root": {"input": 7}})
    assert p.loc["wire_to_ns", "policy_declared"] == 0            # a transit root: INPUT does not apply


def test_policy_bypass_scenario_shows_bridged_without_br_netfilter_and_vnic_skipping_the_root_rules(tmp_path):
    # the case (500 containers, 100 rules in the root's FORWARD chain), fewer schemes
    short = tmp_path / "short.yaml"
    short.write_text(f"extends: {ROOT / 'scenarios' / 'policy-bypass.yaml'}\n"
                     "run: {duration_ns: 1.0e6, warmup_ns: 1.0e5}\n"
                     "compare: {hosts.*.scheme: [l2-routed, l2-bridged, vnic], flows.0.rate_pps: [200000]}\n")
    res = ns.run(str(short), out=tmp_path / "pb")
    assert set(res.summary["hosts.*.scheme"].dropna()) == {"l2-routed", "l2-bridged", "vnic"}
    assert set(res.memory["namespaces"]) == {500}
    s = res.summary
    s = s[(s.metric == "policy_bypassed") & (s.trip == "wire_to_ns")]
    got = {(r["scheme"], bool(r["hosts.*.br_netfilter"])): r["value"] for _, r in s.iterrows()}
    assert got == {("l2-routed", True): 0, ("l2-routed", False): 0, ("l2-bridged", True): 0,
                   ("l2-bridged", False): 100, ("vnic", True): 100, ("vnic", False): 100}
    from analysis import report
    html, md = report.write(tmp_path / "pb")
    text = Path(md).read_text()
    assert "policy bypassed" in text and "bypasses 100 of 100: root FORWARD 100" in text and "meets all 100" in text
