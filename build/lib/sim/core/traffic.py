"""Traffic sources: open-loop flows (poisson, constant, onoff) and closed-loop request/response.

Each flow draws from its own `numpy.random.Generator` (spawned from the run's generator), so
adding a flow does not change the others' samples.  A flow hands each new packet to
``model.emit(flow, seq, direction, size)``; the model routes it.  Flows are notified by
``on_delivered(pkt, read_done_ns)`` (the packet entered its socket), ``on_read(pkt)`` (the
application's read of it ended; only when ``observes_reads``) and ``on_dropped(pkt)``, and asked
``buffers(pkt)`` (does it need room in a full receive buffer);
``read_work_ns(pkt)`` is the application's own CPU work per message read, run by the reading
socket's thread (`sim.core.apps`).  Kinds live in `FLOW_KINDS`, a registry: a new kind is
any `sim.core.interfaces.FlowKind` (same constructor, ``start()`` and the hooks).
"""

from __future__ import annotations

from heapq import heappush
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np

from sim.core.engine import CALLBACK
from sim.core.interfaces import FlowKind, ModelServices

if TYPE_CHECKING:
    from sim.frontdoor.scenario import FlowSpec

BATCH = 4096          # largest batch of random draws; batches start small and double


class Draws:
    """Random draws in growing batches (cheap per draw, little memory for idle flows)."""

    def __init__(self, draw) -> None:
        self._draw = draw          # draw(n) -> numpy array
        self._size = 8
        self._buf: list = []

    def next(self):
        try:
            return self._buf.pop()
        except IndexError:                      # the batch is used up: draw the next one
            self._buf = self._draw(self._size).tolist()[::-1]
            self._size = min(self._size * 2, BATCH)
            return self._buf.pop()


class SizeSampler:
    """Packet sizes in bytes from a `sim.frontdoor.scenario.SizeSpec`."""

    def __init__(self, spec, rng: np.random.Generator) -> None:
        self.spec = spec
        self.rng = rng
        self.const = spec.bytes if spec.dist == "const" else None     # callers may read it instead of calling
        if spec.dist == "uniform":
            self._draws = Draws(lambda n: rng.integers(spec.min_bytes, spec.max_bytes + 1, n))
        elif spec.dist == "choice":
            w = np.asarray(spec.weights or [1.0] * len(spec.values), dtype=float)
            values = np.asarray(spec.values)
            self._draws = Draws(lambda n: rng.choice(values, n, p=w / w.sum()))

    def __call__(self) -> int:
        if self.const is not None:
            return self.const
        return self._draws.next()

    def mean(self) -> float:
        s = self.spec
        if s.dist == "const":
            return float(s.bytes)
        if s.dist == "uniform":
            return (s.min_bytes + s.max_bytes) / 2
        w = np.asarray(s.weights or [1.0] * len(s.values), dtype=float)
        return float(np.dot(w / w.sum(), s.values))


def _exponential(rng: np.random.Generator, mean: float) -> Draws:
    return Draws(lambda n: rng.exponential(mean, n))


class Flow:
    """Base: identity, size sampler, stop condition."""

    # Set by sim.core.model.Model after construction: (host, ns) endpoints (ns -1 = the wire), the
    # multicast group (host -> member namespaces) or None, namespaces to spread over (HOST:ns*).
    src: tuple[int, int]
    dst: tuple[int, int]
    group: dict[int, tuple[int, ...]] | None
    spread_over: int
    tcp_segments = False   # its packets are TCP segments, priced with TCP's stages (sim.core.tcpcost)

    def __init__(self, idx: int, spec: FlowSpec, model: ModelServices, rng: np.random.Generator) -> None:
        self.idx = idx
        self.spec = spec
        self.model = model
        self.engine = model.engine
        self.rng = rng
        self.size = SizeSampler(spec.size, rng)
        self.stop_ns = spec.stop_ns if spec.stop_ns is not None else float("inf")
        self.sent = 0          # packets this flow emitted (each may fan out to several rows)
        self._namespaces: Draws | None = None

    def pick_namespace(self, count: int) -> int:
        """A destination namespace drawn uniformly from 0..count-1 (``dst: HOST:ns*``)."""
        if self._namespaces is None:
            self._namespaces = Draws(lambda n: self.rng.integers(0, count, n))
        return self._namespaces.next()

    def active(self) -> bool:
        return self.engine.now < self.stop_ns and not self.model.packet_budget_spent()

    observes_reads = False      # on_read is called only for flows that set this

    def read_work_ns(self, pkt) -> float:
        """CPU ns the reading application spends on `pkt` beyond recvmsg (``app_recv_ns``);
        asked only of flows that observe reads."""
        return 0.0

    def on_delivered(self, pkt, read_done_ns: float) -> None:
        pass

    def on_read(self, pkt) -> None:
        pass

    def on_dropped(self, pkt) -> None:
        pass

    def buffers(self, pkt) -> bool:
        """Whether `pkt`, reaching a full receive buffer, needs room in it (asked only then):
        every datagram does."""
        return True


