"""Traffic sources, links and user-defined schemes behave as specified."""

import numpy as np
import pytest
from pydantic import ValidationError

from sim.core.costs import load_profile
from sim.core.simulate import simulate
from sim.core.units import serialization_ns
from tests.scenarios_for_tests import delivered, one_host

PROFILE = load_profile()


def rate_of(p, duration_ns):
    return len(p) / (duration_ns / 1e9)


def test_poisson_rate_and_exponential_gaps():
    dur = 1e8
    p = simulate(one_host(flows=[{"src": "h1:wire", "dst": "h1:ns0", "rate_pps": 100_000}], duration_ns=dur)).packets
    assert rate_of(p, dur) == pytest.approx(100_000, rel=0.03)
    gaps = np.diff(np.sort(p.t_sent_ns.to_numpy()))
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05)     # exponential: CV = 1


def test_constant_rate_is_exact():
    p = simulate(one_host(flows=[{"kind": "constant", "src": "h1:wire", "dst": "h1:ns0", "rate_pps": 1e5}],
                     duration_ns=1e7)).packets
    assert np.allclose(np.diff(np.sort(p.t_sent_ns.to_numpy())), 1e4)


def test_onoff_mean_rate_is_rate_times_on_fraction():
    dur = 4e9                     # ~1000 ON/OFF cycles: the ON fraction is known to ~2.5%
    p = simulate(one_host(flows=[{"kind": "onoff", "src": "h1:wire", "dst": "h1:ns0", "rate_pps": 50_000,
                             "on_ns": 1e6, "off_ns": 3e6}], duration_ns=dur)).packets
    assert rate_of(p, dur) == pytest.approx(50_000 * 0.25, rel=0.1)


def test_size_distributions_have_their_means():
    flows = [{"name": "u", "src": "h1:wire", "dst": "h1:ns0", "rate_pps": 50_000,
              "size": {"dist": "uniform", "min_bytes": 100, "max_bytes": 1500}},
             {"name": "c", "src": "h1:wire", "dst": "h1:ns0", "rate_pps": 50_000,
              "size": {"dist": "choice", "values": [64, 1500], "weights": [3, 1]}}]
    p = simulate(one_host(flows=flows, cores=2, duration_ns=5e7)).packets
    u = p[p.flow == "u"].size_bytes
    assert abs(u.mean() - 800) < 5 * (1400 / np.sqrt(12)) / np.sqrt(len(u))
    c = p[p.flow == "c"].size_bytes
    sd = np.sqrt(0.25 * 0.75) * (1500 - 64)
    assert abs(c.mean() - (0.75 * 64 + 0.25 * 1500)) < 5 * sd / np.sqrt(len(c))     # 5 sigma
    assert p[p.flow == "u"].size_bytes.between(100, 1500).all()


def read_ns(size_bytes):
    """The default profile's read of a packet of `size_bytes`: recvmsg and its copy (sim.core.apps)."""
    return PROFILE.host.app_recv_ns + PROFILE.host.app_recv_per_byte_ns * size_bytes


def test_request_response_is_a_closed_loop():
    sc = one_host("l2-routed", namespaces=2, flows=[{"kind": "rr", "src": "h1:ns0", "dst": "h1:ns1",
                                                     "server_ns": 5000, "think_ns": 10_000}], duration_ns=2e7)
    r = simulate(sc)
    p = r.packets
    req, resp = p[p.direction == "request"], p[p.direction == "response"]
    assert len(req) - len(resp) in (0, 1)                 # never more than one outstanding
    merged = resp.merge(req, on="seq", suffixes=("_resp", "_req"))
    wake = PROFILE.host.wakeup_local_ns         # one core: each reader is woken on its own core
    # each response leaves after the server's thread was woken, read the request and served it
    gap = merged.t_sent_ns_resp - merged.t_done_ns_req
    assert np.allclose(gap, wake + read_ns(merged.size_bytes_req) + 5000)
    # transactions per second = 1 / (round trip + wake-ups + reads + server work + think)
    reads = read_ns(merged.size_bytes_req) + read_ns(merged.size_bytes_resp)
    cycle = (merged.latency_ns_req + merged.latency_ns_resp + reads).mean() + 2 * wake + 5000 + 10_000
    assert len(resp) == pytest.approx(2e7 / cycle, rel=0.02)


