"""The root namespace, a namespace to itself, and multicast to members on the sender's host
(issue 10, endpoints): pass counts and stage sequences per scheme, one copy per member,
conservation of mixed local/remote groups, the root namespace as a group member and as a
multicast sender to its own host, and a sender that is a member of its own group
(IP_MULTICAST_LOOP)."""

import numpy as np
import pytest

from sim.core.costs import load_profile
from sim.core.nscodes import ROOT_NS, WIRE_NS
from sim.core.schemes import builtin_registry
from sim.core.simulate import simulate
from sim.core.sockets import SocketTables
from sim.core.stages import STAGE_NAMES
from sim.core.trips import ENDPOINT_TRIPS, unicast
from tests.scenarios_for_tests import MODERN, SCHEMES, delivered, one_host, schemes_with

REG = builtin_registry()
FULL_L2 = ("l2-routed", "l2-bridged")
OWN_LOOPBACK = ("l2-routed", "l2-bridged", "vnic", *MODERN)  # schemes that give a container its own devices
# trips a built-in leaves out because the kernel path does not exist (ipvlan_process_outbound drops multicast)
KERNEL_LACKS = {"ipvlan-l3": {"multicast_local", "root_multicast_local"},
                "ipvlan-l3s": {"multicast_local", "root_multicast_local"}}
LOCAL_MC = schemes_with("multicast_local")
NIC_TURNS_AROUND = ("vnic", "sriov-vf", "macvlan-vepa")      # local copies leave by the NIC and come back
ROOT_STAGES = ("nf_forward", "ip_forward", "bridge", "nic_rx", "nic_tx", "vnic_demux")


def stage_names(scheme, trip):
    """[(queue, role-of-first-stage, [stage names])] of a built-in trip."""
    return [(p.queue, p.role, [STAGE_NAMES[s.index] for s in p.stages]) for p in REG.get(scheme).trips[trip]]


def endpoint_flows(rate_pps=20_000):
    return [{"name": "wire_root", "kind": "constant", "src": "h1:wire", "dst": "h1:root", "rate_pps": rate_pps},
            {"name": "root_wire", "kind": "constant", "src": "h1:root", "dst": "h1:wire", "rate_pps": rate_pps},
            {"name": "root_ns", "kind": "constant", "src": "h1:root", "dst": "h1:ns0", "rate_pps": rate_pps},
            {"name": "ns_root", "kind": "constant", "src": "h1:ns1", "dst": "h1:root", "rate_pps": rate_pps},
            {"name": "self", "kind": "constant", "src": "h1:ns2", "dst": "h1:ns2", "rate_pps": rate_pps},
            {"name": "root_self", "kind": "constant", "src": "h1:root", "dst": "h1:root", "rate_pps": rate_pps},
            {"name": "ns_ns", "kind": "constant", "src": "h1:ns1", "dst": "h1:ns2", "rate_pps": rate_pps}]


@pytest.fixture(scope="module", params=SCHEMES)
def unloaded(request):
    """Every endpoint trip of one scheme, light constant load (no queueing, no drops)."""
    res = simulate(one_host(request.param, namespaces=3, flows=endpoint_flows(), duration_ns=2e6))
    return request.param, delivered(res.packets)


def test_every_built_in_scheme_defines_every_endpoint_trip():
    for s in SCHEMES:
        assert set(ENDPOINT_TRIPS) - KERNEL_LACKS.get(s, set()) == set(ENDPOINT_TRIPS) & set(REG.get(s).trips), s


def test_each_endpoint_pair_gets_its_trip_label_and_the_schemes_pass_count(unloaded):
    scheme, d = unloaded
    trips = {"wire_root": "wire_to_root", "root_wire": "root_to_wire", "root_ns": "root_to_ns",
             "ns_root": "ns_to_root", "self": "ns_to_self", "root_self": "ns_to_self", "ns_ns": "ns_to_ns"}
    for flow, trip in trips.items():
        rows = d[d.flow == flow]
        assert len(rows) > 10, (scheme, flow)
        assert set(rows.trip.astype(str)) == {unicast(0, *_ends(flow)).label}, (scheme, flow)
        assert (rows.n_passes == len(REG.get(scheme).trips[trip])).all(), (scheme, flow)


