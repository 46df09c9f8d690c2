"""Where TCP's work runs and how the receiver's buffer paces the sender (sim.core.tcp, docs/tcp.md).

- tcp_v4_rcv runs in softirq on the core that received the segment, and what it sends (ACKs,
  data the ACK lets out) leaves from there (net/ipv4/tcp_input.c tcp_rcv_established ->
  tcp_data_snd_check, __tcp_ack_snd_check); the application's thread only writes and reads.
- The window a receiver offers is its free buffer (__tcp_select_window), never shrunk
  (tcp_select_window), reopened by the reader (tcp_cleanup_rbuf); a sender facing a closed
  window with nothing in flight probes it (tcp_probe_timer).
"""

from __future__ import annotations

import pytest

from sim.core import tcp as tcp_mod
from sim.core.costs import load_profile
from sim.core.simulate import simulate
from sim.core.tcp import HEADER_BYTES

MSS = 1448
PROFILE = load_profile("default")


def one_host(app_recv_ns, src_core, dst_core, dur=2e7, **tcp):
    """tcp_stream between two containers of one host (veth pairs through the root, l2-routed)."""
    return {"hosts": [{"name": "h", "scheme": "l2-routed", "cores": 2, "namespaces": 2, "app_recv_ns": app_recv_ns}],
            "flows": [{"kind": "tcp_stream", "src": "h:ns0", "dst": "h:ns1", "src_core": src_core,
                       "dst_core": dst_core, "tcp": tcp}],
            "run": {"duration_ns": dur, "warmup_ns": 2e6, "seed": 1}}


def two_hosts(app_recv_ns, dur=5e7, loss=0.0, **tcp):
    """tcp_stream a -> b over a 10 Gbps link; each host's one RX queue is core 0's, the
    applications run on core 1."""
    host = lambda n: {"name": n, "scheme": "host", "cores": 2, "rx_queues": 1, "app_recv_ns": app_recv_ns}  # noqa: E731
    return {"hosts": [host("a"), host("b")],
            "links": [{"a": "a", "b": "b", "rate_bps": 10e9, "delay_ns": 1e4, "loss_rate": loss}],
            "flows": [{"kind": "tcp_stream", "src": "a:ns0", "dst": "b:ns0", "src_core": 1, "dst_core": 1,
                       "tcp": {"gso": False, **tcp}}],
            "run": {"duration_ns": dur, "warmup_ns": 1e7, "seed": 1}}


def test_the_receivers_application_core_only_reads():
    """Sender on core 0, reader on core 1 of one host: veth hands every packet to the backlog
    of the core that sent it, so the receiver's TCP runs on core 0 and its ACKs leave from
    core 0's softirq; the reader's core reads (app_recv_ns + the copy, app_recv_per_byte_ns x
    its bytes, per data packet) and runs the TCP receive (tcp_rcv) of each segment that found
    the socket owned by a read: tcp_v4_rcv left it in the socket's backlog and the read's
    release_sock processes it (its pass records no tcp_rcv).
    (Were ACKs sent by the reader's thread, core 1 would also run every ACK's send pass.)  The
    buffer is fixed: autotuned, the clamp grows past twice the window offered, the reader sends
    window updates (tcp_cleanup_rbuf), and the flow's softirq work follows them to its core."""
    recv = 800.0
    r = simulate(one_host(recv, 0, 1, rcvbuf_autotune=False))
    p = r.packets
    data = p[(p.direction == "request") & (p.size_bytes > HEADER_BYTES + 8) & (p.status == "delivered")]
    warm, until = 2e6, 2e7
    read = data[(data.t_done_ns >= warm) & (data.t_done_ns < until)]
    copy = PROFILE.host.app_recv_per_byte_ns
    assert copy > 0
    busy = r.cores.set_index("core").busy_ns
    assert r.model.flows[0].acks > 100
    backlogged = (read.tcp_rcv_ns == 0).sum()
    assert 0 < backlogged < len(read)
    assert (data.tcp_rcv_ns[data.tcp_rcv_ns > 0] == PROFILE.stages["tcp_rcv"].base_ns).all()
    most = recv + copy * data.size_bytes.max()
    owner = len(read) * recv + copy * read.size_bytes.sum() + backlogged * PROFILE.stages["tcp_rcv"].base_ns
    assert busy[1] == pytest.approx(owner, abs=2 * most)
    assert busy[0] > 2 * busy[1]


