"""The network between hosts: a networkx graph of hosts and switches joined by links.

Each scenario link is full duplex: one `Link` per direction, each a FIFO output port with
``rate_bps`` serialization, ``delay_ns`` propagation and room for ``queue_packets`` packets
waiting (beyond the one being sent); overflow drops with ``link_queue_full``.  A link with
``loss_rate`` p > 0 loses each packet it carries with probability p (independent draws from
the run's generator, spawned for the network only when some link loses packets): the packet
is serialized and propagated, then dropped with ``link_loss`` at its arrival time (it took its
share of the link).  A packet of several frames (a TCP GSO packet, `sim.core.packet`) takes
``wire_size`` bytes of the link and loses each frame with probability p: all lost, it is
dropped as above; some lost, it goes on with their indices in ``lost_frames`` (its flow
receives the rest, `sim.core.tcp`).  Lossless links are plain `Link`s: no draw, no extra work per packet.  Switches
forward store-and-forward with no processing cost.  Routes are shortest paths in hops
(ties broken by networkx's deterministic order) and are computed once per host pair.
"""

from __future__ import annotations

from collections import deque
from heapq import heappush
from typing import Callable

import networkx as nx

from sim.core.engine import CALLBACK
from sim.core.interfaces import ModelServices
from sim.core.traffic import Draws
from sim.core.units import serialization_ns


class NoRouteError(ValueError):
    pass


class Link:
    """One direction of a link: a FIFO output port plus a wire (its state; packets cross it
    by a route's `Hop`)."""

    __slots__ = ("name", "code", "rate_bps", "ns_per_byte", "delay_ns", "limit", "free_at",
                 "waiting", "engine", "network", "calendar", "ids")

    def __init__(self, name: str, code: int, rate_bps: float, delay_ns: float, limit: int,
                 engine, network) -> None:
        self.name = name
        self.code = code
        self.rate_bps = rate_bps
        self.ns_per_byte = serialization_ns(1, rate_bps)
        self.delay_ns = delay_ns
        self.limit = limit
        self.free_at = 0.0
        self.waiting: deque = deque()
        self.engine = engine
        self.network = network
        self.calendar = engine._queue       # the engine's heap and id counter (see Engine.at),
        self.ids = engine._eid              # pushed to directly: one event per hop


class Hop:
    """Link number `index` (0: the first) of one route, and where a packet goes after it:
    `next` is the next hop's `send`, or, after the last link, the model's ``arrive_at_host``.
    (A hop knows its place, so a packet carries no route position to update per link.)"""

    __slots__ = ("link", "index", "next")

    def __init__(self, link: Link, index: int, next) -> None:
        self.link = link
        self.index = index
        self.next = next

    def send(self, pkt, _push=heappush, _next=next) -> None:
        """`pkt` joins this hop's link now (``pkt.hop`` becomes `index`: the links it has fully
        crossed): after the packets ahead of it, its serialization and the propagation delay
        it is handed to `next`, one engine event; or it is dropped.  (`_push`, `_next`:
        builtins bound as locals.)"""
        link = self.link
        pkt.hop = self.index
        start = link.engine._now
        free = link.free_at
        if free > start:                        # busy: wait behind the packets queued ahead
            dq = link.waiting                   # their start times; those <= now have left the queue
            while dq and dq[0] <= start:        # (an idle link leaves its stale entries for here:
                dq.popleft()                    # every one is <= free_at <= now)
            if len(dq) >= link.limit:
                link.network.model.drop(pkt, "link_queue_full", link.name)
                return
            dq.append(free)
            pkt.link_queue_ns += free - start
            start = free
        free = link.free_at = start + pkt.wire_size * link.ns_per_byte
        _push(link.calendar, (free + link.delay_ns, CALLBACK, _next(link.ids), self.next, pkt))  # at()


class LossyLink(Link):
    """A `Link` that loses each packet with probability `loss_rate` (see the module docstring);
    its routes' hops are `LossyHop`s."""

    __slots__ = ("loss_rate", "draws")

    def __init__(self, name: str, code: int, rate_bps: float, delay_ns: float, limit: int,
                 engine, network, loss_rate: float, rng) -> None:
        super().__init__(name, code, rate_bps, delay_ns, limit, engine, network)
        self.loss_rate = loss_rate
        self.draws = Draws(lambda n: rng.random(n))


