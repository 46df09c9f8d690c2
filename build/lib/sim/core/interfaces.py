"""The declared interface between the model and its components.

`sim.core.model.Model` builds hosts (`sim.core.host.Host`), the network (`sim.core.topology.Network`) and
flows (a kind of `sim.core.traffic.FLOW_KINDS`) and hands each of them itself as `ModelServices`:
the only calls a component may make on the model.  A flow kind is any `FlowKind`: a class
built with ``(idx, spec, model, rng)`` whose instances are `FlowSource`s.  mypy checks that the
model provides these services and that every registered flow kind fits (``make types``).

Contract of the services (times in ns of simulated time):
- ``emit(flow, seq, direction, size_bytes)``: a flow's new packet enters the model now
  (``softirq_core``: sent from softirq context on that core, as TCP's ACKs are);
- ``packet_budget_spent()``: ``run.max_packets`` reached, flows stop emitting; the same as
  ``generated >= packet_limit`` (packets emitted so far; ``run.max_packets`` or infinity),
  which a flow may test inline;
- ``arrive_at_host(pkt)`` / ``left_host(pkt, host)``: a packet crosses a host boundary;
- ``fan_out(pkt)``: the copies of a multicast packet for the members on its host;
- ``branch(pkt, ns)``: a copy of a multicast packet for its member `ns` alone (the member
  leaves `pkt`'s members), e.g. a sender's own IP_MULTICAST_LOOP copy;
- ``wire_copies(pkt, host)``: a multicast_local packet's copies for the other member hosts
  leave `host` now;
- ``drop(pkt, reason, node)`` / ``record_drop(pkt, ns, reason, node)`` /
  ``record_delivered(pkt, ns, read_done_ns)`` / ``retire(pkt)``: every copy ends in exactly
  one record and is then retired;
- ``node_code(name)``: the interned code of a host or switch name (for records).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Protocol

import numpy as np

if TYPE_CHECKING:
    from sim.core.engine import Engine
    from sim.core.packet import Packet
    from sim.core.records import Recorder
    from sim.frontdoor.scenario import FlowSpec


class FlowSource(Protocol):
    """What the model requires of a flow; `src`, `dst`, `group`, `spread_over` are set by the model."""

    idx: int
    spec: "FlowSpec"
    sent: int
    src: tuple[int, int]
    dst: tuple[int, int]
    group: Optional[dict[int, tuple[int, ...]]]
    spread_over: int
    observes_reads: bool

    def start(self) -> None: ...
    def read_work_ns(self, pkt: "Packet") -> float: ...
    def on_delivered(self, pkt: "Packet", read_done_ns: float) -> None: ...
    def on_read(self, pkt: "Packet") -> None: ...
    def on_dropped(self, pkt: "Packet") -> None: ...
    def buffers(self, pkt: "Packet") -> bool: ...


class FlowKind(Protocol):
    tcp_segments: bool              # its flows' packets are TCP segments (`sim.core.tcpcost`)

    def __call__(self, idx: int, spec: "FlowSpec", model: "ModelServices",
                 rng: np.random.Generator) -> FlowSource: ...


class ModelServices(Protocol):
    """The calls hosts, links and flows make on the model (see the module docstring)."""

    engine: "Engine"
    recorder: "Recorder"
    hosts: list                     # sim.core.host.Host, by index (TCP flows read their hosts' app costs)
    warmup_ns: float
    until_ns: float
    generated: int
    packet_limit: float
    tcp: bool                       # some flow's packets are TCP segments (`sim.core.tcpcost`)

    def emit(self, flow, seq: int, direction: int, size: int, frames: int = 1,
             wire_size: int | None = None, softirq_core: int = -1, tcp: int | None = None) -> None: ...
    def packet_budget_spent(self) -> bool: ...
    def arrive_at_host(self, pkt: "Packet") -> None: ...
    def left_host(self, pkt: "Packet", host) -> None: ...
    def fan_out(self, pkt: "Packet") -> list["Packet"]: ...
    def branch(self, pkt: "Packet", ns: int) -> "Packet": ...
    def wire_copies(self, pkt: "Packet", host) -> None: ...
    def drop(self, pkt: "Packet", reason: str, node: str) -> None: ...
    def record_drop(self, pkt: "Packet", ns: int, reason: str, node: str) -> None: ...
    def record_delivered(self, pkt: "Packet", ns: int, read_done_ns: float) -> None: ...
    def retire(self, pkt: "Packet") -> None: ...
    def node_code(self, name: str) -> int: ...