def test_the_reader_spins_in_lock_sock_while_softirq_sends_its_ack():
    """A reader woken with no delay (and already reading when the next segment comes) calls
    lock_sock while the softirq that delivered the segment still holds the socket's spinlock,
    sending the ACK (tcp_v4_rcv -> __tcp_ack_snd_check under bh_lock_sock): it spins until
    that send's pass ends, never longer, and its core's busy time is its reads, their copies,
    the backlogged segments' tcp_rcv and that spinning.  With a wake-up slower than an ACK's
    send, a sleeping reader never spins."""
    recv = 200.0                                    # a reader that keeps up: softirq sends the ACKs
    sc = one_host(recv, 0, 1, rcvbuf_autotune=False)
    sc["cost_overrides"] = {"host": {"wakeup_local_ns": 0, "wakeup_ipi_ns": 0, "wakeup_ipi_send_ns": 0, "wakeup_local_send_ns": 0}}
    r = simulate(sc)
    f = r.model.flows[0]
    p = r.packets
    acks = p[(p.direction == "response") & (p.size_bytes == HEADER_BYTES)]
    first = [c for c in p.columns if c.endswith("_ns") and c[:-3] in PROFILE.stages
             and c[:-3] in ("tcp_send", "ip_output", "dev_xmit", "veth_xmit")]
    ack_pass = acks[first].sum(axis=1).max()
    assert f.lock_waits > 100 and 0 < f.lock_wait_ns <= f.lock_waits * ack_pass
    data = p[(p.direction == "request") & (p.size_bytes > HEADER_BYTES + 8) & (p.status == "delivered")]
    read = data[(data.t_done_ns >= 2e6) & (data.t_done_ns < 2e7)]
    backlogged = (read.tcp_rcv_ns == 0).sum()
    copy = PROFILE.host.app_recv_per_byte_ns
    owner = (len(read) * recv + copy * read.size_bytes.sum() + backlogged * PROFILE.stages["tcp_rcv"].base_ns
             + f.lock_wait_ns)
    assert r.cores.set_index("core").busy_ns[1] == pytest.approx(owner, abs=2 * (recv + copy * data.size_bytes.max()))
    sc["cost_overrides"]["host"]["wakeup_ipi_ns"] = 2 * ack_pass
    slow = simulate(sc).model.flows[0]
    assert slow.lock_waits < f.lock_waits / 4


def test_a_sockets_segments_reach_the_link_in_the_order_tcp_sent_them():
    """Two hosts through a NIC, one segment per packet: the sender's softirq sends data as ACKs
    come (tcp_data_snd_check) and its writer's thread sends what it writes, on another core;
    each send holds the socket's lock down to the device (bh_lock_sock in softirq; lock_sock,
    spinning meanwhile, in process context), and a write-space wake-up comes after the
    softirq's sends (tcp_data_snd_check, then tcp_check_space).  So the segments reach the
    link, and the receiver, in the order TCP sent them: no reordering, no retransmission."""
    sc = {"hosts": [{"name": n, "cores": 2, "scheme": "host", "namespaces": 2} for n in ("h0", "h1")],
          "links": [{"a": "h0", "b": "h1", "rate_bps": 1e11, "delay_ns": 5000}],
          "flows": [{"kind": "tcp_stream", "src": "h0:ns1", "dst": "h1:ns1", "tcp": {"gso": False}}],
          "run": {"duration_ns": 5e6, "warmup_ns": 5e5, "seed": 1}}
    r = simulate(sc)
    p = r.packets
    data = p[(p.direction == "request") & (p.size_bytes > HEADER_BYTES + 8)].sort_values("t_done_ns")
    assert len(data) > 1000
    assert (data.packet_id.diff().dropna() > 0).all()
    assert r.flows.retransmits[0] == 0


def test_an_ack_leaves_as_its_segment_is_processed_not_after_the_reader():
    """Reader and softirq on one core, reads of 5 us, an ACK per segment: the ACK's send pass
    starts the instant the pass that delivered the data ends (softirq first), however many
    reads wait on the core."""
    r = simulate(one_host(5000.0, 0, 0, delayed_ack=False))
    p = r.packets
    done = set(p[(p.direction == "request") & (p.size_bytes > HEADER_BYTES + 8)].t_done_ns)
    acks = p[(p.direction == "response") & (p.size_bytes == HEADER_BYTES) & p.t_sent_ns.isin(done)]
    assert len(acks) > 100
    assert (acks.pass1_queue_ns == 0).all()


