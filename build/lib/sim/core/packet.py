"""The packet object that moves through the model (not a record; see `sim.core.records`).

`passes` is a flat list ``[vec_id, queue_ns, scale, vec_id, queue_ns, scale, ...]``, one
triple per pass the packet has started (queue_ns: from `enq_ns`, when it joined the pass's
queue, to the pass's start); `members` is the tuple of member namespaces on the
packet's host a multicast packet still stands for before it fans out (one record per member
at the end); `wire_hosts` the other member hosts a multicast_local packet stands for until
its wire copy leaves (`sim.core.trips`).  Namespace codes: `sim.core.nscodes`.

`size` is the bytes the hosts' stages see (a TCP GSO/GRO packet: its payload + one set of
headers); `frames` the wire frames it stands for (1, or a TCP GSO packet's segments: the NIC
cuts it, TSO, and the receiver's GRO merges them again, `sim.core.tcp`) and `wire_size` their
bytes on a link (each frame with its own headers; `size` when `frames` is 1); `lost_frames`
the indices of the frames a lossy link lost (`sim.core.topology.LossyHop`; empty when none).

The constructor sets what a packet has from its flow; the model sets the rest before any
use: `trip` (`sim.core.model.Model.emit`), `scheme`, `core`, `plan`, `step` and `host_trip`
(`sim.core.host.Host.start_trip`, at once), `sender` (`sim.core.apps.Apps.send`).
"""

from __future__ import annotations


class Packet:
    trip: int              # journey label code (sim.core.records.TRIP_LABELS)
    scheme: int            # record scheme code of the current host's plan
    core: int              # the core of its current or last pass
    members: tuple[int, ...] | None
    wire_hosts: tuple[int, ...]
    plan: tuple            # the trip's CompiledPass tuple on the current host
    step: int              # index of the current pass in `plan`
    host_trip: str         # trip name on the current host
    far_trip: str | None   # a unicast's host trip on its destination host, when that is another
    sender: object         # the sending socket's thread (sim.core.apps), during its send pass
    tcp: int               # 0/False: a datagram; else a TCP segment, with the bits of sim.core.tcpcost
                           # (WRITTEN, BACKLOGGED, PURE_ACK) that say how it is priced
    __slots__ = ("pid", "origin", "flow", "seq", "direction", "trip", "scheme", "src_host",
                 "src_ns", "dst_host", "dst_ns", "port", "size", "t_sent", "route_code",
                 "link_queue_ns", "passes", "hop", "members", "wire_hosts", "core", "owner",
                 "plan", "step", "host_trip", "enq_ns", "sender", "far_trip", "frames",
                 "wire_size", "lost_frames", "tcp")

    def __init__(self, pid: int, flow: int, seq: int, direction: int, src_host: int, src_ns: int,
                 dst_host: int, dst_ns: int, port: int, size: int, t_sent: float, owner,
                 frames: int = 1, wire_size: int | None = None) -> None:
        self.pid = pid
        self.origin = pid
        self.flow = flow
        self.seq = seq
        self.direction = direction
        self.src_host = src_host
        self.src_ns = src_ns
        self.dst_host = dst_host
        self.dst_ns = dst_ns
        self.port = port
        self.size = size
        self.t_sent = t_sent
        self.route_code = 0         # sim.core.records.RouteBook code of the route taken (0: none)
        self.link_queue_ns = 0.0
        self.passes: list = []
        self.hop = 0
        self.members = None
        self.wire_hosts = ()
        self.owner = owner          # the flow object notified of delivery and drops
        self.enq_ns = t_sent        # when it joined the queue of its current pass
        self.far_trip = None
        self.frames = frames
        self.wire_size = size if wire_size is None else wire_size
        self.lost_frames: tuple[int, ...] = ()
        self.tcp = False            # a TCP segment: priced with TCP's stages (sim.core.tcpcost)

    def copy(self, pid: int) -> "Packet":
        """A copy for one branch of a multicast (same origin, own id, passes so far)."""
        c = Packet(pid, self.flow, self.seq, self.direction, self.src_host, self.src_ns,
                   self.dst_host, self.dst_ns, self.port, self.size, self.t_sent, self.owner,
                   self.frames, self.wire_size)
        c.lost_frames = self.lost_frames
        c.origin = self.origin
        c.trip = self.trip
        c.scheme = self.scheme
        c.route_code = self.route_code
        c.link_queue_ns = self.link_queue_ns
        c.passes = list(self.passes)
        c.hop = self.hop
        c.core = self.core
        c.enq_ns = self.enq_ns
        c.far_trip = self.far_trip
        c.tcp = self.tcp
        return c