class OpenLoopFlow(Flow):
    """Poisson (exponential gaps), constant (fixed gaps) or onoff (poisson while ON,
    exponential ON and OFF periods with means ``on_ns`` / ``off_ns``, starting ON)."""

    def __init__(self, idx, spec, model, rng) -> None:
        super().__init__(idx, spec, model, rng)
        self.mean_gap_ns = 1e9 / spec.rate_pps
        self.on_until = float("inf")
        self.on_ns = float(spec.on_ns or 0.0)       # onoff only (validated > 0 there)
        self.off_ns = float(spec.off_ns or 0.0)
        # the next gap (ns): a constant, or exponential draws (bound once: called per packet)
        self._gap = (repeat(self.mean_gap_ns).__next__ if spec.kind == "constant"
                     else Draws(lambda n: rng.exponential(self.mean_gap_ns, n)).next)
        self._emit_cb = self._emit                 # bound once: scheduled per packet

    def start(self) -> None:
        if self.spec.kind == "onoff":
            self.on_until = self.spec.start_ns + self.rng.exponential(self.on_ns)
        self.engine.at(self.spec.start_ns + self._gap(), self._emit)

    def _emit(self, _=None) -> None:
        now = self.engine._now                    # active(), inline: this runs once per packet
        model = self.model
        if now >= self.stop_ns or model.generated >= model.packet_limit:
            return
        if now > self.on_until:       # the ON period ended: sleep OFF, then a new ON period
            off = self.rng.exponential(self.off_ns)
            self.on_until = now + off + self.rng.exponential(self.on_ns)
            self.engine.at(off + self._gap(), self._emit_cb)
            return
        self.sent += 1
        model.emit(self, self.sent, 0, self.size.const or self.size())
        eng = self.engine                         # Engine.at(gap, _emit_cb), inline
        heappush(eng._queue, (eng._now + self._gap(), CALLBACK, next(eng._eid), self._emit_cb, None))  # type: ignore[misc]


class TransactionCounts:
    """Completed request/response transactions of a flow (the rr and tcp_rr kinds):
    ``transactions`` and ``transaction_ns`` (summed, request emitted to response read) count
    them all; ``window_transactions`` the ones completed at or after ``run.warmup_ns`` (the
    rate: `transaction_stats`) and ``window_transaction_ns`` the summed times of those whose
    request was also sent then (``window_started`` of them)."""

    def init_transactions(self) -> None:
        self.transactions = 0
        self.transaction_ns = 0.0
        self.window_transactions = 0
        self.window_started = 0
        self.window_transaction_ns = 0.0

    def transaction_done(self, start: float, now: float, warmup_ns: float) -> None:
        """A transaction whose request was emitted at `start` has its response read at `now`."""
        self.transactions += 1
        self.transaction_ns += now - start
        if now >= warmup_ns:
            self.window_transactions += 1
            if start >= warmup_ns:
                self.window_started += 1
                self.window_transaction_ns += now - start

    def transaction_stats(self, window_ns: float) -> tuple[float, float]:
        """(transactions per second completed in the measurement window of `window_ns`,
        mean transaction time in ns of those sent in it; NaN when there are none)."""
        tps = self.window_transactions / (window_ns / 1e9) if window_ns > 0 else float("nan")
        mean = self.window_transaction_ns / self.window_started if self.window_started else float("nan")
        return tps, mean


class RequestResponseFlow(TransactionCounts, Flow):
    """Closed loop like netperf UDP_RR: `concurrency` transactions in flight.  The server's
    thread reads a request (``app_recv_ns``), works ``server_ns`` on its core and sends the
    response; the client's thread reads the response and, ``think_ns`` later (sleeping, no
    CPU), sends the next request; a lost packet is retried as a new transaction after
    ``timeout_ns``; completed transactions are counted by `TransactionCounts`.  ``server_dist`` / ``think_dist``:
    ``deterministic`` (the default) or ``exponential`` with mean ``server_ns`` / ``think_ns``,
    one draw per request (from the flow's generator, as requests reach the server's socket)
    or per think.  A request's ``seq`` counts requests (1, 2, ...; a retry is a new one) and its
    response keeps it, so ``seq % connections`` takes the connections in turn."""

    observes_reads = True

    def __init__(self, idx, spec, model, rng) -> None:
        super().__init__(idx, spec, model, rng)
        self.response_size = SizeSampler(spec.response_size or spec.size, rng)
        self.init_transactions()
        self.requests = 0           # requests sent: a request's seq, which its response keeps
        self._started: dict[int, float] = {}
        self._server = _exponential(rng, spec.server_ns) if spec.server_dist == "exponential" else None
        self._think = _exponential(rng, spec.think_ns) if spec.think_dist == "exponential" else None

    def start(self) -> None:
        for _ in range(self.spec.concurrency):
            self.engine.at(self.spec.start_ns, self._request)

    def _request(self, _=None) -> None:
        if not self.active():
            return
        self.sent += 1
        self.requests += 1
        self._started[self.requests] = self.engine.now
        self.model.emit(self, self.requests, 0, self.size())

    def read_work_ns(self, pkt) -> float:
        if pkt.direction != 0:
            return 0.0
        return self.spec.server_ns if self._server is None else self._server.next()

    def on_read(self, pkt) -> None:
        if pkt.direction == 0:
            self.sent += 1
            self.model.emit(self, pkt.seq, 1, self.response_size())
            return
        start = self._started.pop(pkt.seq, None)
        if start is not None:
            self.transaction_done(start, self.engine.now, self.model.warmup_ns)
        if self.spec.think_ns > 0:
            self.engine.at(self.spec.think_ns if self._think is None else self._think.next(), self._request)
        else:
            self._request()

    def on_dropped(self, pkt) -> None:
        self._started.pop(pkt.seq, None)
        self.engine.at(self.spec.timeout_ns, self._request)


FLOW_KINDS: dict[str, FlowKind] = {
    "poisson": OpenLoopFlow,
    "constant": OpenLoopFlow,
    "onoff": OpenLoopFlow,
    "rr": RequestResponseFlow,
}