def _ends(flow):
    return {"wire_root": (WIRE_NS, 0, ROOT_NS), "root_wire": (ROOT_NS, 0, WIRE_NS), "root_ns": (ROOT_NS, 0, 0),
            "ns_root": (1, 0, ROOT_NS), "self": (2, 0, 2), "root_self": (ROOT_NS, 0, ROOT_NS),
            "ns_ns": (1, 0, 2)}[flow]


def test_root_and_child_over_one_veth_take_two_passes_output_then_input(unloaded):
    scheme, d = unloaded
    if scheme not in FULL_L2:
        return
    for trip in ("root_to_ns", "ns_to_root"):
        (q1, _, out), (q2, _, into) = stage_names(scheme, trip)      # exactly two passes
        assert (q1, q2) == ("process", "backlog")
        assert out[0] == "socket_send" and out[-1] == "veth_xmit"     # the sender's output path, then veth_xmit
        assert into[0] == "l2_demux" and into[-1] == "socket_enqueue"  # the other side's input path
        assert "ip_forward" not in out + into and "nf_forward" not in out + into   # nothing is routed through
    for flow in ("root_ns", "ns_root"):
        rows = d[d.flow == flow]
        assert (rows.n_passes == 2).all() and (rows.veth_xmit_ns > 0).all(), flow
        assert (rows.ip_forward_ns == 0).all() and (rows.nic_tx_ns == 0).all(), flow
    # one veth crossing costs less CPU than ns -> ns through the root (three passes); latency is
    # not compared: it also holds the reader's wake-up, which depends on its core (issue 10)
    from sim.core.stages import STAGE_NAMES
    cpu = d[[f"{s}_ns" for s in STAGE_NAMES]].sum(axis=1)
    assert cpu[d.flow == "root_ns"].mean() < cpu[d.flow == "ns_ns"].mean()


def test_a_container_to_itself_crosses_its_own_loopback_once(unloaded):
    scheme, d = unloaded
    rows = d[d.flow == "self"]
    plan = stage_names(scheme, "ns_to_self")
    if scheme in OWN_LOOPBACK:
        # out to lo (process context), netif_rx, in from the backlog: both in the container
        assert [(q, r) for q, r, _ in plan] == [("process", "src"), ("backlog", "dst")]
        assert plan[0][2][-1] == "dev_xmit" and plan[0][2].count("dev_xmit") == 1
        assert all(s.role != "root" for p in REG.get(scheme).trips["ns_to_self"] for s in p.stages)
        assert (rows.n_passes == 2).all()
        for stage in ("veth_xmit", *ROOT_STAGES):
            assert (rows[f"{stage}_ns"] == 0).all(), (scheme, stage)
        assert rows.latency_ns.mean() < d[d.flow == "ns_ns"].latency_ns.mean()
    else:
        # one shared stack: a container's loopback is the host's, as for ns -> ns
        assert REG.get(scheme).spec.trips["ns_to_self"] == REG.get(scheme).spec.trips["ns_to_ns"]
    assert (rows.veth_xmit_ns == 0).all()


def test_root_endpoints_are_priced_with_the_roots_rules_not_the_childrens():
    rules = {"root": {"input": 50, "output": 50}, "child": {}}
    flows = [{"name": f, "kind": "constant", "src": s, "dst": t, "rate_pps": 10_000}
             for f, s, t in (("in", "h1:wire", "h1:root"), ("to_root", "h1:ns0", "h1:root"),
                             ("from_root", "h1:root", "h1:ns0"), ("ns_ns", "h1:ns0", "h1:ns1"))]
    d = delivered(simulate(one_host("l2-routed", namespaces=2, flows=flows, nf_rules=rules, duration_ns=1e6)).packets)
    base = delivered(simulate(one_host("l2-routed", namespaces=2, flows=flows, duration_ns=1e6)).packets)
    more = d.groupby("flow", observed=True)[["nf_local_in_ns", "nf_local_out_ns"]].mean() - \
        base.groupby("flow", observed=True)[["nf_local_in_ns", "nf_local_out_ns"]].mean()
    assert more.loc["in", "nf_local_in_ns"] > 0 and more.loc["to_root", "nf_local_in_ns"] > 0
    assert more.loc["from_root", "nf_local_out_ns"] > 0
    assert more.loc["ns_ns"].abs().max() == 0 and more.loc["from_root", "nf_local_in_ns"] == 0


