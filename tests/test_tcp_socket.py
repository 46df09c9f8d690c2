"""A TCP socket owned by its application, and a bulk sender that writes (sim.core.tcp, docs/tcp.md).

- While a read or a write holds the socket (lock_sock .. release_sock), what TCP sends for it
  waits in the backlog and leaves from the application's thread at the release
  (net/ipv4/tcp_ipv4.c tcp_v4_rcv -> tcp_add_backlog; net/core/sock.c __release_sock).
- A ``tcp_stream`` sender writes into a send buffer (net/ipv4/tcp.c tcp_sendmsg_locked): the
  copy is paid by the write on the sender's thread, not by the packets; a full buffer puts the
  writer to sleep until an ACK frees a third of it (net/core/stream.c sk_stream_write_space).
"""

from __future__ import annotations

import pytest

from sim.core.costs import load_profile
from sim.core.simulate import simulate
from sim.core.tcp import HEADER_BYTES

PROFILE = load_profile("default")
RTT_NS = 1e6                        # two 500 us links' worth of propagation, each way once


def two_hosts(wmem_max_bytes=4194304, stages=None, dur=2e8, rate_bps=10e9, app_recv_ns=800.0, **tcp):
    """tcp_stream a -> b over `rate_bps` and 0.5 ms; each host's RX queue on core 0, the
    applications on core 1."""
    host = lambda n: {"name": n, "scheme": "host", "cores": 2, "rx_queues": 1, "app_recv_ns": app_recv_ns}  # noqa: E731
    sc = {"hosts": [host("a"), host("b")],
          "links": [{"a": "a", "b": "b", "rate_bps": rate_bps, "delay_ns": RTT_NS / 2}],
          "flows": [{"kind": "tcp_stream", "src": "a:ns0", "dst": "b:ns0", "src_core": 1, "dst_core": 1,
                     "tcp": {"wmem_max_bytes": wmem_max_bytes, **tcp}}],
          "run": {"duration_ns": dur, "warmup_ns": min(5e7, dur / 2), "seed": 1}}
    if stages:
        sc["cost_overrides"] = {"stages": stages}
    return simulate(sc)


def test_a_written_packet_pays_no_copy_its_write_does():
    """The data packets' tcp_send is its base alone; the copy (tcp_send's per_byte x the bytes
    written) is CPU of the writes, counted in the flow's CPU per GB: raising per_byte by x adds
    x ns per byte, i.e. x * 1e9 ns per GB (to within what was written but not yet delivered)."""
    tcp_send = PROFILE.stages["tcp_send"]
    r0 = two_hosts(stages={"tcp_send": {"per_byte_ns": 0.0}}, dur=1e8)
    r1 = two_hosts(stages={"tcp_send": {"per_byte_ns": 0.3}}, dur=1e8)
    p = r1.packets
    data = p[(p.direction == "request") & (p.size_bytes > 100)]          # not the SYN (60 bytes)
    assert len(data) > 1000 and (data.tcp_send_ns == tcp_send.base_ns).all()
    extra = r1.flows.cpu_ns_per_gb[0] - r0.flows.cpu_ns_per_gb[0]
    assert extra == pytest.approx(0.3 * 1e9, rel=0.03)


@pytest.mark.parametrize("wmem", [262_144, 1_048_576])
def test_the_send_buffer_bounds_the_flight(wmem):
    """With the receive window and cwnd large, the send buffer (at most wmem_max_bytes) holds
    every byte in flight, and the writer refills it once a third is free: the flight stays
    between 2/3 and all of it, so throughput is between 2/3 x S / srtt and S / min RTT."""
    r = two_hosts(wmem)
    f = r.model.flows[0]
    s = f.conns[0].sides[0]
    thr = r.flows.throughput_bytes_per_s[0]
    assert s.sndbuf == wmem and f.timeouts == 0
    assert 2 / 3 * wmem / (s.srtt / 1e9) <= thr <= wmem / (s.min_rtt / 1e9)
    assert thr < 0.95 * 10e9 / 8                  # not the link: the buffer limits it


def test_the_send_buffer_grows_with_cwnd_from_tcp_sndbuf_expand():
    """tcp_init_buffer_space: 2 x max(10, cwnd) x per_mss (4352 bytes for a 1448-byte MSS) at
    the start, growing with cwnd while the writer waits, up to wmem_max_bytes."""
    r = two_hosts(dur=6e7)
    s = r.model.flows[0].conns[0].sides[0]
    assert s.sndbuf == 4194304                   # a 1.25 MB/ms path: cwnd outgrows it
    r = two_hosts(dur=1.5e6)                     # just established: one RTT in, no ACK of data yet
    assert r.model.flows[0].conns[0].sides[0].sndbuf == 2 * 10 * 4352


