"""A host: cores serving passes in FIFO order, bounded queues, sockets, socket tables.

Contract:
- A *pass* (`sim.core.schemes.CompiledPass`) waits in one queue of one core, then holds that core
  for the sum of its stage costs, then ends (one engine event).  Queues: ``nic_rx`` (an RX
  ring per core, or per namespace for a pass that starts in the destination namespace, as
  with VNIC; limit ``rx_ring_packets``), ``backlog`` (the per-CPU backlog fed by
  ``netif_rx``; limit ``netdev_max_backlog``), ``process`` (the sender's system call;
  unbounded, the application blocks).  A full queue drops the packet with reason
  ``<queue>_full``.
- Core choice: an RX pass goes to the flow's RSS core (``flow % cores``), or for a
  per-namespace RX queue to ``ns % cores``; a sender's pass runs on ``flow % cores``; a
  backlog pass stays on the core that enqueued it (``netif_rx`` uses the local CPU).
- A multicast_local pass with ``wire_stages`` (`sim.core.schemes`) hands the copy for
  members on other hosts to the model (``wire_copies``) when it ends.
- Each core is one FIFO server shared by all its queues; because service order is FIFO and
  a pass's cost is known when it is queued, its start time is computed on arrival.
- A socket receive queue is bounded by ``rcvbuf_bytes`` counted in truesize (payload +
  ``skb_truesize_overhead_bytes``); overflow drops with ``socket_rcvbuf_full``.  The
  application reads each packet after the previous one, taking ``app_recv_ns``; a packet
  leaves the queue when its read starts.
- `pass_cost` prices a pass for a packet from the stage costs (see `sim.core.costs`), with entries
  taken from this host's state (socket chain positions, netfilter rules, FIB depth,
  classifier rules); costs are cached per (pass, size, namespaces, port).
"""

from __future__ import annotations

import math
from collections import deque

from sim.core.costs import CostProfile
from sim.core.interfaces import ModelServices
from sim.core.nscodes import ROOT_NS, WIRE_NS
from sim.core.schemes import CompiledPass, Scheme
from sim.core.sockets import SocketTables
from sim.core.stages import STAGE_NAMES
from sim.core.trips import LEAVING_TRIPS

ROOT_ROUTES = 4            # local and main table entries of a host with one address
CHILD_ROUTES = 4


class Core:
    __slots__ = ("free_at", "busy_ns", "waiting")

    def __init__(self) -> None:
        self.free_at = 0.0
        self.busy_ns = 0.0
        self.waiting: dict[object, deque] = {}


class SocketQueue:
    __slots__ = ("app_free_at", "held", "bytes")

    def __init__(self) -> None:
        self.app_free_at = 0.0
        self.held: deque = deque()
        self.bytes = 0


def fib_depth(routes: int) -> int:
    """Entries charged to a FIB lookup: depth of a binary trie over `routes` prefixes."""
    return math.ceil(math.log2(routes + 1))


