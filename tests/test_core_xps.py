"""Transmit: NIC TX completion and XPS (issue 10, "XPS for transmit"; sim/core/txq.py).

Where a packet's TX completion runs (the sender's core with XPS, the flow hash's queue
without), that it only moves CPU time between cores (conservation), that it is charged once
per packet handed to the NIC, and that it adds no engine event to an unloaded packet."""

import numpy as np
import pytest

from sim.core.costs import load_profile
from sim.core.simulate import simulate
from sim.core.stages import STAGE_NAMES
from tests.scenarios_for_tests import delivered, one_host

TXC = load_profile().host.tx_completion_ns
STAGE_COLS = [f"{s}_ns" for s in STAGE_NAMES]


def to_wire(xps, scheme="host", cores=4, src_core=1, packets=200, rate_pps=100_000, connections=1, **host):
    flows = [{"name": "tx", "kind": "constant", "src": "h1:ns0", "dst": "h1:wire", "rate_pps": rate_pps,
              "src_core": src_core, "connections": connections}]
    sc = one_host(scheme, namespaces=2, cores=cores, xps=xps, flows=flows, duration_ns=1e9, **host)
    sc["run"]["max_packets"] = packets
    return simulate(sc)


def completion_ns(r):
    return r.cores.tx_completion_ns.to_numpy()


def test_with_xps_the_completion_runs_on_the_sending_core():
    r = to_wire(xps=True)
    n = len(delivered(r.packets))
    assert n == 200
    assert completion_ns(r) == pytest.approx([0, n * TXC, 0, 0])
    assert r.model.hosts[0].txq.completions == [0, n, 0, 0]


def test_without_xps_the_flow_hash_picks_the_queue_and_so_the_core():
    one = to_wire(xps=False)
    txq = one.model.hosts[0].txq
    used = [c for c, k in enumerate(txq.completions) if k]
    assert len(used) == 1 and used[0] != 1          # this flow's hash lands on another core's queue
    assert completion_ns(one)[used[0]] == pytest.approx(200 * TXC)
    spread = to_wire(xps=False, connections=8)        # eight source ports: eight hashes
    assert sum(k > 0 for k in spread.model.hosts[0].txq.completions) > 1
    assert completion_ns(spread).sum() == pytest.approx(200 * TXC)


def test_fewer_tx_queues_than_cores_map_several_cores_to_one_queue():
    """The drivers' default map: core c -> queue c mod queues, completed on that queue's core."""
    r = to_wire(xps=True, src_core=3, rx_queues=2)
    assert r.model.hosts[0].txq.completions == [0, 200, 0, 0]


@pytest.mark.parametrize("scheme", ["host", "l2-routed", "vnic"])
def test_completion_moves_cpu_time_between_cores_and_conserves_it(scheme):
    """Same packets, same work: busy time summed over cores is the same with and without XPS,
    and equals the stage costs of the records plus one completion per packet."""
    runs = {x: to_wire(xps=x, scheme=scheme) for x in (True, False)}
    for r in runs.values():
        d = r.packets
        assert (d.status == "delivered").all() and len(d) == 200
        busy = r.cores.busy_ns.sum()
        assert busy == pytest.approx(d[STAGE_COLS].to_numpy().sum() + 200 * TXC)
        assert completion_ns(r).sum() == pytest.approx(200 * TXC)
    on, off = (runs[x].cores.busy_ns.to_numpy() for x in (True, False))
    assert on.sum() == pytest.approx(off.sum())
    assert not np.allclose(on, off)                  # ... but on other cores


def test_a_zero_completion_cost_is_the_model_without_tx_completion():
    base = to_wire(xps=True)
    none = one_host("host", namespaces=2, cores=4, flows=[{"name": "tx", "kind": "constant", "src": "h1:ns0",
                                                            "dst": "h1:wire", "rate_pps": 100_000, "src_core": 1}],
                    duration_ns=1e9)
    none["run"]["max_packets"] = 200
    none["cost_overrides"] = {"host": {"tx_completion_ns": 0}}
    r = simulate(none)
    assert completion_ns(r).sum() == 0
    assert r.cores.busy_ns.sum() == pytest.approx(base.cores.busy_ns.sum() - 200 * TXC)


def test_forwarded_packets_complete_on_the_core_that_forwarded_them():
    """l2-routed: the root's backlog pass runs nic_tx, on the core whose backlog the sender's veth
    filled (the sender's): with XPS that core cleans the TX ring too."""
    r = to_wire(xps=True, scheme="l2-routed", src_core=2)
    assert r.model.hosts[0].txq.completions == [0, 0, 200, 0]


def test_one_completion_per_packet_handed_to_the_nic():
    """Multicast: the wire copy for other hosts is one skb to the NIC; vnic's NIC replicates
    on its own (one transmit); container -> container over lo transmits nothing."""
    def mc(scheme):
        hosts = [dict(name=n, scheme=scheme, namespaces=3, cores=2) for n in ("h1", "h2")]
        sc = {"hosts": hosts, "links": [{"a": "h1", "b": "h2", "rate_bps": 1e10}],
              "groups": [{"name": "g", "members": ["h1:ns1", "h1:ns2", "h2:ns0", "h2:ns1"]}],
              "flows": [{"name": "mc", "kind": "constant", "src": "h1:ns0", "dst": "group:g", "rate_pps": 50_000}],
              "run": {"duration_ns": 1e9, "max_packets": 100}}
        return simulate(sc)
    for scheme in ("host", "l2-routed", "vnic"):
        r = mc(scheme)
        assert sum(r.model.hosts[0].txq.completions) == 100, scheme     # h1 sends each packet out once
        assert sum(r.model.hosts[1].txq.completions) == 0, scheme       # h2 only receives
    lo = simulate(one_host("host", namespaces=2, flows=[{"kind": "constant", "src": "h1:ns0", "dst": "h1:ns1",
                                                         "rate_pps": 50_000}], duration_ns=1e6))
    assert sum(lo.model.hosts[0].txq.completions) == 0


@pytest.mark.parametrize("xps", [True, False])
def test_tx_completion_adds_no_engine_event_to_an_unloaded_packet(xps):
    r = to_wire(xps=xps, rate_pps=10_000)
    p = r.packets
    assert r.stats["events"] == len(p) + p.n_passes.sum() + 1      # as before: emission + passes (+1 idle wake-up)


def test_xps_keeps_a_saturated_senders_completions_on_its_own_core():
    """Offered far above capacity, one sender on core 0 of 2: with XPS its core also cleans its
    TX ring, so it sends 1 / (S + C) per second; with the flow hash on the other core, 1 / S,
    and the other core does the cleaning."""
    s_ns = delivered(to_wire(xps=True, cores=2, src_core=0, packets=50, rate_pps=10_000).packets)[STAGE_COLS]
    s_ns = float(s_ns.sum(axis=1).mean())
    rates = {}
    for xps in (True, False):
        sc = one_host("host", namespaces=2, cores=2, xps=xps, duration_ns=2e6,
                      flows=[{"name": "tx", "kind": "constant", "src": "h1:ns0", "dst": "h1:wire",
                              "rate_pps": 5e9 / s_ns, "src_core": 0, "connections": 1}])
        r = simulate(sc)
        rates[xps] = (len(delivered(r.packets)) / 2e-3, r.model.hosts[0].txq.completions)
    assert rates[True][0] == pytest.approx(1e9 / (s_ns + TXC), rel=0.02)
    assert rates[True][1][1] == 0
    assert rates[False][1][0] == 0                   # this flow's hash picks core 1's queue ...
    assert rates[False][0] == pytest.approx(1e9 / s_ns, rel=0.02)
