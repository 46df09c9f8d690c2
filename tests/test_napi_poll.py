"""The per-poll stage napi_poll (sim/core/cpu.py, sim/core/host.py `open_poll`) against the kernel's rule.

net_rx_action calls each NAPI instance's poll for up to ``napi_weight`` packets
(net/core/dev.c __napi_poll); the poll's own work (its entry, process_backlog's splice of the
backlog under its lock, napi_complete_done) is paid once per call, by the packet that opens it.
process_backlog splices the backlog again before it completes, so a packet that a pass queues
back on the same CPU's backlog (a veth hop) is served in the same poll.  Hence:

- unloaded, a packet pays one poll per NAPI instance it enters on a core, however many veth
  hops it crosses there;
- a saturated core serves full polls, so each packet pays ``P / napi_weight`` per instance:
  its capacity is 1e9 / (S + k P / napi_weight) packets/s for k instances per packet and S
  the stage CPU besides the poll, against 1e9 / (S + k P) unloaded.
"""

import pytest

from sim.core.records import STAGE_COLUMNS
from sim.core.simulate import simulate
from tests.scenarios_for_tests import delivered, one_host

POLL_NS = 2000.0                # large against a pass, so the amortisation shows
WARMUP_NS, DURATION_NS = 4e6, 24e6


def scenario(scheme, src, rate_pps, weight=64, duration_ns=DURATION_NS, warmup_ns=0.0, **host):
    sc = one_host(scheme, namespaces=2, flows=[{"kind": "constant", "src": src, "dst": "h1:ns1", "rate_pps": rate_pps}],
                  duration_ns=duration_ns, **host)
    sc["cost_overrides"] = {"stages": {"napi_poll": {"base_ns": POLL_NS}}, "host": {"napi_weight": weight}}
    sc["run"]["warmup_ns"] = warmup_ns
    return sc


def unloaded(scheme, src, **host):
    return delivered(simulate(scenario(scheme, src, 10_000, duration_ns=2e6, **host)).packets)


@pytest.mark.parametrize("scheme", ["host", "l2-routed", "l2-bridged", "veth-bpf-peer"])
def test_an_unloaded_packet_pays_one_poll_however_many_hops(scheme):
    """Container to container on one core: the sender's pass queues the packet on the backlog,
    and every later pass (the root's forwarding, the peer's input) is served in that poll."""
    d = unloaded(scheme, "h1:ns0")
    assert (d.napi_poll_ns == POLL_NS).all()
    assert (d.n_passes >= (3 if scheme in ("l2-routed", "l2-bridged") else 2)).all()


def test_a_packet_from_the_wire_pays_a_poll_per_napi_instance():
    """wire -> container over l2-routed: the NIC queue's poll, then the backlog's (veth)."""
    d = unloaded("l2-routed", "h1:wire", app_recv_ns=0)
    assert d.napi_poll_ns.to_numpy() == pytest.approx(2 * POLL_NS)


@pytest.mark.parametrize("weight", [8, 64])
def test_a_saturated_core_shares_each_poll_among_napi_weight_packets(weight):
    """Twice that capacity from the wire: the core stays busy with full polls of
    both instances (NIC queue, backlog), so it delivers 1e9 / (S + 2 P / weight) packets/s,
    within 2%; unloaded it would be 1e9 / (S + 2 P), well below."""
    d0 = unloaded("l2-routed", "h1:wire", app_recv_ns=0)
    stage_ns = float(d0[list(STAGE_COLUMNS)].sum(axis=1).mean()) - 2 * POLL_NS
    capacity = 1e9 / (stage_ns + 2 * POLL_NS / weight)
    r = simulate(scenario("l2-routed", "h1:wire", 2 * capacity, weight=weight,
                          warmup_ns=WARMUP_NS, app_recv_ns=0))
    p = r.packets
    got = ((p.status == "delivered") & (p.t_done_ns >= WARMUP_NS)).sum() / ((DURATION_NS - WARMUP_NS) / 1e9)
    assert got == pytest.approx(capacity, rel=0.02)
    assert got > 1.5 * 1e9 / (stage_ns + 2 * POLL_NS)


def test_the_cores_busy_time_is_the_recorded_stage_cpu_polls_included():
    """Conservation: what the cores were busy equals the stage CPU the records hold (the polls'
    included), for a run that starts and ends idle."""
    sc = scenario("l2-routed", "h1:wire", 400_000, duration_ns=4e6, app_recv_ns=0)
    sc["flows"][0]["stop_ns"] = 2e6             # a burst above capacity, then time to drain it
    r = simulate(sc)
    p = r.packets
    assert (p.status == "delivered").all()
    assert r.cores.busy_ns.sum() == pytest.approx(p[list(STAGE_COLUMNS)].to_numpy().sum(), rel=1e-9)
    assert p.napi_poll_ns.sum() > 0


def test_a_scheme_may_not_list_the_poll_stage():
    sc = one_host("l2-routed", namespaces=2, flows=[{"src": "h1:ns0", "dst": "h1:ns1", "rate_pps": 1000}])
    sc["schemes"] = {"my-veth": {"extends": "l2-routed", "trips": {"ns_to_ns": [
        {"ns": "src", "queue": "process", "stages": ["socket_send", "route_output", "ip_output", "dev_xmit", "veth_xmit"]},
        {"ns": "dst", "queue": "backlog", "stages": ["napi_poll", "l2_demux", "ip_rcv", "socket_lookup", "socket_enqueue"]},
    ]}}}
    sc["hosts"][0]["scheme"] = "my-veth"
    with pytest.raises(Exception, match="napi_poll.*not listed in a pass"):
        simulate(sc)
