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


def _single(tables: "SocketTables", ns, j, mask: int, rng) -> np.ndarray:
    return (BASE_PORT + ns * tables.per_ns + j) & mask


def _addr_port(tables: "SocketTables", ns, j, mask: int, rng) -> np.ndarray:
    addr = 0x0A000001 + ns                      # 10.0.0.1 + ns
    return (((addr * 2654435761) & 0xFFFFFFFF) ^ (BASE_PORT + j)) & mask


def _shared_permuted(tables: "SocketTables", ns, j, mask: int, rng) -> np.ndarray:
    ns_hash = tables.ns_hash = rng.integers(0, 2**32, size=tables.namespaces, dtype=np.int64)
    return ((BASE_PORT + j) ^ ns_hash[ns]) & mask


def _per_namespace(tables: "SocketTables", ns, j, mask: int, rng) -> np.ndarray:
    return ns * tables.buckets + ((BASE_PORT + j) & mask)      # a distinct table per namespace


# table organisation (a scheme's ``socket_tables``) -> bucket of every socket (see module docstring)
BUCKETING = {"single": _single, "addr_port": _addr_port, "shared_permuted": _shared_permuted,
             "per_namespace": _per_namespace}


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
        self.ns_hash: np.ndarray | None = None          # shared_permuted: PATCH 4/9's per-namespace hash
        mask = buckets - 1
        ns = np.repeat(np.arange(namespaces, dtype=np.int64), per_ns)
        j = np.tile(np.arange(per_ns, dtype=np.int64), namespaces)
        if mode not in BUCKETING:
            raise ValueError(f"unknown socket table mode {mode!r}; known: {', '.join(BUCKETING)}")
        bucket = BUCKETING[mode](self, ns, j, mask, rng)
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
