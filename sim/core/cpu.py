"""One CPU core with Linux's two execution contexts: softirq (NAPI rounds) and process context.

Contract (docs/execution.md gives the kernel functions each rule follows):

- Work reaches a core in two ways.  *Softirq work* is a packet waiting in a `Napi` instance:
  an RX queue of the NIC or the core's per-CPU backlog that netif_rx fills.  *Process-context
  work* is a job queued on a `Thread` pinned to the core: an application's send or read, or,
  under sustained softirq load, ksoftirqd.
- Service is non-preemptive at job granularity (one pass, one read): a job, once started,
  holds the core for its whole cost.  When the core is free it starts, in this order:

  1. softirq work, unless it has been handed to ksoftirqd.  The `Napi` at the head of the
     poll list gives up to ``napi_weight`` packets, then moves to the tail (napi_poll); the
     packet that opens each such poll also pays the poll's own work (stage ``napi_poll``:
     net_rx_action's __napi_poll, the poll function's entry and exit), and a packet that a
     pass queues back on the same backlog meanwhile is served in that poll (process_backlog
     splices the backlog again before it completes), so a ping-pong pays one poll per
     packet per CPU however many veth hops it crosses there; a
     net_rx_action round ends after ``netdev_budget`` packets or ``netdev_budget_usecs``;
     with work left the round restarts (handle_softirqs) unless ``max_softirq_restart``
     rounds or ``max_softirq_time_ns`` have gone by or a thread waits for the core
     (need_resched), in which case the pending work goes to ksoftirqd (wakeup_softirqd);
  2. the runnable thread with the least virtual runtime (fair sharing at job granularity,
     like CFS/EEVDF without slices; a waking thread starts at the core's virtual clock, with
     no sleeper credit).  ksoftirqd is such a thread: each turn it serves one softirq packet,
     and it sleeps again when the poll list is empty.

  So a sender whose pass hands a packet to netif_rx on this core sees the backlog drained
  before its next job, as local_bh_enable -> do_softirq does.
- A thread job that finds nothing else waiting on the core does not go through the core's
  event: the core is simply busy until the job ends, and the job's ``end`` (if any) is a
  plain engine event at that instant.  Work arriving meanwhile waits for that end, as it
  would for any running job.
  `commit_later` goes one step further for a woken thread's only such job on an idle core:
  it is committed to start when the wake-up lands, again without events; if other work
  reaches the core before that instant, the commitment is undone and the wake-up replayed
  as an event, so the outcome is what the event-driven path would give.
- `stall(ns)` charges the core CPU outside any job (a waker sending an IPI).
- `run_inline(job)` runs a job inside the softirq work ending on the core (or a timer's
  softirq): after the core's current work, before anything queued, with no NAPI quota (a TCP
  segment sent from tcp_v4_rcv or a TCP timer, `sim.core.tcp`).
- ``busy_ns`` counts busy time inside [warmup_ns, until_ns].
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from heapq import heappop, heappush
from typing import Any, Callable, Optional

from sim.core.engine import CALLBACK

IDLE, SOFTIRQ, THREAD = 0, 1, 2
EPS_NS = 1e-6                   # time comparisons: a computed end and its event may differ by rounding


@dataclass(frozen=True)
class SoftirqLimits:
    """The kernel's bounds on one softirq run (see `sim.core.costs.HostDefaults`)."""

    napi_weight: int            # packets one napi_poll may take (dev_rx_weight, NAPI_POLL_WEIGHT)
    netdev_budget: int          # packets per net_rx_action round
    netdev_budget_ns: float     # time per net_rx_action round (netdev_budget_usecs)
    max_restart: int            # MAX_SOFTIRQ_RESTART
    max_time_ns: float          # MAX_SOFTIRQ_TIME


class Napi:
    """One NAPI instance: a NIC RX queue or a per-CPU backlog; `items` are waiting packets."""

    __slots__ = ("name", "items", "limit", "scheduled", "quota_used")

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.items: deque = deque()
        self.limit = limit              # packets waiting (not in service) before drops
        self.scheduled = False          # on its core's poll list
        self.quota_used = 0             # packets taken in the current napi_poll


