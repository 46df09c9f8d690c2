"""TCP connections: the machinery of the TCP flow kinds, ``tcp_stream`` (bulk data, netperf
TCP_STREAM) and ``tcp_rr`` (netperf TCP_RR), which `sim.core.tcp_kinds` defines.

A TCP flow holds ``connections`` connections between its src (side 0, the client: it sends the
SYN) and its dst (side 1).  Every segment is a packet of the model: data and its ACKs take the
scheme's trip plans both ways (side 0 sends direction 0, side 1 direction 1), so each pass,
queue, link and drop of the UDP flows applies to them.  The TCP state lives here, in the flow,
keyed by the packet's ``seq`` (``seq % connections`` is the connection, as for rr flows, so RSS
and conntrack see one 5-tuple per connection).  Nothing here runs for a non-TCP packet.
docs/tcp.md describes the model and the kernel functions each rule follows; in short:

- Sizes: a segment's packet is its payload + `HEADER_BYTES` (IPv4 20 + TCP 20 + the timestamp
  option 12, on by default in Linux); a pure ACK is `HEADER_BYTES`; SYN and SYN-ACK are
  `SYN_BYTES` (MSS, SACK-permitted, timestamp and window-scale options).
- GSO/TSO/GRO (``gso``, default on): a data packet carries k consecutive segments, k at most
  `_gso_segs` (tcp_xmit_size_goal's ``gso_max_bytes`` bounded by half the peer's window,
  tcp_tso_autosize's ~1 ms of the pacing rate, at least 2) and cwnd / 2 (tcp_cwnd_test); its
  size is the payload + one `HEADER_BYTES` (one skb), its wire bytes payload + k headers (k
  frames, `sim.core.packet`), and the hosts charge the per-frame stages k times
  (`sim.core.host.PER_FRAME_STAGES`: the NIC's TSO frames, GRO merging them).  cwnd and the
  flight count segments.  A lossy link loses frames independently; the receiver processes
  each run of consecutive arrived segments as one packet (GRO flushes at a gap).
- Handshake: SYN, SYN-ACK, ACK; the client's data leaves with its ACK, one RTT after the SYN.
  A lost SYN or SYN-ACK is retried after ``rto_init_ns``, doubling (tcp_retransmit_timer).
- Sender (tcp_write_xmit, tcp_ack, tcp_cong_avoid): segments of ``mss_bytes``; segments in flight
  <= cwnd and nothing past the right edge of the peer's offered window; a packet smaller than
  the size goal waits for an ACK due soon (TSO deferral, `_tso_defer`); a closed window with
  nothing in flight arms the zero-window probe (`_arm_probe`); cwnd's growth and ssthresh are
  the side's congestion control (``congestion``: CUBIC or Reno, `sim.core.tcp_cc`), called where Linux calls the
  tcp_congestion_ops hooks: slow start from ``init_cwnd`` (tcp_slow_start, cwnd += segments
  acked), then the algorithm's increase, both only while cwnd limited (tcp_is_cwnd_limited);
  3 duplicate ACKs: fast retransmit and NewReno
  fast recovery (RFC 6582: ssthresh from the algorithm (Reno max(cwnd/2, 2), CUBIC
  max(cwnd 717/1024, 2)), cwnd = ssthresh + 3, +1 per further
  duplicate, a partial ACK retransmits the next hole (one segment) if a later delivery shows it
  lost (`_ack_in`), a full ACK deflates to ssthresh; Linux
  without SACK does NewReno, with PRR's window instead of inflation); RTO (RFC 6298 with
  Linux's floor: RTO = srtt + max(4 rttvar, ``rto_min_ns``), tcp_set_rto), on expiry
  ssthresh from the algorithm, cwnd = 1 and go-back-N from snd_una (tcp_enter_loss), the RTO
  doubling per expiry (icsk_backoff).  RTT samples come from the echoed timestamp
  (tcp_ack_update_rtt with TSecr), so retransmitted data is timed too.
- Receiver (tcp_data_queue, __tcp_ack_snd_check, tcp_send_delayed_ack): in-order data advances
  rcv_nxt (out-of-order segments wait in an out-of-order queue); an ACK goes at once when more
  than one full segment is unacknowledged (every second full segment; every GRO packet of two
  or more: rcv_mss is the segment size, tcp_measure_rcv_mss), in quick-ACK mode
  (the first min(rwnd / 2 MSS, 16) segments: tcp_incr_quickack, TCP_MAX_QUICKACKS), for
  out-of-order or duplicate data (a duplicate ACK), or with ``delayed_ack: false``; else after
  ``delack_ns`` (TCP_DELACK_MIN, 40 ms).  Data sent by a side carries its ACK
  (piggybacked), which cancels a pending delayed ACK (tcp_event_ack_sent).  A side that sends
  data within ``delack_ns`` of receiving some is interactive (pingpong: no quick ACKs) until
  its delayed-ACK timer fires (inet_csk_enter/exit_pingpong_mode).
- Window (__tcp_select_window, tcp_select_window, tcp_cleanup_rbuf, tcp_rcv_space_adjust): each
  packet offers the free receive buffer (less unread and out-of-order data, x a full segment's
  payload/truesize, at most the clamp; zero below an MSS or 1/16 of the buffer), never left of
  the last offer; a read that lets the window double from half the clamp or less sends a
  window update; the buffer and clamp grow with what the reader takes per RTT
  (``rcvbuf_autotune``, up to ``rmem_max_bytes``).
- Context: what TCP sends from its receive path or a timer (ACKs, ACK-clocked data, the
  SYN-ACK, retransmissions, probes) leaves from softirq on the core that received the segment
  or armed the timer (`sim.core.model.Model.emit` with ``softirq_core``); what the application
  does (connect, a write, a window update after a read) from its thread.
- Ownership: while a read or a write of the application holds a side's socket (lock_sock ..
  release_sock), what TCP sends for it is held (`Side.backlog`, a pending push) and leaves
  from the application's thread at the release (`_unlock`: tcp_add_backlog, __release_sock).
  While softirq sends for a side (the first pass of what it sends, `Side.tx_until`) it holds
  the socket's spinlock: a read or write that begins meanwhile spins (`_lock_sock`), so one
  socket's sends never overlap and reach a NIC in order.
- Loss and reordering: fast recovery starts at `Side.reordering` duplicate ACKs or SACKed
  segments; a D-SACK for every retransmission of a recovery undoes it and raises
  `Side.reordering` (tcp_try_undo_dsack, tcp_check_sack_reordering).
- Reads: a pure ACK is consumed by TCP in softirq (tcp_ack) and never reaches the
  application (`read_work_ns` cancels the read's cost); a data packet costs the reader
  ``app_recv_ns`` + ``app_recv_per_byte_ns`` x its bytes (tcp_recvmsg's copy); the segment
  that completes a tcp_rr request also ``server_ns``.

Results per flow (`TcpFlow.tcp_stats`): in-order payload delivered at or after warm-up per
second, the stage CPU of the flow's packets per GB of it, data segments, retransmissions,
pure ACKs, RTO expiries.  Counted on the flow, not in the results: ``data_packets`` (GSO
packets), ``segments_delivered`` and ``segments_dropped`` (data segments sent = those two +
the ones still in flight).
"""

from __future__ import annotations

from collections import deque
from typing import Optional

from sim.core.tcp_cc import make_cc, pacing_rate_bytes_per_ns
from sim.core.tcpcost import ACKS_DATA, BACKLOGGED, PURE_ACK, SEGMENT, WRITTEN
from sim.core.traffic import Flow

