"""NIC transmit queues: on which core a packet's TX completion runs (XPS, or the flow hash).

Contract (docs/execution.md, "Transmit: XPS and TX completion", gives the kernel functions):

- A host's NIC has as many TX queues as RX queues (combined channels, ``ethtool -L combined``):
  TX queue ``q`` completes on core ``q % cores``, the core of its channel's interrupt, whose
  NAPI poll cleans the TX ring before it polls RX (mlx5e_napi_poll, ixgbe_poll).
- `TxQueues.queue(pkt, cpu)` is the queue netdev_pick_tx (net/core/dev.c) picks for a packet
  handed to the NIC by a pass on core `cpu`.  With XPS (``hosts[].xps: true``, the default)
  it is that core's queue under the map the drivers install when they open their channels,
  core ``c`` -> queue ``c mod queues`` (mlx5e_set_default_xps_cpumasks, ice_cfg_xps_tx_ring,
  virtnet_set_affinity): get_xps_queue with skb->sender_cpu.  Without it, skb_tx_hash:
  ``reciprocal_scale(flow hash, queues)`` over `sim.core.spread.flow_hash` (same 5-tuple, same
  queue).  An unconnected UDP socket caches no queue (sk_tx_queue_set needs sk_dst_cache), so
  the choice is made per packet.
- `TxQueues.complete(pkt, cpu, n)` charges ``n * tx_completion_ns`` to the completion core as
  CPU outside any job (`sim.core.cpu.Core.stall`): it runs as soon as that core is free,
  before the work waiting there (softirq context, like the TX clean at the head of a NAPI
  poll), and schedules no engine event of its own; work that then waits for it costs the
  event it would cost behind any busy core.  Interrupt coalescing, the completion's delay
  after the wire and batching are not modelled: the completion is charged when the pass that
  ran ``nic_tx`` ends.  ``done_ns`` (the part inside [warmup_ns, until_ns], as busy time is
  counted) and ``completions`` (all) count it per core.
"""

from __future__ import annotations

from sim.core.spread import flow_hash


class TxQueues:
    """The TX queues of one host's NIC; see the module docstring."""

    def __init__(self, cores: list, queues: int, xps: bool, completion_ns: float) -> None:
        self.cores = cores
        self.queues = queues
        self.xps = xps
        self.completion_ns = completion_ns
        self.done_ns = [0.0] * len(cores)
        self.completions = [0] * len(cores)

    def queue(self, pkt, cpu: int) -> int:
        """The TX queue of `pkt`, handed to the NIC on core `cpu`."""
        if self.queues == 1:
            return 0
        if self.xps:
            return cpu % self.queues
        return (flow_hash(pkt) * self.queues) >> 32

    def complete(self, pkt, cpu: int, n: int) -> None:
        """`n` TX completions of `pkt` (handed to the NIC on core `cpu`) are charged now."""
        c = 0 if self.queues == 1 else self.queue(pkt, cpu) % len(self.cores)
        self.completions[c] += n
        ns = n * self.completion_ns
        if ns > 0:
            self.done_ns[c] += self.cores[c].stall(ns)
