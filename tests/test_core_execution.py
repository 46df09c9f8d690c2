"""Host execution (sim/core/cpu.py, sim/core/apps.py, sim/core/spread.py) against theory.

Capacity of one core for a trip = 1e9 / (CPU ns per packet), where the CPU per packet is the
sum of the profile's stage costs over the trip's passes (as priced for that packet by an
unloaded probe run) plus the reader's ``app_recv_ns`` when a reader runs.

Overload, container -> container: the sender drains the backlog it fills, so the sender is
pushed back (``sender_blocked``) and the core delivers its capacity, reader included.
Overload, wire -> container: the kernel's path (no reader, ``app_recv_ns: 0``) delivers its
capacity and drops the excess at the NIC RX queue.  A reader sharing the core with an
unsaturated softirq gets only the CPU softirq leaves, (1 - lambda S) / R, as in Linux (the
receive-livelock regime); see `test_a_reader_sharing_the_core_gets_what_softirq_leaves`.
"""

import numpy as np
import pytest

from sim.core.costs import load_profile
from sim.core.records import STAGE_COLUMNS
from sim.core.simulate import simulate
from tests.scenarios_for_tests import delivered, one_host

PROFILE = load_profile()
HOST = PROFILE.host
APP_NS = HOST.app_recv_ns
WARMUP_NS = 4e6
DURATION_NS = 24e6
SRC = {"ns_to_ns": "h1:ns0", "wire_to_ns": "h1:wire"}
DST = {"ns_to_ns": "h1:ns1", "wire_to_ns": "h1:ns1"}
# where an excess may go: a full RX ring or backlog, the sender's full send buffer, or the
# reader's full receive buffer (a reader that shares the core with a faster sender, as in Linux)
NAMED_DROPS = {"nic_rx_full", "backlog_full", "sender_blocked", "socket_rcvbuf_full"}


def stage_ns(scheme, trip):
    """Stage costs (CPU ns) of one unloaded packet of `trip`."""
    sc = one_host(scheme, namespaces=2, flows=[{"kind": "constant", "src": SRC[trip], "dst": DST[trip],
                                                "rate_pps": 10_000}], duration_ns=2e6)
    d = delivered(simulate(sc).packets)
    return float(d[list(STAGE_COLUMNS)].sum(axis=1).mean())


def cpu_per_packet_ns(scheme, trip):
    """Stage costs of one unloaded packet of `trip`, plus the reader's read."""
    return stage_ns(scheme, trip) + APP_NS


def overload_run(scheme, trip, load, app_recv_ns=None):
    read_ns = APP_NS if app_recv_ns is None else app_recv_ns
    capacity_pps = 1e9 / (stage_ns(scheme, trip) + read_ns)
    offered = load * capacity_pps
    host = {} if app_recv_ns is None else {"app_recv_ns": app_recv_ns}
    sc = one_host(scheme, namespaces=2, flows=[{"src": SRC[trip], "dst": DST[trip], "rate_pps": offered}],
                  duration_ns=DURATION_NS, **host)
    sc["run"]["warmup_ns"] = WARMUP_NS
    return capacity_pps, offered, simulate(sc)


APP_OF_TRIP = {"ns_to_ns": None, "wire_to_ns": 0.0}     # see the module docstring


def delivered_pps(p):
    d = p[(p.status == "delivered") & (p.t_done_ns >= WARMUP_NS)]
    return len(d) / ((DURATION_NS - WARMUP_NS) / 1e9)


def check_no_collapse(scheme, trip, load):
    capacity, offered, r = overload_run(scheme, trip, load, APP_OF_TRIP[trip])
    p = r.packets
    got = delivered_pps(p)
    assert got >= 0.9 * min(offered, capacity), (scheme, trip, load, got, capacity)
    assert got <= 1.01 * capacity
    if load > 1:
        # the excess is dropped at a named queue or refused to the blocked sender
        drops = p[p.status == "dropped"]
        assert set(drops.drop_reason.unique()) <= NAMED_DROPS, drops.drop_reason.value_counts()
        assert len(drops) > 0
        # and nothing piles up: what is still inside at the end fits the bounded queues
        bound = HOST.rx_ring_packets + 2 * HOST.netdev_max_backlog + HOST.sndbuf_bytes // 704 + 300
        assert (p.status == "in_flight").sum() <= bound


@pytest.mark.parametrize("trip", ["ns_to_ns", "wire_to_ns"])
def test_l2_routed_three_times_capacity_does_not_collapse(trip):
    check_no_collapse("l2-routed", trip, 3.0)


