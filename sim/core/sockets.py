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

The root namespace (``HOST:root``, the host's own applications) binds `sockets_per_namespace`
sockets too, before any container (host services start first); in the formulas above it is
``ns = -1`` (ports just below the containers', address 10.0.0.0, ``ns_hash`` 0, a table of
its own).  Binding first puts them at the chain tails, so they lengthen no container's lookup.

Sockets are inserted at the chain head (``hlist_add_head``) in bind order, namespace by
namespace, so a lookup examines every entry bound after the target in its bucket, plus the
target itself: `examined(ns, j)` returns that count (``ns`` a container index or
`sim.core.nscodes.ROOT_NS`).
"""

from __future__ import annotations

import numpy as np

from sim.core.nscodes import ROOT_NS

BASE_PORT = 5000


def _single(tables: "SocketTables", ns, j, mask: int, rng) -> np.ndarray:
    return (BASE_PORT + ns * tables.per_ns + j) & mask


def _addr_port(tables: "SocketTables", ns, j, mask: int, rng) -> np.ndarray:
    addr = 0x0A000001 + ns                      # 10.0.0.1 + ns
    return (((addr * 2654435761) & 0xFFFFFFFF) ^ (BASE_PORT + j)) & mask


def _shared_permuted(tables: "SocketTables", ns, j, mask: int, rng) -> np.ndarray:
    ns_hash = tables.ns_hash
    if ns_hash is None:                          # drawn once, for the containers (the root's is 0)
        ns_hash = tables.ns_hash = rng.integers(0, 2**32, size=tables.namespaces, dtype=np.int64)
    return ((BASE_PORT + j) ^ np.where(ns < 0, 0, ns_hash[ns])) & mask


def _per_namespace(tables: "SocketTables", ns, j, mask: int, rng) -> np.ndarray:
    return ns * tables.buckets + ((BASE_PORT + j) & mask)      # a distinct table per namespace


# table organisation (a scheme's ``socket_tables``) -> bucket of every socket (see module docstring)
BUCKETING = {"single": _single, "addr_port": _addr_port, "shared_permuted": _shared_permuted,
             "per_namespace": _per_namespace}


def _bound_later(bucket: np.ndarray) -> np.ndarray:
    """For sockets bound in array order, how many bound later share each one's bucket (the
    chain entries in front of it, as insertion is at the head)."""
    order = np.argsort(bucket, kind="stable")
    sorted_b = bucket[order]
    ends = np.searchsorted(sorted_b, sorted_b, side="right")
    later = np.empty(len(order), dtype=np.int64)
    later[order] = ends - np.arange(len(order)) - 1
    return later


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
        self._examined = 1 + _bound_later(bucket)
        self.chain_lengths = np.bincount(bucket - bucket.min() if len(bucket) else bucket)
        self._root_examined = self._root_positions(bucket, mask, rng)

    def _root_positions(self, bucket: np.ndarray, mask: int, rng) -> np.ndarray:
        """Entries a lookup of each root socket examines: it, the root sockets bound after it
        and every container socket in its bucket (see the module docstring)."""
        j = np.arange(self.per_ns, dtype=np.int64)
        root = BUCKETING[self.mode](self, np.full(self.per_ns, -1, dtype=np.int64), j, mask, rng)
        values, counts = np.unique(bucket, return_counts=True)          # bucket is never empty
        at = np.searchsorted(values, root).clip(max=len(values) - 1)
        containers = np.where(values[at] == root, counts[at], 0)
        return 1 + _bound_later(root) + containers

    def examined(self, ns: int, j: int) -> int:
        """Chain entries a lookup of socket `j` of namespace `ns` examines (>= 1)."""
        if ns == ROOT_NS:
            return int(self._root_examined[j])
        return int(self._examined[ns * self.per_ns + j])

    def mean_examined(self) -> float:
        """Mean over the containers' sockets."""
        return float(self._examined.mean()) if len(self._examined) else 0.0