def test_acks_held_while_the_reader_owns_the_socket_leave_from_its_thread():
    """The reader on core 1 (the RX queue is core 0's) reads a segment in 20 us, back to back
    (the window paces the sender to it): ACKs that TCP produces in core 0's softirq while a read holds the socket
    leave at the read's end from the reader's thread (`released`); nothing is lost or sent
    twice, and only the read running when the run stops still owns the socket."""
    r = two_hosts(dur=5e7, rate_bps=1e9, app_recv_ns=20_000.0, gso=False)
    f = r.model.flows[0]
    assert f.released > 0 and f.retransmits == 0 and f.timeouts == 0
    snd, rcv = f.conns[0].sides
    assert snd.snd_una <= rcv.rcv_nxt and rcv.owned <= 1


@pytest.mark.parametrize("app_recv_ns", [800.0, 20_000.0])
def test_a_segment_that_finds_its_socket_owned_is_processed_at_the_release(app_recv_ns):
    """ACKs that reach the sender while a write holds its socket, and data that reaches the
    receiver while a read holds its socket, wait in the socket's backlog: their delivering pass
    records no tcp_rcv (the owner's release_sock runs it), every other segment's records the
    whole stage (a pure ACK's: tcp_ack); the flow counts each once (`backlogged`).  A slower reader holds its socket
    more of the time (a segment per 20 us, against one per 12 us on the 1 Gbit/s link), so more
    of the data waits."""
    r = two_hosts(dur=3e7, rate_bps=1e9, app_recv_ns=app_recv_ns, gso=False)
    f = r.model.flows[0]
    p = r.packets
    seg = p[p.status == "delivered"]
    data = seg[(seg.direction == "request") & (seg.size_bytes > HEADER_BYTES)]
    acks = seg[(seg.direction == "response") & (seg.size_bytes == HEADER_BYTES)]    # not the SYN-ACK
    assert set(data.tcp_rcv_ns.unique()) <= {0.0, PROFILE.stages["tcp_rcv"].base_ns} and (data.tcp_ack_ns == 0).all()
    assert set(acks.tcp_ack_ns.unique()) <= {0.0, PROFILE.stages["tcp_ack"].base_ns} and (acks.tcp_rcv_ns == 0).all()
    assert ((seg.tcp_rcv_ns == 0) & (seg.tcp_ack_ns == 0)).sum() == f.backlogged
    assert (acks.tcp_ack_ns == 0).any()                 # the writer owned the sender's socket
    share = (data.tcp_rcv_ns == 0).mean()
    assert share < 0.5 if app_recv_ns < 1000 else share > 0.9


def test_a_write_that_fills_the_buffer_lets_the_next_acks_grow_it():
    """Same host, the writer on core 0 and the reader on core 1: ACKs reach the sender's
    socket while a write holds it and are processed at its release, so the space a write
    found full is partly free again when the write ends.  The write still set SOCK_NOSPACE
    when it hit the limit (tcp_sendmsg_locked's wait_for_space), and the ACKs after it grow
    the buffer (tcp_new_space -> tcp_sndbuf_expand) past its first 87,040 bytes."""
    r = simulate({"hosts": [{"name": "h", "scheme": "l2-bridged", "cores": 2, "namespaces": 2}],
                  "flows": [{"kind": "tcp_stream", "src": "h:ns0", "dst": "h:ns1", "src_core": 0, "dst_core": 1}],
                  "run": {"duration_ns": 1e7, "warmup_ns": 2e6, "seed": 1}})
    f = r.model.flows[0]
    s = f.conns[0].sides[0]
    assert f.backlogged > 0                                 # ACKs did wait for the writer's release
    assert s.sndbuf > 4 * 87_040                            # it stayed at 87,040 before


def test_an_ack_the_unread_data_holds_back_is_sent_by_the_readers_read():
    """__tcp_ack_snd_check ACKs more than one full segment at once only if the reader has read
    everything or the window it could offer has not shrunk; else tcp_cleanup_rbuf sends the
    ACK when the reader reads.  A reader that takes every packet at once (no reading
    application: app_recv_ns 0) never leaves one for its thread; a slow one (20 us per
    segment, against 12 us per segment on the link) leaves most of them, and its thread sends
    them.  Either way an ACK covers at least two segments (delayed ACKs; tcp_cleanup_rbuf
    ACKs once more than one full segment is unacknowledged), and a read-driven one sometimes
    three (the reader took more than two since its last ACK): between a third and a half."""
    fast = two_hosts(dur=3e7, rate_bps=1e9, app_recv_ns=0.0, gso=False).model.flows[0]
    slow = two_hosts(dur=3e7, rate_bps=1e9, app_recv_ns=20_000.0, gso=False).model.flows[0]
    assert fast.thread_acks == 0 and fast.released == 0
    assert slow.thread_acks > 0.5 * slow.acks
    assert fast.acks / fast.segments_delivered == pytest.approx(0.5, abs=0.05)
    assert 1 / 3 <= slow.acks / slow.segments_delivered <= 0.55