HEADER_BYTES = 52          # IPv4 20 + TCP 20 + timestamps option 12 (TCPOLEN_TSTAMP_ALIGNED)
SYN_BYTES = 60             # IPv4 20 + TCP 20 + MSS 4, SACK-permitted 2, timestamps 10, wscale 3, padding 1
MAX_QUICKACKS = 16         # TCP_MAX_QUICKACKS (include/net/tcp.h)
RTO_MAX_NS = 120e9         # TCP_RTO_MAX
DUPACK_THRESHOLD = 3       # net.ipv4.tcp_reordering default
MAX_REORDERING = 300       # net.ipv4.tcp_max_reordering default
TCP_MSS_DEFAULT = 536      # include/net/tcp.h: tcp_bound_to_half_wnd halves windows above it
MIN_TSO_SEGS = 2           # net.ipv4.tcp_min_tso_segs default
TSO_WIN_DIVISOR = 3        # net.ipv4.tcp_tso_win_divisor default: a third of the window goes at once
DEFER_RECENT_NS = 1e6      # tcp_tso_should_defer: defer only within 1 ms of the last send, for an ACK due within 1 ms
PACING_SHIFT = 10          # sk_pacing_shift: tcp_tso_autosize sizes a GSO packet to ~1 ms (rate >> 10)
TSO_RTT_LOG = 9            # net.ipv4.tcp_tso_rtt_log: the min-RTT bonus halves every 2^9 us
INF = float("inf")
TRACE_LIMIT = 100_000      # cwnd changes kept per connection (`Side.trace`)

SYN, SYNACK, DATA, PROBE = 1, 2, 0, 3     # packet kinds (PROBE: a zero-window probe, tcp_xmit_probe_skb)
DSACK = 4                  # a pure ACK reporting a duplicate segment (D-SACK, RFC 2883; net.ipv4.tcp_dsack)


