"""A read copies the packet to user space (sim.core.apps): recvmsg's cost is ``app_recv_ns``
plus ``app_recv_per_byte_ns`` per byte of the packet (net/core/datagram.c
skb_copy_datagram_iter, from udp_recvmsg and tcp_recvmsg_locked), on the reading thread's core."""

from __future__ import annotations

import pytest

from sim.core.costs import load_profile
from sim.core.simulate import simulate
import sim.api as ns

WINDOW_NS = (1e6, 2e7)


def wire_to_reader(host: dict, sizes: dict, rate_pps: float = 50_000) -> dict:
    """Datagrams from the wire to a container: the NIC's one RX queue is core 0's, so every
    pass runs there; the container's reader is pinned to core 1, which does nothing else."""
    return {"hosts": [{"name": "h", "scheme": "l2-routed", "cores": 2, "namespaces": 2, "rx_queues": 1, **host}],
            "flows": [{"kind": "poisson", "src": "h:wire", "dst": "h:ns1", "rate_pps": rate_pps, "dst_core": 1,
                       "size": sizes}],
            "run": {"duration_ns": WINDOW_NS[1], "seed": 3}}


def reader_core(sc: dict) -> tuple[float, object]:
    r = simulate(sc)
    p = r.packets
    return r.cores.set_index("core").busy_ns[1], p[p.status == "delivered"]


@pytest.mark.parametrize("per_byte", [0.0, 0.05, 0.5])
def test_the_reader_pays_recvmsg_and_a_copy_per_byte(per_byte):
    """Core 1's busy time is the sum over delivered packets of app_recv_ns + per_byte x size,
    whatever the sizes (uniform 100-1,500 bytes here)."""
    busy, done = reader_core(wire_to_reader({"app_recv_ns": 700, "app_recv_per_byte_ns": per_byte},
                                            {"dist": "uniform", "min_bytes": 100, "max_bytes": 1500}))
    assert len(done) > 500 and done.size_bytes.nunique() > 100
    expected = 700 * len(done) + per_byte * done.size_bytes.sum()
    assert busy == pytest.approx(expected, abs=700 + per_byte * 1500)     # the last read may be unfinished


def test_the_copy_grows_the_readers_time_by_the_bytes_alone():
    """Two runs that differ only in per_byte: the reader's extra time is per_byte x the bytes read."""
    sizes = {"dist": "const", "bytes": 1400}
    b0, d0 = reader_core(wire_to_reader({"app_recv_ns": 500, "app_recv_per_byte_ns": 0.0}, sizes))
    b1, d1 = reader_core(wire_to_reader({"app_recv_ns": 500, "app_recv_per_byte_ns": 0.2}, sizes))
    assert len(d0) == len(d1)                                   # same seed, same arrivals, no drops
    assert b1 - b0 == pytest.approx(0.2 * 1400 * len(d1), abs=2 * (500 + 0.2 * 1400))


def test_no_reading_application_copies_nothing():
    """app_recv_ns 0 is a host without a reading application (the kernel path alone): no
    read job runs, whatever app_recv_per_byte_ns says."""
    busy, done = reader_core(wire_to_reader({"app_recv_ns": 0, "app_recv_per_byte_ns": 0.5},
                                            {"dist": "const", "bytes": 1000}))
    assert len(done) > 500 and busy == 0


def test_profiles_price_the_copy_within_their_stated_range():
    """Both profiles price the copy within the range measured on the development machine
    (default.yaml: 0.041-0.059 ns/B per round, tcp-cpu-by-stage.json), and the record holds
    the figures that range comes from: the sink's recvmsg per 64 KB skb, less a read's fixed
    part, per byte."""
    import json
    from pathlib import Path
    for name in ("default", "sim/profiles/amd-epyc-6.18.44.yaml"):
        assert 0.04 <= load_profile(name).host.app_recv_per_byte_ns <= 0.06
    rec = json.loads((Path(__file__).parents[1] / "sim/profiles/amd-epyc-6.18.44.tcp-cpu-by-stage.json").read_text())
    per_byte = sorted((r["cpu_category_ns_per_packet"]["1"]["socket_recv (kernel)"] - 350) / 64821
                      for r in rec["raw"]["floods"]["veth-tcp-bulk-offload"])
    assert 0.04 <= per_byte[0] and per_byte[-1] <= 0.06 and round(per_byte[len(per_byte) // 2], 3) == 0.049


def test_a_negative_copy_cost_is_refused_with_its_place():
    sc = {"name": "bad", **wire_to_reader({"app_recv_per_byte_ns": -1}, {"dist": "const", "bytes": 64})}
    with pytest.raises(ns.ScenarioError, match=r"hosts\[0\]\.app_recv_per_byte_ns: .*\(fix: "):
        ns.plan(sc)
