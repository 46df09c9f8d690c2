"""Applications on cores: one thread per socket, send buffers, receive queues, wake-ups.

Contract:
- A flow has two sockets: its source's (side 0: sends requests, reads responses; in Linux
  the one with the ephemeral port) and its destination's (side 1: reads requests, sends
  responses; bound to the flow's ``port``).  A socket is (namespace, port, side), so a
  namespace talking to itself has a client and a server socket, as sockperf or netperf over
  its loopback do.  Every socket of a host that sends or receives has one application thread
  (`sim.core.cpu.Thread`), created on first use and pinned to a core: the flow's ``src_core``
  (side 0) or ``dst_core`` (side 1) when the scenario gives one, else core
  ``(ns * sockets_per_namespace + port) % cores`` (a fixed spread, stated rather than
  scheduled).  The first flow that touches a socket decides its pin.  The thread sends (a
  flow's send passes from that socket) and reads (recvmsg on that socket).
- Sending: a send pass is a job of the sender's thread.  From emission until its send pass
  ends, a packet holds ``truesize = size + skb_truesize_overhead_bytes`` of the socket's send
  buffer (``sndbuf_bytes``: sock_alloc_send_pskb charges sk_wmem_alloc; veth and loopback
  orphan the skb when they hand it on, a NIC frees it on TX completion, charged when the
  send pass ends, `sim.core.txq`).  A packet that would overflow it is not sent: it is recorded as dropped
  with reason ``sender_blocked`` (the application was blocked in sendmsg, sock_wait_for_wmem,
  and an open-loop source counts what it could not send).  A TCP segment is exempt: TCP
  keeps its own send buffer of bytes written and not yet acknowledged (`sim.core.tcp`).
- Receiving: a packet entering a socket counts ``truesize`` against ``rcvbuf_bytes`` (or the
  buffer the flow gave the socket, `SocketQueue.limit`: TCP's autotuned one) until the
  application's read of it *ends* (udp_recvmsg -> skb_consume_udp -> udp_rmem_release);
  overflow drops with ``socket_rcvbuf_full``.  The packet is recorded ``delivered`` when it
  enters the socket.  The read is a job of the socket's thread costing `read_cost_ns`
  (``app_recv_ns`` plus ``app_recv_per_byte_ns`` x the packet's bytes: recvmsg's copy to user
  space, net/core/datagram.c skb_copy_datagram_iter, called by udp_recvmsg and
  tcp_recvmsg_locked) plus the flow's own work per message (`read_work_ns`, e.g.
  ``server_ns``); at its end the flow's ``on_read`` runs if the flow observes reads.  A host
  with ``app_recv_ns`` 0 has no reading application: it copies nothing either.  A read of cost
  0 is no job: ``on_read`` runs at once.  A send made by ``on_read`` from the reading socket
  is the thread's next job, ahead of reads queued meanwhile (recvmsg, work, sendmsg, recvmsg: a reply is not held back).
- Wake-ups: a read that finds its thread asleep wakes it.  Same core as the waker (the core
  that ran the enqueueing pass): the waker's core spends ``wakeup_local_send_ns`` of CPU
  (try_to_wake_up enqueueing the thread on its own runqueue) and the thread becomes runnable
  ``wakeup_local_ns`` later.  Another core: the waker's core spends ``wakeup_ipi_send_ns`` of
  CPU (try_to_wake_up with the IPI), and the thread becomes runnable ``wakeup_ipi_ns`` later on
  its own core, which spends no CPU meanwhile (delivery of the IPI and exit from idle).  Only a
  thread asleep is woken: in Linux sock_def_readable calls the wake-up only when
  ``skwq_has_sleeper`` finds a waiter (net/core/sock.c), so a reader that is running or
  runnable costs its waker nothing; the socket's enqueue itself (``socket_enqueue``,
  ``tcp_rcv``) is priced without the wake-up.  The waker's wake-up CPU is part of its core's
  busy time and is counted apart per core (`wakeup_ns`).  A sender's own send never waits for
  a wake-up.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sim.core.cpu import Core, Thread


@dataclass(frozen=True)
class WakeCosts:
    local_ns: float         # same core: delay until the woken thread may run
    ipi_ns: float           # other core: delay until the woken thread may run
    ipi_send_ns: float      # other core: CPU on the waker's core
    local_send_ns: float    # same core: CPU on the waker's core


class SocketQueue:
    """A socket's receive queue: bytes held, the (read end, truesize) of started reads, the
    socket's thread once a read has needed it, and its buffer (`limit`: the host's
    ``rcvbuf_bytes`` unless the flow sizes it, as TCP's autotuning does)."""

    __slots__ = ("held", "bytes", "reader", "limit")

    def __init__(self, limit: int) -> None:
        self.held: deque = deque()
        self.bytes = 0
        self.reader: Thread | None = None
        self.limit = limit


