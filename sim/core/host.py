"""A host: cores with two execution contexts, NIC RX queues, application threads, pricing.

Contract:
- A *pass* (`sim.core.schemes.CompiledPass`) waits in one queue, then holds one core for the
  sum of its stage costs (one engine event at its end).  Queues: ``nic_rx`` (an RX queue of
  the NIC, chosen by RSS, `sim.core.spread`; or per namespace for a pass that starts in the
  destination namespace, as with VNIC, on core ``ns % cores``; limit ``rx_ring_packets``),
  ``backlog`` (the per-CPU backlog fed by netif_rx, on the core that ran the previous pass,
  or the RPS target; limit ``netdev_max_backlog``) and ``process`` (a job of the sending
  socket's application thread, bounded by its send buffer, `sim.core.apps`).  A full queue
  drops the packet with reason ``<queue>_full`` (``sender_blocked`` for a full send buffer).
- How a core chooses between softirq work (``nic_rx``, ``backlog``) and process-context work
  (sends, reads, ksoftirqd) is `sim.core.cpu`'s contract.  RX queue ``q`` is served by core
  ``q % cores``; a host has ``rx_queues`` queues (default: one per core).
- RPS (``rps_cpus``): a pass that starts with the driver's ``nic_rx`` stage is split after it;
  the rest runs from the backlog of the core `sim.core.spread` picks from ``rps_cpus``.
- A packet sent from softirq context (TCP's ACKs, ACK-clocked data, timers) runs its
  ``process`` pass inline in that core's softirq instead (`start_trip`).
- Sockets, reads and wake-ups are `sim.core.apps`'s contract.
- A multicast_local pass with ``wire_stages`` (`sim.core.schemes`) hands the copy for
  members on other hosts to the model (``wire_copies``) when it ends.  A multicast pass with
  ``root_stages`` delivers the root namespace's copy when it ends (if the root is a member
  here), and a sender's pass with ``loop_stages`` branches the sender's own copy off
  (IP_MULTICAST_LOOP) into the rest of trip ``ns_to_self``, from the backlog of the core that
  ran the pass (dev_loopback_xmit -> netif_rx); either member then leaves the packet's members.
  Per-member stages (``*``) of such a pass run for the other members only.
- A ``nic_rx`` pass in the destination namespace uses that namespace's own queue (VNIC), or,
  for the root namespace, the host's RSS queues (the root's VNIC is the NIC's own).
- A pass that hands a packet to the NIC (``nic_tx``, once per packet it hands over) is
  followed by that packet's TX completion on the core of its TX queue (`sim.core.txq`: XPS
  or the flow hash), charged when the pass ends.
- A packet of k frames (a TCP GSO packet that a NIC cut, TSO, and the receiving NIC's GRO
  merges again, `sim.core.tcp`) pays the base cost of the per-frame stages (`PER_FRAME_STAGES`:
  the driver's RX and GRO, napi_gro_receive per frame) k times, the rest once, and per-byte
  costs on its `size`.
- `pass_cost` prices a pass for a packet from the stage costs (see `sim.core.costs`), with entries
  taken from this host's state (socket chain positions, FIB depth, classifier rules) and each
  netfilter hook's state in the namespace it runs in (the root's when the scheme gives
  containers no netfilter of their own; `sim.core.netfilter`: no hook, an empty
  chain or N rules, the backend, conntrack's lookup); costs are cached per (pass, size,
  frames, namespaces, port), with the hook points the pass crosses interned beside its cost vector.
- br_netfilter (``br_netfilter``, a bridging scheme): the trips are the scheme's with the
  root's hooks around each bridge a frame crosses from a port (`sim.core.netfilter`).
- conntrack (``conntrack``): on such a host `begin_pass` also asks, for every namespace
  whose conntrack the pass runs, whether the packet's connection is new there; the first
  packet of a connection pays the entry's creation (a second cached price of the pass), the
  others the lookup alone.  ``ct_seen`` holds the (connection, namespace) pairs tracked.
"""

from __future__ import annotations

import math
from dataclasses import replace