@pytest.mark.parametrize("concurrency, think_ns", [(1, 10_000), (4, 0), (8, 2_000)])
def test_transactions_per_second_obey_littles_law(concurrency, think_ns):
    """flows.csv's rate and mean transaction time over the window after warm-up: a closed
    loop of N transactions with think time Z has X = N / (R + Z) (Little's law on the
    loop), whatever the scheme and the contention."""
    sc = one_host("l2-bridged", namespaces=2, cores=2, duration_ns=4e7,
                  flows=[{"kind": "rr", "src": "h1:ns0", "dst": "h1:ns1", "server_ns": 3000,
                          "think_ns": think_ns, "concurrency": concurrency},
                         {"kind": "poisson", "src": "h1:wire", "dst": "h1:ns1", "rate_pps": 20_000}])
    sc["run"]["warmup_ns"] = 5e6
    flows = simulate(sc).flows.set_index("kind")
    x, r = flows.loc["rr", "transactions_per_s"], flows.loc["rr", "transaction_mean_ns"]
    assert x * (r + think_ns) / 1e9 == pytest.approx(concurrency, rel=0.02)
    assert np.isnan(flows.loc["poisson", "transactions_per_s"])


def rr_exponential_run(seed, duration_ns=2e8):
    sc = one_host("l2-routed", namespaces=2, seed=seed, duration_ns=duration_ns,
                  flows=[{"kind": "rr", "src": "h1:ns0", "dst": "h1:ns1", "server_ns": 5000, "think_ns": 10_000,
                          "server_dist": "exponential", "think_dist": "exponential"}])
    return simulate(sc).packets


def test_rr_exponential_server_and_think_times():
    """One transaction in flight on one core: the server's work between reading a request and
    sending its response, and the client's pause between reading a response and sending the
    next request, are exponential draws with means server_ns and think_ns (CV 1), from the
    flow's seeded generator."""
    p = rr_exponential_run(1)
    req, resp = p[p.direction == "request"], p[p.direction == "response"]
    merged = resp.merge(req, on="seq", suffixes=("_resp", "_req"))
    wake = PROFILE.host.wakeup_local_ns
    work = (merged.t_sent_ns_resp - merged.t_done_ns_req - wake - read_ns(merged.size_bytes_req)).to_numpy()
    # the next request leaves think_ns after the client read the response
    sent = np.sort(req.t_sent_ns.to_numpy())
    done = np.sort(resp.t_done_ns.to_numpy())
    n = min(len(done), len(sent) - 1)
    think = sent[1:n + 1] - done[:n] - wake - read_ns(resp.size_bytes.iloc[0])
    for x, mean in ((work, 5000), (think, 10_000)):
        assert len(x) > 5000 and x.min() >= 0
        assert x.mean() == pytest.approx(mean, rel=0.03)
        assert x.std() / x.mean() == pytest.approx(1.0, abs=0.05)
    short = rr_exponential_run(1, 2e7)                          # a seed decides the draws
    assert rr_exponential_run(1, 2e7).equals(short)
    assert not rr_exponential_run(2, 2e7).t_sent_ns.equals(short.t_sent_ns)


def test_links_add_serialization_and_propagation_per_hop():
    names = ["a", "s1", "s2", "b"]
    sc = {"hosts": [{"name": "a"}, {"name": "b"}], "switches": [{"name": "s1"}, {"name": "s2"}],
          "links": [{"a": x, "b": y, "rate_bps": 1e9, "delay_ns": 2000} for x, y in zip(names, names[1:])],
          "flows": [{"kind": "constant", "src": "a:ns0", "dst": "b:ns0", "rate_pps": 1000, "size": {"bytes": 1000}}],
          "run": {"duration_ns": 1e7}}
    d = delivered(simulate(sc).packets)
    assert np.allclose(d.wire_ns, 3 * (serialization_ns(1000, 1e9) + 2000))
    assert (d.link_queue_ns == 0).all()


