"""Invariants of every run: conservation of packets, exact latency breakdown, determinism."""

import numpy as np
import pandas as pd
import pytest

from sim.core.records import STAGE_COLUMNS
from sim.core.simulate import simulate
from tests.scenarios_for_tests import SCHEMES, schemes_with


def every_trip(scheme, seed=1, duration_ns=3e6):
    """Two hosts of `scheme`, every trip kind (the root and self endpoints and a mixed local/remote
    group too), loaded enough to queue and drop, cut mid-flight."""
    hosts = [{"name": n, "scheme": scheme, "namespaces": 4, "cores": 2, "sockets_per_namespace": 2,
              "netdev_max_backlog": 30, "rx_ring_packets": 30, "rcvbuf_bytes": 20_000, "app_recv_ns": 2000}
             for n in ("h1", "h2")]
    flows = [
        {"name": "w2n", "src": "h1:wire", "dst": "h1:ns0", "rate_pps": 600_000},
        {"name": "n2w", "src": "h1:ns1", "dst": "h1:wire", "rate_pps": 200_000, "size": {"dist": "uniform", "min_bytes": 64, "max_bytes": 1500}},
        {"name": "n2n", "src": "h1:ns2", "dst": "h1:ns3", "rate_pps": 200_000, "port": 1},
        {"name": "remote", "src": "h1:ns0", "dst": "h2:ns1", "kind": "onoff", "rate_pps": 900_000, "on_ns": 2e5, "off_ns": 2e5,
         "size": {"dist": "choice", "values": [64, 576, 1500], "weights": [7, 4, 1]}},
        {"name": "rr", "kind": "rr", "src": "h2:ns0", "dst": "h1:ns3", "concurrency": 4, "server_ns": 1000},
        {"name": "mc_local", "src": "h1:wire", "dst": "group:local", "rate_pps": 100_000},
        {"name": "mc_remote", "src": "h2:ns2", "dst": "group:remote", "rate_pps": 100_000},
        {"name": "root2ns", "src": "h1:root", "dst": "h1:ns1", "rate_pps": 50_000},
        {"name": "ns2root", "kind": "rr", "src": "h1:ns2", "dst": "h1:root", "concurrency": 2, "timeout_ns": 1e5},
        {"name": "self", "src": "h1:ns3", "dst": "h1:ns3", "rate_pps": 50_000},
        {"name": "root_remote", "src": "h2:root", "dst": "h1:root", "rate_pps": 50_000},
        {"name": "mc_mixed", "src": "h1:ns3", "dst": "group:mixed", "rate_pps": 50_000},
    ]
    if scheme not in schemes_with("multicast"):           # ipvlan-l3/l3s: the kernel delivers no multicast to
        flows = [f for f in flows if not f["name"].startswith("mc_")]   # slaves and drops a slave's multicast
    return {"hosts": hosts, "switches": [{"name": "s1"}],
            "links": [{"a": "h1", "b": "s1", "rate_bps": 1e9, "delay_ns": 500, "queue_packets": 20},
                      {"a": "s1", "b": "h2", "rate_bps": 1e9, "delay_ns": 500, "queue_packets": 20}],
            "groups": [{"name": "local", "members": ["h1:ns0", "h1:ns1", "h1:ns2"]},
                       {"name": "remote", "members": ["h1:ns0", "h1:ns3"]},
                       {"name": "mixed", "members": ["h1:ns0", "h1:ns1", "h2:ns2", "h2:ns3"]}],
            "flows": flows, "run": {"duration_ns": duration_ns, "seed": seed}}


@pytest.fixture(scope="module", params=SCHEMES)
def loaded(request):
    return simulate(every_trip(request.param))


def destinations(flow_name):
    return {"mc_local": 3, "mc_remote": 2, "mc_mixed": 4}.get(flow_name, 1)


def test_conservation_sent_equals_delivered_dropped_in_flight(loaded):
    p = loaded.packets
    for _, f in loaded.flows.iterrows():
        rows = p[p.flow == f.flow]
        counts = rows.status.value_counts()
        assert f.sent * destinations(f.flow) == len(rows) == counts.sum(), f.flow
        assert f.sent > 0, f.flow
    # one record per (packet, destination): no packet counted twice
    assert not p.duplicated(["origin_id", "dst_host", "dst_netns"]).any()
    # a multicast packet that had not fanned out yet has one row per member, same packet_id
    assert not p.duplicated(["packet_id", "dst_host", "dst_netns"]).any()
    assert set(p.status.unique()) <= {"delivered", "dropped", "in_flight"}


def test_the_load_produces_every_outcome(loaded):
    p = loaded.packets
    assert {"delivered", "dropped", "in_flight"} <= set(p.status.unique())


def test_stage_and_queue_times_sum_to_latency(loaded):
    d = loaded.packets[loaded.packets.status == "delivered"]
    parts = d[list(STAGE_COLUMNS)].sum(axis=1) + d.wire_ns + d.link_queue_ns + d.queue_ns
    np.testing.assert_allclose(parts, d.latency_ns, rtol=1e-9, atol=1e-6)
    per_pass = d[[c for c in d.columns if c.startswith("pass") and c.endswith("_queue_ns")]].sum(axis=1)
    np.testing.assert_allclose(per_pass, d.queue_ns, rtol=1e-9, atol=1e-6)


def test_drops_carry_a_reason_and_a_place(loaded):
    dr = loaded.packets[loaded.packets.status == "dropped"]
    assert (dr.drop_reason != "").all() and dr.drop_node.notna().all()
    ok = loaded.packets[loaded.packets.status != "dropped"]
    assert (ok.drop_reason == "").all()


def test_same_seed_same_records_other_seed_different():
    a = simulate(every_trip("l2-routed", seed=5, duration_ns=1e6)).packets
    b = simulate(every_trip("l2-routed", seed=5, duration_ns=1e6)).packets
    c = simulate(every_trip("l2-routed", seed=6, duration_ns=1e6)).packets
    pd.testing.assert_frame_equal(a, b)
    assert len(a) != len(c) or not a.t_sent_ns.equals(c.t_sent_ns)