class Side:
    """One end of a connection: its sender and its receiver state (bytes are sequence numbers
    from 0 after the SYN)."""

    def __init__(self, conn: "Conn", idx: int) -> None:
        self.conn = conn
        self.idx = idx
        t = conn.flow.tcp
        self.mss = t.mss_bytes
        # sender
        self.snd_una = 0
        self.snd_nxt = 0
        self.high_tx = 0                 # highest byte sent + 1
        self.write_end = 0               # bytes the application wrote (tcp_stream: unbounded)
        self.out: deque = deque()        # [start, end, sent_ns] of segments sent, not acked, in order
        self.cwnd = float(t.init_cwnd)
        self.cwnd_cnt = 0
        self.ssthresh = INF              # TCP_INFINITE_SSTHRESH
        self.dupacks = 0
        self.in_recovery = False
        self.recover = 0                 # NewReno: high_tx when fast recovery started
        self.rto_recover = -1            # high_tx at the last RTO: no fast retransmit below it
        self.reordering = DUPACK_THRESHOLD   # tp->reordering: SACKed segments that start recovery
        self.sacked_seen = 0             # most segments SACKed above snd_una since it last moved
        self.undo_cwnd = 0.0             # cwnd before the recovery under way (0: nothing to undo)
        self.undo_ssthresh = INF
        self.undo_retrans = 0            # its retransmissions not yet reported duplicate (undo_retrans)
        self.undo_sacked = 0             # most segments SACKed above the hole during that recovery
        self.cwnd_limited = False        # the last window was cwnd-limited (is_cwnd_limited)
        self.max_out = 0                 # most segments in flight in it (max_packets_out)
        self.usage_seq = 0               # its end (cwnd_usage_seq)
        self.cc = make_cc(t)             # congestion control (sim.core.tcp_cc)
        self.lsnd_ns = 0.0               # lsndtime: when data last left
        self.srtt = 0.0
        self.rttvar = 0.0
        self.min_rtt = INF               # tcp_min_rtt (over the whole run; Linux: a 300 s window)
        self.rto = t.rto_init_ns
        self.backoff = 0
        self.rto_deadline = INF
        self.rto_armed = INF             # fire time of the pending RTO callback (INF: none)
        self.peer_wnd = t.rwnd_bytes     # the largest window the peer offered (max_window; from its clamp)
        self.peer_right = 0              # right edge of the peer's offered window (snd_una + snd_wnd; its SYN's first)
        self.probe_armed = INF           # fire time of the pending zero-window probe (INF: none)
        self.probe_backoff = 0
        # receiver
        self.rcv_nxt = 0
        self.rcv_wup = 0                 # rcv_nxt when the last ACK left
        self.rcv_right = 0               # right edge of the window it offered (rcv_wup + rcv_wnd)
        self.rcv_held = 0                # truesize of the data it received and has not read yet
        self.rcv_space: Optional[tuple[float, int]] = None   # `TcpFlow._space`, once known
        self.rcvbuf = 0                  # its receive buffer, truesize bytes (sk_rcvbuf; 0: not known yet)
        self.clamp = t.rwnd_bytes        # the most window it offers (window_clamp)
        self.copied = 0                  # payload bytes its application has read (copied_seq)
        self.space = min(t.rwnd_bytes, t.init_cwnd * t.mss_bytes)   # rcvq_space.space (tcp_init_buffer_space)
        self.space_copied = 0            # rcvq_space.seq: `copied` when the measurement began
        self.space_ns = 0.0              # rcvq_space.time
        self.rrtt_ns = 0.0               # receiver's RTT estimate (rcv_rtt_est; 0: none yet)
        self.rrtt_seq = 0                # rcv_rtt_est.seq: rcv_nxt a window ahead
        self.rrtt_start = -1.0           # rcv_rtt_est.time (-1: not started)
        self.ooo: dict[int, int] = {}    # out-of-order segments: start -> end
        self.ts_recent = 0.0
        self.quick = min(t.rwnd_bytes // (2 * t.mss_bytes), MAX_QUICKACKS)
        self.pingpong = False
        self.last_rcv_ns = -INF
        self.delack_deadline = INF
        self.delack_armed = INF
        self.msgs: deque = deque()       # tcp_rr: ends of the messages this side is to receive
        self.core = -1                   # core of its host that last ran its TCP in softirq (-1: none yet)
        # the socket owned by its application (sock_owned_by_user): a read or write job holds it
        self.owned = 0                   # jobs of its thread inside lock_sock .. release_sock
        self.backlog: list[tuple] = []   # what TCP sent meanwhile (`TcpFlow._emit`'s arguments), held to release
        self.push_pending = False        # an ACK meanwhile would have sent new data: push at the release
        self.rcv_cpu_ns = 0.0            # tcp_rcv of the segments that waited meanwhile: the release runs it
        self.tx_until = 0.0              # end of the pass of what its TCP last sent from softirq: until
                                         # then softirq holds the socket's spinlock (bh_lock_sock)
        # a writing sender (tcp_stream's side 0, `TcpStreamFlow`)
        self.writes = False
        self.sndbuf = 0                  # its send buffer (sk_sndbuf), payload bytes
        self.writing = 0                 # bytes the write job now running copies
        self.filled = False              # that write fills the buffer (it had less room than a write)
        self.nospace = False             # it found the buffer full (SOCK_NOSPACE): ACKs check for space
        self.asleep = False              # waiting for send-buffer space (sk_stream_wait_memory)
        self.trace: list[tuple[float, float]] = []

    def set_cwnd(self, cwnd: float) -> None:
        self.cwnd = cwnd
        if len(self.trace) < TRACE_LIMIT:
            self.trace.append((self.conn.flow.engine._now, cwnd))


class Conn:
    """One TCP connection of a flow: two sides and the handshake."""

    def __init__(self, flow: "TcpFlow", idx: int) -> None:
        self.flow = flow
        self.idx = idx
        self.sides = (Side(self, 0), Side(self, 1))
        self.established = [False, False]
        self.syn_sent_ns = 0.0
        self.syn_rto = flow.tcp.rto_init_ns
        self.syn_retries = 0


class TcpFlow(Flow):
    """Base of the TCP kinds (see the module docstring)."""

    observes_reads = True
    tcp_segments = True    # its packets run TCP's stages (sim.core.tcpcost)

    def __init__(self, idx, spec, model, rng) -> None:
        super().__init__(idx, spec, model, rng)
        self.tcp = spec.tcp
        self.n_conn = spec.connections
        self.conns = [Conn(self, c) for c in range(self.n_conn)]
        self._n = 0                      # packets emitted: seq = n * connections + connection
        self._pkts: dict[int, tuple] = {}    # seq -> (side, kind, start, end, ack, tsval, tsecr, right)
        self._read_work: dict[int, float] = {}   # seq -> application work of its read
        self._book_sums: dict[int, float] = {}
        self._readers: Optional[tuple] = None     # the Apps of side 0's and side 1's hosts
        self._quick_max = min(self.tcp.rwnd_bytes // (2 * self.tcp.mss_bytes), MAX_QUICKACKS)
        self._ctx_core = -1              # >= 0: running in softirq on that core (sends go inline there)
        self._defer: Optional[Side] = None   # the owned side whose TCP runs now: its sends wait for release
        self._reading: set[int] = set()      # seqs whose read job is running (it owns the socket)
        self._working: set[int] = set()      # seqs whose read job holds the application's work too
        self._unread: set[int] = set()   # seqs of data packets delivered and not yet read
        self._instant: set[int] = set()  # of those, the ones read at once (no reading application)
        self.probes = 0                  # zero-window probes sent
        self.released = 0                # packets held while the application owned a socket, sent at its release
        self.backlogged = 0              # segments that found their socket owned: tcp_rcv at the release
        self.lock_waits = 0              # lock_sock calls that spun while softirq sent for the socket
        self.lock_wait_ns = 0.0          # the CPU spun by those that began at or after warm-up (in window_cpu_ns)
        self.thread_acks = 0             # pure ACKs an application's thread sent itself (tcp_cleanup_rbuf)
        # results
        self.window_bytes = 0            # in-order payload delivered at or after warm-up
        self.window_cpu_ns = 0.0         # stage CPU of the flow's packets that ended at or after warm-up
        self.data_segments = 0
        self.retransmits = 0
        self.acks = 0                    # pure ACKs sent
        self.timeouts = 0
        self.data_packets = 0            # data packets sent (a GSO packet carries several segments)
        self.segments_delivered = 0      # data segments that reached the receiver (GRO: each merged one)
        self.segments_dropped = 0        # data segments lost (link_loss frames, and whole dropped packets)

    # -- wiring -----------------------------------------------------------------------------
    def start(self) -> None:
        for c in self.conns:
            self.engine.at(self.spec.start_ns, self._syn, c)

    def _read_cost_ns(self, side: int, pkt) -> float:
        """What reading `pkt` would cost the application of the host `side` is on
        (`sim.core.apps.Apps.read_cost_ns`)."""
        if self._readers is None:
            hosts = self.model.hosts
            self._readers = (hosts[self.src[0]].apps, hosts[self.dst[0]].apps)
        return self._readers[side].read_cost_ns(pkt)

    def _emit(self, conn: Conn, side: int, kind: int, start: int, end: int, ack: int, size: int,
              tsecr: float = 0.0, segments: int = 1, written: bool = False, acks_data: bool = False) -> None:
        """Send a packet now, unless run.max_packets is spent (the flow falls silent).  A data
        packet of several `segments` (GSO) is that many frames on the wire, each with its headers.
        Every packet offers the sending side's receive window (`_offer`).  `written`: its payload
        was copied by a write (`sim.core.tcpcost.WRITTEN`); `acks_data`: a data packet whose ACK
        acknowledges new data (`sim.core.tcpcost.ACKS_DATA`).  While the side's TCP runs for a
        socket its application owns (`_defer`), the packet waits in the socket's backlog for
        the release (`_unlock`), as tcp_v4_rcv -> tcp_add_backlog defers the whole processing.
        A packet sent from softirq holds the socket's spinlock until its first pass (down to
        the device) ends (`Side.tx_until`, `_lock_sock`)."""
        if self._defer is not None:
            self._defer.backlog.append((conn, side, kind, start, end, ack, size, tsecr, segments, written, acks_data))
            return
        if self.model.packet_budget_spent():
            return
        seq = self._n * self.n_conn + conn.idx
        self._n += 1
        self._pkts[seq] = (side, kind, start, end, ack, self.engine._now, tsecr, self._offer(conn.sides[side]))
        self.sent += 1
        if end == start:
            tcp = SEGMENT | PURE_ACK if kind not in (SYN, SYNACK) else None
        elif acks_data:
            tcp = (WRITTEN if written else SEGMENT) | ACKS_DATA
        else:
            tcp = WRITTEN if written else None
        ctx = self._ctx_core
        if segments == 1:
            self.model.emit(self, seq, side, size, 1, None, ctx, tcp)
        else:
            self.model.emit(self, seq, side, size, segments, size + (segments - 1) * HEADER_BYTES, ctx, tcp)
        if ctx >= 0:                                # its first pass runs inline there, under the lock
            s = conn.sides[side]
            s.tx_until = self._apps(s).cores[ctx].busy_until

    # -- handshake --------------------------------------------------------------------------
    def _syn(self, c: Conn) -> None:
        if c.established[0] or not self.active():
            return
        c.syn_sent_ns = self.engine._now
        self._emit(c, 0, SYN, 0, 0, 0, SYN_BYTES)
        self.engine.at(c.syn_rto, self._syn_timeout, (c, c.syn_retries))

    def _syn_timeout(self, arg) -> None:
        c, tries = arg
        if c.established[0] or tries != c.syn_retries:
            return
        c.syn_retries += 1
        c.syn_rto = min(c.syn_rto * 2, RTO_MAX_NS)
        self.timeouts += 1
        self._from_timer(c.sides[0], self._syn, c)

    def _established(self, c: Conn, side: int) -> None:
        """Side `side` of `c` is established now (tcp_finish_connect / tcp_rcv_state_process).
        The kind's hook is the application's (its first write): process context."""
        c.established[side] = True
        ctx, defer = self._ctx_core, self._defer
        self._ctx_core, self._defer = -1, None
        self.on_established(c, side)
        self._ctx_core, self._defer = ctx, defer

    def _from_timer(self, s: Side, send, *args) -> None:
        """`send(*args)` from a timer of side `s`: in the timer's softirq on the core it fires
        on, where the side's TCP last ran in softirq (a timer is armed, and fires, on the CPU
        that handled the segment: kernel/time/timer.c add_timer -> the local CPU's base), else
        the flow's default core of its host.  A timer that fires while the application owns the
        socket is deferred to its release (tcp_delack_timer / tcp_write_timer set
        TCP_*_TIMER_DEFERRED, tcp_release_cb runs them): what it sends waits in the backlog."""
        self._ctx_core = s.core if s.core >= 0 else self.idx % len(self._apps(s).cores)
        if s.owned:
            self._defer = s
        try:
            send(*args)
        finally:
            self._ctx_core = -1
            self._defer = None

    def on_established(self, c: Conn, side: int) -> None:
        """A kind's hook: the side may send data."""

    def _write_space(self, s: Side) -> None:
        """A kind's hook: an ACK freed send-buffer space while side `s`'s writer sleeps."""

    # -- packets arriving -------------------------------------------------------------------
    def read_work_ns(self, pkt) -> float:
        work = self._read_work.pop(pkt.seq, 0.0)
        if work > 0:
            self._working.add(pkt.seq)
        return work

    def _receiver(self, pkt, info: tuple) -> Side:
        """The side that receives `pkt`, whose send record is `info`."""
        return self.conns[pkt.seq % self.n_conn].sides[1 - info[0]]

    def buffers(self, pkt) -> bool:
        """Only new data takes room in the receive buffer: TCP consumes a pure ACK, a SYN and a
        duplicate segment without queueing them (tcp_ack; tcp_data_queue drops a segment
        wholly below rcv_nxt before tcp_try_rmem_schedule), so a full buffer drops none of
        those."""
        info = self._pkts.get(pkt.seq)
        if info is None:
            return True
        _, kind, start, end = info[:4]
        return kind == DATA and end > start and end > self._receiver(pkt, info).rcv_nxt

    def backlogs(self, pkt) -> bool:
        """Whether segment `pkt`, whose delivering pass begins now, finds its socket owned by
        its application (tcp_v4_rcv: sock_owned_by_user -> tcp_add_backlog): its ``tcp_rcv``
        then runs at the owner's release (`sim.core.tcpcost.BACKLOGGED`, `_backlogged_rcv`)."""
        info = self._pkts.get(pkt.seq)
        return info is not None and self._receiver(pkt, info).owned > 0

    def _backlogged_rcv(self, pkt, s: Side) -> None:
        """`pkt` waited in side `s`'s socket backlog (`BACKLOGGED`): its ``tcp_rcv`` is the
        owner's, run at its release (`_unlock`); if the owner released the socket while the
        delivering pass ran, the softirq that delivered it runs it now (tcp_v4_do_rcv)."""
        self.backlogged += 1
        apps = self._apps(s)
        cost = apps.host.tcp_rcv_ns(pkt)
        if s.owned:
            s.rcv_cpu_ns += cost
        else:
            self.window_cpu_ns += apps.host.cores[pkt.core].stall(cost)

    def _release_rcv(self, cost: float, core, start_ns: float) -> float:
        """The begin of a release's job that runs the backlogged segments' ``tcp_rcv``
        (__release_sock -> sk_backlog_rcv = tcp_v4_do_rcv), `cost` ns, on the owner's thread."""
        if start_ns >= self.model.warmup_ns:
            self.window_cpu_ns += cost
        return cost

    def on_delivered(self, pkt, read_done_ns: float) -> None:
        """`pkt` entered its socket: TCP's receive path (tcp_v4_rcv) ran in softirq on the
        core of the pass that delivered it, so whatever it sends (ACKs, data the ACK lets
        out, the SYN-ACK) leaves from that core's softirq (`sim.core.host.Host.start_trip`);
        unless the application owns the socket (a read or write job of the side runs): then
        what it sends waits for the release and leaves from the application's thread
        (`_unlock`).  The state changes at once; the kernel would make them at the release
        too (tcp_add_backlog, __release_sock -> tcp_v4_do_rcv), with the same outcome for the
        sends, which is what the model's timing follows."""
        info = self._pkts.pop(pkt.seq, None)
        if info is None:
            return
        self._account(pkt)
        c = self.conns[pkt.seq % self.n_conn]
        s = c.sides[1 - info[0]]
        s.core = self._ctx_core = pkt.core
        if pkt.tcp & BACKLOGGED:
            self._backlogged_rcv(pkt, s)
        if s.owned:
            self._defer = s
        try:
            self._receive(pkt, info, c, s)
        finally:
            self._ctx_core = -1
            self._defer = None
        if pkt.seq in self._unread and self._read_cost_ns(s.idx, pkt) + self._read_work.get(pkt.seq, 0.0) <= 0:
            self._instant.add(pkt.seq)              # no reading application: Apps.deliver reads it at once

    def _receive(self, pkt, info: tuple, c: Conn, s: Side) -> None:
        """`on_delivered`'s TCP processing of `pkt` (`info` its send record) by side `s` of `c`."""
        side_from, kind, start, end, ack, tsval, tsecr, right = info
        me = s.idx
        if kind in (SYN, SYNACK) and right > s.peer_right:
            s.peer_right = right                            # the window in the SYN (tcp_select_initial_window)
        if kind == SYN:
            if not c.established[1]:
                self._emit(c, 1, SYNACK, 0, 0, 0, SYN_BYTES)     # (again, for a retried SYN)
            self._read_work[pkt.seq] = -self._read_cost_ns(me, pkt)
            return
        if kind == SYNACK:
            self._read_work[pkt.seq] = -self._read_cost_ns(me, pkt)
            if c.established[0]:
                return
            rtt = self.engine._now - c.syn_sent_ns
            if c.syn_retries == 0:                          # tcp_synack_rtt_meas (Karn: not on a retry)
                self._rtt_sample(s, rtt)
            self._established(c, 0)
            if s.snd_nxt == 0:                              # nothing left with the ACK: a bare one
                self._send_ack(c, s)
            return
        if not c.established[me]:                           # the third ACK (or the first data)
            self._established(c, me)
        if end == start:
            self._read_work[pkt.seq] = -self._read_cost_ns(me, pkt)    # pure ACK: consumed in softirq
            if kind == DSACK:                                    # not a duplicate ACK: it reports one
                self._dsack_in(s)
                self._ack_in(c, s, ack, tsecr, True, right)
            else:
                self._ack_in(c, s, ack, tsecr, False, right, start if kind == DATA else 0)   # start: SACKed
            if kind == PROBE:                                    # a zero-window probe: answer it
                self._send_ack(c, s)
            return
        if end <= s.rcv_nxt:             # all of it a duplicate: tcp_data_queue drops it, nothing to read
            self._read_work[pkt.seq] = -self._read_cost_ns(me, pkt)
            self._ack_in(c, s, ack, tsecr, True, right)
            self._data_in(c, s, start, end, tsval)
            return
        self._unread.add(pkt.seq)
        s.rcv_held += pkt.size + self._space(s)[1]
        runs = self._runs(start, end, pkt.lost_frames, s.mss) if pkt.lost_frames else ((start, end),)
        for a, b in runs:                                        # each a GRO packet of its own
            self.segments_delivered += -(-(b - a) // s.mss)
            self._ack_in(c, s, ack, tsecr, True, right)          # tcp_ack, then tcp_data_queue
            self._data_in(c, s, a, b, tsval)
        self.segments_dropped += len(pkt.lost_frames)

    @staticmethod
    def _runs(start: int, end: int, lost: tuple[int, ...], mss: int) -> list[tuple[int, int]]:
        """The byte ranges of a GSO packet [start, end) of `mss`-byte segments that arrived when
        its frames `lost` did not: GRO merges consecutive segments only (tcp_gro_receive flushes
        at a sequence gap), so each run is one packet to TCP."""
        runs: list[tuple[int, int]] = []
        gone = set(lost)
        for i, a in enumerate(range(start, end, mss)):
            if i in gone:
                continue
            b = min(a + mss, end)
            if runs and runs[-1][1] == a:
                runs[-1] = (runs[-1][0], b)
            else:
                runs.append((a, b))
        return runs

    def on_dropped(self, pkt) -> None:
        info = self._pkts.pop(pkt.seq, None)
        if info is not None:
            self._account(pkt)
            if pkt.tcp & BACKLOGGED:            # dropped at the socket after the backlog (tcp_data_queue)
                self._backlogged_rcv(pkt, self._receiver(pkt, info))
            if info[1] == DATA and info[3] > info[2]:
                self.segments_dropped += pkt.frames
        self._read_work.pop(pkt.seq, None)

    def _account(self, pkt) -> None:
        """Add `pkt`'s stage CPU (its passes so far) to the window's, if it ends in the window."""
        if self.engine._now < self.model.warmup_ns:
            return
        sums = self._book_sums
        p = pkt.passes
        total = 0.0
        for i in range(0, len(p), 3):
            v = sums.get(p[i])
            if v is None:
                v = sums[p[i]] = sum(c for _, c in self.model.recorder.cost_book.vector(p[i]))
            total += v * p[i + 2]
        self.window_cpu_ns += total

    # -- receiver ---------------------------------------------------------------------------
    def _data_in(self, c: Conn, s: Side, start: int, end: int, tsval: float) -> None:
        now = self.engine._now
        s.last_rcv_ns = now
        if start <= s.rcv_wup:                      # RFC 7323: echo the earliest unacked segment's TSval
            s.ts_recent = tsval
        if end <= s.rcv_nxt:                        # a duplicate: ACK at once (tcp_send_dupack), D-SACK
            s.quick = max(s.quick, self._quick_max)      # tcp_enter_quickack_mode
            s.pingpong = False
            self._send_ack(c, s, DSACK)
            return
        if start > s.rcv_nxt:                       # out of order: queue it, duplicate ACK now
            if s.ooo.get(start, 0) < end:
                s.ooo[start] = end
            self._send_ack(c, s)
            return
        had_ooo = bool(s.ooo)
        old = s.rcv_nxt
        s.rcv_nxt = end
        while s.ooo:                                # tcp_ofo_queue: the queue's segments now in order
            nxt = [k for k in s.ooo if k <= s.rcv_nxt]
            if not nxt:
                break
            for k in nxt:
                s.rcv_nxt = max(s.rcv_nxt, s.ooo.pop(k))
        if now >= self.model.warmup_ns:
            self.window_bytes += s.rcv_nxt - old
        self._rcv_rtt_measure(s)
        self.on_in_order(c, s)
        if had_ooo or s.ooo or not self.tcp.delayed_ack:
            self._send_ack(c, s)
        elif s.quick > 0 and not s.pingpong:
            s.quick -= 1
            self._send_ack(c, s)
        elif s.rcv_nxt - s.rcv_wup > s.mss and self._window_advances(s):    # __tcp_ack_snd_check
            self._send_ack(c, s)
        elif s.delack_deadline == INF:              # tcp_send_delayed_ack
            s.delack_deadline = now + self.tcp.delack_ns
            if s.delack_armed > s.delack_deadline:
                s.delack_armed = s.delack_deadline
                self.engine.at(self.tcp.delack_ns, self._delack_fire, (c, s, s.delack_deadline))

    def _window_advances(self, s: Side) -> bool:
        """__tcp_ack_snd_check's condition for ACKing more than one full segment at once: the
        application has read everything (rcv_nxt - copied_seq below SO_RCVLOWAT, 1 byte) or
        the window side `s` could offer now is no smaller than the one it offered last
        (__tcp_select_window >= rcv_wnd: "right edge of window advances far enough").  Else
        the ACK is delayed, and the reader's tcp_cleanup_rbuf sends it (`on_read`), from the
        reader's thread, unless the delayed-ACK timer fires first."""
        return (s.rcv_nxt <= s.copied or self._apps(s).app_recv_ns <= 0      # no reader: read at once
                or self._free_window(s) >= s.rcv_right - s.rcv_wup)

    def on_in_order(self, c: Conn, s: Side) -> None:
        """A kind's hook: `s.rcv_nxt` advanced."""

    def _delack_fire(self, arg) -> None:
        c, s, at = arg
        if at != s.delack_armed:
            return
        s.delack_armed = INF
        if s.delack_deadline == INF:
            return
        if self.engine._now < s.delack_deadline:
            s.delack_armed = s.delack_deadline
            self.engine.at(s.delack_deadline - self.engine._now, self._delack_fire, (c, s, s.delack_deadline))
            return
        s.pingpong = False                          # tcp_delack_timer_handler leaves pingpong mode
        self._from_timer(s, self._send_ack, c, s)

    # -- receive window ---------------------------------------------------------------------
    def _space(self, s: Side) -> tuple[float, int]:
        """(payload/truesize ratio, skb overhead) of side `s`'s host (`sim.core.apps`); sets its
        initial receive buffer, the host's ``rcvbuf_bytes``.  The ratio is a full segment's,
        MSS / (MSS + headers + skb overhead): Linux measures it per received skb (scaling_ratio,
        tcp_measure_rcv_mss); one full segment's keeps the window inside the buffer for every
        packet of at least one segment (a GSO packet of k carries one overhead here, not k)."""
        if s.rcv_space is None:
            apps = self._apps(s)
            over = apps.truesize_overhead
            s.rcv_space = (s.mss / (s.mss + HEADER_BYTES + over), over)
            s.rcvbuf = apps.rcvbuf_bytes
        return s.rcv_space

    def _end(self, s: Side) -> tuple[int, int]:
        """(host, namespace) of side `s`: the flow's src for side 0, its dst for side 1."""
        return self.src if s.idx == 0 else self.dst

    def _apps(self, s: Side):
        return self.model.hosts[self._end(s)[0]].apps

    def _free_window(self, s: Side) -> int:
        """The window side `s`'s free receive buffer allows now (__tcp_select_window): the free
        truesize bytes (rcvbuf less what is held until read) x the payload/truesize ratio
        (tcp_win_from_space), less the out-of-order data (tcp_data_queue_ofo charges it to the
        buffer), at most the clamp (window_clamp); 0 below one segment or 1/16 of the whole
        buffer's window (the receiver's silly-window avoidance)."""
        ratio = self._space(s)[0]
        space = int((s.rcvbuf - s.rcv_held) * ratio)
        if s.ooo:           # out-of-order data holds its buffer until the hole fills and it is read
            space -= sum(s.ooo.values()) - sum(s.ooo)    # (the model's reads take packets in arrival order)
        if space < s.mss or space < int(s.rcvbuf * ratio) >> 4:
            return 0        # silly-window avoidance: below an MSS or 1/16 of the buffer, a zero window
        return min(space, s.clamp)

    def _offer(self, s: Side) -> int:
        """The right edge of the window side `s` offers on a packet it sends now: rcv_nxt + the
        free window, never left of what it offered before (tcp_select_window does not shrink it)."""
        right = s.rcv_nxt + self._free_window(s)
        if right < s.rcv_right:
            return s.rcv_right
        s.rcv_right = right
        return right

    def _rcv_rtt_measure(self, s: Side) -> None:
        """tcp_rcv_rtt_measure (no timestamps needed): the time for rcv_nxt to move one window
        ahead is an RTT sample; the estimate keeps the least (tcp_rcv_rtt_update, win_dep)."""
        now = self.engine._now
        if s.rrtt_start >= 0:
            if s.rcv_nxt < s.rrtt_seq:
                return
            sample = max(now - s.rrtt_start, 1e3)
            if s.rrtt_ns == 0.0 or sample < s.rrtt_ns:
                s.rrtt_ns = sample
        s.rrtt_seq = s.rcv_nxt + max(s.rcv_right - s.rcv_wup, s.mss)
        s.rrtt_start = now

    def _rcv_space_adjust(self, s: Side) -> None:
        """tcp_rcv_space_adjust (dynamic right-sizing, net/ipv4/tcp_input.c): once per receiver
        RTT, if the reader took more than last time, grow the buffer to hold twice that plus
        16 segments, more while it is growing (slow start), up to ``rmem_max_bytes``, and the
        clamp with it (tcp_win_from_space)."""
        now = self.engine._now
        if s.rrtt_ns == 0.0 or now - s.space_ns < s.rrtt_ns:
            return
        copied = s.copied - s.space_copied
        if copied > s.space:
            if self.tcp.rcvbuf_autotune:
                rcvwin = 2 * copied + 16 * s.mss
                rcvwin += 2 * (rcvwin * (copied - s.space) // s.space)
                ratio = self._space(s)[0]
                rcvbuf = min(int(rcvwin / ratio), self.tcp.rmem_max_bytes)     # tcp_space_from_win
                if rcvbuf > s.rcvbuf:
                    s.rcvbuf = rcvbuf
                    s.clamp = int(rcvbuf * ratio)
                    self._size_socket(s)
            s.space = copied
        s.space_copied = s.copied
        s.space_ns = now

    def _size_socket(self, s: Side) -> None:
        """The application's socket for side `s` holds the buffers of the flow's connections on
        that side (the model gives a flow's connections one receive queue, `sim.core.apps`)."""
        apps = self._apps(s)
        sq = apps.socket_queue((self._end(s)[1], self.spec.port, s.idx))
        sq.limit = max(apps.rcvbuf_bytes, sum(c.sides[s.idx].rcvbuf or apps.rcvbuf_bytes for c in self.conns))

    def _lock_sock(self, s: Side, start_ns: float) -> float:
        """lock_sock by side `s`'s application at `start_ns` (net/core/sock.c lock_sock_nested:
        spin_lock_bh(&sk->sk_lock.slock)): the CPU it spins while softirq still holds the
        socket's spinlock, sending (`Side.tx_until`; tcp_v4_rcv holds bh_lock_sock through
        tcp_rcv_established -> tcp_data_snd_check / __tcp_ack_snd_check -> tcp_transmit_skb ->
        dev_queue_xmit, and a TCP timer through its handler).  So the application's own sends
        cannot overtake those, as in Linux, where one socket's transmissions are serialized by
        its lock down to the qdisc."""
        wait = s.tx_until - start_ns
        if wait <= 0:
            return 0.0
        self.lock_waits += 1
        if start_ns >= self.model.warmup_ns:
            self.lock_wait_ns += wait
            self.window_cpu_ns += wait
        return wait

    def on_read_start(self, pkt, start_ns: float) -> float:
        """The application's read of data packet `pkt` starts at `start_ns` (tcp_recvmsg ->
        lock_sock, which may spin first: the returned ns, `_lock_sock`): it owns the socket
        until the read ends (`on_read`).  A read job that holds the application's own work after
        recvmsg (a tcp_rr server's ``server_ns``) does not: the kernel released the socket when
        recvmsg returned, and the job's end is later."""
        s = self.conns[pkt.seq % self.n_conn].sides[1 - pkt.direction]
        if pkt.seq in self._working:
            self._working.discard(pkt.seq)
            return self._lock_sock(s, start_ns)
        if pkt.seq not in self._unread:
            return 0.0
        self._reading.add(pkt.seq)
        s.owned += 1
        return self._lock_sock(s, start_ns)

    def on_read(self, pkt) -> None:
        """The application read data packet `pkt` (tcp_recvmsg): the buffer may grow
        (`_rcv_space_adjust`), then tcp_cleanup_rbuf (net/ipv4/tcp.c __tcp_cleanup_rbuf) sends
        an ACK now, from its own thread, if one is scheduled (a delayed ACK) and more than a
        full segment arrived since the last (`_window_advances` left it to the reader), or if
        the window it offers had fallen to half the clamp or less and the read lets it offer
        at least twice as much (a window update).  A read that owned the socket first sends what TCP
        held meanwhile (release_sock; the kernel does so after tcp_cleanup_rbuf, but the held
        ACKs carry the window the read freed, so sending them first spares an ACK behind a
        newer one)."""
        if pkt.seq not in self._unread:
            return
        self._unread.discard(pkt.seq)
        c = self.conns[pkt.seq % self.n_conn]
        s = c.sides[1 - pkt.direction]
        if pkt.seq in self._instant:                # no reading application: "read" in the softirq
            self._instant.discard(pkt.seq)          # that delivered it, and what it sends leaves there
            self._ctx_core = pkt.core
            try:
                self._read_done(c, s, pkt)
            finally:
                self._ctx_core = -1
            return
        self._read_done(c, s, pkt)

    def _read_done(self, c: Conn, s: Side, pkt) -> None:
        """`on_read`'s work for data packet `pkt` read by side `s` of `c`."""
        s.rcv_held -= pkt.size + self._space(s)[1]
        s.copied += pkt.size - HEADER_BYTES
        self._rcv_space_adjust(s)
        if pkt.seq in self._reading:
            self._reading.discard(pkt.seq)
            self._unlock(s)
        if s.delack_deadline != INF and s.rcv_nxt - s.rcv_wup > s.mss:
            self._send_ack(c, s)                    # a delayed ACK of more than a full segment
            return
        now_wnd = s.rcv_right - s.rcv_nxt           # tcp_receive_window
        if 2 * now_wnd <= s.clamp:
            new = self._free_window(s)
            if new and new >= 2 * now_wnd:
                self._send_ack(c, s)

    def _unlock(self, s: Side) -> None:
        """release_sock (net/core/sock.c) by the job of side `s`'s thread that owned its socket:
        what TCP sent meanwhile leaves now, from the thread (process context: each packet's first
        pass is a job of the thread, `sim.core.apps.Apps.send`), and the socket stays owned
        until those sends are done, when it is released again (__release_sock loops until the
        backlog is empty, so nothing TCP sends later overtakes them); then it is free."""
        if s.backlog or s.push_pending or s.rcv_cpu_ns:
            apps = self._apps(s)
            if s.rcv_cpu_ns:                    # tcp_v4_do_rcv of each backlogged segment first
                cost, s.rcv_cpu_ns = s.rcv_cpu_ns, 0.0
                apps.run_job(self._thread(s), self._release_rcv, None, cost)
            held, s.backlog = s.backlog, []
            self.released += len(held)
            for args in held:
                self._emit(*args)
            if s.push_pending:
                s.push_pending = False
                self._push(s.conn, s)
            apps.run_job(self._thread(s), no_cpu, self._release_job, s)
            return
        s.owned -= 1
        if not s.owned:
            self.on_unlocked(s)

    def _release_job(self, s: Side) -> None:
        """The end of a release job (`_unlock` queued it behind the sends it made): release
        again; what that sends, and the next release, run before the thread's other jobs (reads
        queued meanwhile), still inside the same release_sock."""
        jobs = self._thread(s).jobs
        n = len(jobs)
        self._unlock(s)
        if n and len(jobs) > n:
            jobs.rotate(len(jobs) - n)

    def on_unlocked(self, s: Side) -> None:
        """A kind's hook: side `s`'s application released its socket."""

    def _thread(self, s: Side):
        """The application thread of side `s`'s socket (`sim.core.apps`)."""
        return self._apps(s).thread(self._end(s)[1], self.spec.port, s.idx,
                                    self.spec.dst_core if s.idx else self.spec.src_core)

    def _send_ack(self, c: Conn, s: Side, kind: int = DATA) -> None:
        """A pure ACK from side `s` now.  While `s` holds out-of-order data its ACKs carry SACK
        blocks (tcp_sack_option, SACK on by default: net.ipv4.tcp_sack); the model sends the
        count of segments they cover, as the pure ACK's start and end (else 0)."""
        s.delack_deadline = INF
        s.rcv_wup = s.rcv_nxt
        self.acks += 1
        if self._ctx_core < 0 and self._defer is None:
            self.thread_acks += 1
        sacked = sum(-(-(e - b) // s.mss) for b, e in s.ooo.items()) if s.ooo else 0
        self._emit(c, s.idx, kind, sacked, sacked, s.rcv_nxt, HEADER_BYTES, s.ts_recent)

    # -- sender -----------------------------------------------------------------------------
    def _ack_in(self, c: Conn, s: Side, ack: int, tsecr: float, carries_data: bool, right: int,
                sacked: int = 0) -> None:
        """Side `s` receives an ACK of `ack` echoing the send time `tsecr` (0: none), offering a
        window up to `right` (tcp_ack_update_window: an ACK that opens the window is no
        duplicate, FLAG_WIN_UPDATE) and SACKing `sacked` segments above it.  Fast recovery
        starts at `Side.reordering` (3 at first) duplicate ACKs or once that many segments above
        the hole are SACKed, however few ACKs carried them (tcp_time_to_recover:
        tcp_dupack_heuristics counts SACKed segments; a GRO packet of many segments makes one
        duplicate ACK).  In recovery a partial ACK retransmits the next hole only if a segment
        sent after it was delivered: segments above it are SACKed, or what the ACK acknowledges
        was sent later (a retransmission).  With SACK, Linux marks a segment lost only so
        (tcp_identify_packet_loss -> tcp_rack_mark_lost, RACK: the delivered segment's send
        time against the hole's, a retransmission's only once min_rtt has passed since it left,
        tcp_rack_advance; here without RACK's reordering window; NewReno's
        tcp_newreno_mark_lost is for connections without SACK), so after a reordering, whose
        late originals fill the holes with nothing above them, it sends nothing again.  (The
        model carries SACK counts on pure ACKs only: a partial ACK riding on data retransmits
        as NewReno does.)"""
        win_update = right > s.peer_right
        una = s.snd_una
        if win_update:
            s.peer_right = right
            if right - ack > s.peer_wnd:            # tcp_ack_update_window: max_window grows with
                s.peer_wnd = right - ack            # the peer's autotuned buffer (tcp_bound_to_half_wnd)
        if ack > s.snd_una:
            acked = 0
            out = s.out
            late = bool(out) and not out[0][3]      # the hole is filled by its original: it came late
            newest = 0.0                            # the latest send time of what it acknowledges
            now = self.engine._now
            while out and out[0][1] <= ack:
                seg = out.popleft()
                if seg[2] > newest and not (seg[3] and now - seg[2] < s.min_rtt):
                    newest = seg[2]                 # (tcp_rack_advance: a retransmission acked
                acked += 1                          # sooner than min_rtt may be its original's ACK)
            if late and s.sacked_seen >= s.reordering:   # reordering, not loss (tcp_check_sack_reordering)
                s.reordering = min(s.sacked_seen + 1, MAX_REORDERING)
            s.sacked_seen = 0
            if out and out[0][0] < ack:
                out[0][0] = ack
            rtt = self.engine._now - tsecr if tsecr > 0 else None
            if rtt is not None:
                self._rtt_sample(s, rtt)
            s.snd_una = ack
            if s.snd_nxt < ack:
                s.snd_nxt = ack
            s.cc.on_acked(s, rtt, self.engine._now)     # pkts_acked (tcp_clean_rtx_queue)
            s.dupacks = 0
            s.backoff = 0
            if s.in_recovery:
                if ack >= s.recover:                # full ACK: leave recovery, deflate
                    s.in_recovery = False
                    s.set_cwnd(s.ssthresh)
                else:                               # partial ACK: retransmit the next hole,
                    if sacked or carries_data or (out and newest > out[0][2]):    # if it is one (above)
                        self._retransmit_head(c, s)
                    s.set_cwnd(max(s.cwnd - acked + 1, 1.0))
            else:
                s.cc.cong_avoid(s, acked, self.engine._now)
            if s.out:
                self._arm_rto(s, self.engine._now + s.rto)
            else:
                s.rto_deadline = INF
        elif ack == s.snd_una and s.out and not carries_data and not win_update:
            s.dupacks += 1
            s.sacked_seen = max(s.sacked_seen, sacked)
            s.undo_sacked = max(s.undo_sacked, sacked, s.dupacks)
            if s.in_recovery:
                s.set_cwnd(s.cwnd + 1)
            elif max(s.dupacks, sacked) >= s.reordering and s.snd_una > s.rto_recover:
                s.undo_cwnd, s.undo_ssthresh, s.undo_retrans = s.cwnd, s.ssthresh, 0   # tcp_init_undo
                s.undo_sacked = max(s.dupacks, sacked)
                s.ssthresh = s.cc.ssthresh(s)           # tcp_init_cwnd_reduction
                s.cwnd_cnt = 0
                s.recover = s.high_tx
                s.in_recovery = True
                self._retransmit_head(c, s)
                s.set_cwnd(s.ssthresh + DUPACK_THRESHOLD)
        self._push(c, s)
        if s.nospace and ack > una:
            self._write_space(s)

    def _dsack_in(self, s: Side) -> None:
        """The peer received a segment twice (a D-SACK): one retransmission was spurious.  When
        every retransmission of the recovery under way (or just ended) proved so, the loss was
        reordering: undo the window reduction (tcp_try_undo_dsack -> tcp_undo_cwnd_reduction)
        and wait for more SACKed segments before the next recovery (tp->reordering: the extent
        seen, as tcp_check_sack_reordering measures it, at most tcp_max_reordering)."""
        if not s.undo_cwnd:
            return
        s.undo_retrans -= 1
        if s.undo_retrans > 0:
            return
        s.reordering = min(max(s.reordering, s.undo_sacked + 1), MAX_REORDERING)
        s.set_cwnd(max(s.cwnd, s.undo_cwnd))
        s.ssthresh = max(s.ssthresh, s.undo_ssthresh)
        s.in_recovery = False
        s.undo_cwnd = 0.0

    def _rtt_sample(self, s: Side, rtt: float) -> None:
        """RFC 6298 with Linux's floor (tcp_rtt_estimator, tcp_set_rto)."""
        if s.srtt == 0.0:
            s.srtt = rtt
            s.rttvar = rtt / 2
        else:
            s.rttvar = 0.75 * s.rttvar + 0.25 * abs(s.srtt - rtt)
            s.srtt = 0.875 * s.srtt + 0.125 * rtt
        s.min_rtt = min(s.min_rtt, rtt)
        s.rto = min(s.srtt + max(4 * s.rttvar, self.tcp.rto_min_ns), RTO_MAX_NS)

    def _arm_rto(self, s: Side, deadline: float) -> None:
        s.rto_deadline = deadline
        if s.rto_armed > deadline:
            s.rto_armed = deadline
            self.engine.at(deadline - self.engine._now, self._rto_fire, (s, deadline))

    def _rto_fire(self, arg) -> None:
        s, at = arg
        if at != s.rto_armed:
            return
        s.rto_armed = INF
        if s.rto_deadline == INF or not s.out:
            s.rto_deadline = INF                    # stopped: the next send arms it again
            return
        now = self.engine._now
        if now < s.rto_deadline:
            self._arm_rto(s, s.rto_deadline)
            return
        # tcp_retransmit_timer -> tcp_enter_loss: go back to snd_una with one segment
        self.timeouts += 1
        s.undo_cwnd = 0.0                           # no D-SACK undo past an RTO (its go-back-N duplicates)
        s.sacked_seen = 0
        if s.backoff == 0:                          # the first expiry; a backed-off one keeps ssthresh
            s.ssthresh = s.cc.ssthresh(s)
        s.cc.on_loss_state(s, now)                  # tcp_set_ca_state(sk, TCP_CA_Loss)
        s.in_recovery = False
        s.dupacks = 0
        s.cwnd_cnt = 0
        s.set_cwnd(1.0)
        s.out.clear()
        s.snd_nxt = s.snd_una
        s.rto_recover = s.high_tx
        s.backoff += 1
        s.rto = min(s.rto * 2, RTO_MAX_NS)
        self._arm_rto(s, now + s.rto)
        self._from_timer(s, self._push, s.conn, s)   # tcp_write_timer

    def _retransmit_head(self, c: Conn, s: Side) -> None:
        seg = s.out[0] if s.out else None
        if seg is None:
            return
        seg[2] = self.engine._now                   # its skb's new timestamp
        seg[3] = True                               # TCPCB_EVER_RETRANS
        if s.undo_cwnd:
            s.undo_retrans += 1
        self._send_segment(c, s, seg[0], seg[1])

    def _send_segment(self, c: Conn, s: Side, start: int, end: int, segments: int = 1) -> None:
        """Data [start, end) in one packet of `segments` segments (several: a GSO packet)."""
        if start < s.high_tx:
            self.retransmits += segments if end <= s.high_tx else -(-(s.high_tx - start) // s.mss)
            if segments > 1 and end > s.high_tx:
                s.high_tx = end
        else:
            s.high_tx = end
        self.data_segments += segments
        self.data_packets += 1
        s.lsnd_ns = self.engine._now
        s.delack_deadline = INF                     # this side's ACK rides along (tcp_event_ack_sent)
        acks_data = s.rcv_nxt != s.rcv_wup          # it acknowledges data no ACK has yet: the peer runs tcp_ack
        s.rcv_wup = s.rcv_nxt
        if self.engine._now - s.last_rcv_ns < self.tcp.delack_ns:
            s.pingpong = True                       # tcp_event_data_sent: a reply within ato
        self._emit(c, s.idx, DATA, start, end, s.rcv_nxt, end - start + HEADER_BYTES, s.ts_recent, segments,
                   s.writes, acks_data)

    def _gso_segs(self, s: Side) -> int:
        """Segments one packet of `s` may carry now (tcp_write_xmit): at most tcp_xmit_size_goal's
        (``gso_max_bytes`` bounded by half the peer's window, tcp_bound_to_half_wnd) and
        tcp_tso_autosize's (about 1 ms of the pacing rate, tcp_update_pacing_rate, plus
        gso_max_size >> (min_rtt / 512 us), at least tcp_min_tso_segs); 1 with ``gso: false``."""
        t = self.tcp
        if not t.gso:
            return 1
        mss, most = s.mss, t.gso_max_bytes
        half = s.peer_wnd >> 1 if s.peer_wnd > TCP_MSS_DEFAULT else s.peer_wnd
        goal = max(min(most, half) // mss, 1)
        if s.srtt > 0:
            size = pacing_rate_bytes_per_ns(s) * 1e9 / (1 << PACING_SHIFT)   # bytes per 2^-10 s
        else:
            size = INF                               # no RTT yet: the rate is not divided, unbounded
        r = int(s.min_rtt / 1e3) >> TSO_RTT_LOG if s.min_rtt < INF else 32
        if r < 32:
            size += most >> r
        auto = max(int(min(size, most)) // mss, MIN_TSO_SEGS)
        return min(goal, auto)

    def _tso_defer(self, s: Side, most: int, queued: int) -> bool:
        """tcp_tso_should_defer (net/ipv4/tcp_output.c): rather than send fewer than `most`
        segments now, wait for the ACK that is about to come, unless in recovery or after a
        loss, the last send was over 1 ms ago, the write-queue skb (`queued` bytes, up to
        `most` segments) is a single segment, a third of the window (min(snd_wnd, cwnd)) can
        go now, nothing is in flight, or the oldest segment's ACK is due later than
        min(srtt / 2, 1 ms) from now."""
        mss = s.mss
        skb = min(most * mss, queued)
        if skb <= mss or s.in_recovery or s.snd_nxt < s.high_tx or not s.out:
            return False
        now = self.engine._now
        if now - s.lsnd_ns > DEFER_RECENT_NS:       # avoid bursts: defer only right after a send
            return False
        limit = min(s.peer_right - s.snd_nxt, (s.cwnd - len(s.out)) * mss)
        if limit >= skb:
            return False
        if limit >= min(s.peer_right - s.snd_una, s.cwnd * mss) / TSO_WIN_DIVISOR:
            return False
        how_far = s.out[0][2] + s.srtt - now        # when the oldest segment's ACK is expected
        return how_far <= min(s.srtt / 2, DEFER_RECENT_NS)

    def _push(self, c: Conn, s: Side) -> None:
        """tcp_write_xmit: send new segments while cwnd and the peer's window allow.  Not while
        the application owns the socket and TCP runs for a packet it holds (`_defer`): the
        push waits for the release, so new data leaves in order from the owner's thread."""
        if not c.established[s.idx]:
            return
        if self._defer is s:
            s.push_pending = True
            return
        limited = sent = False
        stopped = self.engine._now >= self.stop_ns
        while s.snd_nxt < s.write_end:
            if len(s.out) >= s.cwnd:
                limited = True
                break
            start = s.snd_nxt
            if start >= s.high_tx and stopped:
                break                               # stop_ns: no new data (retransmissions go on)
            # one packet: up to _gso_segs segments, and (tcp_cwnd_test) half the cwnd at most
            if self.tcp.gso:
                most = min(self._gso_segs(s), max(int(s.cwnd) >> 1, 1))
                last = min(s.write_end, s.high_tx) if stopped else s.write_end
            else:
                most, last = 1, s.write_end
            wnd_end = s.peer_right
            idle = not s.out                        # tcp_event_data_sent: nothing in flight
            end, n = start, 0
            now = self.engine._now
            segs = []
            flight = len(s.out)
            while n < most and end < last and flight + n < s.cwnd:
                e = min(end + s.mss, last)
                # Nagle (tcp_nagle_check, Minshall's variant aside): a writer's partial segment
                # waits for more bytes or for the ACK of what is in flight
                if e > wnd_end or (e - end < s.mss and s.writes and (flight or n)):
                    break
                segs.append([end, e, now, e <= s.high_tx])  # cwnd counts segments (tcp_skb_pcount)
                end = e
                n += 1
            if n == 0:
                break
            if n < most and self._tso_defer(s, most, last - start):
                # wait for the next ACK to send a bigger packet; deferring for cwnd counts as
                # cwnd-limited (tcp_tso_should_defer sets is_cwnd_limited for tcp_cwnd_validate)
                limited = (s.cwnd - flight) * s.mss < s.peer_right - s.snd_nxt
                break
            s.out.extend(segs)
            if idle:
                s.cc.on_tx_start(s, self.engine._now - s.lsnd_ns, self.engine._now)
            if s.probe_armed != INF:                # the window opened: no probe (tcp_ack_probe)
                s.probe_armed = INF
                s.probe_backoff = 0
            s.snd_nxt = end
            sent = True
            self._send_segment(c, s, start, end, n)
            if s.rto_deadline == INF:
                self._arm_rto(s, self.engine._now + s.rto)
        if (sent or limited) and (s.snd_una >= s.usage_seq or limited
                                  or (not s.cwnd_limited and len(s.out) > s.max_out)):
            s.cwnd_limited = limited                # tcp_cwnd_validate
            s.max_out = len(s.out)
            s.usage_seq = s.snd_nxt
        if (not s.out and s.snd_nxt < s.write_end and s.probe_armed == INF
                and s.snd_nxt + min(s.mss, s.write_end - s.snd_nxt) > s.peer_right
                and not (stopped and s.snd_nxt >= s.high_tx)):
            self._arm_probe(s)                      # window closed, nothing in flight (tcp_check_probe_timer)

    def _arm_probe(self, s: Side) -> None:
        """The zero-window probe timer (tcp_reset_xmit_timer ICSK_TIME_PROBE0 at tcp_probe0_when:
        the RTO, doubling per unanswered probe)."""
        when = min(s.rto * (1 << s.probe_backoff), RTO_MAX_NS)
        s.probe_armed = self.engine._now + when
        self.engine.at(when, self._probe_fire, (s, s.probe_armed))

    def _probe_fire(self, arg) -> None:
        """tcp_probe_timer -> tcp_send_probe0: still closed with nothing in flight, send a probe
        (tcp_xmit_probe_skb; the peer answers with its window) from the timer's softirq."""
        s, at = arg
        if at != s.probe_armed:
            return
        s.probe_armed = INF
        if s.out or s.snd_nxt >= s.write_end or s.snd_nxt + min(s.mss, s.write_end - s.snd_nxt) <= s.peer_right:
            s.probe_backoff = 0
            return
        self.probes += 1
        self._from_timer(s, self._emit, s.conn, s.idx, PROBE, s.snd_una, s.snd_una, s.rcv_nxt, HEADER_BYTES,
                         s.ts_recent)
        s.probe_backoff += 1
        self._arm_probe(s)

    # -- results ----------------------------------------------------------------------------
    def tcp_stats(self, window_ns: float) -> dict:
        gb = self.window_bytes / 1e9
        return {"throughput_bytes_per_s": self.window_bytes / (window_ns / 1e9) if window_ns > 0 else float("nan"),
                "cpu_ns_per_gb": self.window_cpu_ns / gb if gb > 0 else float("nan"),
                "data_segments": self.data_segments, "retransmits": self.retransmits,
                "acks": self.acks, "timeouts": self.timeouts}


def no_cpu(arg, core, start_ns: float) -> float:
    """The begin of a job that costs no CPU (a release: its sends are jobs of their own)."""
    return 0.0