def test_only_new_data_needs_room_in_a_full_receive_buffer():
    """A full buffer drops new data (tcp_try_rmem_schedule) but not a pure ACK, a SYN or a
    segment wholly below rcv_nxt, which TCP consumes without queueing (tcp_ack,
    tcp_data_queue); a UDP datagram always needs room."""
    from types import SimpleNamespace

    from sim.core.tcp import DATA, SYN
    r = two_hosts(dur=2e6)
    f = r.model.flows[0]
    rcv = f.conns[0].sides[1]
    nxt = rcv.rcv_nxt
    cases = {100: ((0, DATA, nxt, nxt + 1448), True), 101: ((0, DATA, nxt - 2896, nxt), False),
             102: ((0, DATA, nxt - 1448, nxt + 1448), True), 103: ((1, DATA, 0, 0), False),
             104: ((0, SYN, 0, 0), False)}
    for seq, (info, needs) in cases.items():
        f._pkts[seq * f.n_conn] = (*info, 0, 0.0, 0.0, 0)
        assert f.buffers(SimpleNamespace(seq=seq * f.n_conn)) is needs, info
    assert r.model.flows[0].__class__.__mro__[-2].buffers(f, SimpleNamespace(seq=-1)) is True


def test_a_recovery_the_peer_reports_spurious_is_undone_and_reordering_grows():
    """tcp_try_undo_dsack: when every retransmission of a recovery comes back as a D-SACK (the
    peer had the data: it was late, not lost), cwnd and ssthresh return to their values before
    it, and tp->reordering rises to the SACKed extent that started it, so the same reordering
    does not start another (tcp_check_sack_reordering; at most tcp_max_reordering)."""
    r = two_hosts(dur=3e6, rate_bps=1e9, gso=False)
    f = r.model.flows[0]
    c = f.conns[0]
    s = c.sides[0]
    assert len(s.out) >= 5 and not s.in_recovery
    cwnd, ssthresh = s.cwnd, s.ssthresh
    ack, right = s.snd_una, s.peer_right
    f._ack_in(c, s, ack, 0.0, False, right, sacked=4)      # four segments SACKed above the hole
    assert s.in_recovery and s.cwnd < cwnd and f.retransmits == 1
    f._dsack_in(s)                                           # the peer had it already
    assert not s.in_recovery and s.cwnd == cwnd and s.ssthresh == ssthresh
    assert s.reordering == 5
    f._ack_in(c, s, ack, 0.0, False, right, sacked=4)      # the same extent again: no recovery
    assert not s.in_recovery and f.retransmits == 1


def test_a_partial_ack_retransmits_only_a_hole_that_a_later_delivery_shows_lost():
    """In recovery with SACK (Linux's default), a segment is marked lost only when one sent after
    it was delivered (tcp_identify_packet_loss -> tcp_rack_mark_lost, RACK; tcp_newreno_mark_lost
    is for connections without SACK): segments SACKed above it, or a retransmission that the
    ACK acknowledges, once min_rtt has passed since it left (sooner, the ACK may be the
    original's: tcp_rack_advance).  So a partial ACK of the late original of a reordered
    segment, with nothing SACKed above, retransmits nothing; one that SACK or a delivered
    retransmission shows lost does; one riding on data, which carries no SACK count in the
    model, does as NewReno does."""
    r = two_hosts(dur=3e6, rate_bps=1e9, gso=False)
    f = r.model.flows[0]
    c = f.conns[0]
    s = c.sides[0]
    assert len(s.out) >= 8 and not s.in_recovery
    right, now = s.peer_right, f.engine._now
    f._ack_in(c, s, s.snd_una, 0.0, False, right, sacked=4)     # fast retransmit of the head
    assert s.in_recovery and f.retransmits == 1
    f._ack_in(c, s, s.out[1][0], 0.0, False, right, sacked=0)   # its original, late: nothing lost
    assert s.in_recovery and f.retransmits == 1
    f._ack_in(c, s, s.out[1][0], 0.0, False, right, sacked=2)   # SACKed above: a hole
    assert s.in_recovery and f.retransmits == 2
    s.out[0][2], s.out[1][2] = now - s.min_rtt, now - 2 * s.min_rtt
    f._ack_in(c, s, s.out[1][0], 0.0, False, right, sacked=0)   # that retransmission, an RTT on
    assert s.in_recovery and f.retransmits == 3
    f._ack_in(c, s, s.out[1][0], 0.0, True, right)              # on data: NewReno
    assert s.in_recovery and f.retransmits == 4