class Apps:
    """The application threads and sockets of one host; see the module docstring."""

    def __init__(self, host, *, sndbuf_bytes: int, rcvbuf_bytes: int, truesize_overhead: int,
                 app_recv_ns: float, app_recv_per_byte_ns: float, sockets_per_namespace: int,
                 wake: WakeCosts) -> None:
        self.host = host
        self.engine = host.engine
        self.model = host.model
        self.cores: list[Core] = host.cores
        self.sndbuf_bytes = sndbuf_bytes
        self.rcvbuf_bytes = rcvbuf_bytes
        self.truesize_overhead = truesize_overhead
        self.app_recv_ns = app_recv_ns
        self.recv_per_byte_ns = app_recv_per_byte_ns if app_recv_ns > 0 else 0.0
        self.per_ns = sockets_per_namespace
        self.wake_costs = wake
        self.wakeup_ns = [0.0] * len(self.cores)   # per core: wake-up CPU inside [warm-up, end]
        self.threads: dict[tuple[int, int, int], Thread] = {}       # (ns, port, side) -> thread
        self.sockets: dict[tuple[int, int, int], SocketQueue] = {}
        # bound once: the hot paths put them in a job per packet
        self.begin_send = host.begin_pass
        self.end_send = self._end_send
        self.begin_read = self._begin_read
        self.begin_tcp_read = self._begin_tcp_read
        self.end_read = self._end_read
        self.undo_read = self._undo_read

    # -- threads -----------------------------------------------------------------------
    def thread(self, ns: int, port: int, side: int, pin) -> Thread:
        """The thread of socket (`ns`, `port`, `side`), created on first use on core `pin` or
        the default."""
        key = (ns, port, side)
        th = self.threads.get(key)
        if th is None:
            n = len(self.cores)
            core = pin if pin is not None else (max(ns, 0) * self.per_ns + port) % n
            th = self.threads[key] = Thread(f"app/ns{ns}:{port}/{'dst' if side else 'src'}", self.cores[core],
                                            len(self.threads))
        return th

    # -- sending -----------------------------------------------------------------------
    def send(self, pkt) -> None:
        """Queue `pkt`'s current (process-context) pass on its sending socket's thread."""
        side = pkt.direction                        # a request leaves side 0, a response side 1
        th = self.threads.get((pkt.src_ns, pkt.port, side))
        if th is None:
            spec = pkt.owner.spec
            th = self.thread(pkt.src_ns, pkt.port, side, spec.dst_core if side else spec.src_core)
        if pkt.step == 0 and not pkt.tcp:           # TCP charges its own send buffer (sim.core.tcp)
            charged = pkt.size + self.truesize_overhead
            if th.sndbuf_bytes + charged > self.sndbuf_bytes:
                self.model.drop(pkt, "sender_blocked", self.host.name)
                return
            th.sndbuf_bytes += charged
        pkt.enq_ns = self.engine._now
        pkt.sender = th
        if th.core.run_now(th, self.begin_send, self.end_send, pkt):     # `run_job`, inline: the hot path
            return
        th.jobs.append((self.begin_send, self.end_send, pkt))
        if not (th.queued or th.on_cpu or th.waking):   # the application itself sends: no wake-up
            th.core.ready(th)

    def _end_send(self, pkt) -> None:
        if pkt.step == 0 and not pkt.tcp:
            pkt.sender.sndbuf_bytes -= pkt.size + self.truesize_overhead
        self.host.end_pass(pkt)

    # -- receiving ---------------------------------------------------------------------
    def deliver(self, pkt, ns: int, waker: Core) -> None:
        """`pkt` reaches socket (`ns`, its port, the side it goes to) now, enqueued by a pass on
        core `waker`."""
        now = self.engine._now
        key = (ns, pkt.port, 1 - pkt.direction)     # a request reaches side 1, a response side 0
        sq = self.sockets.get(key) or self.socket_queue(key)
        truesize = pkt.size + self.truesize_overhead
        held = sq.held
        while held and held[0][0] <= now:
            sq.bytes -= held.popleft()[1]
        flow = pkt.owner
        if sq.bytes + truesize > sq.limit and flow.buffers(pkt):
            self.model.record_drop(pkt, ns, "socket_rcvbuf_full", self.host.name)
            return
        self.model.record_delivered(pkt, ns, now)
        observes = flow.observes_reads
        cost = self.app_recv_ns + self.recv_per_byte_ns * pkt.size      # `read_cost_ns`, inline
        if observes:
            cost += flow.read_work_ns(pkt)
        if cost <= 0:
            if observes:
                flow.on_read(pkt)
            return
        sq.bytes += truesize
        th = sq.reader
        if th is None:
            spec = flow.spec
            th = sq.reader = self.thread(*key, spec.dst_core if pkt.direction == 0 else spec.src_core)
        job = (self.begin_tcp_read if flow.tcp_segments else self.begin_read, self.end_read if observes else None,
               (sq, pkt, truesize, cost, th))
        if th.queued or th.on_cpu or th.waking:
            th.jobs.append(job)
            return
        core = th.core
        if th.quiet_until > now:                    # finishing an event-less read: next in line
            th.jobs.append(job)
            core.ready(th)
            return
        delay = self._wake_delay(core, waker)      # asleep: wake it up
        if delay > 0 and not observes and core.commit_later(th, job, now + delay, cost, self.undo_read):
            held.append((now + delay + cost, truesize))     # as _begin_read at the wake-up
            return                                  # an idle core: the read runs when the wake-up lands
        th.jobs.append(job)
        if delay <= 0:
            core.ready(th)
            return
        th.waking = True
        self.engine.at(delay, core.woken, th)

    def read_cost_ns(self, pkt) -> float:
        """CPU of the application's read of `pkt` (recvmsg and its copy), the flow's work aside."""
        return self.app_recv_ns + self.recv_per_byte_ns * pkt.size

    def run_job(self, th: Thread, begin, end, arg) -> None:
        """Queue the job (`begin`, `end`, `arg`) on `th`, which is running or about to run (the
        application itself goes on: no wake-up)."""
        if th.core.run_now(th, begin, end, arg):
            return
        th.jobs.append((begin, end, arg))
        if not (th.queued or th.on_cpu or th.waking):
            th.core.ready(th)

    def wake(self, th: Thread, begin, end, arg, waker: Core) -> None:
        """Queue the job on `th` and wake it if it sleeps, from work on core `waker` (as a read
        wakes its reader: `wakeup_local_ns` or an IPI; e.g. a writer waiting for send-buffer
        space, sk_stream_write_space)."""
        th.jobs.append((begin, end, arg))
        if th.queued or th.on_cpu or th.waking:
            return
        core = th.core
        delay = 0.0 if th.quiet_until > self.engine._now else self._wake_delay(core, waker)
        if delay <= 0:
            core.ready(th)
            return
        th.waking = True
        self.engine.at(delay, core.woken, th)

    def _wake_delay(self, core: Core, waker: Core) -> float:
        """Delay until a thread of `core` woken by work on `waker` may run; the wake-up's CPU
        (local, or with an IPI) is charged to `waker`."""
        w = self.wake_costs
        if waker is core:
            if w.local_send_ns > 0:
                self.wakeup_ns[waker.idx] += waker.stall(w.local_send_ns)
            return w.local_ns
        if w.ipi_send_ns > 0:
            self.wakeup_ns[waker.idx] += waker.stall(w.ipi_send_ns)
        return w.ipi_ns

    def socket_queue(self, key: tuple[int, int, int]) -> SocketQueue:
        """The receive queue of socket `key` (ns, port, side), created on first use."""
        sq = self.sockets.get(key)
        if sq is None:
            sq = self.sockets[key] = SocketQueue(self.rcvbuf_bytes)
        return sq

    def _begin_read(self, arg, core: Core, start_ns: float) -> float:
        sq, _, truesize, cost, _ = arg
        sq.held.append((start_ns + cost, truesize))
        return cost

    def _begin_tcp_read(self, arg, core: Core, start_ns: float) -> float:
        """`_begin_read` of a TCP segment: the read holds its socket from now to its end
        (lock_sock in tcp_recvmsg, `sim.core.tcp.TcpFlow.on_read_start`), after spinning while
        softirq holds the socket's lock."""
        sq, pkt, truesize, cost, _ = arg
        cost += pkt.owner.on_read_start(pkt, start_ns)
        sq.held.append((start_ns + cost, truesize))
        return cost

    def _undo_read(self, arg) -> None:
        arg[0].held.pop()                           # the socket's latest read: this one
    def _end_read(self, arg) -> None:
        pkt, jobs = arg[1], arg[4].jobs
        n = len(jobs)
        pkt.owner.on_read(pkt)
        if n and len(jobs) > n:                     # replies sent from this read (recv, work, send):
            jobs.rotate(len(jobs) - n)              # they run before the thread's next read
