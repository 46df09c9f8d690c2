"""The model of one run: hosts, network, flows, and the bookkeeping that ends every packet
copy in exactly one record.

Trips by endpoints: `sim.core.trips` (the record labels are `sim.core.records.TRIP_LABELS`).
A packet to ``HOST:wire`` is delivered when it leaves the host's last pass.  Multicast: a
sender sends once; one copy per other member host crosses the network and each host runs its
scheme's multicast trip for its members there; members on the sender's own host are reached
by the scheme's ``multicast_local`` trip (``root_multicast_local`` when the root sends), whose
``wire_copy`` pass sends the other hosts' copies.  A member may be the root namespace or the
sender itself; `sim.core.host` delivers the root's copy or branches the sender's own copy off
(`branch`) where the scheme says, and the packet then stands for the members left (maybe
none: it still runs the passes the kernel runs for the original, and writes no row).
Invariant: for every packet a flow emits, there is exactly one record per destination
(one for unicast, one per group member for multicast), delivered, dropped or in flight.
"""

from __future__ import annotations

import math

import numpy as np

import sim.core.tcp_kinds  # noqa: F401  (registers the TCP flow kinds in FLOW_KINDS)
from sim.core.costs import CostProfile, load_profile
from sim.core.engine import Engine
from sim.core.host import Host
from sim.core.hostschemes import cross_pairs, labels
from sim.core.interfaces import FlowSource
from sim.core.mixing import missing_via_root
from sim.core.nscodes import WIRE_NS
from sim.core.packet import Packet
from sim.core.records import DELIVERED, IN_FLIGHT, Recorder
from sim.core.schemes import SchemeRegistry, registry_with
from sim.core.topology import Network
from sim.core.traffic import FLOW_KINDS
from sim.core.trips import CODE, LOCAL_MULTICAST_TRIPS, journey_codes, missing_trip, multicast_first_trip, uses
from sim.frontdoor.endpoints import parse, resolve
from sim.frontdoor.scenario import Scenario

DROP_REASONS = ("", "nic_rx_full", "backlog_full", "socket_rcvbuf_full", "link_queue_full",
                "sender_blocked")      # sender_blocked: its socket's send buffer was full (sim.core.apps)
# link_loss: lost at random on a link with loss_rate (sim.core.topology); a reason of the runs
# that have such a link only, so the others' summaries (a drops_<reason> row per reason) stay as they were
LOSS_REASONS = DROP_REASONS + ("link_loss",)
MULTICAST, MULTICAST_LOCAL = CODE["multicast"], CODE["multicast_local"]
TO_WIRE = frozenset({CODE["ns_to_wire"], CODE["root_to_wire"]})      # delivered when they leave the host


def make_profile(scenario: Scenario) -> CostProfile:
    o = scenario.cost_overrides
    return (load_profile(scenario.cost_profile).with_stages(scenario.stages)
            .with_overrides(o.stages, o.host, o.memory_bytes, o.netfilter))


