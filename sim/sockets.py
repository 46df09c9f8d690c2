"""UDP socket hash tables, as the 2006 kernel kept them, with real chain occupancy.

Every namespace of a host binds `sockets_per_namespace` sockets.  How they land in buckets
depends on the table organisation (a scheme's ``socket_tables``):

- ``single``          one table, key = port; containers are plain applications, so each
                      socket has its own port (``base_port + ns * per_ns + j``);
- ``addr_port``       one table, key = hash(address, port); every container binds the same
                      ports on its own address (bind filtering, modern ``hash2``);
- ``shared_permuted`` one table shared by all namespaces, bucket =
                      ``(port ^ ns_hash) & (buckets - 1)`` with a random 32-bit ``ns_hash``
                      per namespace (PATCH 4/9, ``net_ns_hash``);
- ``per_namespace``   one table per namespace, key = port.

Sockets are inserted at the chain head (``hlist_add_head``) in bind order, namespace by
namespace, so a lookup examines every entry bound after the target in its bucket, plus the
target itself: `examined(ns, j)` returns that count.
"""

from __future__ import annotations

import numpy as np

BASE_PORT = 5000


class SocketTables:
    """Chain positions of every socket of one host (see module docstring)."""

    def __init__(self, mode: str, namespaces: int, per_ns: int, buckets: int,
                 rng: np.random.Generator) -> None:
        if buckets < 1 or buckets & (buckets - 1):
            raise ValueError(f"socket hash buckets must be a power of two, got {buckets}")
        self.mode = mode
        self.namespaces = namespaces
        self.per_ns = per_ns
        self.buckets = buckets
        mask = buckets - 1
        ns = np.repeat(np.arange(namespaces, dtype=np.int64), per_ns)
        j = np.tile(np.arange(per_ns, dtype=np.int64), namespaces)
        port = BASE_PORT + j
        if mode == "single":
            bucket = (BASE_PORT + ns * per_ns + j) & mask
        elif mode == "addr_port":
            addr = 0x0A000001 + ns                      # 10.0.0.1 + ns
            bucket = (((addr * 2654435761) & 0xFFFFFFFF) ^ port) & mask
        elif mode == "shared_permuted":
            self.ns_hash = rng.integers(0, 2**32, size=namespaces, dtype=np.int64)
            bucket = (port ^ self.ns_hash[ns]) & mask
        elif mode == "per_namespace":
            bucket = ns * buckets + (port & mask)      # a distinct table per namespace
        else:
            raise ValueError(f"unknown socket table mode {mode!r}")
        self.bucket = bucket
        # Position from the head = sockets inserted later into the same bucket + 1.
        order = np.argsort(bucket, kind="stable")
        sorted_b = bucket[order]
        starts = np.searchsorted(sorted_b, sorted_b, side="left")
        ends = np.searchsorted(sorted_b, sorted_b, side="right")
        rank_in_bucket = np.arange(len(order)) - starts          # 0 = first inserted
        examined = np.empty(len(order), dtype=np.int64)
        examined[order] = ends - starts - rank_in_bucket
        self._examined = examined
        self.chain_lengths = np.bincount(bucket - bucket.min() if len(bucket) else bucket)

    def examined(self, ns: int, j: int) -> int:
        """Chain entries a lookup of socket `j` of namespace `ns` examines (>= 1)."""
        return int(self._examined[ns * self.per_ns + j])

    def mean_examined(self) -> float:
        return float(self._examined.mean()) if len(self._examined) else 0.0
