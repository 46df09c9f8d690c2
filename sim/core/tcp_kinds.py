"""The TCP flow kinds (`sim.core.tcp` holds the connection machinery both use): ``tcp_stream``
(a bulk sender that writes, netperf TCP_STREAM) and ``tcp_rr`` (netperf TCP_RR); importing
this module registers them in `sim.core.traffic.FLOW_KINDS`."""

from __future__ import annotations

from sim.core.tcp import DUPACK_THRESHOLD, Conn, Side, TcpFlow, no_cpu
from sim.core.tcpcost import TCP_SEND
from sim.core.traffic import FLOW_KINDS, SizeSampler, TransactionCounts, _exponential

# tcp_sndbuf_expand (net/ipv4/tcp_input.c): per_mss = roundup_pow_of_two(mss + MAX_TCP_HEADER +
# SKB_DATA_ALIGN(sizeof(struct skb_shared_info))) + SKB_DATA_ALIGN(sizeof(struct sk_buff)); x86-64:
# MAX_TCP_HEADER 320, shared info 320, sk_buff 256 (4352 bytes for a 1448-byte MSS)
SNDBUF_MSS_HEADROOM = 640
SNDBUF_SKB_BYTES = 256
WRITE_BYTES = 65536        # a tcp_stream write (one sendmsg; netperf's default on Linux is 16 KiB, iperf3's 128 KiB)
SNDBUF_EXPAND = 2          # tcp_sndbuf_expand: sndmem = 2 x segments x per_mss (no sndbuf_expand hook: Reno, CUBIC)


class TcpStreamFlow(TcpFlow):
    """Bulk data from src to dst on each connection: the sender's thread writes as long as its
    send buffer has room (iperf3's or netperf's loop of sendmsg calls; net/ipv4/tcp.c
    tcp_sendmsg_locked):

    - a write is a job of the sender's thread copying `WRITE_BYTES` (or one GSO packet's payload,
      ``gso_max_bytes``, if more) or what the buffer has room for, at the
      sending host's ``tcp_send`` per-byte price (skb_copy_to_page_nocache), so the packets
      that carry those bytes pay no copy in their pass (`sim.core.tcpcost.WRITTEN`); at its end
      it pushes (tcp_push -> tcp_write_xmit, from the thread), then releases the socket
      (release_sock: what TCP sent while the write owned it leaves then, `_unlock`) and the
      next write starts;
    - the buffer holds the bytes written and not yet acknowledged (sk_wmem_queued, counted in
      payload bytes: a GSO skb's truesize is within 2 % of its payload); it starts at
      tcp_sndbuf_expand's size (tcp_init_buffer_space: 2 x max(10, cwnd) x per_mss) and grows
      the same way, up to ``wmem_max_bytes``, when an ACK frees space while the writer waits and
      cwnd is not full (tcp_check_space -> tcp_new_space, tcp_should_expand_sndbuf);
    - a write that fills the buffer (it had less room than it would copy) puts the writer to
      sleep (tcp_sendmsg_locked sets SOCK_NOSPACE at wait_for_space, sk_stream_wait_memory),
      even if ACKs that arrived during the copy freed some again; an ACK that leaves at least
      a third of it free wakes it (sk_stream_write_space: free >= queued / 2), with a
      read's wake-up costs (`sim.core.apps.Apps.wake`), once what that ACK sent has left
      (tcp_data_snd_check pushes, then tcp_check_space wakes).
    """

    def on_established(self, c: Conn, side: int) -> None:
        if side == 0:
            s = c.sides[0]
            s.writes = True
            s.sndbuf = self._sndbuf_goal(s)
            self._write_more(s)

    def _sndbuf_goal(self, s: Side) -> int:
        """tcp_sndbuf_expand's buffer for side `s` now, at most ``wmem_max_bytes``."""
        per_mss = (1 << (s.mss + SNDBUF_MSS_HEADROOM - 1).bit_length()) + SNDBUF_SKB_BYTES
        segs = max(int(s.cwnd), self.tcp.init_cwnd, DUPACK_THRESHOLD + 1)
        return min(SNDBUF_EXPAND * segs * per_mss, self.tcp.wmem_max_bytes)

    def _room(self, s: Side) -> int:
        return s.sndbuf - (s.write_end - s.snd_una)

    def _write_more(self, s: Side) -> None:
        """Queue the next write on the sender's thread, or sleep while the buffer it found full
        is not writeable again (sk_stream_wait_memory; the ACKs its release processed may
        already have made it so, `_write_space`)."""
        if not self.active():
            return
        if s.nospace or self._room(s) <= 0:
            s.nospace = True
            s.asleep = True
            return
        self._apps(s).run_job(self._thread(s), self._write_begin, self._write_end, s)

    def _grow_sndbuf(self, s: Side) -> None:
        """tcp_new_space -> tcp_should_expand_sndbuf: unless cwnd is full, tcp_sndbuf_expand."""
        if len(s.out) < s.cwnd:
            s.sndbuf = max(s.sndbuf, self._sndbuf_goal(s))

    def _writeable(self, s: Side) -> bool:
        """sk_stream_is_writeable: the free space is at least half what is queued (a third free)."""
        queued = s.write_end - s.snd_una
        return s.sndbuf - queued >= queued / 2

    def _copy_ns_per_byte(self, s: Side) -> float:
        return self.model.hosts[self._end(s)[0]].per_byte[TCP_SEND]

    def _write_begin(self, s: Side, core, start_ns: float) -> float:
        chunk = max(self.tcp.gso_max_bytes, WRITE_BYTES)
        room = self._room(s)
        s.writing = max(min(chunk, room), 0)
        s.filled = room < chunk                     # it fills the buffer: SOCK_NOSPACE
        s.owned += 1                                # lock_sock, spinning while softirq sends
        return self._lock_sock(s, start_ns) + s.writing * self._copy_ns_per_byte(s)

    def _write_end(self, s: Side) -> None:
        n, s.writing = s.writing, 0
        s.write_end += n
        if s.filled or self._room(s) <= 0:          # ACKs meanwhile may have freed some again
            s.nospace = True                        # tcp_sendmsg_locked -> wait_for_space
        if self.engine._now >= self.model.warmup_ns:
            self.window_cpu_ns += n * self._copy_ns_per_byte(s)    # tcp_send's copy, paid here
        self._push(s.conn, s)                       # tcp_push, from the thread
        # release_sock once the pushes (and the softirq they raise on this core) are done
        self._apps(s).run_job(self._thread(s), no_cpu, self._release_job, s)

    def on_unlocked(self, s: Side) -> None:
        if s.writes:
            self._write_more(s)                     # the next sendmsg

    def _write_space(self, s: Side) -> None:
        """An ACK freed buffer space after the writer found it full (tcp_check_space with
        SOCK_NOSPACE): tcp_new_space grows the buffer unless cwnd is full, and
        sk_stream_write_space clears SOCK_NOSPACE and wakes a sleeping writer once a third is
        free."""
        self._grow_sndbuf(s)
        if not self._writeable(s):
            return
        s.nospace = False
        if not s.asleep:
            return                                  # still in its release: it writes on by itself
        s.asleep = False
        apps = self._apps(s)
        waker = apps.cores[self._ctx_core] if self._ctx_core >= 0 else self._thread(s).core
        after = s.tx_until - self.engine._now       # tcp_data_snd_check: the push's sends first
        if after > 0:
            self.engine.at(after, self._wake_writer, (s, waker))
        else:
            self._wake_writer((s, waker))

    def _wake_writer(self, arg) -> None:
        """sk_stream_write_space's wake-up of side `s`'s sleeping writer from core `waker`."""
        s, waker = arg
        if self.active():                           # (the flow may have stopped meanwhile)
            self._apps(s).wake(self._thread(s), self._write_begin, self._write_end, s, waker)


