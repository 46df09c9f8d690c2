"""Mixed hosts (issue 11, per-namespace scheme): containers of different schemes on one host.

Behaviour, not one run's numbers: a cross-scheme packet runs the kernel path where the two
halves meet at the root's routing decision (written out here from the kernel functions, not
taken from the code); an unloaded packet's latency is the sum of its stages' costs from the
profile; same-scheme flows on a mixed host are exactly as on a pure host; the root's FORWARD
rules are paid only when the root forwards; every packet one record; memory is the sum of the
groups; bad mixed hosts are refused with the place and the fix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from sim.cli import main
from sim.core.costs import load_profile
from sim.core.memory import memory_rows
from sim.core.mixing import cross_trip
from sim.core.schemes import builtin_registry
from sim.core.simulate import simulate
from sim.core.sockets import table_config
from sim.core.stages import STAGE_NAMES
from sim.frontdoor.scenario import HostSpec
from tests.scenarios_for_tests import SCHEMES, delivered

REG = builtin_registry()
COST = load_profile("default")
# ns0-1 l2-bridged, ns2-3 l3-bind, ns4-5 l2-routed, ns6-7 vnic, ns8-9 shortcut-routing
FIVE = [{"scheme": s, "namespaces": 2} for s in ("l2-bridged", "l3-bind", "l2-routed", "vnic", "shortcut-routing")]
FIRST = {"l2-bridged": 0, "l3-bind": 2, "l2-routed": 4, "vnic": 6, "shortcut-routing": 8}

VETH_OUT = ("process", "src", ["socket_send", "route_output", "nf_local_out", "ip_output", "nf_postrouting",
                               "dev_xmit", "veth_xmit"])
VETH_IN = ("backlog", "dst", ["l2_demux", "ip_rcv", "nf_prerouting", "route_input", "nf_local_in",
                              "socket_lookup", "socket_enqueue"])
# The kernel paths (docs/mixed-hosts.md): (queue, namespace the pass starts in, stages)
KERNEL_PATHS = {
    # veth_xmit -> netif_rx; br_handle_frame -> br_pass_frame_up (to the gateway on br0) ->
    # ip_rcv -> route_input: local -> ip_local_deliver, the root's own socket table
    ("l2-bridged", "l3-bind"): [
        VETH_OUT,
        ("backlog", "root", ["l2_demux", "bridge", "l2_another_round", "ip_rcv", "nf_prerouting", "route_input",
                             "nf_local_in", "socket_lookup", "socket_enqueue"])],
    # the root's socket: route_output to br0 -> ip_local_out -> br_dev_xmit -> port -> veth_xmit
    ("l3-bind", "l2-bridged"): [
        ("process", "root", ["socket_send", "route_output", "nf_local_out", "ip_output", "nf_postrouting",
                             "dev_xmit", "bridge", "dev_xmit", "veth_xmit"]),
        VETH_IN],
    # into the root by the veth, route_input -> ip_forward (FORWARD hook) -> out to br0's port
    ("l2-routed", "l2-bridged"): [
        VETH_OUT,
        ("backlog", "root", ["l2_demux", "ip_rcv", "nf_prerouting", "route_input", "nf_forward", "ip_forward",
                             "ip_output", "nf_postrouting", "dev_xmit", "bridge", "dev_xmit", "veth_xmit"]),
        VETH_IN],
    # out of its VNIC, the NIC turns it into the root's VNIC queue, forwarded to the veth
    ("vnic", "l2-routed"): [
        ("process", "src", ["socket_send", "route_output", "nf_local_out", "ip_output", "nf_postrouting",
                            "dev_xmit", "nic_tx"]),
        ("nic_rx", "root", ["vnic_demux", "nic_rx", "l2_demux", "ip_rcv", "nf_prerouting", "route_input",
                            "nf_forward", "ip_forward", "ip_output", "nf_postrouting", "dev_xmit", "veth_xmit"]),
        VETH_IN],
    # the container's LOCAL_OUT, switch to root, route_output: local -> over lo (no second
    # LOCAL_OUT), in from the backlog without route_input (the output route is kept)
    ("shortcut-routing", "l3-bind"): [
        ("process", "src", ["socket_send", "nf_local_out", "ns_switch", "route_output", "ip_output",
                            "nf_postrouting", "dev_xmit"]),
        ("backlog", "root", ["l2_demux", "ip_rcv", "nf_prerouting", "nf_local_in", "socket_lookup",
                             "socket_enqueue"])],
}


def mixed(groups, flows, duration_ns=2e6, seed=1, scheme="l3-bind", **host):
    return {"hosts": [dict(name="h1", scheme=scheme, namespace_schemes=groups, **{"cores": 1, **host})],
            "flows": list(flows), "run": {"duration_ns": duration_ns, "seed": seed}}


def flow(name, a, b, rate_pps=2000, kind="constant"):
    return {"name": name, "kind": kind, "src": f"h1:{a}", "dst": f"h1:{b}", "rate_pps": rate_pps}


def shape(passes):
    return [(p.queue, p.role, [STAGE_NAMES[s.index] for s in p.stages]) for p in passes]


@pytest.mark.parametrize("pair", list(KERNEL_PATHS), ids=lambda p: ">".join(p))
def test_a_cross_scheme_trip_is_the_kernel_path_through_the_root(pair):
    assert shape(cross_trip(REG, *pair)[1]) == KERNEL_PATHS[pair]


def test_every_built_in_pair_composes_with_a_process_first_pass_and_one_decision():
    for a in SCHEMES:
        for b in SCHEMES:
            if a == b:
                continue
            passes = shape(cross_trip(REG, a, b)[1])
            names = [n for _, _, st in passes for n in st]
            assert passes[0][0] == "process" and names[0] == "socket_send" and names[-1] == "socket_enqueue"
            assert names.count("route_input") + names.count("route_output") >= 1, (a, b)
            assert ("ip_forward" in names) == (REG.get(a).spec.via_root.decision == "input"
                                               and REG.get(b).spec.via_root.by == "device"), (a, b)


# one distinct base cost per stage, nothing per byte or entry; no netfilter hook registered
# (without br_netfilter, which registers the root's PREROUTING); nothing per NAPI poll (a
# stage no pass lists: tests/test_napi_poll.py)
FLAT = {s: {"base_ns": 0.0 if s == "napi_poll" else 100.0 + 7 * i, "per_byte_ns": 0.0, "per_entry_ns": 0.0}
        for i, s in enumerate(STAGE_NAMES)}


def test_an_unloaded_cross_scheme_packet_takes_the_sum_of_its_stage_costs():
    flows = [flow(">".join(p), f"ns{FIRST[p[0]]}", f"ns{FIRST[p[1]] + 1}", rate_pps=1000) for p in KERNEL_PATHS]
    for i, f in enumerate(flows):
        f["start_ns"] = i * 1.9e5               # one packet at a time on the host: no queueing
        f["rate_pps"] = 1000
    sc = mixed(FIVE, flows, duration_ns=1e7, br_netfilter=False)     # br_netfilter: tests/test_netfilter.py
    sc["cost_overrides"] = {"stages": FLAT, "host": {"tx_completion_ns": 0.0}}
    d = delivered(simulate(sc).packets)
    for pair, path in KERNEL_PATHS.items():
        rows = d[d.flow.astype(str) == ">".join(pair)]
        nf = [n for _, _, st in path for n in st if not n.startswith("nf_")]   # nf_*: no hook, free
        expected = sum(FLAT[n]["base_ns"] for n in nf)
        assert len(rows) >= 5, pair
        assert set(rows.scheme.astype(str)) == {">".join(pair)} and set(rows.trip.astype(str)) == {"ns_to_ns"}
        assert (rows.n_passes == len(path)).all(), pair
        assert rows.latency_ns.to_numpy() == pytest.approx(expected), pair


def test_same_scheme_flows_on_a_mixed_host_are_exactly_as_on_a_pure_host_of_the_group():
    """A group of N containers of scheme S runs its own flows as a pure S host of N containers
    (its socket tables hold the group's sockets; namespace k of the group is ns k there) —
    without br_netfilter, whose hook in the root's PREROUTING (there for the bridged group)
    every packet of the root's stack pays, l3-bind's too (checked below)."""
    both = [{"scheme": "l2-bridged", "namespaces": 10}, {"scheme": "l3-bind", "namespaces": 90}]
    for scheme, count, (a, b) in (("l2-bridged", 10, (0, 1)), ("l3-bind", 90, (2, 3))):
        offset = 0 if scheme == "l2-bridged" else 10
        mf = [flow("f", f"ns{a + offset}", f"ns{b + offset}", kind="poisson", rate_pps=50_000)]
        m = simulate(mixed(both, mf, seed=3, br_netfilter=False)).packets
        pure = simulate({"hosts": [dict(name="h1", scheme=scheme, namespaces=count, cores=1, br_netfilter=False)],
                         "flows": [flow("f", f"ns{a}", f"ns{b}", kind="poisson", rate_pps=50_000)],
                         "run": {"duration_ns": 2e6, "seed": 3}}).packets
        assert len(pure) > 50 and set(m.scheme.astype(str)) == {scheme}
        assert m.latency_ns.tolist() == pure.latency_ns.tolist(), scheme
        assert m.status.tolist() == pure.status.tolist()
    with_br_nf = delivered(simulate(mixed(both, [flow("f", "ns12", "ns13")])).packets)
    assert (with_br_nf.nf_prerouting_ns > 0).all()     # ip_sabotage_in, registered for br0's sake


def test_a_pure_host_written_as_one_group_is_unchanged():
    for scheme in SCHEMES:
        flows = [flow("a", "ns0", "ns1"), flow("w", "wire", "ns2"), flow("r", "ns1", "root")]
        plain = {"hosts": [dict(name="h1", scheme=scheme, namespaces=3)], "flows": flows,
                 "run": {"duration_ns": 1e6, "seed": 2}}
        grouped = {**plain, "hosts": [dict(name="h1", scheme=scheme, namespace_schemes=[
            {"scheme": scheme, "namespaces": 3}])]}
        pd.testing.assert_frame_equal(simulate(plain).packets, simulate(grouped).packets)


def test_the_roots_forward_rules_are_paid_when_the_root_forwards_and_only_then():
    groups = [{"scheme": "l2-bridged", "namespaces": 2}, {"scheme": "l3-bind", "namespaces": 2},
              {"scheme": "l2-routed", "namespaces": 2}]
    flows = [flow("to_routed", "ns0", "ns4", rate_pps=20_000), flow("to_bind", "ns1", "ns2", rate_pps=20_000)]
    d = delivered(simulate(mixed(groups, flows, nf_rules={"root": {"forward": 100}})).packets)
    fwd = COST.stages["nf_forward"]
    routed, bind = d[d.flow.astype(str) == "to_routed"], d[d.flow.astype(str) == "to_bind"]
    assert len(routed) > 3 and len(bind) > 3
    assert (routed.nf_forward_ns >= fwd.base_ns + 100 * fwd.per_entry_ns).all()   # ip_forward's hook, 100 rules
    assert (bind.nf_forward_ns == 0).all()          # ip_local_deliver: never crosses FORWARD


def test_every_packet_one_record_deterministic_and_each_spread_packet_takes_its_namespaces_scheme():
    groups = [{"scheme": "l2-bridged", "namespaces": 3}, {"scheme": "l3-bind", "namespaces": 3},
              {"scheme": "vnic", "namespaces": 2}]
    flows = [flow("in", "wire", "ns*", kind="poisson", rate_pps=300_000),
             flow("between", "ns0", "ns*", kind="poisson", rate_pps=200_000),
             {"name": "rr", "kind": "rr", "src": "h1:ns4", "dst": "h1:ns1", "concurrency": 2}]
    sc = mixed(groups, flows, cores=2)
    a, b = simulate(sc), simulate(sc)
    pd.testing.assert_frame_equal(a.packets, b.packets)
    p = a.packets
    assert len(p) == a.stats["generated"] and p.packet_id.is_unique
    d = delivered(p)
    group = {0: "l2-bridged", 1: "l2-bridged", 2: "l2-bridged", 3: "l3-bind", 4: "l3-bind", 5: "l3-bind",
             6: "vnic", 7: "vnic"}
    wire = d[d.flow.astype(str) == "in"]
    assert (wire.scheme.astype(str) == wire.dst_netns.map(group)).all()
    assert (wire.n_passes == wire.dst_netns.map(lambda n: len(REG.get(group[n]).trips["wire_to_ns"]))).all()
    between = d[(d.flow.astype(str) == "between") & (d.dst_netns != 0)]
    want = between.dst_netns.map(lambda n: "l2-bridged" if group[n] == "l2-bridged" else f"l2-bridged>{group[n]}")
    assert set(between.scheme.astype(str)) >= {"l2-bridged", "l2-bridged>l3-bind", "l2-bridged>vnic"}
    assert (between.scheme.astype(str) == want).all()
    rr = d[d.flow.astype(str) == "rr"]
    assert set(rr.scheme.astype(str)) == {"l3-bind>l2-bridged", "l2-bridged>l3-bind"}


def test_memory_is_the_sum_of_the_groups_and_lists_every_scheme():
    groups = [{"scheme": "l2-bridged", "namespaces": 10}, {"scheme": "l3-bind", "namespaces": 90}]
    r = simulate(mixed(groups, [flow("a", "ns0", "ns20")], duration_ns=2e5, cores=2))
    spec = HostSpec.model_validate(dict(name="h1", namespace_schemes=groups, cores=2))
    want = sum(row["bytes"] for g in groups for row in memory_rows(
        REG.get(g["scheme"]), COST, g["namespaces"], 2, table_config(REG.get(g["scheme"]).spec, spec, COST)))
    got = r.summary[r.summary.metric == "memory_bytes"].value
    assert got.tolist() == [pytest.approx(want)]
    assert {"l2-bridged", "l3-bind"} <= set(r.memory.scheme)
    assert spec.namespaces == 100                   # namespaces left out: the sum of the groups


def _refused(tmp_path, capsys, doc, *fragments):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert code != 0, err
    for frag in fragments:
        assert frag in err, err


def test_counts_that_do_not_sum_are_refused_with_the_place_and_the_fix(tmp_path, capsys):
    doc = mixed([{"scheme": "l2-bridged", "namespaces": 3}], [flow("a", "ns0", "ns1")])
    doc["hosts"][0]["namespaces"] = 5
    _refused(tmp_path, capsys, doc, "hosts[0]", "sum to 3", "set namespaces: 3")


def test_an_unknown_group_scheme_is_refused_with_a_suggestion(tmp_path, capsys):
    doc = mixed([{"scheme": "l2-bridge", "namespaces": 3}], [flow("a", "ns0", "ns1")])
    _refused(tmp_path, capsys, doc, "namespace_schemes[0].scheme", "did you mean 'l2-bridged'",
             "fix: ")


def test_multicast_across_schemes_on_one_host_is_refused_as_not_modelled(tmp_path, capsys):
    doc = mixed([{"scheme": "l2-bridged", "namespaces": 2}, {"scheme": "l3-bind", "namespaces": 2}], [
        {"name": "m", "kind": "constant", "src": "h1:wire", "dst": "group:g", "rate_pps": 1000}])
    doc["groups"] = [{"name": "g", "members": ["h1:ns0", "h1:ns3"]}]
    _refused(tmp_path, capsys, doc, "groups[0]", "not modelled yet", "fix: put the group's members")
    doc["groups"] = [{"name": "g", "members": ["h1:ns2", "h1:ns3"]}]      # one scheme: runs
    d = delivered(simulate(doc).packets)
    assert len(d) > 0 and set(d.scheme.astype(str)) == {"l3-bind"}


def test_a_user_scheme_without_via_root_serves_same_scheme_flows_but_not_cross_ones(tmp_path, capsys):
    mine = REG.get("l2-routed").spec.model_dump(exclude={"via_root"}, exclude_none=True)
    doc = mixed([{"scheme": "mine", "namespaces": 2}, {"scheme": "l3-bind", "namespaces": 2}],
                [flow("a", "ns0", "ns1")])
    doc["schemes"] = {"mine": mine}
    assert len(delivered(simulate(doc).packets)) > 0
    doc["flows"] = [flow("a", "ns0", "ns2")]
    _refused(tmp_path, capsys, doc, "flows[0]", "'mine' has no via_root", "fix: add via_root")


def test_more_scheme_labels_than_a_record_can_name_are_refused(tmp_path, capsys):
    doc = mixed([{"scheme": f"s{k}", "namespaces": 1} for k in range(12)], [flow("a", "ns0", "ns0")])
    doc["schemes"] = {f"s{k}": REG.get("l3-bind").spec.model_dump(exclude_none=True) for k in range(12)}
    _refused(tmp_path, capsys, doc, "hosts[0].namespace_schemes", "above the 127", "fix: put fewer schemes")


def test_the_report_shows_a_mixed_host_and_its_cross_scheme_rows(tmp_path, capsys):
    """The shipped mixed-host scenario, shortened: the setup names each group's scheme and
    the results carry the A>B rows with their policy."""
    path = Path(__file__).resolve().parent.parent / "scenarios" / "mixed-host.yaml"
    out = tmp_path / "mx"
    assert main(["run", str(path), "--out", str(out), "--quiet", "--set", "run.duration_ns=1e6",
                 "--set", "run.warmup_ns=1e5"]) == 0
    assert main(["report", str(out)]) == 0, capsys.readouterr().err
    md = (out / "report.md").read_text()
    assert "10 `l2-bridged`, 90 `l3-bind`, 5 `l2-routed`" in md
    rows: dict[str, str] = {}                       # the first table with these rows: the results table
    for line in md.splitlines():
        if line.startswith("| l2-bridged>"):
            rows.setdefault(line.split("|")[1].strip(), line)
    assert "meets all" in rows["l2-bridged>l2-routed"] and "bypasses" in rows["l2-bridged>l3-bind"]