class Model:
    """Builds everything for `scenario` and runs it; see `sim.core.simulate.simulate` for the public call."""

    wall_s: float       # wall-clock seconds of the run, set by the caller that timed it

    def __init__(self, scenario: Scenario, registry: SchemeRegistry | None = None,
                 profile: CostProfile | None = None, record_sink=None, chunk_rows: int = 50_000) -> None:
        """`record_sink`, if given, receives the packet records as `sim.core.records.PacketColumns`
        of `chunk_rows` rows during the run (and the rest at `finish`), so memory stays flat however many
        packets a run has; the Recorder then keeps none of them."""
        self.scenario = scenario
        self.profile = profile or make_profile(scenario)
        self.stages = self.profile.stage_set        # built-in stages, then the declared ones
        self.registry = registry or registry_with(scenario.schemes, self.stages)
        run = scenario.run
        self.until_ns = run.duration_ns
        self.warmup_ns = run.warmup_ns
        self.max_packets = run.max_packets
        self.packet_limit: float = math.inf if run.max_packets is None else run.max_packets
        self.engine = Engine()
        rng = np.random.default_rng([run.seed, run.replication])
        host_rngs = rng.spawn(len(scenario.hosts))
        flow_rngs = rng.spawn(len(scenario.flows))
        scheme_names = self.registry.names()
        for hs in scenario.hosts:                   # mixed hosts: cross-scheme labels A>B (sim.core.mixing)
            scheme_names += [n for n in labels(hs.scheme_groups()) if n not in scheme_names]
        self._nodes: list[str] = []
        self._node_codes: dict[str, int] = {}
        for hs in scenario.hosts:
            self.node_code(hs.name)
        for s in scenario.switches:
            self.node_code(s.name)
        flow_names = [f.name or f"flow{i}" for i, f in enumerate(scenario.flows)]
        lossy = any(link.loss_rate > 0 for link in scenario.links)
        reasons = LOSS_REASONS if lossy else DROP_REASONS
        self.recorder = Recorder({"scheme": scheme_names, "node": self._nodes, "reason": list(reasons),
                                  "flow": flow_names},
                                 random_costs=any(h.cost_distribution != "deterministic" for h in scenario.hosts),
                                 sink=record_sink, chunk_rows=chunk_rows, stage_names=self.stages.names)
        self._reason_code = {r: i for i, r in enumerate(reasons)}
        self.tcp = any(FLOW_KINDS[f.kind].tcp_segments for f in scenario.flows)   # before the hosts
        self.hosts: list[Host] = []
        self.host_index: dict[str, int] = {}
        for i, hspec in enumerate(scenario.hosts):
            scheme = self.registry.get(hspec.scheme)
            groups = [(self.registry.get(s), n) for s, n in hspec.scheme_groups()]
            codes = {n: scheme_names.index(n) for n in [hspec.scheme, *(s for s, _ in hspec.scheme_groups()),
                                                        *labels(hspec.scheme_groups())]}
            self.hosts.append(Host(i, hspec.name, hspec, scheme, scheme_names.index(hspec.scheme),
                                   self.profile, self, host_rngs[i], groups, self.registry, codes))
            self.host_index[hspec.name] = i
        # lossy links draw from a generator spawned after the flows' (so theirs do not move)
        link_rng = rng.spawn(1)[0] if lossy else None
        self.network = Network([h.name for h in scenario.hosts], [s.name for s in scenario.switches],
                               scenario.links, self.engine, self, link_rng)
        host_specs = {h.name: h for h in scenario.hosts}
        self.groups: dict[str, dict[int, tuple[int, ...]]] = {}
        for g in scenario.groups:
            members: dict[int, list[int]] = {}
            for m in g.members:
                host, ns = resolve(m, host_specs, f"groups[{g.name}]")
                assert ns != WIRE_NS, m           # the loader admits HOST:nsN and HOST:root members
                members.setdefault(self.host_index[host], []).append(ns)
            self.groups[g.name] = {h: tuple(sorted(set(v))) for h, v in sorted(members.items())}
        self.flows: list[FlowSource] = []
        schemes = {h.name: [h.scheme] + [s for s, _ in h.schemes.groups] for h in self.hosts}
        for i, spec in enumerate(scenario.flows):
            flow = FLOW_KINDS[spec.kind](i, spec, self, flow_rngs[i])
            sh, sn = resolve(spec.src, host_specs, f"flows[{i}].src")
            flow.src = (self.host_index[sh], sn)
            flow.group = None
            flow.spread_over = 0
            dst_ep = parse(spec.dst, f"flows[{i}].dst")
            if dst_ep.group is not None:
                flow.group = self.groups[dst_ep.group]
                flow.dst = (-1, WIRE_NS)
                runs = uses(flow.src, None, flow.group)
                for h in flow.group:
                    if sn != WIRE_NS and h != flow.src[0]:
                        self.network.route(sh, scenario.hosts[h].name)   # fail early: NoRouteError
            else:
                dst = f"{dst_ep.host}:ns0" if dst_ep.spread else spec.dst
                dh, dn = resolve(dst, host_specs, f"flows[{i}].dst")
                flow.dst = (self.host_index[dh], dn)
                flow.spread_over = host_specs[dh].namespaces if dst_ep.spread else 0
                if dh != sh:
                    self.network.route(sh, dh)
                    self.network.route(dh, sh)
                runs = uses(flow.src, flow.dst, two_way=spec.two_way, spread=dst_ep.spread)
            problem = missing_trip([(self.hosts[h].name, t) for h, t in runs], schemes)
            if problem is None and flow.group is None and flow.src[0] == flow.dst[0]:
                pairs = cross_pairs(sn, flow.dst[1], scenario.hosts[flow.src[0]].scheme_groups(),
                                    bool(flow.spread_over), spec.two_way)
                problem = next(filter(None, (missing_via_root(a, b, self.registry) for a, b in pairs)), None)
            if problem:
                raise ValueError(f"flows[{i}]: {problem[0]}; {problem[1]}")
            self.flows.append(flow)
        self.recorder.labels["flow_src"] = [f.src for f in self.flows]
        self.recorder.labels["flow_dst"] = [f.dst for f in self.flows]
        self.live: dict[int, Packet] = {}
        self.next_pid = 0
        self.generated = 0

    # -- identity ---------------------------------------------------------------------
    def node_code(self, name: str) -> int:
        code = self._node_codes.get(name)
        if code is None:
            code = self._node_codes[name] = len(self._nodes)
            self._nodes.append(name)
        return code

    def packet_budget_spent(self) -> bool:
        return self.generated >= self.packet_limit

    # -- packet life ------------------------------------------------------------------
    def emit(self, flow, seq: int, direction: int, size: int, frames: int = 1, wire_size: int | None = None,
             softirq_core: int = -1, tcp: int | None = None) -> None:
        """A flow sends one packet now (direction 1 = a response, endpoints swapped); `frames`
        and `wire_size` as `sim.core.packet.Packet`'s (a TCP GSO packet's; default one frame of `size`).
        `softirq_core` >= 0: sent from softirq context on that core of the sending host
        (`sim.core.host.Host.start_trip`); -1: by the sending socket's thread.  `tcp`: the packet's
        ``tcp`` in place of the flow's ``tcp_segments`` (`sim.core.tcpcost.WRITTEN`)."""
        if direction:
            (dh, dn), (sh, sn) = flow.src, flow.dst
        else:
            (sh, sn), (dh, dn) = flow.src, flow.dst
        if flow.group is None and flow.spread_over:
            dn = flow.pick_namespace(flow.spread_over)
        pid = self.next_pid
        self.next_pid += 1
        self.generated += 1
        pkt = Packet(pid, flow.idx, seq, direction, sh, sn, dh, dn, flow.spec.port, size, self.engine._now, flow,
                     frames, wire_size)
        pkt.tcp = flow.tcp_segments if tcp is None else tcp
        self.live[pid] = pkt
        src = self.hosts[sh]
        if flow.group is None:
            pkt.trip, first, pkt.far_trip = journey_codes(sh, sn, dh, dn)   # memoised per process
            if softirq_core >= 0:
                src.start_trip(pkt, first, softirq_core, True)
            else:
                src.start_trip(pkt, first, flow.idx % src.n_cores)
            return
        core = flow.idx % src.n_cores
        local = flow.group.get(sh)
        trip = multicast_first_trip(sn, local is not None)
        pkt.trip = MULTICAST_LOCAL if trip in LOCAL_MULTICAST_TRIPS else MULTICAST
        if sn != WIRE_NS:
            pkt.wire_hosts = tuple(h for h in flow.group if h != sh)
        if local is not None:
            pkt.dst_host = sh
            pkt.members = local
        src.start_trip(pkt, trip, core)

    def _wire_copy(self, pkt: Packet, host_idx: int) -> Packet:
        """A copy of multicast `pkt` for the members on host `host_idx`, live from now."""
        copy = pkt.copy(self.next_pid)
        self.next_pid += 1
        copy.trip = MULTICAST
        copy.dst_host = host_idx
        copy.members = pkt.owner.group[host_idx]
        self.live[copy.pid] = copy
        return copy

    def left_host(self, pkt: Packet, host: Host) -> None:
        """`pkt` finished its last pass of a trip that leaves `host` (to the wire)."""
        if pkt.trip in TO_WIRE:
            self.record_delivered(pkt, WIRE_NS, self.engine._now)
            self.retire(pkt)
            return
        if pkt.trip == MULTICAST:
            self.wire_copies(pkt, host)
            self.live.pop(pkt.pid)
            return
        self.network.transmit(pkt, host.name, self.hosts[pkt.dst_host].name)

    def wire_copies(self, pkt: Packet, host: Host) -> None:
        """Multicast `pkt` sends one copy to each other member host (`wire_hosts`) now."""
        for h in pkt.wire_hosts:
            self.network.transmit(self._wire_copy(pkt, h), host.name, self.hosts[h].name)
        pkt.wire_hosts = ()

    def arrive_at_host(self, pkt: Packet) -> None:
        """`pkt` has crossed the last link of its route (counted in ``pkt.hop`` here)."""
        pkt.hop += 1
        host = self.hosts[pkt.dst_host]
        trip = "multicast" if pkt.members else pkt.far_trip
        assert trip is not None, "a packet arrived from the wire on a one-host journey"
        host.start_trip(pkt, trip, pkt.flow % host.n_cores)

    def fan_out(self, pkt: Packet) -> list[Packet]:
        """Replace a multicast packet by one copy per member namespace."""
        self.live.pop(pkt.pid)
        assert pkt.members is not None, "fan_out of a packet with no members"
        return [self._member_copy(pkt, ns) for ns in pkt.members]

    def _member_copy(self, pkt: Packet, ns: int) -> Packet:
        """A copy of multicast `pkt` for member `ns` alone, at the same plan and step, live."""
        c = pkt.copy(self.next_pid)
        self.next_pid += 1
        c.dst_ns = ns
        c.plan = pkt.plan
        c.step = pkt.step
        c.host_trip = pkt.host_trip
        self.live[c.pid] = c
        return c

    def _dropped(self, reason: str) -> int:
        """Outcome code of a drop for `reason` (see `sim.core.records`)."""
        return 1 + self._reason_code[reason]

    def branch(self, pkt: Packet, ns: int) -> Packet:
        """A copy of multicast `pkt` for its member `ns` alone (unicast to `ns` from now, same
        plan and step), live from now; `ns` leaves `pkt`'s members."""
        assert pkt.members is not None and ns in pkt.members, (ns, pkt.members)
        c = self._member_copy(pkt, ns)
        pkt.members = tuple(m for m in pkt.members if m != ns)
        return c

    def _rows(self, pkt: Packet, t_done: float, outcome: int, node: str | None = None) -> None:
        """One row per destination `pkt` stands for: its members here (or its one end) and
        the members on other hosts whose wire copy has not left yet."""
        node_code = -1 if node is None else self._node_codes[node]
        members = pkt.members
        for ns in (members if members is not None else (() if pkt.wire_hosts else (pkt.dst_ns,))):
            self.recorder.add(pkt, pkt.dst_host, ns, t_done, outcome, node_code)
        for h in pkt.wire_hosts:
            for ns in pkt.owner.group[h]:
                self.recorder.add(pkt, h, ns, t_done, outcome, node_code, MULTICAST)

    def drop(self, pkt: Packet, reason: str, node: str) -> None:
        """`pkt` (and every member it stands for) is dropped now."""
        self._rows(pkt, self.engine.now, self._dropped(reason), node)
        self.live.pop(pkt.pid)
        pkt.owner.on_dropped(pkt)

    def record_drop(self, pkt: Packet, ns: int, reason: str, node: str) -> None:
        """One destination `ns` of `pkt` dropped at its socket (the caller retires `pkt`)."""
        self.recorder.add(pkt, pkt.dst_host, ns, self.engine.now, self._dropped(reason), self._node_codes[node])
        pkt.owner.on_dropped(pkt)

    def record_delivered(self, pkt: Packet, ns: int, read_done_ns: float) -> None:
        self.recorder.add(pkt, pkt.dst_host, ns, self.engine._now, DELIVERED)
        pkt.owner.on_delivered(pkt, read_done_ns)

    def retire(self, pkt: Packet) -> None:
        self.live.pop(pkt.pid)

    # -- running ----------------------------------------------------------------------
    def start(self) -> None:
        """Start every flow (call once, before `advance`)."""
        for flow in self.flows:
            flow.start()

    def advance(self, until_ns: float) -> None:
        """Simulate up to `until_ns` (at most the run's duration); may be called repeatedly."""
        until_ns = min(until_ns, self.until_ns)
        if until_ns > self.engine.now:
            self.engine.run(until=until_ns)

    def finish(self) -> None:
        """End the run: every packet still inside the model becomes an ``in_flight`` record."""
        self.advance(self.until_ns)
        for pkt in list(self.live.values()):
            self._rows(pkt, float("nan"), IN_FLIGHT)
        self.live.clear()
        self.recorder.flush()

    def run(self) -> None:
        """start + advance to the end + finish."""
        self.start()
        self.finish()