def test_shortest_path_is_taken():
    sc = {"hosts": [{"name": "a"}, {"name": "b"}], "switches": [{"name": "s1"}, {"name": "s2"}],
          "links": [{"a": "a", "b": "s1", "rate_bps": 1e9}, {"a": "s1", "b": "s2", "rate_bps": 1e9},
                    {"a": "s2", "b": "b", "rate_bps": 1e9}, {"a": "a", "b": "b", "rate_bps": 1e9, "delay_ns": 7}],
          "flows": [{"kind": "constant", "src": "a:ns0", "dst": "b:ns0", "rate_pps": 1000, "size": {"bytes": 125}}],
          "run": {"duration_ns": 1e7}}
    d = delivered(simulate(sc).packets)
    assert np.allclose(d.wire_ns, 1000 + 7)


def test_no_route_is_a_clear_error():
    sc = {"hosts": [{"name": "a"}, {"name": "b"}],
          "flows": [{"src": "a:ns0", "dst": "b:ns0", "rate_pps": 1000}], "run": {"duration_ns": 1e6}}
    with pytest.raises(ValueError, match="no route from host 'a' to host 'b'"):
        simulate(sc)


MACVLAN = {
    "description": "child to child over macvlan in bridge mode: output, then input in the peer",
    "socket_tables": "per_namespace",
    "capabilities": {"own_routes": True, "own_netfilter": True, "own_devices": True, "dhcp_raw_nonip": True,
                     "tunnels_vpn": True, "migration_with_ip": True},
    "addresses_per_container": 1, "devices_per_container": 1,
    "memory_per_namespace": {"netns_struct": 1, "net_device": 2},
    "trips": {
        "wire_to_ns": [{"ns": "dst", "queue": "nic_rx", "stages": ["nic_rx", "l2_demux", "ip_rcv", "route_input", "socket_lookup", "socket_enqueue"]}],
        "ns_to_wire": [{"ns": "src", "queue": "process", "stages": ["socket_send", "route_output", "ip_output", "dev_xmit", "nic_tx"]}],
        "ns_to_ns": [{"ns": "src", "queue": "process", "stages": ["socket_send", "route_output", "ip_output", "dev_xmit"]},
                     {"ns": "dst", "queue": "backlog", "stages": ["l2_demux", "ip_rcv", "route_input", "socket_lookup", "socket_enqueue"]}],
        "multicast": [{"ns": "dst", "queue": "nic_rx", "fanout": True, "stages": ["nic_rx", "l2_demux", "ip_rcv", "socket_lookup", "socket_enqueue"]}],
    },
}


def test_a_scheme_defined_in_the_scenario_runs_without_python():
    sc = one_host("macvlan", namespaces=2, flows=[{"kind": "constant", "src": "h1:ns0", "dst": "h1:ns1", "rate_pps": 1000}],
                  duration_ns=1e7)
    sc["schemes"] = {"macvlan": MACVLAN}
    r = simulate(sc)
    d = delivered(r.packets)
    assert len(d) > 0 and (d.n_passes == 2).all() and (d.veth_xmit_ns == 0).all()
    assert set(r.memory.scheme) == {"macvlan"}


def test_a_bad_scheme_names_the_stage_and_suggests():
    bad = dict(MACVLAN, trips=dict(MACVLAN["trips"], ns_to_ns=[{"ns": "src", "queue": "process", "stages": ["socket_sendd"]}]))
    sc = one_host("macvlan", flows=[], duration_ns=1e6)
    sc["schemes"] = {"macvlan": bad}
    with pytest.raises(ValidationError, match="did you mean 'socket_send'"):
        simulate(sc)


def test_unknown_scheme_suggests_the_nearest():
    with pytest.raises(KeyError, match="did you mean 'l2-routed'"):
        simulate(one_host("l2-routd", flows=[], duration_ns=1e6))


def test_spread_destination_covers_the_namespaces_uniformly():
    p = simulate(one_host("l2-routed", namespaces=50, cores=2,
                     flows=[{"src": "h1:wire", "dst": "h1:ns*", "rate_pps": 200_000}], duration_ns=1e8)).packets
    counts = p.dst_netns.value_counts().reindex(range(50), fill_value=0)
    expected = len(p) / 50
    chi2 = float((((counts - expected) ** 2) / expected).sum())
    assert chi2 < 100            # 49 degrees of freedom: p < 1e-4 beyond this