class TcpRrFlow(TransactionCounts, TcpFlow):
    """netperf TCP_RR: on each connection one transaction at a time.  The client writes a
    request (``size``); the server's thread reads it (the segment completing it costs
    ``app_recv_ns`` + ``server_ns``) and writes the response (``response_size``, default
    ``size``), whose first segment carries the ACK of the request; the client reads it and,
    ``think_ns`` later, writes the next request, which carries the ACK of the response.  A
    transaction runs from the request's write to the read of its response's last byte;
    ``transactions_per_s`` and ``transaction_mean_ns`` as for rr flows (window after warm-up)."""

    def __init__(self, idx, spec, model, rng) -> None:
        super().__init__(idx, spec, model, rng)
        self.response_size = SizeSampler(spec.response_size or spec.size, rng)
        self._server = _exponential(rng, spec.server_ns) if spec.server_dist == "exponential" else None
        self._think = _exponential(rng, spec.think_ns) if spec.think_dist == "exponential" else None
        self._completes: dict[int, tuple[Conn, int]] = {}   # seq -> (connection, side) whose message it ends
        self._cur_seq = -1
        self._started = [0.0] * self.n_conn
        self.requests = 0
        self.init_transactions()

    def on_established(self, c: Conn, side: int) -> None:
        if side == 0:
            self._request(c)

    def _request(self, c: Conn) -> None:
        if not self.active():
            return
        s = c.sides[0]
        self.requests += 1
        self._started[c.idx] = self.engine._now
        s.write_end += self.size()
        c.sides[1].msgs.append(s.write_end)
        self._push(c, s)

    def on_delivered(self, pkt, read_done_ns: float) -> None:
        self._cur_seq = pkt.seq
        super().on_delivered(pkt, read_done_ns)

    def on_in_order(self, c: Conn, s: Side) -> None:
        if s.msgs and s.rcv_nxt >= s.msgs[0]:
            s.msgs.popleft()
            self._completes[self._cur_seq] = (c, s.idx)
            if s.idx == 1:
                self._read_work[self._cur_seq] = self.spec.server_ns if self._server is None else self._server.next()

    def on_read(self, pkt) -> None:
        super().on_read(pkt)
        done = self._completes.pop(pkt.seq, None)
        if done is None:
            return
        c, side = done
        if side == 1:                               # the server read a request: respond
            s = c.sides[1]
            s.write_end += self.response_size()
            c.sides[0].msgs.append(s.write_end)
            self._push(c, s)
            return
        now = self.engine._now                      # the client read a response
        start = self._started[c.idx]
        self.transaction_done(start, now, self.model.warmup_ns)
        if self.spec.think_ns > 0:
            self.engine.at(self.spec.think_ns if self._think is None else self._think.next(), self._request, c)
        else:
            self._request(c)


FLOW_KINDS["tcp_stream"] = TcpStreamFlow
FLOW_KINDS["tcp_rr"] = TcpRrFlow