from sim.core.apps import Apps, WakeCosts
from sim.core.costs import CostProfile
from sim.core.cpu import Core, Napi, SoftirqLimits
from sim.core.hostschemes import HostSchemes
from sim.core.interfaces import ModelServices
from sim.core.netfilter import (
    BR_NF,
    GROUPS,
    KIND_CHAIN,
    br_netfilter_passes,
    br_netfilter_trips,
    bridges,
    hook_prices,
    policy_bit,
)
from sim.core.nscodes import ROOT_NS, WIRE_NS
from sim.core.schemes import NIC_TX, CompiledPass, Scheme, SchemeRegistry
from sim.core.sockets import SocketTables, TableConfig, table_config
from sim.core.spread import Spreader
from sim.core.stages import STAGE_INDEX, STAGE_NAMES
from sim.core.tcpcost import (
    BACKLOGGED,
    RECEIVE_STAGES,
    TCP_SEND,
    WRITTEN,
    receive_stages,
    receives,
    segment_stages,
)
from sim.core.trips import LEAVING_TRIPS, SENDER_TRIPS
from sim.core.txq import TxQueues

REPEAT_UID_BASE = 1 << 50                   # uids of passes that repeat stages (Host._repeat_passes)

# Stages that run once per frame the NIC receives: a packet of k frames (a TCP GSO packet,
# `sim.core.packet`) pays their base cost k times, every other stage's once (docs/tcp.md, GRO).
PER_FRAME_STAGES = ("vnic_demux", "nic_rx")
NAPI_POLL = STAGE_INDEX["napi_poll"]       # charged per poll by open_poll, never listed in a pass
ROOT_ROUTES = 4            # local and main table entries of a host with one address
CHILD_ROUTES = 4


def fib_depth(routes: int) -> int:
    """Entries charged to a FIB lookup: depth of a binary trie over `routes` prefixes."""
    return math.ceil(math.log2(routes + 1))


