"""Issue 15's built-in schemes (today's container paths; docs/modern-schemes.md): listed with their
passes and capabilities, run on every trip they define, and their pass structure follows the
kernel path each trip's comment in sim/data/schemes.yaml cites."""

import json

import pytest

from sim.cli import main
from sim.core.costs import load_profile
from sim.core.schemes import builtin_registry
from sim.core.simulate import simulate
from sim.core.stages import STAGE_NAMES
from sim.core.trips import OPTIONAL_TRIPS, REQUIRED_TRIPS
from tests.scenarios_for_tests import MODERN, delivered, one_host

REG = builtin_registry()
COST = load_profile().stages

# one flow per trip: (flow name, src, dst, host trip)
TRIP_FLOWS = [
    ("w2n", "h1:wire", "h1:ns0", "wire_to_ns"),
    ("n2w", "h1:ns1", "h1:wire", "ns_to_wire"),
    ("n2n", "h1:ns1", "h1:ns2", "ns_to_ns"),
    ("mc", "h1:wire", "group:g", "multicast"),
    ("w2r", "h1:wire", "h1:root", "wire_to_root"),
    ("r2w", "h1:root", "h1:wire", "root_to_wire"),
    ("r2n", "h1:root", "h1:ns0", "root_to_ns"),
    ("n2r", "h1:ns2", "h1:root", "ns_to_root"),
    ("self", "h1:ns3", "h1:ns3", "ns_to_self"),
    ("mcl", "h1:ns2", "group:g", "multicast_local"),
    ("rmcl", "h1:root", "group:g", "root_multicast_local"),
]
MEMBERS = ["h1:ns0", "h1:ns1", "h1:root"]


def names(scheme, trip):
    """[(queue, [(stage, role)])] of a built-in trip."""
    return [(p.queue, [(STAGE_NAMES[s.index], s.role) for s in p.stages]) for p in REG.get(scheme).trips[trip]]


def queues(scheme, trip):
    return [p.queue for p in REG.get(scheme).trips[trip]]


def test_netns_sim_schemes_lists_each_modern_scheme_with_its_passes_and_capabilities(capsys):
    assert main(["schemes", "--format", "json"]) == 0
    listed = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
    for name in MODERN:
        s = listed[name]
        assert set(REQUIRED_TRIPS) <= set(s["passes"]), name
        assert s["passes"] == {t: len(p) for t, p in REG.get(name).trips.items()}
        assert "own_devices" in s["capabilities"] and "own_routes" in s["capabilities"]
    assert main(["schemes"]) == 0
    table = capsys.readouterr().out
    assert all(name in table for name in MODERN)


@pytest.mark.parametrize("scheme", MODERN)
def test_each_runs_on_every_trip_it_defines_and_delivers_every_packet(scheme):
    trips = REG.get(scheme).trips
    flows = [{"name": n, "kind": "constant", "src": s, "dst": d, "rate_pps": 10_000}
             for n, s, d, t in TRIP_FLOWS if t in trips]
    assert {t for *_, t in TRIP_FLOWS if t in trips} == set(trips)          # every trip it defines is run
    sc = one_host(scheme, namespaces=4, cores=2, flows=flows, duration_ns=2e6)
    sc["groups"] = [{"name": "g", "members": MEMBERS}]
    res = simulate(sc)
    p = res.packets
    for _, f in res.flows.iterrows():
        rows = p[p.flow == f.flow]
        members = len(MEMBERS) if f.flow in ("mc", "mcl", "rmcl") else 1
        assert f.sent > 10 and len(rows) == f.sent * members, (scheme, f.flow)      # conservation
        assert set(rows.status.astype(str)) <= {"delivered", "in_flight"}, (scheme, f.flow)
        assert len(delivered(rows)) >= (f.sent - 2) * members, (scheme, f.flow)     # all but the last in flight
    for n, _, _, trip in TRIP_FLOWS:
        if trip in trips and trip not in ("multicast", "multicast_local", "root_multicast_local"):
            rows = delivered(p[p.flow == n])
            assert (rows.n_passes == len(trips[trip])).all(), (scheme, trip)


def test_only_the_kernel_dropped_multicast_trips_are_missing():
    for name in MODERN:
        missing = set(OPTIONAL_TRIPS) - set(REG.get(name).trips)
        l3 = name in ("ipvlan-l3", "ipvlan-l3s")
        want = {"multicast", "multicast_local", "root_multicast_local"} if l3 else set()
        assert missing == want, name