def test_root_sockets_bind_first_so_they_sit_behind_the_containers_in_a_shared_table():
    crowded = SocketTables("shared_permuted", 2000, 4, 64, np.random.default_rng(3))
    own = SocketTables("per_namespace", 2000, 4, 64, np.random.default_rng(3))
    assert all(own.examined(ROOT_NS, j) == 1 for j in range(4))             # a table of its own
    # 8000 container sockets over 64 buckets: the root's lookup walks ~125 of them
    assert min(crowded.examined(ROOT_NS, j) for j in range(4)) > 8000 / 64 / 2
    assert crowded.mean_examined() == pytest.approx((8000 / 64 + 1) / 2, rel=0.2)   # containers: unchanged


def test_request_response_between_a_root_and_a_remote_container():
    sc = two_hosts("l2-routed", ["h2:ns1"])
    sc["flows"] = [{"name": "rr", "kind": "rr", "src": "h1:root", "dst": "h2:ns0", "concurrency": 2}]
    d = delivered(simulate(sc).packets)
    assert set(d.trip.astype(str)) == {"root_to_remote_ns", "ns_to_remote_root"}
    req, resp = d[d.direction == "request"], d[d.direction == "response"]
    assert len(req) > 10 and abs(len(req) - len(resp)) <= 2
    assert (req.n_passes == 1 + 2).all()           # root_to_wire on h1, wire_to_ns (2 passes) on h2
    assert (resp.src_netns == 0).all() and (req.src_netns == ROOT_NS).all() and (resp.dst_netns == ROOT_NS).all()


# -- multicast to members on the sender's own host ----------------------------------------

def two_hosts(scheme, members, rate_pps=50_000, duration_ns=2e6, src="h1:ns0", **host):
    hosts = [dict(name=n, scheme=scheme, namespaces=4, cores=2, **host) for n in ("h1", "h2")]
    return {"hosts": hosts, "switches": [{"name": "s1"}],
            "links": [{"a": "h1", "b": "s1", "rate_bps": 1e10, "delay_ns": 500},
                      {"a": "s1", "b": "h2", "rate_bps": 1e10, "delay_ns": 500}],
            "groups": [{"name": "g", "members": members}],
            "flows": [{"name": "mc", "kind": "poisson", "src": src, "dst": "group:g", "rate_pps": rate_pps}],
            "run": {"duration_ns": duration_ns, "seed": 4}}


@pytest.mark.parametrize("scheme", LOCAL_MC)
def test_local_members_get_one_copy_each(scheme):
    res = simulate(two_hosts(scheme, ["h1:ns1", "h1:ns2", "h1:ns3"], rate_pps=20_000))
    p = res.packets
    sent = int(res.flows.sent.iloc[0])
    assert sent > 10 and len(p) == 3 * sent
    assert set(p.trip.astype(str)) == {"multicast_local"}
    d = delivered(p)
    per_member = d.groupby(["origin_id", "dst_netns"]).size()
    assert (per_member == 1).all()                                     # never two copies to one member
    assert (d.groupby("origin_id").size() == 3).sum() >= sent - 2      # all but the last in flight: all three
    assert (d.wire_ns == 0).all()
    if scheme in NIC_TURNS_AROUND:         # the NIC's switch (or the adjacent one, VEPA) turns the copies around
        assert (d.nic_tx_ns > 0).all() and (d.nic_rx_ns > 0).all()
    else:                                  # no member elsewhere: no wire copy is sent
        assert (d.nic_tx_ns == 0).all() and (d.nic_rx_ns == 0).all()


