"""GSO/TSO on send and GRO on receive for TCP flows (`sim.core.tcp`, docs/tcp.md) against theory.

The cost formulas use a profile with every stage free but four (cost_overrides): a send's
`tcp_send` (base B once per packet; per byte beta, paid by the sender's writes for the payload
and by a pure ACK's pass for its 52 bytes), the
receiving NIC's `nic_rx` (base F, once per frame: the driver's RX and GRO), the
receiver's `tcp_rcv` (base E) for a data packet and `tcp_ack` (base A) for a pure ACK.  A data
packet of k segments of MSS bytes is
k MSS + 52 bytes (one set of headers: the skb stays whole; the wire carries k frames).
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.core.simulate import simulate
from sim.core.stages import STAGE_NAMES
from sim.core.tcp import HEADER_BYTES

MSS = 1448
B, BETA, F, E, A = 2000.0, 0.25, 700.0, 300.0, 120.0
RWND = 128 * MSS                  # a multiple of every batch tested; with init_cwnd as large, the first
# flight is packets of exactly k segments, and ACK clocking keeps them so (each ACK frees one packet's)
FREE_HOST = {"wakeup_local_ns": 0, "wakeup_ipi_ns": 0, "wakeup_ipi_send_ns": 0, "wakeup_local_send_ns": 0,
             "tx_completion_ns": 0}


def priced(cost_b=B, beta=BETA):
    """cost_overrides: every stage free but tcp_send, nic_rx, tcp_rcv and tcp_ack (TCP's stages in
    place of socket_send and socket_enqueue, sim.core.tcpcost; and no br_netfilter surcharge on
    the bridge of l2-bridged)."""
    stages = {n: {"base_ns": 0, "per_byte_ns": 0, "per_entry_ns": 0} for n in STAGE_NAMES}
    stages["tcp_send"] = {"base_ns": cost_b, "per_byte_ns": beta, "per_entry_ns": 0}
    stages["nic_rx"] = {"base_ns": F, "per_byte_ns": 0, "per_entry_ns": 0}
    stages["tcp_rcv"] = {"base_ns": E, "per_byte_ns": 0, "per_entry_ns": 0}
    stages["tcp_ack"] = {"base_ns": A, "per_byte_ns": 0, "per_entry_ns": 0}
    return {"stages": stages, "host": FREE_HOST, "netfilter": {"br_netfilter": {"base_ns": 0}}}


def tcp_of(k: int) -> dict:
    """flows[].tcp for batches of k segments (k = 1: GSO off, the per-segment model)."""
    t = {"rwnd_bytes": RWND, "init_cwnd": RWND // MSS}
    return dict(t, gso=False) if k == 1 else dict(t, gso_max_bytes=k * MSS)


def stream_run(k: int, two_hosts: bool, rate=100e9, delay=5e3, cost_b=B, beta=BETA, dur=2e7, cores=2):
    big = {"rcvbuf_bytes": 50_000_000, "sndbuf_bytes": 50_000_000, "cores": cores}
    flow = {"kind": "tcp_stream", "src": "a:ns0", "dst": "b:ns0" if two_hosts else "a:ns1", "tcp": tcp_of(k)}
    if two_hosts:
        sc = {"hosts": [{"name": "a", "scheme": "host", **big}, {"name": "b", "scheme": "host", **big}],
              "links": [{"a": "a", "b": "b", "rate_bps": rate, "delay_ns": delay}]}
    else:
        sc = {"hosts": [{"name": "a", "scheme": "l2-bridged", "namespaces": 2, **big}]}
    sc.update(flows=[flow], cost_overrides=priced(cost_b, beta), run={"duration_ns": dur, "warmup_ns": dur / 4})
    return simulate(sc)


def cpu_per_byte(r, frames_cost: bool, warmup_ns: float) -> float:
    """Stage CPU per payload byte of a stream, from the packets that ended after warm-up: each
    data packet's passes (B, E, and F per frame when it crossed a NIC), each pure ACK's (B +
    beta 52, A, F), the writes' copy, beta per payload byte (the sender's writes pay
    tcp_send's per-byte term, not the packets: sim.core.tcpcost.WRITTEN), and what the
    applications spun in lock_sock while softirq sent for their socket (`TcpFlow._lock_sock`)."""
    f = F if frames_cost else 0.0
    p = r.packets
    p = p[p.t_done_ns >= warmup_ns]
    data = p[(p.direction == "request") & (p.size_bytes > 100)]
    acks = p[(p.direction == "response") & (p.size_bytes == HEADER_BYTES)]
    frames = np.ceil((data.size_bytes - HEADER_BYTES) / MSS).sum()
    payload = r.model.flows[0].window_bytes
    spun = r.model.flows[0].lock_wait_ns        # lock_sock spinning while softirq sends for the socket
    cpu = len(data) * (B + E) + frames * f + len(acks) * (B + BETA * HEADER_BYTES + A + f) + BETA * payload + spun
    return cpu / payload


@pytest.mark.parametrize("two_hosts", [True, False], ids=["two-hosts-tso-gro", "one-host-veth"])
def test_cpu_per_gb_follows_the_affine_cost_of_the_batch(two_hosts):
    """CPU per GB = per-packet costs / (k MSS) + per-byte costs, for k = 1 .. 64 (64 segments
    are 92,672 bytes: BIG TCP); the per-frame stage (nic_rx: driver RX and GRO) counts k times
    when the segments crossed a NIC, and not at all between two namespaces of one host (the
    skb stays whole, veth is GSO-capable)."""
    got = {}
    for k in (1, 2, 8, 32, 64):
        r = stream_run(k, two_hosts)
        got[k] = r.flows.cpu_ns_per_gb[0] / 1e9
        assert got[k] == pytest.approx(cpu_per_byte(r, two_hosts, 2e7 / 4), rel=0.01), k
        p = r.packets
        data = p[(p.direction == "request") & (p.size_bytes > 100)]
        segments = np.ceil((data.size_bytes - HEADER_BYTES) / MSS)
        assert segments.max() == k and segments.mean() >= k / 3, k     # batches of k, and each 64 KiB write's rest
    assert got[64] < got[32] < got[8] < got[2] < got[1]


def test_cpu_bound_stream_grows_with_the_batch_as_the_formula_says():
    """One core per host and a send that costs 5 us + 2 ns per byte (the copy from user): the
    sender's core is the bottleneck (at least twice the receiver's load here); per data packet
    it runs the send, 5000 + 2 (k MSS + 52) ns, and the receipt of its share of ACKs (F + A
    each: one per packet; per segment one per two), so it moves k MSS bytes in that time."""
    cost_b, beta = 5000.0, 2.0
    got = {}
    for k in (1, 4, 16, 64):                  # 64: BIG TCP (92,672-byte packets)
        got[k] = stream_run(k, True, cost_b=cost_b, beta=beta, dur=5e7, cores=1).flows.throughput_bytes_per_s[0]
        acks = 0.5 if k == 1 else 1.0
        sender = cost_b + beta * (k * MSS + HEADER_BYTES) + acks * (F + A)
        receiver = k * F + E + acks * (cost_b + beta * HEADER_BYTES)
        assert sender > 2 * receiver
        assert got[k] == pytest.approx(k * MSS / sender * 1e9, rel=0.03), k
    assert got[1] < got[4] < got[16] < got[64]


def test_one_ack_per_gro_packet():
    """A GRO packet of two or more full segments is acknowledged at once (rcv_nxt - rcv_wup >
    rcv_mss), so a bulk transfer sends about one pure ACK per data packet, delayed ACKs or not."""
    for delayed in (True, False):
        sc = {"hosts": [{"name": "a", "scheme": "host"}, {"name": "b", "scheme": "host"}],
              "links": [{"a": "a", "b": "b", "rate_bps": 10e9, "delay_ns": 5e3}],
              "flows": [{"kind": "tcp_stream", "src": "a:ns0", "dst": "b:ns0", "tcp": {"delayed_ack": delayed}}],
              "run": {"duration_ns": 2e7, "warmup_ns": 0}}
        r = simulate(sc)
        f = r.model.flows[0]
        p = r.packets
        delivered = ((p.direction == "request") & (p.status == "delivered") & (p.size_bytes > HEADER_BYTES + 8)).sum()
        assert f.data_segments > 3 * f.data_packets          # batches of several segments
        assert f.acks / delivered == pytest.approx(1.0, abs=0.02)   # (not sent: some are queued at the end)


def test_gso_with_one_segment_per_packet_is_the_per_segment_model():
    """gso_max_bytes = mss_bytes (every packet one segment) takes the GSO code path and gives
    exactly what gso: false gives, packet for packet.  (HyStart off: its ACK-train threshold
    uses sk_gso_max_size, which is gso_max_bytes with GSO and the legacy 64 KiB without.)"""
    def run(tcp):
        sc = {"hosts": [{"name": "a", "scheme": "host"}, {"name": "b", "scheme": "host"}],
              "links": [{"a": "a", "b": "b", "rate_bps": 1e9, "delay_ns": 1e5, "loss_rate": 0.01}],
              "flows": [{"kind": "tcp_stream", "src": "a:ns0", "dst": "b:ns0", "tcp": tcp}],
              "run": {"duration_ns": 1e8, "warmup_ns": 1e7}}
        return simulate(sc)
    one, off = run({"gso_max_bytes": MSS, "hystart": False}), run({"gso": False, "hystart": False})
    assert one.flows.equals(off.flows) and one.packets.equals(off.packets)
    assert one.model.flows[0].data_segments == one.model.flows[0].data_packets > 500


def test_tso_autosize_sends_at_least_min_tso_segs_and_half_the_cwnd_at_most():
    """RTT 10 ms, cwnd 10: the pacing rate (200 % of cwnd MSS / srtt, tcp_update_pacing_rate)
    gives under one segment per ms (tcp_tso_autosize), so packets of tcp_min_tso_segs = 2; with
    RTT 20 us the min-RTT bonus allows 64 KiB, and tcp_cwnd_test caps a packet at cwnd / 2 = 5."""
    for delay, want in ((5e6, 2), (1e4, 5)):
        sc = {"hosts": [{"name": "a", "scheme": "host"}, {"name": "b", "scheme": "host"}],
              "links": [{"a": "a", "b": "b", "rate_bps": 10e9, "delay_ns": delay}],
              "flows": [{"kind": "tcp_stream", "src": "a:ns0", "dst": "b:ns0"}],
              "run": {"duration_ns": 3 * delay + 1e5, "warmup_ns": 0}}
        p = simulate(sc).packets
        data = p[(p.direction == "request") & (p.size_bytes > 60)].sort_values("t_sent_ns")
        first = np.ceil((data.size_bytes.to_numpy()[:10 // want] - HEADER_BYTES) / MSS)
        assert list(first) == [want] * (10 // want), delay


def test_segments_are_conserved_and_runs_are_deterministic_under_frame_loss():
    """A lossy link loses frames independently; every segment sent is delivered (GRO merges the
    runs between lost frames), lost, or still in flight; new data is sent once; the receiver's
    bytes stay in order; a seed gives the same packets, another seed others."""
    def run(seed):
        sc = {"hosts": [{"name": "a", "scheme": "host"}, {"name": "b", "scheme": "host"}],
              "links": [{"a": "a", "b": "b", "rate_bps": 10e9, "delay_ns": 2e4, "loss_rate": 0.002}],
              "flows": [{"kind": "tcp_stream", "src": "a:ns0", "dst": "b:ns0"}],
              "run": {"duration_ns": 2e8, "warmup_ns": 0, "seed": seed}}
        return simulate(sc)
    r1, r2 = run(1), run(1)
    f = r1.model.flows[0]
    snd, rcv = f.conns[0].sides
    p = r1.packets
    data = p[(p.direction == "request") & (p.size_bytes > 60)]
    segs = np.ceil((data.size_bytes - HEADER_BYTES) / MSS)
    assert segs.sum() == f.data_segments and len(data) == f.data_packets
    in_flight = segs[data.status == "in_flight"].sum()
    assert f.data_segments == f.segments_delivered + f.segments_dropped + in_flight
    assert f.segments_dropped > 0 and f.retransmits > 0 and f.data_segments > 3 * f.data_packets
    assert (f.data_segments - f.retransmits) * MSS == snd.high_tx
    assert snd.snd_una <= rcv.rcv_nxt <= snd.high_tx and f.window_bytes == rcv.rcv_nxt
    assert r1.flows.equals(r2.flows) and r1.packets.equals(r2.packets)
    assert not run(2).flows.equals(r1.flows)


def test_a_gso_packet_takes_each_frames_bytes_on_the_wire():
    """Link-limited: the payload share of the wire is MSS / (MSS + 52) with GSO as without (the
    NIC sends each segment as a frame with its own headers)."""
    rate = 1e9
    sc = {"hosts": [{"name": "a", "scheme": "host"}, {"name": "b", "scheme": "host"}],
          "links": [{"a": "a", "b": "b", "rate_bps": rate, "delay_ns": 5e3}],
          "flows": [{"kind": "tcp_stream", "src": "a:ns0", "dst": "b:ns0"}],
          "run": {"duration_ns": 1e8, "warmup_ns": 2e7}}
    r = simulate(sc)
    assert r.model.flows[0].data_segments > 10 * r.model.flows[0].data_packets
    assert r.flows.throughput_bytes_per_s[0] == pytest.approx(rate / 8 * MSS / (MSS + HEADER_BYTES), rel=0.01)


@pytest.mark.parametrize("tcp, words", [
    ({"gso_max_bytes": 600_000}, "GSO_MAX_SIZE"),
    ({"gso_max_bytes": 1000}, "gso: false"),
    ({"gso": "yes"}, "bool"),
])
def test_bad_gso_values_name_the_key_and_the_fix(tcp, words):
    sc = {"hosts": [{"name": "a", "scheme": "host", "namespaces": 2}],
          "flows": [{"kind": "tcp_stream", "src": "a:ns0", "dst": "a:ns1", "tcp": tcp}],
          "run": {"duration_ns": 1e6}}
    with pytest.raises(ValueError) as e:
        simulate(sc)
    assert "tcp" in str(e.value) and words in str(e.value), str(e.value)


def test_a_lossy_link_loses_each_frame_of_a_gso_packet_independently():
    """Frames lost / frames that crossed the link = loss_rate (within 4 standard errors); most
    losses leave the rest of their packet delivered (a whole 20-segment packet is lost with
    probability p^20), and the receiver gets the runs between lost frames (GRO merges
    consecutive segments only)."""
    p = 0.002
    sc = {"hosts": [{"name": "a", "scheme": "host"}, {"name": "b", "scheme": "host"}],
          "links": [{"a": "a", "b": "b", "rate_bps": 10e9, "delay_ns": 2e4, "loss_rate": p}],
          "flows": [{"kind": "tcp_stream", "src": "a:ns0", "dst": "b:ns0"}],
          "run": {"duration_ns": 1e9, "warmup_ns": 0}}
    r = simulate(sc)
    f = r.model.flows[0]
    n = f.segments_delivered + f.segments_dropped
    assert f.data_segments > 2 * f.data_packets and n > 5_000
    assert f.segments_dropped / n == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / n))
    pk = r.packets
    whole = pk[(pk.direction == "request") & (pk.drop_reason == "link_loss")]
    assert np.ceil((whole.size_bytes - HEADER_BYTES) / MSS).sum() < f.segments_dropped / 2
    runs = type(f)._runs
    assert runs(0, 5 * MSS, (), MSS) == [(0, 5 * MSS)]
    assert runs(0, 5 * MSS, (1, 3), MSS) == [(0, MSS), (2 * MSS, 3 * MSS), (4 * MSS, 5 * MSS)]
    assert runs(100, 100 + 2 * MSS + 10, (0,), MSS) == [(100 + MSS, 100 + 2 * MSS + 10)]


def test_half_the_peers_largest_window_bounds_the_packet_as_the_window_grows():
    """tcp_bound_to_half_wnd halves max_window, the largest window the peer has offered
    (tcp_ack_update_window), not its first: a stream that starts at a 32 KB window (packets of
    at most 11 segments) sends far larger ones once autotuning has opened the window, up to
    BIG TCP's gso_max_bytes (here 64 segments); without autotuning it stays at half of 32 KB."""
    def largest_segments(autotune: bool) -> int:
        sc = {"hosts": [{"name": "a", "scheme": "host"}, {"name": "b", "scheme": "host"}],
              "links": [{"a": "a", "b": "b", "rate_bps": 10e9, "delay_ns": 5e4}],
              "flows": [{"kind": "tcp_stream", "src": "a:ns0", "dst": "b:ns0",
                         "tcp": {"rwnd_bytes": 32768, "gso_max_bytes": 64 * MSS, "rcvbuf_autotune": autotune}}],
              "run": {"duration_ns": 5e7, "warmup_ns": 0}}
        r = simulate(sc)
        sender = r.model.flows[0].conns[0].sides[0]
        assert sender.peer_wnd >= 32768 and (sender.peer_wnd > 32768) == autotune
        return int((r.packets.size_bytes.max() - HEADER_BYTES) // MSS)
    assert largest_segments(False) == 32768 // 2 // MSS
    assert largest_segments(True) == 64