# A thread job: (begin(arg, core, start_ns) -> cost_ns, end(arg) or None, arg).
Job = tuple[Callable[[Any, "Core", float], float], Optional[Callable[[Any], None]], Any]


class Thread:
    """A process-context task pinned to `core`; `jobs` run one after another in FIFO order."""

    __slots__ = ("name", "core", "jobs", "vruntime_ns", "queued", "on_cpu", "quiet_until", "waking",
                 "seq", "sndbuf_bytes")

    def __init__(self, name: str, core: "Core", seq: int) -> None:
        self.name = name
        self.core = core
        self.jobs: deque = deque()
        self.vruntime_ns = 0.0
        self.queued = False             # in the core's run queue
        self.on_cpu = False             # its job is running, with an engine event at its end
        self.quiet_until = 0.0          # end of its job run without an event (see Core)
        self.waking = False             # a wake-up is on its way (see sim.core.apps)
        self.seq = seq                  # tie-break in the run queue, deterministic
        self.sndbuf_bytes = 0           # send-buffer bytes held by its pending sends


class Core:
    """One core; see the module docstring for the contract."""

    __slots__ = ("idx", "engine", "host", "limits", "busy_until", "busy_ns", "pending", "kind",
                 "job_arg", "job_end", "job_thread", "job_napi", "poll_list", "backlog",
                 "round_pkts", "round_start", "restarts", "episode_start", "in_softirq",
                 "deferred", "ksoftirqd", "runq", "vclock", "warmup_ns", "until_ns", "later", "on_event",
                 "begin_pass", "end_pass", "open_poll", "poll_ns", "calendar", "ids")

    def __init__(self, idx: int, host, limits: SoftirqLimits, backlog_limit: int) -> None:
        """`host` provides ``begin_pass(pkt, core) -> cost_ns``, ``end_pass(pkt)``,
        ``open_poll(pkt) -> cost_ns`` (the pass just begun opens a napi_poll: add the poll's
        own work to it), ``napi_poll_ns`` (0: no such cost), `engine`, ``warmup_ns`` and
        ``until_ns``."""
        self.idx = idx
        self.host = host
        self.engine = host.engine
        self.calendar = self.engine._queue      # the engine's heap and id counter, pushed to directly
        self.ids = self.engine._eid             # (see sim.core.engine.Engine.at)
        self.limits = limits
        self.warmup_ns = host.warmup_ns
        self.until_ns = host.until_ns
        self.busy_until = 0.0
        self.busy_ns = 0.0
        self.pending = False            # an engine event for this core is scheduled
        self.kind = IDLE
        self.poll_list: deque[Napi] = deque()
        self.backlog = Napi(f"backlog/{idx}", backlog_limit)
        self.ksoftirqd = Thread(f"ksoftirqd/{idx}", self, -1 - idx)
        # the job in service (meaningful while kind != IDLE)
        self.job_arg: Any = None
        self.job_end: Optional[Callable[[Any], None]] = None
        self.job_thread: Thread = self.ksoftirqd
        self.job_napi: Napi = self.backlog
        self.round_pkts = 0
        self.round_start = 0.0
        self.restarts = 0
        self.episode_start = 0.0
        self.in_softirq = False
        self.deferred = False           # pending softirq work belongs to ksoftirqd
        self.runq: list = []            # heap of (vruntime_ns, seq, thread)
        self.vclock = 0.0
        self.later: Optional[tuple] = None   # a commit_later not yet settled
        self.on_event = self._on_event       # bound once: the hot paths schedule it per job
        self.begin_pass = host.begin_pass
        self.end_pass = host.end_pass
        self.open_poll = host.open_poll
        self.poll_ns = host.napi_poll_ns

    # -- arrivals ----------------------------------------------------------------------
    def napi_add(self, napi: Napi, pkt) -> bool:
        """Queue `pkt` on `napi` (served by this core); False when `napi` is full."""
        if len(napi.items) >= napi.limit:
            return False
        later = self.later
        if later is not None:                   # inline of the common case of _settle
            if self.engine._now + EPS_NS < later[2]:
                self._settle()
            else:
                self.later = None
        napi.items.append(pkt)
        if not napi.scheduled:          # napi_schedule / ____napi_schedule: join the poll list
            napi.scheduled = True
            self.poll_list.append(napi)
        if not self.pending:
            now = self.engine._now
            if self.busy_until <= now + EPS_NS and not self.deferred:
                self._softirq_start(now, None)      # an idle core: softirq work starts at once
            else:
                self._kick()
        return True

    def ready(self, th: Thread) -> None:
        """`th` (of this core) has work and may run: put it in the run queue (unless a
        wake-up is on its way: `woken` will)."""
        later = self.later
        if later is not None:                   # inline of the common case of _settle
            if self.engine._now + EPS_NS < later[2]:
                self._settle()
            else:
                self.later = None
        if th.queued or th.on_cpu or th.waking:
            return
        if th.vruntime_ns < self.vclock:
            th.vruntime_ns = self.vclock
        if not self.pending and not self.runq and not self.poll_list:
            now = self.engine._now
            if self.busy_until <= now + EPS_NS:     # an idle core: the thread runs at once
                self.vclock = th.vruntime_ns
                self._thread_start(now, th)
                return
        th.queued = True
        heappush(self.runq, (th.vruntime_ns, th.seq, th))
        if not self.pending:
            self._kick()

    def woken(self, th: Thread) -> None:
        """The wake-up of `th` lands: it may run."""
        th.waking = False
        self.ready(th)

    def commit_later(self, th: Thread, job: tuple, start_ns: float, cost_ns: float,
                     undo: Callable[[Any], None]) -> bool:
        """If the core has nothing to do and `th` has no other job, run the event-less `job`
        (not queued on `th`; it costs `cost_ns`) from `start_ns` without events and return
        True: the caller then does what the job's begin would have done.  Else return False
        and do nothing.  ``undo(arg)`` reverses that, should the commitment be undone.
        Precondition: `th` is asleep (not queued, running or waking).  (While a softirq
        packet's end is handled, its NAPI instance is still at the poll list's head,
        possibly empty: that is no work.)"""
        if self.later is not None:
            self._settle()
        if self.kind != IDLE or self.runq or th.jobs or self.busy_until > start_ns + EPS_NS:
            return False
        poll = self.poll_list
        if poll and (len(poll) > 1 or poll[0].items):
            return False
        stop = start_ns + cost_ns
        self.later = (th, job, start_ns, stop, self.busy_until, undo)
        self.busy_until = stop
        if self.warmup_ns <= start_ns and stop <= self.until_ns:    # busy time inside the window
            self.busy_ns += cost_ns
        else:
            self._count(start_ns, stop)
        th.vruntime_ns += cost_ns
        th.quiet_until = stop
        return True

    def _settle(self) -> None:
        """Work reached the core while a `commit_later` job is pending: keep it if it has
        started, else undo it and replay its wake-up as an event."""
        assert self.later is not None
        th, job, start, stop, before, undo = self.later
        self.later = None
        now = self.engine._now
        if now + EPS_NS >= start:
            return
        self.busy_until = before
        self._count(start, stop, -1.0)
        th.vruntime_ns -= stop - start
        th.quiet_until = 0.0
        undo(job[2])
        th.jobs.appendleft(job)
        th.waking = True
        self.engine.at(start - now, self.woken, th)

    def stall(self, ns: float) -> float:
        """Charge `ns` of CPU now, outside any job (e.g., sending an IPI); return the part
        of it inside [warmup_ns, until_ns]."""
        if ns <= 0:
            return 0.0
        if self.later is not None:
            self._settle()
        now = self.engine._now
        start = self.busy_until if self.busy_until > now else now
        stop = self.busy_until = start + ns
        if self.warmup_ns <= start and stop <= self.until_ns:      # busy time inside the window
            self.busy_ns += ns
            return ns
        return self._count(start, stop)

    def run_inline(self, begin, end, arg) -> None:
        """Run the job (`begin`, `end`, `arg`) in softirq context as part of the softirq work
        that ends now on this core, or of a timer's softirq here: it starts when the core's
        current work ends (now, or after a job or stall in progress), ahead of anything queued
        on the core, holds the core for its cost and ends with a plain engine event (`end(arg)`);
        `begin(arg, core, start_ns)` is called at once, with the start it will have.
        It is not a NAPI packet: it counts toward no poll's quota, only toward the softirq
        round's time (a TCP segment that tcp_v4_rcv, or a TCP timer, transmits:
        net/ipv4/tcp_input.c tcp_data_snd_check, __tcp_ack_snd_check; tcp_timer.c)."""
        if self.later is not None:
            self._settle()
        now = self.engine._now
        start = self.busy_until if self.busy_until > now else now
        cost = begin(arg, self, start)
        stop = self.busy_until = start + cost
        if self.warmup_ns <= start and stop <= self.until_ns:      # busy time inside the window
            self.busy_ns += cost
        else:
            self._count(start, stop)
        heappush(self.calendar, (stop, CALLBACK, next(self.ids), end, arg))   # Engine.at, inline

    # -- service -----------------------------------------------------------------------
    def _kick(self) -> None:
        now = self.engine._now
        if self.busy_until > now + EPS_NS:
            self.pending = True
            self.engine.at(self.busy_until - now, self.on_event)
        else:
            self._dispatch(now)

    def _on_event(self, _=None) -> None:
        kind = self.kind
        if kind == SOFTIRQ:
            self.kind = IDLE
            napi = self.job_napi
            self.end_pass(self.job_arg)             # may queue more work: self.pending holds it
            if napi.items or len(self.poll_list) > 1:
                self._softirq_done(napi)
            else:                                   # the common case of _softirq_done: all done
                self.poll_list.popleft()
                napi.scheduled = False
                napi.quota_used = 0
                self.in_softirq = self.deferred = False
        elif kind == THREAD:
            self.kind = IDLE
            th = self.job_thread
            th.on_cpu = False
            end = self.job_end
            if end is not None:
                end(self.job_arg)
            if th.jobs and not th.queued:
                th.queued = True
                heappush(self.runq, (th.vruntime_ns, th.seq, th))
        self.pending = False
        if self.poll_list or self.runq:
            now = self.engine._now
            if self.poll_list and not self.deferred and self.busy_until <= now + EPS_NS:
                self._softirq_start(now, None)      # `_dispatch`'s common case, inline
            else:
                self._dispatch(now)

    def _dispatch(self, now: float) -> None:
        if self.busy_until > now + EPS_NS:          # a stall or an event-less job: serve what waits after it
            if self.poll_list or self.runq:
                self.pending = True
                self.engine.at(self.busy_until - now, self.on_event)
            return
        if self.poll_list and not self.deferred:
            self._softirq_start(now, None)
            return
        runq = self.runq
        while runq:
            _, _, th = heappop(runq)
            th.queued = False
            if th.vruntime_ns > self.vclock:
                self.vclock = th.vruntime_ns
            if th is self.ksoftirqd:
                if self.poll_list:
                    self._softirq_start(now, th)
                    return
                continue
            if th.jobs:
                self._thread_start(now, th)
                return

    def run_now(self, th: Thread, begin, end, arg) -> bool:
        """Start the job (`begin`, `end`, `arg`) of `th` at once if the core is idle and `th`
        waits for nothing else (the common case of queueing it and `ready`); else False."""
        if (self.pending or self.runq or self.poll_list or self.later is not None or th.jobs
                or th.queued or th.on_cpu or th.waking):
            return False
        now = self.engine._now
        if self.busy_until > now + EPS_NS:
            return False
        if th.vruntime_ns < self.vclock:
            th.vruntime_ns = self.vclock
        self.vclock = th.vruntime_ns
        self._start_job(now, th, begin, end, arg, True)
        return True

    def _thread_start(self, now: float, th: Thread) -> None:
        begin, end, arg = th.jobs.popleft()
        self._start_job(now, th, begin, end, arg)

    def _start_job(self, now: float, th: Thread, begin, end, arg, alone: bool = False) -> None:
        """Start the job (`begin`, `end`, `arg`) of `th` now; `alone`: nothing else waits for
        the core or `th` (a job's begin never queues work)."""
        cost = begin(arg, self, now)
        th.vruntime_ns += cost
        stop = now + cost
        self.busy_until = stop
        if self.warmup_ns <= now and stop <= self.until_ns:        # busy time inside the window
            self.busy_ns += cost
        else:
            self._count(now, stop)
        if alone or not th.jobs and not self.poll_list and not self.runq:
            th.quiet_until = stop                   # nothing waits: the core is just busy until stop
            if end is not None:                     # and the end is a plain event (Engine.at, inline)
                heappush(self.calendar, (stop, CALLBACK, next(self.ids), end, arg))
            return
        th.on_cpu = True
        self.kind = THREAD
        self.job_thread = th
        self.job_end = end
        self.job_arg = arg
        self.pending = True
        heappush(self.calendar, (stop, CALLBACK, next(self.ids), self.on_event, None))   # Engine.at, inline

    def _softirq_start(self, now: float, th: Optional[Thread]) -> None:
        if not self.in_softirq:                     # __do_softirq / handle_softirqs begins
            self.in_softirq = True
            self.episode_start = self.round_start = now
            self.restarts = self.round_pkts = 0
        napi = self.poll_list[0]
        pkt = napi.items.popleft()
        cost = self.begin_pass(pkt, self, now)
        if not napi.quota_used and self.poll_ns:    # the first packet of a napi_poll call
            cost += self.open_poll(pkt)
        if th is not None:
            th.vruntime_ns += cost
        stop = now + cost
        self.busy_until = stop
        if self.warmup_ns <= now and stop <= self.until_ns:        # busy time inside the window
            self.busy_ns += cost
        else:
            self._count(now, stop)
        self.kind = SOFTIRQ
        self.job_arg = pkt
        self.job_napi = napi
        self.pending = True
        heappush(self.calendar, (stop, CALLBACK, next(self.ids), self.on_event, None))   # Engine.at, inline

    def _softirq_done(self, napi: Napi) -> None:
        """Budget bookkeeping after one packet of `napi` (napi_poll, net_rx_action, handle_softirqs)."""
        poll = self.poll_list                       # `napi` is its head: only the head is served
        napi.quota_used += 1
        if not napi.items:                          # napi_complete_done: off the poll list
            poll.popleft()
            napi.scheduled = False
            napi.quota_used = 0
        elif napi.quota_used >= self.limits.napi_weight:   # weight used up: to the tail
            poll.append(poll.popleft())
            napi.quota_used = 0
        if not poll:                                # nothing pending: the softirq run ends
            self.in_softirq = False
            self.deferred = False
            return
        now = self.engine._now
        lim = self.limits
        self.round_pkts += 1
        if self.round_pkts >= lim.netdev_budget or now - self.round_start >= lim.netdev_budget_ns:
            self.round_pkts = 0                     # net_rx_action returns; NET_RX is raised again
            self.round_start = now
            self.restarts += 1
            if not self.deferred and (self.restarts >= lim.max_restart
                                      or now - self.episode_start >= lim.max_time_ns or self.runq):
                self.deferred = True                # wakeup_softirqd
        if self.deferred and not self.ksoftirqd.queued:
            self.ready(self.ksoftirqd)

    def _count(self, start: float, stop: float, sign: float = 1.0) -> float:
        """Add (`sign` 1) or remove (-1) busy time [start, stop] inside the window; return it."""
        lo = start if start > self.warmup_ns else self.warmup_ns
        hi = stop if stop < self.until_ns else self.until_ns
        if hi > lo:
            self.busy_ns += sign * (hi - lo)
            return hi - lo
        return 0.0