@pytest.mark.parametrize("scheme", ["ipvlan-l3", "ipvlan-l3s"])
def test_multicast_to_l3_mode_ipvlan_containers_is_refused_with_the_fix(scheme, tmp_path, capsys):
    """The kernel does not deliver multicast to L3-mode slaves: no trip, so the flow is refused."""
    (tmp_path / "mc.yaml").write_text(f"""name: mc
hosts: [{{name: h, scheme: {scheme}, namespaces: 3}}]
groups: [{{name: g, members: ["h:ns0", "h:ns1"]}}]
flows: [{{kind: constant, src: "h:wire", dst: "group:g", rate_pps: 10}}]
run: {{duration_ns: 1.0e6}}
""")
    assert main(["validate", str(tmp_path / "mc.yaml")]) == 2
    err = capsys.readouterr().err
    assert "does not define trip 'multicast'" in err and "netns-sim schemes" in err


# -- pass structure against the kernel path ----------------------------------------------------

def test_bpf_redirect_peer_takes_one_backlog_pass_fewer_than_routing_over_the_veth():
    """bpf_redirect_peer: skb_do_redirect returns -EAGAIN and __netif_receive_skb_core goes round
    again in the container, in the NIC's softirq pass."""
    for trip in ("wire_to_ns", "ns_to_ns"):
        assert queues("veth-bpf-peer", trip).count("backlog") == queues("l2-routed", trip).count("backlog") - 1
    (q, stages), = names("veth-bpf-peer", "wire_to_ns")
    assert q == "nic_rx" and ("tc_bpf", "root") in stages and ("socket_enqueue", "dst") in stages
    # the second round on the container's veth is not a whole RX pass: no second NAPI/backlog entry
    assert [s for s, _ in stages].count("l2_demux") == 1 and ("l2_another_round", "dst") in stages
    assert not {"ip_forward", "nf_forward"} & {s for s, _ in stages}
    # out: bpf_redirect_neigh from the host veth's ingress: no ip_rcv, netfilter or ip_forward in the root
    out = names("veth-bpf-peer", "ns_to_wire")[1][1]
    assert [s for s, _ in out] == ["l2_demux", "tc_bpf", "route_output", "ip_output", "dev_xmit", "tc_bpf", "nic_tx"]


@pytest.mark.parametrize("scheme", sorted(REG.names()))
def test_a_device_switch_inside_one_pass_pays_another_round_not_a_second_rx_pass(scheme):
    """Every trip of every built-in scheme: a pass enters the RX path once (l2_demux, first or
    after nic_rx), however many times an RX handler, the bridge passing a frame up or
    bpf_redirect_peer hands the packet to another device (l2_another_round, after the switch;
    in the namespace it moved to when the switch crosses one)."""
    for trip, passes in REG.get(scheme).trips.items():
        for p in passes:
            st = [(STAGE_NAMES[s.index], s.role) for s in p.stages]
            names_ = [s for s, _ in st]
            assert names_.count("l2_demux") <= 1, (scheme, trip)
            if "l2_demux" in names_:
                assert set(names_[:names_.index("l2_demux")]) <= {"vnic_demux", "nic_rx"}, (scheme, trip)
            for i, (s, role) in enumerate(st):
                if s == "l2_another_round":
                    before = st[i - 1]
                    assert before[0] in ("ns_switch", "bridge", "macvlan_demux", "ipvlan_demux", "tc_bpf"), (scheme, trip)
                    assert before[0] != "ns_switch" or role != before[1], (scheme, trip)


def test_netkit_sends_to_the_wire_in_one_pass_without_a_backlog_in_the_root():
    assert queues("netkit", "ns_to_wire") == ["process"]
    (_, stages), = names("netkit", "ns_to_wire")
    roles = dict(stages[::-1])                          # a stage's first role (it appears once or twice)
    assert ("netkit_xmit", "src") in stages and ("tc_bpf", "root") in stages and ("nic_tx", "root") in stages
    assert not any(s.startswith("nf_") for s, r in stages if r == "root") and "ip_rcv" not in roles
    # the NIC's program reaches the container as for veth (bpf_redirect_peer to the primary)
    assert names("netkit", "wire_to_ns") == names("veth-bpf-peer", "wire_to_ns")
    # BPF_F_PEER is refused outside tc ingress: container to container ends in the receiver's backlog
    assert queues("netkit", "ns_to_ns") == ["process", "backlog"]


def test_macvlan_bridge_is_a_hash_lookup_and_dev_forward_skb_into_the_peers_backlog():
    plan = names("macvlan-bridge", "ns_to_ns")
    assert [q for q, _ in plan] == ["process", "backlog"]
    assert plan[0][1][-2:] == [("macvlan_demux", "src"), ("veth_xmit", "src")]
    assert all(r != "root" for _, stages in plan for _, r in stages)       # never the root's IP stack
    # VEPA: out of the NIC and back in through the RX handler (the adjacent switch's hairpin)
    vepa = names("macvlan-vepa", "ns_to_ns")
    assert [q for q, _ in vepa] == ["process", "nic_rx"] and ("nic_tx", "root") in vepa[0][1]
    assert ("macvlan_demux", "root") in vepa[1][1] and ("socket_enqueue", "dst") in vepa[1][1]