@pytest.mark.parametrize("scheme", LOCAL_MC)
def test_a_mixed_group_records_exactly_one_row_per_member_even_under_drops(scheme):
    members = ["h1:ns1", "h1:ns2", "h2:ns0", "h2:ns3"]
    sc = two_hosts(scheme, members, rate_pps=1_500_000, duration_ns=5e5,
                   netdev_max_backlog=20, rx_ring_packets=20, rcvbuf_bytes=5000)
    res = simulate(sc)
    p = res.packets
    sent = int(res.flows.sent.iloc[0])
    assert len(p) == 4 * sent                                          # conservation
    assert (p.groupby(["origin_id", "dst_host", "dst_netns"], observed=True).size() == 1).all()
    assert {"delivered", "dropped"} <= set(p.status.astype(str))
    trip_of = p.groupby(["dst_host"], observed=True).trip.agg(lambda t: set(t.astype(str)))
    assert trip_of["h1"] == {"multicast_local"} and trip_of["h2"] == {"multicast"}
    remote = delivered(p[p.dst_host == "h2"])
    assert (remote.wire_ns > 0).all() and (remote.nic_tx_ns > 0).all()  # the copy left through the NIC


def test_a_mixed_group_sends_once_and_pays_the_wire_copy_once():
    """The sender's pass runs once for local and remote members together (one socket_send)."""
    local_only = delivered(simulate(two_hosts("host", ["h1:ns1", "h1:ns2"], rate_pps=10_000)).packets)
    mixed = delivered(simulate(two_hosts("host", ["h1:ns1", "h1:ns2", "h2:ns0"], rate_pps=10_000)).packets)
    send = REG.get("host").trips["multicast_local"][0]
    assert send.wire_stages is not None
    here = mixed[mixed.dst_host == "h1"]
    assert here.socket_send_ns.mean() == pytest.approx(local_only.socket_send_ns.mean())
    assert here.nic_tx_ns.mean() > 0 and (local_only.nic_tx_ns == 0).all()


def test_a_custom_scheme_without_the_endpoint_trips_is_refused_by_name():
    spec = REG.get("host").spec.model_dump()
    spec["trips"] = {t: spec["trips"][t] for t in ("wire_to_ns", "ns_to_wire", "ns_to_ns", "multicast")}
    sc = one_host("bare", namespaces=2, flows=[{"src": "h1:root", "dst": "h1:ns0", "rate_pps": 10}])
    sc["schemes"] = {"bare": spec}
    with pytest.raises(ValueError, match=r"flows\[0\]: host 'h1' uses scheme 'bare', which does not define "
                                         r"trip 'root_to_ns'.*add trips.root_to_ns"):
        simulate(sc)


# -- the root namespace as a member, root multicasting to its own host, a member sender ----

LOOP_SCHEMES = ("l2-routed", "l2-bridged", "vnic", *MODERN)   # own devices: the sender's copy crosses its own lo
COST = load_profile().stages


def cost(stage):
    return COST[stage].base_ns          # the stages compared below have no per-byte or per-entry term


def rows_of(d, host, ns):
    return d[(d.dst_host == host) & (d.dst_netns == ns)]


@pytest.mark.parametrize("scheme", LOCAL_MC)
@pytest.mark.parametrize("src", ["h1:ns0", "h1:root"])
def test_root_and_sender_members_get_one_copy_each_and_every_packet_one_row_per_member(scheme, src):
    """A group with the sender itself, the root namespaces of both hosts and containers on both."""
    members = ["h1:ns0", "h1:ns1", "h1:root", "h2:ns0", "h2:root"]
    res = simulate(two_hosts(scheme, members, rate_pps=20_000, src=src))
    p, sent = res.packets, int(res.flows.sent.iloc[0])
    assert sent > 10 and len(p) == len(members) * sent                         # conservation
    assert (p.groupby(["origin_id", "dst_host", "dst_netns"], observed=True).size() == 1).all()
    d = delivered(p)
    per_member = d.groupby(["dst_host", "dst_netns"], observed=True).origin_id.nunique()
    assert len(per_member) == len(members) and (per_member >= sent - 2).all()   # all but the last in flight
    trip_of = p.groupby("dst_host", observed=True).trip.agg(lambda t: set(t.astype(str)))
    assert trip_of["h1"] == {"multicast_local"} and trip_of["h2"] == {"multicast"}
    assert set(rows_of(d, "h1", ROOT_NS).src_netns) == {ROOT_NS if src == "h1:root" else 0}