def test_before_this_model_l2_routed_collapsed():
    """The issue's case (one core, l2-routed, container -> container, 1.4 Mpps offered)
    delivered 0 with one FIFO per core; now it delivers the core's capacity."""
    capacity = 1e9 / cpu_per_packet_ns("l2-routed", "ns_to_ns")
    sc = one_host("l2-routed", namespaces=2, flows=[{"src": "h1:ns0", "dst": "h1:ns1", "rate_pps": 1.4e6}],
                  duration_ns=DURATION_NS)
    sc["run"]["warmup_ns"] = WARMUP_NS
    assert delivered_pps(simulate(sc).packets) >= 0.9 * capacity


@pytest.mark.slow
@pytest.mark.parametrize("load", [0.9, 1.2, 1.5, 3.0])
@pytest.mark.parametrize("trip", ["ns_to_ns", "wire_to_ns"])
@pytest.mark.parametrize("scheme", ["host", "l2-routed", "l2-bridged"])
def test_overload_keeps_throughput_at_capacity(scheme, trip, load):
    check_no_collapse(scheme, trip, load)


def test_a_reader_on_the_softirq_core_keeps_up_once_ksoftirqd_takes_over():
    """3x capacity from the wire with the reader on the same core: softirq saturates, the
    excess goes to ksoftirqd, which shares the core fairly with the reader."""
    capacity, offered, r = overload_run("l2-routed", "wire_to_ns", 3.0)
    assert delivered_pps(r.packets) >= 0.9 * capacity


@pytest.mark.parametrize("scheme", ["host", "l2-routed", "l2-bridged"])
def test_a_reader_sharing_the_core_gets_what_softirq_leaves(scheme):
    """1.2x the capacity with the reader (cost R) on the softirq's core (cost S per packet):
    softirq is not saturated (lambda S < 1).  A softirq run that empties the poll list keeps
    priority, so the reader gets at least what softirq leaves, (1 - lambda S) / R; a run that
    exhausts its budget while the reader waits hands over to ksoftirqd and fair sharing, which
    moves the reader towards the capacity.  One-pass schemes sit at the lower end, two-pass
    schemes (two NAPI instances per packet fill rounds sooner) higher.  The rest of the
    packets overflow the reader's socket (or, under ksoftirqd, the NIC RX queue)."""
    capacity, offered, r = overload_run(scheme, "wire_to_ns", 1.2)
    s_ns = stage_ns(scheme, "wire_to_ns")
    assert offered * s_ns / 1e9 < 0.95
    leftover = (1 - offered * s_ns / 1e9) / APP_NS * 1e9
    p = r.packets
    assert 0.95 * leftover <= delivered_pps(p) <= 1.01 * capacity
    drops = p[(p.status == "dropped") & (p.t_sent_ns >= WARMUP_NS)]
    assert len(drops) and set(drops.drop_reason.unique()) <= {"socket_rcvbuf_full", "nic_rx_full"}


def test_a_flooded_sender_is_blocked_and_every_packet_has_one_record():
    _, _, r = overload_run("l2-routed", "ns_to_ns", 3.0)
    p = r.packets
    assert (p.drop_reason == "sender_blocked").sum() > 0
    assert len(p) == r.flows.sent.sum() and not p.duplicated(["origin_id", "dst_host", "dst_netns"]).any()


def test_sustained_softirq_load_shares_the_core_with_a_sender():
    """A wire flood at 3x capacity and a flooding sender on one core: ksoftirqd takes the excess
    softirq work and the scheduler shares the core, so the sender keeps about half of it."""
    send_ns = 1e9 / (1e9 / cpu_per_packet_ns("host", "wire_to_ns"))
    sc = one_host("host", namespaces=2, app_recv_ns=0, duration_ns=DURATION_NS,
                  flows=[{"name": "flood", "src": "h1:wire", "dst": "h1:ns1", "rate_pps": 3e9 / send_ns},
                         {"name": "tx", "src": "h1:ns0", "dst": "h1:wire", "rate_pps": 3e6}])
    sc["run"]["warmup_ns"] = WARMUP_NS
    r = simulate(sc)
    p = r.packets
    tx = delivered(p[p.flow == "tx"])
    tx = tx[tx.t_done_ns >= WARMUP_NS]
    tx_cpu = tx[list(STAGE_COLUMNS)].sum(axis=1).sum() / (DURATION_NS - WARMUP_NS)
    assert 0.35 <= tx_cpu <= 0.65, tx_cpu
    assert r.cores.utilisation.iloc[0] == pytest.approx(1.0, abs=0.01)


