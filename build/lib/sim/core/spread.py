"""Spreading received packets over cores: RSS by a hash of the 5-tuple, and RPS.

Contract:
- `flow_hash(pkt)` is a deterministic 32-bit hash of the packet's 5-tuple: source (host,
  namespace, and for traffic from the wire the flow, which stands for the remote client's
  address), source port (the flow's connection ``seq % connections``: each connection of a
  flow has its own source port), destination namespace and destination port.  It stands in
  for the NIC's Toeplitz hash (RSS) and the kernel's skb flow hash (RPS): same inputs, same
  queue; different connections spread.  Not the Toeplitz function itself.
- `Spreader.rx_queue(pkt)` picks one of ``rx_queues`` NIC RX queues (the indirection table of
  ethtool -X, filled round-robin: queue = hash mod queues); `Spreader.rps_cpu(pkt)` picks a
  core of ``rps_cpus`` the same way (get_rps_cpu with an rps_map, no flow table).
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence

MASK32 = 0xFFFFFFFF


def _mix(h: int, v: int) -> int:
    """One round of a 32-bit multiply-xorshift mix (murmur3-style finaliser)."""
    h = ((h ^ (v & MASK32)) * 0x85EBCA6B) & MASK32
    return h ^ (h >> 13)


def five_tuple(pkt) -> tuple[int, ...]:
    """The hash's inputs of `pkt` (see the module docstring)."""
    conns = pkt.owner.spec.connections
    return (pkt.src_host, pkt.src_ns, pkt.flow if pkt.src_ns < 0 else 0,
            pkt.seq % conns if conns > 1 else 0, pkt.dst_ns, pkt.port)


@functools.lru_cache(maxsize=1 << 18)
def hash_of(five: tuple[int, ...]) -> int:
    """32-bit hash of a `five_tuple`; memoised for the process (a pure function, and the variants a
    process runs repeat their 5-tuples: one per destination namespace of a spread flow)."""
    h = 0x9E3779B9
    for v in five:
        h = _mix(h, v)
    h = ((h ^ (h >> 16)) * 0xC2B2AE35) & MASK32
    return h ^ (h >> 16)


def flow_hash(pkt) -> int:
    """32-bit hash of `pkt`'s 5-tuple (see the module docstring)."""
    return hash_of(five_tuple(pkt))


class Spreader:
    """RX queue and RPS target choice of one host."""

    def __init__(self, rx_queues: int, rps_cpus: Optional[Sequence[int]]) -> None:
        self.rx_queues = rx_queues
        self.rps_cpus = tuple(rps_cpus) if rps_cpus else ()

    def rx_queue(self, pkt) -> int:
        """The NIC RX queue of `pkt` (RSS)."""
        if self.rx_queues == 1:
            return 0
        return flow_hash(pkt) % self.rx_queues

    def rps_cpu(self, pkt) -> int:
        """The core whose backlog takes `pkt` after the driver's pass (RPS)."""
        cpus = self.rps_cpus
        return cpus[flow_hash(pkt) % len(cpus)] if len(cpus) > 1 else cpus[0]