class Host:
    """One host of the topology; see the module docstring for the contract."""

    def __init__(self, idx: int, name: str, spec, scheme: Scheme, scheme_code: int,
                 profile: CostProfile, model: ModelServices, rng,
                 groups: list[tuple[Scheme, int]] | None = None, registry: SchemeRegistry | None = None,
                 codes: dict[str, int] | None = None) -> None:
        """`groups` (scheme, containers) and `registry`, `codes` (scheme label -> record code)
        make a mixed host (`sim.core.hostschemes`); without them every container runs `scheme`."""
        self.idx = idx
        self.name = name
        self.scheme = scheme
        self.scheme_code = scheme_code
        self.model = model
        if spec.conntrack.root or spec.conntrack.child:     # before the cores and apps bind begin_pass
            self.begin_pass = self._begin_pass_ct       # type: ignore[method-assign]
        elif spec.cost_distribution == "exponential":
            self.begin_pass = self._begin_pass_scaled   # type: ignore[method-assign]
        if model.tcp:                                   # TCP segments may find their socket owned
            self._begin_untracked = self.begin_pass
            self.begin_pass = self._begin_pass_tcp      # type: ignore[method-assign]
            self._receives: dict[int, bool] = {}
        self.engine = model.engine
        self.rng = rng
        self.warmup_ns = model.warmup_ns
        self.until_ns = model.until_ns
        hd = profile.host
        limits = SoftirqLimits(hd.napi_weight, hd.netdev_budget, hd.netdev_budget_usecs * 1e3,
                               hd.max_softirq_restart, hd.max_softirq_time_ns)
        backlog = spec.netdev_max_backlog or hd.netdev_max_backlog
        self.napi_poll_ns = profile.stages["napi_poll"].base_ns     # before the cores bind it
        self._poll_vecs: dict[int, int] = {}                         # see open_poll
        self.cores = [Core(i, self, limits, backlog) for i in range(spec.cores)]
        self.n_cores = spec.cores
        self.ring_packets = spec.rx_ring_packets or hd.rx_ring_packets
        self.rx_queues = [Napi(f"rx{q}", self.ring_packets) for q in range(spec.rx_queues or spec.cores)]
        self._rx = [(self.cores[q % self.n_cores], napi) for q, napi in enumerate(self.rx_queues)]   # its core, it
        self._rss = len(self.rx_queues) > 1
        self.ns_rings: dict[int, Napi] = {}
        self.spread = Spreader(len(self.rx_queues), spec.rps_cpus)
        self.txq = TxQueues(self.cores, len(self.rx_queues), spec.xps, hd.tx_completion_ns)
        self.apps = Apps(self, sndbuf_bytes=spec.sndbuf_bytes or hd.sndbuf_bytes,
                         rcvbuf_bytes=spec.rcvbuf_bytes or hd.rcvbuf_bytes,
                         truesize_overhead=hd.skb_truesize_overhead_bytes,
                         app_recv_ns=hd.app_recv_ns if spec.app_recv_ns is None else spec.app_recv_ns,
                         app_recv_per_byte_ns=(hd.app_recv_per_byte_ns if spec.app_recv_per_byte_ns is None
                                               else spec.app_recv_per_byte_ns),
                         sockets_per_namespace=spec.sockets_per_namespace,
                         wake=WakeCosts(hd.wakeup_local_ns, hd.wakeup_ipi_ns, hd.wakeup_ipi_send_ns,
                                        hd.wakeup_local_send_ns))
        self.namespaces = spec.namespaces
        self.sockets_per_namespace = spec.sockets_per_namespace
        costs = [profile.stages[s] for s in profile.stage_set.names]     # built-ins, then declared
        self.base = [c.base_ns for c in costs]
        self.per_byte = [c.per_byte_ns for c in costs]
        self.per_entry = [c.per_entry_ns for c in costs]
        self.repeat_base = [c.repeat_ns for c in costs]     # None: a repeat traversal costs base_ns
        self._repeat_uids: dict[tuple[int, frozenset[int]], int] = {}    # see _repeat_passes
        self._per_frame = frozenset(STAGE_NAMES.index(n) for n in PER_FRAME_STAGES)
        self.table_config = table_config(scheme.spec, spec, profile)     # lookups and memory: one size
        self.tables = SocketTables(self.table_config.mode, max(spec.namespaces, 1),
                                   spec.sockets_per_namespace, self.table_config.udp_buckets, rng)
        groups = groups or [(scheme, spec.namespaces)]
        self.fib_root = fib_depth(ROOT_ROUTES + sum(n * s.spec.addresses_per_container for s, n in groups))
        self.fib_child = fib_depth(CHILD_ROUTES)
        self.random_costs = spec.cost_distribution == "exponential"
        self._cache: dict[tuple, tuple[int, float, int]] = {}
        self._shared: dict[tuple, tuple[int, float, int]] = {}     # see _price_shared
        self._chain_stages: dict[tuple, bool] = {}
        self._scales: list[float] = []
        self._br_nf_on = spec.br_netfilter
        self._rps = bool(spec.rps_cpus)
        br_nf = spec.br_netfilter and any(bridges(s) for s, _ in groups + [(scheme, 0)])
        self.schemes = HostSchemes(scheme, groups, registry, codes or {scheme.name: scheme_code},
                                   self._prepare_scheme, self._prepare_passes)
        self.mixed = self.schemes.mixed
        self.trip_plans = self.schemes.plans[scheme.name]
        every_plan = self.schemes.all_plans()           # prepares the composed trips too
        # (scheme, containers, socket tables) of each group: lookups and memory (sim.core.memory)
        self.memory_groups = [(scheme, spec.namespaces, self.table_config)]
        if self.mixed:
            configs = [self._group_config(s, spec, profile) for s, _ in groups]
            self.memory_groups = [(s, n, c) for (s, n), c in zip(groups, configs)]
            self.group_tables = [SocketTables(c.mode, n, spec.sockets_per_namespace, c.udp_buckets, rng)
                                 for (_, n), c in zip(groups, configs)]
            self.classifier_rules = sum(n for s, n in groups if "classifier_rule" in s.spec.memory_per_namespace)
        else:
            self.classifier_rules = self.namespaces
        # netfilter (sim.core.netfilter): hook prices per namespace group, conntrack
        self._sender_uids = frozenset(p.uid for t, ps in every_plan if t in SENDER_TRIPS for p in ps)
        self._nf = {g: hook_prices(profile, spec, g, br_nf) for g in GROUPS}
        # False: every hook is the root's; a mixed host asks each namespace's scheme
        self._own_nf = self.mixed or scheme.spec.capabilities.own_netfilter
        self._br_nf_ns = profile.netfilter.br_netfilter.base_ns
        self._ct_create_ns = profile.netfilter.conntrack_create.base_ns
        self._sites: dict[tuple, tuple[int, ...]] = {}      # pass_cost key -> conntrack sites (namespaces)
        self._cache_new: dict[tuple, tuple[int, float, int]] = {}
        self.ct_seen: set[tuple] = set()                     # (connection, namespace) tracked here
        self._shareable = not self.mixed and not (spec.conntrack.root or spec.conntrack.child)

    # -- schemes ---------------------------------------------------------------------
    def _prepare_scheme(self, scheme: Scheme) -> dict[str, tuple[CompiledPass, ...]]:
        """`scheme`'s trips as this host runs them: with br_netfilter's hooks (a bridging
        scheme, ``br_netfilter`` on) and RPS's split passes (``rps_cpus``)."""
        plans = (br_netfilter_trips(scheme) if self._br_nf_on and bridges(scheme) else None) or scheme.trips
        plans = rps_plans(plans) if self._rps else plans
        return {trip: self._repeat_passes(passes) for trip, passes in plans.items()}

    def _prepare_passes(self, specs, compiled: tuple[CompiledPass, ...]) -> tuple[CompiledPass, ...]:
        """A composed trip (`sim.core.mixing`) as this host runs it (as `_prepare_scheme`)."""
        passes = (br_netfilter_passes(specs, compiled) if self._br_nf_on else None) or compiled
        passes = rps_plans({"ns_to_ns": passes})["ns_to_ns"] if self._rps else passes
        return self._repeat_passes(passes)

    def _repeat_passes(self, passes: tuple[CompiledPass, ...]) -> tuple[CompiledPass, ...]:
        """`passes`, one trip, with each pass that runs a stage an earlier pass of the trip ran,
        and that the profile prices as a repeat (``repeat_ns``), replaced by a copy that knows
        which (``repeat``; its own uid, so its price is cached apart).  `_price` charges those
        stages ``repeat_ns``, as it does a stage's second run within one pass.  Unchanged when
        the profile has no ``repeat_ns``."""
        out: list[CompiledPass] = []
        earlier: set[int] = set()
        for p in passes:
            rep = frozenset(i for i in earlier if self.repeat_base[i] is not None)
            if rep:
                uid = self._repeat_uids.setdefault((p.uid, rep), REPEAT_UID_BASE + len(self._repeat_uids))
                p = replace(p, uid=uid, repeat=rep)
            out.append(p)
            earlier.update(st.index for st in p.stages)
        return tuple(out)

    @staticmethod
    def _group_config(scheme: Scheme, spec, profile: CostProfile) -> TableConfig:
        """The socket tables of one group of a mixed host's containers, as `scheme` organises
        them (the host's ``socket_tables`` era applies to a scheme with a ``socket_era``)."""
        if scheme.spec.socket_era is None:
            spec = spec.model_copy(update={"socket_tables": None})
        return table_config(scheme.spec, spec, profile)

    def examined(self, ns: int, port: int) -> int:
        """Socket chain entries a lookup of socket `port` of namespace `ns` examines."""
        if not self.mixed or ns < 0:
            return self.tables.examined(ns, port)
        g, local = self.schemes.local(ns)
        return self.group_tables[g].examined(local, port)

    def _plan(self, trip: str, pkt) -> tuple[tuple[CompiledPass, ...], int]:
        """(passes, record scheme code) of `trip` for `pkt` on this host."""
        if not self.mixed:
            return self.trip_plans[trip], self.scheme_code
        return self.schemes.plan(trip, pkt.src_ns, pkt.dst_ns, pkt.members)

    # -- pricing ---------------------------------------------------------------------
    def _entries(self, kind: str, role: str, pkt, member) -> float:
        if kind == "none":
            return 0.0
        if role != "root" and self._ns(role, pkt, member) == ROOT_NS:
            role = "root"                       # that end is HOST:root: its routes
        if kind == "sock_chain":
            if member is not None:
                return self.examined(member, pkt.port)
            if pkt.members:
                return max(self.examined(m, pkt.port) for m in pkt.members)
            return self.examined(pkt.dst_ns, pkt.port) if pkt.dst_ns != WIRE_NS else 0.0
        if kind == "fib":
            return self.fib_root if role == "root" else self.fib_child
        if kind == "classifier":
            return self.classifier_rules
        raise ValueError(f"unknown entry kind {kind!r}")

    @staticmethod
    def _ns(role: str, pkt, member) -> int:
        """The namespace code a stage of `role` runs in, for multicast member `member` (or None)."""
        if role == "root":
            return ROOT_NS
        if role == "src":
            return pkt.src_ns
        return member if member is not None else pkt.dst_ns

    def pass_cost(self, p: CompiledPass, pkt) -> tuple[int, float, int]:
        """(interned cost-vector id, total ns, NIC transmits) of pass `p` for packet `pkt` (with its
        ``wire_stages`` when the packet still carries members on other hosts, its
        ``root_stages`` when the root namespace is a member here and its ``loop_stages`` when
        the sender is; per-member stages then run for the other members), for a packet whose
        connection every conntrack of the pass already tracks."""
        key = (p.uid, pkt.size, pkt.frames, pkt.src_ns, pkt.dst_ns, pkt.port, pkt.members, pkt.wire_hosts, pkt.tcp)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._price_shared(p, pkt, key)
        return hit

    def _price_shared(self, p: CompiledPass, pkt, key: tuple) -> tuple[int, float, int]:
        """`_price` of a `pass_cost` miss, shared between unicast packets between different
        containers (or to a container from the wire or the root) that differ only in which
        containers they are: on a host that is not mixed and has no conntrack, `_price` reads
        a container's code only to tell it from the wire, the root and the other end, and for
        the socket chain entries a lookup examines (`examined`).  So the price is cached under
        (pass, size, frames, the source's kind, the chain length, wire hosts, TCP) and 10,000
        containers cost one pricing, not 10,000.  Any other packet: `_price` itself."""
        src, dst = pkt.src_ns, pkt.dst_ns
        if not self._shareable or pkt.members is not None or dst < 0 or dst == src:
            return self._price(p, pkt, key, ())
        chain = self.tables.examined(dst, pkt.port) if self._reads_chain(p, pkt) else -1
        skey = (p.uid, pkt.size, pkt.frames, src if src < 0 else 0, chain, pkt.wire_hosts, pkt.tcp)
        hit = self._shared.get(skey)
        if hit is None:
            hit = self._shared[skey] = self._price(p, pkt, key, ())
        return hit

    def _reads_chain(self, p: CompiledPass, pkt) -> bool:
        """Whether `_price` of `p` for unicast `pkt` looks up a socket chain (a ``sock_chain`` stage)."""
        k = (p.uid, pkt.tcp, bool(pkt.wire_hosts))
        r = self._chain_stages.get(k)
        if r is None:
            stages = segment_stages(p.stages, pkt.tcp)
            if p.wire_stages and pkt.wire_hosts:
                stages = (*stages, *p.wire_stages)
            r = self._chain_stages[k] = any(st.entry_kind == "sock_chain" for st in stages)
        return r

    def _price(self, p: CompiledPass, pkt, key: tuple, new: tuple[int, ...]) -> tuple[int, float, int]:
        """`pass_cost` of `p` for `pkt`, with conntrack entries created in the namespaces `new`;
        records the pass's conntrack sites under `key` and interns its cost vector with the
        hook points it crosses (`sim.core.netfilter.policy_bit`)."""
        vec: dict[int, float] = {}
        total = 0.0
        tx = 0
        mask = 0
        sites: list[int] = []
        created: set[int] = set()
        root_side = 1 if p.uid in self._sender_uids else 2
        size = pkt.size
        members = pkt.members
        stages = segment_stages(p.stages, pkt.tcp)      # a TCP segment's: sim.core.tcpcost
        work: list[tuple] = [(st, members if (st.per_member and members is not None) else (None,))
                             for st in stages]
        if p.wire_stages and pkt.wire_hosts:
            work += [(st, (None,)) for st in p.wire_stages]
        if members:
            if p.root_stages is not None and ROOT_NS in members:    # the root's own input, once
                work = [(st, tuple(m for m in ms if m != ROOT_NS)) for st, ms in work]
                work += [(st, (ROOT_NS,)) for st in p.root_stages]
            if p.loop_stages is not None and pkt.src_ns in members:   # the sender's loopback clone
                work = [(st, tuple(m for m in ms if m != pkt.src_ns)) for st, ms in work]
                work += [(st, (None,)) for st in p.loop_stages]
        ran = set(p.repeat)                     # stages this packet ran before on this host
        bits = pkt.tcp or 0
        copied = bits & WRITTEN                 # its write copied the payload: tcp_send copies none
        backlogged = bits & BACKLOGGED          # tcp_rcv runs later, in the owner's release_sock
        for st, targets in work:
            i = st.index
            if backlogged and i in RECEIVE_STAGES:
                continue
            kind = st.entry_kind
            chain = KIND_CHAIN.get(kind)
            for m in targets:
                if st.to_role and self._ns(st.role, pkt, m) == self._ns(st.to_role, pkt, m):
                    continue                    # a switch to the namespace the packet is in: none
                if chain is not None:           # a netfilter hook: its state in this namespace
                    ns = self._ns(st.role, pkt, m) if self._own_nf else ROOT_NS   # else the root's hooks
                    if self.mixed and ns >= 0 and not self.schemes.own_netfilter(ns):
                        ns = ROOT_NS
                    root = ns == ROOT_NS
                    mask |= policy_bit(root_side if root else (0 if st.role == "src" else 3), chain)
                    prices = self._nf["root" if root else "child"]
                    fixed = prices.fixed[chain]
                    if fixed is None:
                        continue                # no hook registered: nf_hook() returns at once
                    c = fixed + self.per_byte[i] * size
                    if prices.ct_site[chain]:
                        if ns not in sites:
                            sites.append(ns)
                        if ns in new and ns not in created:
                            created.add(ns)
                            c += self._ct_create_ns
                elif kind == BR_NF:             # a bridge running br_netfilter's hooks
                    c = self.base[i] + self.per_byte[i] * size + self._br_nf_ns
                else:
                    entries = self._entries(kind, st.role, pkt, m)
                    base = self.base[i]
                    if i in ran and self.repeat_base[i] is not None:
                        base = self.repeat_base[i]
                    ran.add(i)
                    if pkt.frames > 1 and i in self._per_frame:
                        base *= pkt.frames
                    c = base + self.per_entry[i] * entries
                    if not (copied and i == TCP_SEND):
                        c += self.per_byte[i] * size
                vec[i] = vec.get(i, 0.0) + c
                total += c
                tx += i == NIC_TX
        self._sites[key] = tuple(sites)
        return (self.model.recorder.cost_book.intern(tuple(sorted(vec.items())), mask), total, tx)

    def _scale(self) -> float:
        if not self._scales:
            self._scales = self.rng.exponential(1.0, 4096).tolist()
        return self._scales.pop()

    # -- passes ----------------------------------------------------------------------
    def start_trip(self, pkt, trip: str, core_idx: int, softirq: bool = False) -> None:
        """`pkt` starts `trip` on this host; `core_idx` is the core a backlog pass would use.
        `softirq`: the packet is sent from softirq context on core `core_idx` (TCP's ACKs,
        ACK-clocked data and timers, `sim.core.tcp`): a first pass of the ``process`` queue then
        runs inline in that core's softirq (`sim.core.cpu.Core.run_inline`), not as a job of
        the socket's thread, and holds no send buffer."""
        if self.mixed:
            pkt.plan, pkt.scheme = self.schemes.plan(trip, pkt.src_ns, pkt.dst_ns, pkt.members)
        else:                                   # `_plan` inline: one call less per trip
            pkt.plan = self.trip_plans[trip]
            pkt.scheme = self.scheme_code
        pkt.step = 0
        pkt.host_trip = trip
        pkt.core = core_idx
        if pkt.members is not None and pkt.plan[0].fanout:      # e.g. a NIC replicating into member queues
            for copy in self.model.fan_out(pkt):
                self._start_pass(copy)
            return
        if softirq and pkt.plan[0].queue == "process":
            pkt.enq_ns = self.engine._now
            self.cores[core_idx].run_inline(self.begin_pass, self.end_pass, pkt)
            return
        self._start_pass(pkt)

    def _start_pass(self, pkt) -> None:
        """Queue `pkt` for its current pass (see the module docstring for the queues)."""
        p = pkt.plan[pkt.step]
        queue = p.queue
        if queue == "backlog":
            core = self.cores[pkt.core]
            napi = core.backlog
        elif queue == "nic_rx":
            if p.role == "dst" and pkt.dst_ns >= 0:     # a VNIC's own queue (the root's: RSS below)
                ns = pkt.dst_ns
                core = self.cores[ns % self.n_cores]
                napi = self.ns_rings.get(ns)
                if napi is None:
                    napi = self.ns_rings[ns] = Napi(f"rx-ns{ns}", self.ring_packets)
            else:
                core, napi = self._rx[self.spread.rx_queue(pkt) if self._rss else 0]
        else:
            self.apps.send(pkt)
            return
        pkt.enq_ns = self.engine._now
        if not core.napi_add(napi, pkt):
            self.model.drop(pkt, queue + "_full", self.name)

    def begin_pass(self, pkt, core: Core, start_ns: float) -> float:
        """`pkt`'s current pass starts now (`start_ns`) on `core`: record its queueing, return
        its cost (ns).  (The signature of a `sim.core.cpu` job's begin.  A host with random
        pass costs begins passes by `_begin_pass_scaled`, one with conntrack by `_begin_pass_ct`.)"""
        p = pkt.plan[pkt.step]                  # pass_cost's cache, read inline (same key)
        vec_id, cost, _ = (self._cache.get((p.uid, pkt.size, pkt.frames, pkt.src_ns, pkt.dst_ns, pkt.port,
                                            pkt.members, pkt.wire_hosts, pkt.tcp)) or self.pass_cost(p, pkt))
        pkt.passes += (vec_id, start_ns - pkt.enq_ns, 1.0)
        pkt.core = core.idx
        return cost

    def open_poll(self, pkt) -> float:
        """`pkt`'s pass, just begun (`begin_pass`), is the first packet of a napi_poll call:
        charge it the poll's own work too (stage ``napi_poll``, net/core/dev.c net_rx_action ->
        __napi_poll -> the poll function, process_backlog or a driver's; napi_complete_done), so
        a batch of packets shares one poll's cost.  Return the extra ns (scaled like the pass
        when pass costs are random)."""
        passes = pkt.passes
        vid = passes[-3]
        with_poll = self._poll_vecs.get(vid)
        if with_poll is None:
            book = self.model.recorder.cost_book
            vec = dict(book.vector(vid))
            vec[NAPI_POLL] = vec.get(NAPI_POLL, 0.0) + self.napi_poll_ns
            with_poll = self._poll_vecs[vid] = book.intern(tuple(sorted(vec.items())), book.mask(vid))
        passes[-3] = with_poll
        return self.napi_poll_ns * passes[-1]

    def _begin_pass_scaled(self, pkt, core: Core, start_ns: float) -> float:
        """`begin_pass` on a host with random pass costs (without conntrack)."""
        vec_id, cost, _ = self.pass_cost(pkt.plan[pkt.step], pkt)
        return self._charge(pkt, core, start_ns, vec_id, cost)

    def _begin_pass_tcp(self, pkt, core: Core, start_ns: float) -> float:
        """`begin_pass` on a host of a run with TCP flows: a TCP segment whose pass delivers it
        to a socket its application owns now (`sim.core.tcp.TcpFlow.backlogs`) is marked
        `BACKLOGGED` and priced without ``tcp_rcv`` (tcp_v4_rcv -> tcp_add_backlog,
        `sim.core.tcpcost`); then the host's own begin."""
        if pkt.tcp and not pkt.tcp & BACKLOGGED:
            p = pkt.plan[pkt.step]
            r = self._receives.get(p.uid)
            if r is None:
                r = self._receives[p.uid] = receives(p.stages)
            if r and pkt.owner.backlogs(pkt):
                pkt.tcp |= BACKLOGGED
        return self._begin_untracked(pkt, core, start_ns)

    def tcp_rcv_ns(self, pkt) -> float:
        """CPU (ns) of ``tcp_rcv`` (``tcp_ack`` for a pure ACK; plus ``tcp_data_ack`` for a data
        segment that acknowledges new data) for TCP segment `pkt` on this host, as its
        delivering pass would have charged it (scaled like a pass when pass costs are random):
        what the owner of a socket pays for a segment that waited in its backlog (`BACKLOGGED`)."""
        c = sum(self.base[i] + self.per_byte[i] * pkt.size for i in receive_stages(pkt.tcp))
        return c * self._scale() if self.random_costs else c

    def _charge(self, pkt, core: Core, start_ns: float, vec_id: int, cost: float) -> float:
        """Record `pkt`'s pass (cost vector `vec_id`, `cost` ns, scaled when pass costs are
        random) as started on `core` at `start_ns`; return its cost.  (`begin_pass` does the
        same inline when costs are not random.)"""
        scale = 1.0
        if self.random_costs:
            scale = self._scale()
            cost *= scale
        pkt.passes += (vec_id, start_ns - pkt.enq_ns, scale)
        pkt.core = core.idx
        return cost

    def _begin_pass_ct(self, pkt, core: Core, start_ns: float) -> float:
        """`begin_pass` on a host with conntrack: the first packet of a connection in a
        namespace whose conntrack the pass runs pays the entry's creation there (see
        `sim.core.netfilter`)."""
        p = pkt.plan[pkt.step]
        key = (p.uid, pkt.size, pkt.frames, pkt.src_ns, pkt.dst_ns, pkt.port, pkt.members, pkt.wire_hosts, pkt.tcp)
        hit = self._cache.get(key)
        if hit is None:
            hit = self.pass_cost(p, pkt)
        sites = self._sites[key]
        if sites:
            conn = (pkt.flow, pkt.seq % pkt.owner.spec.connections, pkt.dst_ns if pkt.direction == 0 else pkt.src_ns)
            seen = self.ct_seen
            new = tuple(ns for ns in sites if (conn, ns) not in seen)
            if new:
                seen.update((conn, ns) for ns in new)
                nkey = (key, new)
                nhit = self._cache_new.get(nkey)
                if nhit is None:
                    nhit = self._cache_new[nkey] = self._price(p, pkt, key, new)
                hit = nhit
        return self._charge(pkt, core, start_ns, hit[0], hit[1])

    def end_pass(self, pkt) -> None:
        """`pkt`'s current pass ended: queue the next one, or finish the trip."""
        plan = pkt.plan
        p = plan[pkt.step]
        if p.has_tx:                            # handed to the NIC: its TX completion (sim.core.txq)
            n = p.tx if pkt.members is None and not pkt.wire_hosts else self.pass_cost(p, pkt)[2]
            if n:
                self.txq.complete(pkt, pkt.core, n)
        if p.copies_or_steer:
            if pkt.wire_hosts and p.wire_stages is not None:
                self.model.wire_copies(pkt, self)   # multicast_local: the copy for other hosts leaves
            if pkt.members and (p.root_stages is not None or p.loop_stages is not None):
                self._members_leave(pkt, p)
            if p.steer:
                pkt.core = self.spread.rps_cpu(pkt)
        step = pkt.step = pkt.step + 1
        if step < len(plan):
            if pkt.members is not None and plan[step].fanout:
                for copy in self.model.fan_out(pkt):
                    self._start_pass(copy)
            else:
                self._start_pass(pkt)
            return
        if pkt.host_trip in LEAVING_TRIPS:
            self.model.left_host(pkt, self)
            return
        waker = self.cores[pkt.core]
        if pkt.members is not None:
            for ns in pkt.members:
                self.apps.deliver(pkt, ns, waker)
        else:
            self.apps.deliver(pkt, pkt.dst_ns, waker)
        self.model.retire(pkt)

    def _members_leave(self, pkt, p: CompiledPass) -> None:
        """End of pass `p` of multicast `pkt`: the root namespace's copy is delivered here
        (``root_stages``), the sender's own copy goes in through its own loopback
        (``loop_stages``: the passes of ``ns_to_self`` after its first, from this core's backlog)."""
        if p.root_stages is not None and ROOT_NS in pkt.members:
            self.apps.deliver(pkt, ROOT_NS, self.cores[pkt.core])
            pkt.members = tuple(m for m in pkt.members if m != ROOT_NS)
        if p.loop_stages is not None and pkt.src_ns in pkt.members:
            own = self.model.branch(pkt, pkt.src_ns)
            own.plan = self._plan("ns_to_self", own)[0]
            own.host_trip = "ns_to_self"
            own.step = 1
            self._start_pass(own)

    def utilisation(self) -> list[float]:
        window = max(self.until_ns - self.warmup_ns, 1e-9)
        return [c.busy_ns / window for c in self.cores]


def rps_plans(trips: dict[str, tuple[CompiledPass, ...]]) -> dict[str, tuple[CompiledPass, ...]]:
    """`trips` with every pass that runs ``nic_rx`` and more split after that stage (RPS:
    the driver's work stays on the RX queue's core, the rest goes to a backlog); the first
    halves are marked ``steer``: after them the packet is steered."""
    nic_rx = STAGE_NAMES.index("nic_rx")
    out: dict[str, tuple[CompiledPass, ...]] = {}
    for trip, passes in trips.items():
        new: list[CompiledPass] = []
        for p in passes:
            cut = next((i + 1 for i, st in enumerate(p.stages) if st.index == nic_rx), None)
            if p.queue != "nic_rx" or cut is None or cut == len(p.stages):
                new.append(p)
                continue
            head = replace(p, uid=-1 - 2 * p.uid, stages=p.stages[:cut], wire_stages=None, root_stages=None,
                           loop_stages=None, steer=True)   # the copies leave after the whole pass: the tail's end
            tail = replace(p, uid=-2 - 2 * p.uid, queue="backlog", role=p.stages[cut].role, fanout=False,
                           stages=p.stages[cut:])
            new += [head, tail]
        out[trip] = tuple(new)
    return out