def test_napi_weight_shares_a_core_between_rx_queues():
    """Two flooded RX queues on one core are polled in turn, napi_weight packets each."""
    cpu = cpu_per_packet_ns("host", "wire_to_ns") - APP_NS
    flows = [{"name": f"f{i}", "src": "h1:wire", "dst": "h1:ns0", "rate_pps": 2e9 / cpu, "connections": 8}
             for i in range(2)]
    sc = one_host("host", rx_queues=2, app_recv_ns=0, flows=flows, duration_ns=DURATION_NS)
    p = simulate(sc).packets
    d = delivered(p)
    per_flow = d.groupby(d.flow, observed=True).size()
    assert per_flow.min() >= 0.3 * len(d)
    total = len(d) / (DURATION_NS / 1e9)
    assert total == pytest.approx(1e9 / cpu, rel=0.05)


# -- spreading ---------------------------------------------------------------------------------------
def spread_run(**host):
    cpu = cpu_per_packet_ns("l2-routed", "wire_to_ns")
    sc = one_host("l2-routed", namespaces=100, cores=4,
                  flows=[{"src": "h1:wire", "dst": "h1:ns*", "rate_pps": 0.5 * 4e9 / cpu}],
                  duration_ns=1e7, **host)
    return simulate(sc).cores.utilisation.to_numpy()


def test_one_wire_flow_to_many_containers_uses_every_core():
    u = spread_run()
    assert u.min() >= 0.15 * u.max(), u


def test_rps_spreads_one_rx_queue_over_every_core():
    u = spread_run(rx_queues=1, rps_cpus=[0, 1, 2, 3])
    assert u.min() >= 0.15 * u.max(), u
    without = spread_run(rx_queues=1)
    assert without[0] > u[0]                # the RX queue's core sheds work to the others


def test_connections_spread_one_flow_over_rx_queues():
    cpu = cpu_per_packet_ns("host", "wire_to_ns")
    one = dict(src="h1:wire", dst="h1:ns0", rate_pps=0.3 * 4e9 / cpu)
    u1 = simulate(one_host("host", cores=4, app_recv_ns=0, flows=[one], duration_ns=5e6)).cores.utilisation
    u8 = simulate(one_host("host", cores=4, app_recv_ns=0, flows=[dict(one, connections=8)],
                           duration_ns=5e6)).cores.utilisation
    assert (u1 > 0).sum() == 1 and (u8 > 0).sum() >= 3


# -- request/response as a closed queueing network ---------------------------------------------------
def mva(demands_ns, think_ns, n):
    """Exact MVA of a closed network (queueing stations with `demands_ns`, one delay station
    `think_ns`), `n` customers: (throughput per ns, mean response time ns)."""
    q = np.zeros(len(demands_ns))
    x = r = 0.0
    for k in range(1, n + 1):
        res = np.asarray(demands_ns) * (1 + q)
        r = float(res.sum())
        x = k / (think_ns + r)
        q = x * res
    return x, r


def rr_run(cores, concurrency, server_ns, src_core=None, dst_core=None, wake=True, think_ns=0.0):
    sc = one_host("l2-routed", namespaces=2, cores=cores, duration_ns=2e7,
                  flows=[{"kind": "rr", "src": "h1:ns0", "dst": "h1:ns1", "concurrency": concurrency,
                          "server_ns": server_ns, "think_ns": think_ns, "src_core": src_core,
                          "dst_core": dst_core}])
    if not wake:
        sc["cost_overrides"] = {"host": {"wakeup_local_ns": 0, "wakeup_ipi_ns": 0, "wakeup_ipi_send_ns": 0}}
    r = simulate(sc)
    f = r.model.flows[0]
    return r, f.transactions / 2e-2, f.transaction_ns / f.transactions


def rr_demands(server_ns):
    """CPU per transaction (ns) of the client's side and the server's side."""
    r, _, _ = rr_run(1, 1, server_ns)
    d = delivered(r.packets)
    stage = d[list(STAGE_COLUMNS)].sum(axis=1)
    req = stage[d.direction == "request"].mean()
    resp = stage[d.direction == "response"].mean()
    # the request's passes run on the client's core (its send, then the backlog it fills);
    # the server reads and works, then sends the response and runs its backlog passes
    return req + APP_NS, resp + APP_NS + server_ns