def test_ipvlan_l3s_runs_the_roots_input_hooks_and_l3_does_not():
    l3s = dict((s, r) for s, r in names("ipvlan-l3s", "wire_to_ns")[0][1] if s.startswith("nf_"))
    l3 = dict((s, r) for s, r in names("ipvlan-l3", "wire_to_ns")[0][1] if s.startswith("nf_"))
    assert l3s == {"nf_prerouting": "root", "nf_local_in": "root"}
    assert l3 == {"nf_prerouting": "dst", "nf_local_in": "dst"}
    rules = {"root": {"input": 50, "prerouting": 50}}
    flows = [{"name": "in", "kind": "constant", "src": "h1:wire", "dst": "h1:ns*", "rate_pps": 20_000}]
    cost = {}
    for scheme in ("ipvlan-l3", "ipvlan-l3s"):
        d = delivered(simulate(one_host(scheme, namespaces=2, flows=flows, duration_ns=1e6, nf_rules=rules)).packets)
        cost[scheme] = (d.nf_local_in_ns + d.nf_prerouting_ns).mean()
    per_rule = COST["nf_local_in"].per_entry_ns
    assert cost["ipvlan-l3s"] - cost["ipvlan-l3"] >= 100 * per_rule       # the root's 100 rules are met
    # both L3 modes send through the root's LOCAL_OUT and POSTROUTING (ipvlan_process_v4_outbound)
    for scheme in ("ipvlan-l3", "ipvlan-l3s"):
        out = names(scheme, "ns_to_wire")[0][1]
        assert ("nf_local_out", "root") in out and ("nf_postrouting", "root") in out
    assert all(r != "root" for s, r in names("ipvlan-l2", "ns_to_wire")[0][1] if s.startswith("nf_"))


def test_sriov_vf_takes_vnics_passes():
    for trip in REG.get("vnic").trips:
        assert names("sriov-vf", trip) == names("vnic", trip), trip


def _policy(scheme):
    flows = [{"name": "in", "kind": "constant", "src": "h1:wire", "dst": "h1:ns*", "rate_pps": 20_000},
             {"name": "nn", "kind": "constant", "src": "h1:ns0", "dst": "h1:ns1", "rate_pps": 20_000}]
    s = simulate(one_host(scheme, namespaces=4, flows=flows, duration_ns=1e6,
                          nf_rules={"root": {"forward": 100}})).summary
    return s[s.metric.str.startswith("policy_")].pivot_table(index="trip", columns="metric", values="value",
                                                              observed=True)


@pytest.mark.parametrize("scheme", MODERN)
def test_the_roots_forward_rules_are_bypassed_by_every_modern_path(scheme):
    """None of these paths crosses the root's FORWARD hook (l2-routed's does: tests/test_netfilter.py)."""
    p = _policy(scheme)
    for trip in ("wire_to_ns", "ns_to_ns"):
        assert p.loc[trip, "policy_declared"] == 100, (scheme, trip)
        assert p.loc[trip, "policy_bypassed_root_forward"] == 100, (scheme, trip)


@pytest.mark.parametrize("scheme", MODERN)
def test_a_mixed_host_joins_each_modern_scheme_with_l2_bridged(scheme):
    flows = [{"name": "ab", "kind": "constant", "src": "h1:ns0", "dst": "h1:ns2", "rate_pps": 10_000},
             {"name": "ba", "kind": "constant", "src": "h1:ns3", "dst": "h1:ns1", "rate_pps": 10_000}]
    sc = {"hosts": [{"name": "h1", "cores": 2, "namespace_schemes": [{"scheme": "l2-bridged", "namespaces": 2},
                                                                     {"scheme": scheme, "namespaces": 2}]}],
          "flows": flows, "run": {"duration_ns": 2e6, "seed": 1}}
    res = simulate(sc)
    d = delivered(res.packets)
    for f in ("ab", "ba"):
        assert len(d[d.flow == f]) >= int(res.flows.set_index("flow").sent[f]) - 2, (scheme, f)
    assert set(d.scheme.astype(str)) == {f"l2-bridged>{scheme}", f"{scheme}>l2-bridged"}


def test_memory_per_container_counts_the_devices_each_path_needs():
    mem = {n: REG.get(n).spec.memory_per_namespace for n in MODERN}
    assert mem["veth-bpf-peer"]["veth_pair"] == 1 and mem["netkit"]["net_device"] == 3
    for n in ("ipvlan-l2", "ipvlan-l3", "ipvlan-l3s", "macvlan-bridge", "macvlan-vepa", "sriov-vf"):
        assert mem[n]["net_device"] == 2 and "veth_pair" not in mem[n], n