class Host:
    """One host of the topology; see the module docstring for the contract."""

    def __init__(self, idx: int, name: str, spec, scheme: Scheme, scheme_code: int,
                 profile: CostProfile, model: ModelServices, rng) -> None:
        self.idx = idx
        self.name = name
        self.scheme = scheme
        self.scheme_code = scheme_code
        self.model = model
        self.engine = model.engine
        self.rng = rng
        self.cores = [Core() for _ in range(spec.cores)]
        self.n_cores = spec.cores
        hd = profile.host
        self.limits = {
            "nic_rx": spec.rx_ring_packets or hd.rx_ring_packets,
            "backlog": spec.netdev_max_backlog or hd.netdev_max_backlog,
            "process": None,
        }
        self.rcvbuf_bytes = spec.rcvbuf_bytes or hd.rcvbuf_bytes
        self.truesize_overhead = hd.skb_truesize_overhead_bytes
        self.app_recv_ns = hd.app_recv_ns if spec.app_recv_ns is None else spec.app_recv_ns
        self.namespaces = spec.namespaces
        self.sockets_per_namespace = spec.sockets_per_namespace
        costs = [profile.stages[s] for s in STAGE_NAMES]
        self.base = [c.base_ns for c in costs]
        self.per_byte = [c.per_byte_ns for c in costs]
        self.per_entry = [c.per_entry_ns for c in costs]
        buckets = spec.socket_hash_buckets or profile.memory_bytes.udp_hash_buckets
        self.tables = SocketTables(scheme.spec.socket_tables, max(spec.namespaces, 1),
                                   spec.sockets_per_namespace, buckets, rng)
        self.nf_root = dict(spec.nf_rules.root)
        self.nf_child = dict(spec.nf_rules.child)
        self.fib_root = fib_depth(ROOT_ROUTES + spec.namespaces * scheme.spec.addresses_per_container)
        self.fib_child = fib_depth(CHILD_ROUTES)
        self.random_costs = spec.cost_distribution == "exponential"
        self.sockets: dict[tuple[int, int], SocketQueue] = {}
        self._cache: dict[tuple, tuple[int, float]] = {}
        self._scales: list[float] = []
        self.warmup_ns = model.warmup_ns
        self.until_ns = model.until_ns
        self.trip_plans = scheme.trips

    # -- pricing ---------------------------------------------------------------------
    def _entries(self, kind: str, role: str, pkt, member) -> float:
        if kind == "none":
            return 0.0
        if role != "root" and (pkt.src_ns if role == "src" else pkt.dst_ns) == ROOT_NS:
            role = "root"                       # that end is HOST:root: its rules and routes
        if kind == "sock_chain":
            if member is not None:
                return self.tables.examined(member, pkt.port)
            if pkt.members:
                return max(self.tables.examined(m, pkt.port) for m in pkt.members)
            return self.tables.examined(pkt.dst_ns, pkt.port) if pkt.dst_ns != WIRE_NS else 0.0
        if kind.startswith("nf:"):
            rules = self.nf_root if role == "root" else self.nf_child
            return rules.get(kind[3:], 0)
        if kind == "fib":
            return self.fib_root if role == "root" else self.fib_child
        if kind == "classifier":
            return self.namespaces
        raise ValueError(f"unknown entry kind {kind!r}")

    def pass_cost(self, p: CompiledPass, pkt) -> tuple[int, float]:
        """(interned cost-vector id, total ns) of pass `p` for packet `pkt` (with its
        ``wire_stages`` when the packet still carries members on other hosts)."""
        key = (p.uid, pkt.size, pkt.src_ns, pkt.dst_ns, pkt.port, pkt.members, pkt.wire_hosts)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        vec: dict[int, float] = {}
        total = 0.0
        size = pkt.size
        stages = p.stages + p.wire_stages if p.wire_stages and pkt.wire_hosts else p.stages
        for st in stages:
            targets = pkt.members if (st.per_member and pkt.members) else (None,)
            i = st.index
            for m in targets:
                entries = self._entries(st.entry_kind, st.role, pkt, m)
                c = self.base[i] + self.per_byte[i] * size + self.per_entry[i] * entries
                vec[i] = vec.get(i, 0.0) + c
                total += c
        hit = (self.model.recorder.cost_book.intern(tuple(sorted(vec.items()))), total)
        self._cache[key] = hit
        return hit

    def _scale(self) -> float:
        if not self._scales:
            self._scales = self.rng.exponential(1.0, 4096).tolist()
        return self._scales.pop()

    # -- passes ----------------------------------------------------------------------
    def start_trip(self, pkt, trip: str, core_idx: int) -> None:
        pkt.scheme = self.scheme_code
        pkt.plan = self.trip_plans[trip]
        pkt.step = 0
        pkt.host_trip = trip
        if pkt.plan[0].fanout and pkt.members:      # e.g. a NIC replicating into member queues
            for copy in self.model.fan_out(pkt):
                self._start_pass(copy, core_idx)
            return
        self._start_pass(pkt, core_idx)

    def _start_pass(self, pkt, core_idx: int) -> None:
        p = pkt.plan[pkt.step]
        now = self.engine.now
        queue = p.queue
        key = queue
        if queue == "nic_rx" and p.role == "dst":
            key = (queue, pkt.dst_ns)
            core_idx = max(pkt.dst_ns, 0) % self.n_cores
        core = self.cores[core_idx]
        limit = self.limits[queue]
        dq = None
        if limit is not None:
            dq = core.waiting.get(key)
            if dq is None:
                dq = core.waiting[key] = deque()
            while dq and dq[0] <= now:
                dq.popleft()
            if len(dq) >= limit:
                self.model.drop(pkt, queue + "_full", self.name)
                return
        vec_id, cost = self.pass_cost(p, pkt)
        scale = 1.0
        if self.random_costs:
            scale = self._scale()
            cost *= scale
        start = core.free_at if core.free_at > now else now
        end = start + cost
        core.free_at = end
        if dq is not None:                      # a bounded queue: the pass holds a place until it starts
            dq.append(start)
        lo = start if start > self.warmup_ns else self.warmup_ns
        hi = end if end < self.until_ns else self.until_ns
        if hi > lo:
            core.busy_ns += hi - lo
        pkt.passes += (vec_id, start - now, scale)
        pkt.core = core_idx
        self.engine.at(end - now, self._pass_done, pkt)

    def _pass_done(self, pkt) -> None:
        if pkt.wire_hosts and pkt.plan[pkt.step].wire_stages is not None:
            self.model.wire_copies(pkt, self)   # multicast_local: the copy for other hosts leaves
        pkt.step += 1
        plan = pkt.plan
        if pkt.step < len(plan):
            if plan[pkt.step].fanout and pkt.members:
                for copy in self.model.fan_out(pkt):
                    self._start_pass(copy, pkt.core)
            else:
                self._start_pass(pkt, pkt.core)
            return
        if pkt.host_trip in LEAVING_TRIPS:
            self.model.left_host(pkt, self)
        elif pkt.members:
            for ns in pkt.members:
                self._deliver(pkt, ns)
            self.model.retire(pkt)
        else:
            self._deliver(pkt, pkt.dst_ns)
            self.model.retire(pkt)

    # -- sockets ---------------------------------------------------------------------
    def _deliver(self, pkt, ns: int) -> None:
        now = self.engine.now
        sock_key = (ns, pkt.port)
        sq = self.sockets.get(sock_key)
        if sq is None:
            sq = self.sockets[sock_key] = SocketQueue()
        truesize = pkt.size + self.truesize_overhead
        held = sq.held
        while held and held[0][0] <= now:
            sq.bytes -= held.popleft()[1]
        if sq.bytes + truesize > self.rcvbuf_bytes:
            self.model.record_drop(pkt, ns, "socket_rcvbuf_full", self.name)
            return
        read_done = now
        if self.app_recv_ns > 0:
            start = sq.app_free_at if sq.app_free_at > now else now
            read_done = sq.app_free_at = start + self.app_recv_ns
            if start > now:
                held.append((start, truesize))
                sq.bytes += truesize
        self.model.record_delivered(pkt, ns, read_done)

    def utilisation(self) -> list[float]:
        window = max(self.until_ns - self.warmup_ns, 1e-9)
        return [c.busy_ns / window for c in self.cores]