@pytest.mark.parametrize("server_ns", [0.0, 20_000.0])
@pytest.mark.parametrize("concurrency", [1, 8])
def test_rr_on_one_core_is_a_closed_network_of_one_station(server_ns, concurrency):
    client, server = rr_demands(server_ns)
    x, resp = mva([client + server], 2 * HOST.wakeup_local_ns if concurrency == 1 else 0.0, concurrency)
    _, tps, mean_ns = rr_run(1, concurrency, server_ns, wake=concurrency == 1)
    assert tps == pytest.approx(x * 1e9, rel=0.05)
    assert mean_ns == pytest.approx(resp + (2 * HOST.wakeup_local_ns if concurrency == 1 else 0), rel=0.05)


@pytest.mark.parametrize("server_ns, concurrency", [(0.0, 1), (20_000.0, 1), (20_000.0, 8)])
def test_rr_on_two_cores_is_a_closed_network_of_two_stations(server_ns, concurrency):
    """Client and server on their own cores: two stations.  MVA is exact at one customer and
    at a dominant bottleneck (X -> 1/D_max); see the next test for the balanced case."""
    client, server = rr_demands(server_ns)
    x, resp = mva([client, server], 0.0, concurrency)
    _, tps, mean_ns = rr_run(2, concurrency, server_ns, src_core=0, dst_core=1, wake=False)
    assert tps == pytest.approx(x * 1e9, rel=0.05)
    assert mean_ns == pytest.approx(concurrency / x, rel=0.05)    # interactive response time law, Z = 0


def test_rr_balanced_two_cores_lie_between_mva_and_the_bottleneck_bound():
    """Balanced deterministic stations pipeline better than MVA's exponential assumption:
    throughput lies between MVA and the asymptotic bound min(N / sum D, 1 / max D)."""
    client, server = rr_demands(0.0)
    x, _ = mva([client, server], 0.0, 8)
    bound = min(8 / (client + server), 1 / max(client, server))
    _, tps, _ = rr_run(2, 8, 0.0, src_core=0, dst_core=1, wake=False)
    assert x * 1e9 * 0.99 <= tps <= bound * 1e9 * 1.01


def test_rr_think_time_is_a_delay_station():
    """N customers, think time Z, one core of demand D per transaction.  The transaction's
    parts (client send, softirq, server read and send, softirq, client read) interleave, so
    neither MVA's exponential station nor a FIFO pipeline is exact here; the closed network's
    asymptotic bounds are: N / (N D + Z) <= X <= N / (D + Z), and the response time law
    R = N / X - Z holds exactly."""
    client, server = rr_demands(0.0)
    d, z, n = client + server, 50_000.0, 4
    _, tps, mean_ns = rr_run(1, n, 0.0, wake=False, think_ns=z)
    assert n / (n * d + z) * 1e9 <= tps <= n / (d + z) * 1e9
    assert mean_ns == pytest.approx(n / tps * 1e9 - z, rel=0.05)


# -- wake-ups ------------------------------------------------------------------------------------------
def test_cross_core_wakeup_adds_latency_not_reader_cpu():
    same, _, same_ns = rr_run(2, 1, 0.0, src_core=0, dst_core=0)
    cross, _, cross_ns = rr_run(2, 1, 0.0, src_core=0, dst_core=1)
    nowake, _, nowake_ns = rr_run(2, 1, 0.0, src_core=0, dst_core=1, wake=False)
    # two wake-ups per transaction (server, then client)
    assert cross_ns - nowake_ns == pytest.approx(2 * HOST.wakeup_ipi_ns, rel=0.02)
    assert same_ns - nowake_ns == pytest.approx(2 * HOST.wakeup_local_ns, rel=0.02)
    assert same_ns < cross_ns
    # the reader's core (1) spends the same CPU per transaction with or without the wake-up
    # latency; the waker's core pays the IPI
    per_tx = {k: r.cores.busy_ns.to_numpy() / r.model.flows[0].transactions
              for k, r in (("cross", cross), ("nowake", nowake))}
    _, server = rr_demands(0.0)
    assert per_tx["cross"][1] == pytest.approx(server + HOST.wakeup_ipi_send_ns, rel=0.01)
    assert per_tx["nowake"][1] == pytest.approx(server, rel=0.01)
    client, _ = rr_demands(0.0)
    assert per_tx["cross"][0] == pytest.approx(client + HOST.wakeup_ipi_send_ns, rel=0.01)