@pytest.mark.parametrize("scheme", LOCAL_MC)
def test_a_member_sender_gets_its_copy_where_the_kernel_loops_it_back(scheme):
    """ip_mc_output clones the packet for local listeners (sk_mc_loop).  With devices of its own,
    the clone crosses the sender's own loopback (dev_loopback_xmit -> netif_rx, the output route
    kept: no route_input, nothing in root); in one shared stack it is the clone every local
    member is delivered from, so the sender is one more socket of that pass."""
    d = delivered(simulate(two_hosts(scheme, ["h1:ns0", "h1:ns1", "h2:ns1"], rate_pps=10_000)).packets)
    own, other = rows_of(d, "h1", 0), rows_of(d, "h1", 1)
    assert len(own) > 5
    if scheme in LOOP_SCHEMES:
        assert (own.n_passes == 2).all()               # the sender's pass, then its loopback input
        assert (own.route_input_ns == 0).all() and (own.ip_forward_ns == 0).all() and (own.bridge_ns == 0).all()
        assert (own.vnic_demux_ns == 0).all() and (own.nic_rx_ns == 0).all()
        # the loop clone's POSTROUTING and dev_loopback_xmit are paid once, by the sender's pass, which
        # every row carries; the other members' copies are not sent back to the sender's port
        assert (other.n_passes == len(REG.get(scheme).trips["multicast_local"])).all()
    else:
        assert (own.n_passes == other.n_passes.iloc[0]).all()
        assert own.socket_enqueue_ns.mean() == pytest.approx(other.socket_enqueue_ns.mean())


@pytest.mark.parametrize("scheme", FULL_L2)
def test_a_root_member_is_delivered_by_the_roots_own_pass_not_through_a_veth(scheme):
    """ip_mr_input delivers a local copy (l2-routed); the bridge passes one up to br0 (l2-bridged):
    in the root's pass, with no veth and no pass of its own; the forwarding per member is unchanged."""
    base = delivered(simulate(two_hosts(scheme, ["h1:ns1", "h1:ns2"], rate_pps=10_000)).packets)
    more = delivered(simulate(two_hosts(scheme, ["h1:ns1", "h1:ns2", "h1:root"], rate_pps=10_000)).packets)
    root, ns1, ns1_before = rows_of(more, "h1", ROOT_NS), rows_of(more, "h1", 1), rows_of(base, "h1", 1)
    assert len(root) > 5 and (root.n_passes == 2).all()           # the sender's pass, the root's pass
    assert ns1.veth_xmit_ns.mean() == pytest.approx(ns1_before.veth_xmit_ns.mean())   # no veth for the root
    extra = ns1.socket_enqueue_ns.mean() - ns1_before.socket_enqueue_ns.mean()
    assert extra == pytest.approx(cost("socket_enqueue"))         # the root's delivery, in the shared pass


def test_root_sending_to_its_own_containers_over_l2_routed_loops_back_into_the_multicast_router():
    """ip_mc_output on the root (a multicast router) sends the original to the NIC and loops a clone
    back; ip_mr_input forwards the clone to the member veths with the output route kept."""
    plan = stage_names("l2-routed", "root_multicast_local")
    assert [(q, r) for q, r, _ in plan] == [("process", "root"), ("backlog", "root"), ("backlog", "dst")]
    assert "veth_xmit" not in plan[0][2] and "route_input" not in plan[1][2] and "veth_xmit" in plan[1][2]
    d = delivered(simulate(two_hosts("l2-routed", ["h1:ns1", "h1:ns2", "h1:root"], src="h1:root",
                                     rate_pps=10_000)).packets)
    assert (rows_of(d, "h1", 1).n_passes == 3).all() and (rows_of(d, "h1", ROOT_NS).n_passes == 2).all()
    assert rows_of(d, "h1", 1).veth_xmit_ns.mean() == pytest.approx(2 * cost("veth_xmit"))   # two members


def test_root_sending_over_l2_bridged_floods_from_br0_and_loops_back_only_for_itself():
    d = delivered(simulate(two_hosts("l2-bridged", ["h1:ns1", "h1:ns2"], src="h1:root", rate_pps=10_000)).packets)
    assert (d.n_passes == 2).all() and (d.bridge_ns > 0).all()   # br_dev_xmit floods, each member's input
    assert d.veth_xmit_ns.mean() == pytest.approx(2 * cost("veth_xmit"))
    with_root = delivered(simulate(two_hosts("l2-bridged", ["h1:ns1", "h1:ns2", "h1:root"], src="h1:root",
                                             rate_pps=10_000)).packets)
    assert (rows_of(with_root, "h1", ROOT_NS).n_passes == 2).all()        # its own loopback input
    assert rows_of(with_root, "h1", 1).veth_xmit_ns.mean() == pytest.approx(2 * cost("veth_xmit"))