@pytest.mark.parametrize("read_ns", [20_000.0, 50_000.0])
def test_a_slow_reader_paces_the_sender_without_loss(read_ns):
    """The reader's core reads one 1448-byte segment per read_ns (plus its copy) and the link and
    softirq are far faster: the window closes as the buffer fills and reopens as the reader
    frees it, so the flow delivers one segment per read with no segment dropped at the socket
    and no loss (a spurious retransmission is undone).
    The reader's core also runs, at the release (release_sock), the TCP receive (tcp_rcv) of
    the segments that arrived while a read owned the socket, and sends the ACKs TCP held
    meanwhile and those its reads send (tcp_cleanup_rbuf: a delayed ACK the unread data held
    back): its time per segment is the read, the copy, and its share of those segments'
    tcp_rcv and of those ACKs' send passes."""
    r = simulate(two_hosts(read_ns))
    f = r.model.flows[0]
    p = r.packets
    acks = p[(p.direction == "response") & (p.size_bytes == HEADER_BYTES)]
    ack_pass = (acks.tcp_send_ns + acks.ip_output_ns + acks.dev_xmit_ns + acks.nic_tx_ns).iloc[0]
    assert 0 < f.released <= f.acks
    data = p[(p.direction == "request") & (p.size_bytes > HEADER_BYTES + 8) & (p.status == "delivered")]
    backlogged = (data.tcp_rcv_ns == 0).mean()      # their tcp_rcv ran at the reader's release
    assert backlogged > 0.5
    thread_acks = f.released + f.thread_acks            # the receiver sends nothing but ACKs
    per_read = (read_ns + PROFILE.host.app_recv_per_byte_ns * (MSS + HEADER_BYTES) + thread_acks / f.segments_delivered * ack_pass
                + backlogged * PROFILE.stages["tcp_rcv"].base_ns)
    assert r.flows.throughput_bytes_per_s[0] == pytest.approx(MSS / per_read * 1e9, rel=0.01)
    assert not (r.packets.drop_reason == "socket_rcvbuf_full").any()
    # no loss, and no reordering: what the writer's thread and the softirq send leaves in order
    assert r.flows.retransmits[0] == 0 and r.flows.timeouts[0] == 0
    s0 = f.conns[0].sides[0]                # no loss's reduction: infinite, or HyStart's exit
    assert s0.ssthresh == float("inf") or s0.cc.exits and s0.ssthresh == s0.cc.exits[-1][1]
    assert r.cores.set_index(["host", "core"]).utilisation[("b", 1)] > 0.99


def test_a_lost_window_update_is_recovered_by_a_zero_window_probe(monkeypatch):
    """Every pure window update (one that acknowledges nothing new) the reader sends in the
    first 30 ms is lost (fault injection): the reader drains its buffer, the sender sits at a
    closed window with nothing in flight, and only the zero-window probe (after one RTO,
    200 ms) gets the window reopened.  Without the probe timer the connection stays silent."""
    real = tcp_mod.TcpFlow._send_ack

    def lossy(self, c, s, *kind):
        if self._ctx_core < 0 and self.engine._now < 3e7 and s.idx == 1 and s.rcv_nxt == s.rcv_wup:
            self._offer(s)                  # the receiver believes it offered the window
            return
        real(self, c, s, *kind)

    monkeypatch.setattr(tcp_mod.TcpFlow, "_send_ack", lossy)

    def last_data_ns(sc):
        r = simulate(sc)
        p = r.packets
        data = p[(p.direction == "request") & (p.size_bytes > HEADER_BYTES + 8) & (p.status == "delivered")]
        return data.t_done_ns.max(), r.model.flows[0].probes

    sc = two_hosts(20_000.0, dur=5e8)
    last, probes = last_data_ns(sc)
    assert probes >= 1 and last > 4.9e8
    monkeypatch.setattr(tcp_mod.TcpFlow, "_arm_probe", lambda self, s: None)
    last, probes = last_data_ns(sc)
    assert probes == 0 and last < 5e7


def test_a_delayed_ack_leaves_from_the_core_that_received_the_segment(monkeypatch):
    """tcp_rr with 100 ms of think time: the client's ACK of a response waits for the
    delayed-ACK timer (40 ms), which fires on the CPU that armed it, the one whose softirq
    received the response (core 1: the server's thread sends it there, veth keeps it there),
    not the client's own core 0."""
    from sim.core.cpu import Core
    inline: list[tuple[float, int]] = []
    fired: list[tuple[float, int]] = []
    real_inline, real_fire = Core.run_inline, tcp_mod.TcpFlow._delack_fire

    def run_inline(self, begin, end, arg):
        inline.append((self.engine._now, self.idx))
        real_inline(self, begin, end, arg)

    def delack_fire(self, arg):
        before = self.acks
        real_fire(self, arg)
        if self.acks > before:
            fired.append((self.engine._now, arg[1].core))

    monkeypatch.setattr(Core, "run_inline", run_inline)
    monkeypatch.setattr(tcp_mod.TcpFlow, "_delack_fire", delack_fire)
    sc = {"hosts": [{"name": "h", "scheme": "l2-routed", "cores": 2, "namespaces": 2}],
          "flows": [{"kind": "tcp_rr", "src": "h:ns0", "dst": "h:ns1", "src_core": 0, "dst_core": 1,
                     "size": {"bytes": 100}, "think_ns": 1e8}],
          "run": {"duration_ns": 2.5e9, "warmup_ns": 0, "seed": 1}}
    simulate(sc)
    assert len(fired) >= 3          # after the first 16 responses, ACKed at once (quick-ACK mode)
    for t, core in fired:
        assert core == 1 and (t, 1) in inline