class LossyHop(Hop):
    """A `Hop` over a `LossyLink`: a lost packet is queued, serialized and propagated like the
    others (it took its share of the link), then dropped with ``link_loss`` where it would have
    arrived; ``pkt.hop`` stays `index` (this link not crossed)."""

    __slots__ = ("lost",)

    def __init__(self, link: LossyLink, index: int, next) -> None:
        super().__init__(link, index, next)
        self.lost = Hop(link, index, self._lose)

    def send(self, pkt, _push=heappush, _next=next) -> None:
        link = self.link
        assert isinstance(link, LossyLink)
        if pkt.frames > 1:
            self._send_frames(pkt, link)
        elif link.draws.next() >= link.loss_rate:
            Hop.send(self, pkt)
        else:
            self.lost.send(pkt)

    def _send_frames(self, pkt, link: LossyLink) -> None:
        """A packet of `pkt.frames` frames: one draw per frame; lost when every frame is (on
        this link or an earlier one), else sent with the lost ones in ``lost_frames``."""
        p = link.loss_rate
        lost = set(pkt.lost_frames)
        lost.update(i for i in range(pkt.frames) if link.draws.next() < p)
        if len(lost) == pkt.frames:
            self.lost.send(pkt)
            return
        pkt.lost_frames = tuple(sorted(lost))
        Hop.send(self, pkt)

    def _lose(self, pkt) -> None:
        self.link.network.model.drop(pkt, "link_loss", self.link.name)


class Network:
    """Graph, links and routes; hands arriving packets to the next link or host."""

    def __init__(self, host_names: list[str], switch_names: list[str], link_specs, engine,
                 model: ModelServices, rng=None) -> None:
        """`rng`: the generator of lossy links' draws (needed only if some link has ``loss_rate``)."""
        self.model = model
        self.graph = nx.Graph()
        self.graph.add_nodes_from(host_names, kind="host")
        self.graph.add_nodes_from(switch_names, kind="switch")
        self.links: dict[tuple[str, str], Link] = {}
        for spec in link_specs:
            for a, b in ((spec.a, spec.b), (spec.b, spec.a)):
                name = f"{a}->{b}"
                if spec.loss_rate > 0:
                    self.links[(a, b)] = LossyLink(name, model.node_code(name), spec.rate_bps, spec.delay_ns,
                                                   spec.queue_packets, engine, self, spec.loss_rate, rng)
                else:
                    self.links[(a, b)] = Link(name, model.node_code(name), spec.rate_bps, spec.delay_ns,
                                              spec.queue_packets, engine, self)
            self.graph.add_edge(spec.a, spec.b)
        self._routes: dict[tuple[str, str], tuple[Link, ...]] = {}
        # (src, dst) -> (route code, the send of the route's first `Hop`)
        self._hops: dict[tuple[str, str], tuple[int, Callable]] = {}

    def route(self, src: str, dst: str) -> tuple[Link, ...]:
        """Links from host `src` to host `dst`; NoRouteError if they are not connected."""
        key = (src, dst)
        r = self._routes.get(key)
        if r is None:
            try:
                path = nx.shortest_path(self.graph, src, dst)
            except nx.NetworkXNoPath:
                raise NoRouteError(f"no route from host {src!r} to host {dst!r}: "
                                   "add a link path between them") from None
            r = self._routes[key] = tuple(self.links[(a, b)] for a, b in zip(path, path[1:]))
        return r

    def transmit(self, pkt, src: str, dst: str) -> None:
        """`pkt` leaves host `src` for host `dst` now (NoRouteError if they are not connected);
        after the last link it goes to the model's ``arrive_at_host``, which counts that link
        in ``pkt.hop``."""
        key = (src, dst)
        hops = self._hops.get(key)
        if hops is None:
            route = self.route(src, dst)
            send = self.model.arrive_at_host
            for i in reversed(range(len(route))):
                link = route[i]
                send = (LossyHop(link, i, send) if isinstance(link, LossyLink) else Hop(link, i, send)).send
            hops = self._hops[key] = (self.model.recorder.routes.add(route), send)
        pkt.route_code, send = hops
        send(pkt)