def test_vnic_gives_a_root_member_its_own_queue_and_the_root_sends_from_its_own_vnic():
    sc = one_host("vnic", namespaces=2, cores=2,
                  flows=[{"name": "in", "kind": "constant", "src": "h1:wire", "dst": "group:g", "rate_pps": 10_000}],
                  duration_ns=1e6)
    sc["groups"] = [{"name": "g", "members": ["h1:root", "h1:ns1"]}]
    d = delivered(simulate(sc).packets)
    assert (d.n_passes == 1).all() and d.packet_id.nunique() == len(d)   # the NIC replicates: one queue each
    sc["flows"][0]["src"] = "h1:root"
    sc["groups"][0]["members"] = ["h1:ns0", "h1:ns1"]
    d = delivered(simulate(sc).packets)
    assert (d.n_passes == 2).all() and (d.nic_tx_ns > 0).all() and (d.src_netns == ROOT_NS).all()


@pytest.mark.parametrize("scheme", ["shortcut-routing", "shortcut-postrouting", "l25-hybrid"])
def test_short_cuts_switch_namespace_only_for_containers(scheme):
    """A switch to the namespace the packet is already in is no switch: a root member of a group
    pays none, a container member one; the root's own loopback pays none."""
    flows = [{"name": "mc", "kind": "constant", "src": "h1:wire", "dst": "group:g", "rate_pps": 10_000},
             {"name": "self", "kind": "constant", "src": "h1:root", "dst": "h1:root", "rate_pps": 10_000},
             {"name": "ns_self", "kind": "constant", "src": "h1:ns1", "dst": "h1:ns1", "rate_pps": 10_000}]
    sc = one_host(scheme, namespaces=2, flows=flows, duration_ns=1e6)
    sc["groups"] = [{"name": "g", "members": ["h1:root", "h1:ns0"]}]
    d = delivered(simulate(sc).packets)
    assert d[d.flow == "mc"].ns_switch_ns.mean() == pytest.approx(cost("ns_switch"))
    assert (d[d.flow == "self"].ns_switch_ns == 0).all()
    assert (d[d.flow == "ns_self"].ns_switch_ns > 0).all()


def test_a_root_member_is_priced_with_the_roots_rules():
    rules = {"root": {"input": 50}, "child": {}}
    flows = [{"name": "mc", "kind": "constant", "src": "h1:wire", "dst": "group:g", "rate_pps": 10_000}]
    nf = []
    for members in (["h1:ns0", "h1:ns1"], ["h1:ns0", "h1:root"]):
        sc = one_host("shortcut-routing", namespaces=2, flows=flows, nf_rules=rules, duration_ns=1e6)
        sc["groups"] = [{"name": "g", "members": members}]
        nf.append(delivered(simulate(sc).packets).nf_local_in_ns.mean())
    # the children have no hook (nothing declared): the root's INPUT hook base and its 50 rules
    assert nf[1] - nf[0] == pytest.approx(COST["nf_local_in"].base_ns + 50 * COST["nf_local_in"].per_entry_ns)


@pytest.mark.parametrize("scheme", LOCAL_MC)
def test_root_and_member_senders_conserve_packets_under_drops(scheme):
    members = ["h1:root", "h1:ns1", "h1:ns2", "h2:ns0", "h2:root"]
    for src in ("h1:root", "h1:ns1"):
        sc = two_hosts(scheme, members, rate_pps=1_500_000, duration_ns=4e5, src=src,
                       netdev_max_backlog=20, rx_ring_packets=20, rcvbuf_bytes=5000)
        res = simulate(sc)
        p, sent = res.packets, int(res.flows.sent.iloc[0])
        assert len(p) == len(members) * sent, (scheme, src)
        assert (p.groupby(["origin_id", "dst_host", "dst_netns"], observed=True).size() == 1).all()
        assert {"delivered", "dropped"} <= set(p.status.astype(str)), (scheme, src)
