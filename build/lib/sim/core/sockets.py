"""UDP socket hash tables with real chain occupancy, and their size by the kernel's rules.

Every namespace of a host binds `sockets_per_namespace` sockets.  How they land in buckets
depends on the table organisation (a scheme's ``socket_tables``, or a host's choice of era,
``hosts[].socket_tables``):

- ``single``          one table, key = port; containers are plain applications, so each
                      socket has its own port (``base_port + ns * per_ns + j``);
- ``addr_port``       one table, key = hash(address, port); every container binds the same
                      ports on its own address (bind filtering, modern ``hash2``);
- ``shared_permuted`` one table per protocol shared by all namespaces, bucket =
                      ``(port ^ ns_hash) & (buckets - 1)`` with a random 32-bit ``ns_hash``
                      per namespace.  This is PATCH 4/9's permutation and mainline's: the
                      UDP lookup (``__udp4_lib_lookup``, net/ipv4/udp.c) walks the slot of
                      ``ipv4_portaddr_hash(net, addr, port) = jhash_1word(addr,
                      net_hash_mix(net)) ^ port`` (include/net/ip.h), and ``net_hash_mix(net)``
                      is ``net->hash_mix``, a random u32 drawn per namespace
                      (include/net/netns/hash.h) — for a socket bound to its namespace's
                      address or INADDR_ANY, a random per-namespace value XORed with the port;
- ``per_namespace``   one table per namespace, key = port (the namespace patches as first
                      posted in 2006; mainline's optional ``udp_child_hash_entries``, 6.2+).

The root namespace (``HOST:root``, the host's own applications) binds `sockets_per_namespace`
sockets too, before any container (host services start first); in the formulas above it is
``ns = -1`` (ports just below the containers', address 10.0.0.0, ``ns_hash`` 0, a table of
its own).  Binding first puts them at the chain tails, so they lengthen no container's lookup.

Sockets are inserted at the chain head (``hlist_add_head``) in bind order, namespace by
namespace, so a lookup examines every entry bound after the target in its bucket, plus the
target itself: `examined(ns, j)` returns that count (``ns`` a container index or
`sim.core.nscodes.ROOT_NS`).

**Table sizes** (`table_config`): one `TableConfig` per host gives the organisation and the
size of each table; the host's lookups (`SocketTables`) and the memory model
(`sim.core.memory`) both take it, so the two can never disagree.  Unless the host sets
``socket_hash_buckets`` (UDP) or ``tcp_ehash_buckets`` (TCP established hash):

- a table shared by every namespace is sized at boot from the host's RAM (``ram_bytes``) by
  `alloc_large_system_hash` (mm/mm_init.c): the UDP table (`udp_table_init`, net/ipv4/udp.c:
  "UDP", one slot per 2 MB, at least ``UDP_HTABLE_SIZE_MIN`` 256, at most
  ``UDP_HTABLE_SIZE_MAX`` 65,536; the ``uhash_entries=`` boot option overrides) and the TCP
  established hash (`tcp_init`, net/ipv4/tcp.c: "TCP established", one bucket per 128 KB, at
  most 512 Ki; ``thash_entries=``);
- a per-namespace table takes the profile's ``udp_hash_buckets`` / ``tcp_ehash_buckets``
  (128 each: 2.6.18's fixed ``UDP_HTABLE_SIZE``, and mainline's per-netns minimum
  ``UDP_HTABLE_SIZE_MIN_PERNET``; ``net.ipv4.udp_child_hash_entries`` and
  ``net.ipv4.tcp_child_ehash_entries`` (6.1+, `tcp_set_hashinfo`, net/ipv4/tcp_ipv4.c) set
  them in a real kernel, rounded up to a power of two).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.core.nscodes import ROOT_NS

BASE_PORT = 5000
PAGE_SIZE = 4096
MAX_BUCKETS = 2**31                 # alloc_large_system_hash caps every table at 0x80000000 entries
SHARED = ("single", "addr_port", "shared_permuted")   # one table for the whole host
ERA_TABLES = {"posted_2006": "per_namespace", "mainline": "shared_permuted"}


def large_system_hash_entries(ram_bytes: float, bucket_bytes: int, scale: int, low: int, high: int) -> int:
    """Entries `alloc_large_system_hash` (mm/mm_init.c) gives a boot-time table on a host with
    `ram_bytes` of memory: one entry per 2**scale bytes (memory rounded up to a MiB), at least
    a page of buckets, rounded up to a power of two, within [low, high] (high 0: 1/16 of memory)."""
    pages = math.ceil(ram_bytes / 2**20) * (2**20 // PAGE_SIZE)
    n = pages >> (scale - 12) if scale > 12 else pages << (12 - scale)
    if n * bucket_bytes < PAGE_SIZE:
        n = PAGE_SIZE // bucket_bytes
    n = 1 << max(n - 1, 0).bit_length()
    top = high or int(ram_bytes // 16 // bucket_bytes)
    return max(low, min(n, top, MAX_BUCKETS))


def udp_table_entries(ram_bytes: float) -> int:
    """Slots of the boot-time UDP table: ``udp_table_init(&udp_table, "UDP")`` (net/ipv4/udp.c)."""
    return large_system_hash_entries(ram_bytes, 64, 21, 256, 65536)


def tcp_ehash_entries(ram_bytes: float) -> int:
    """Buckets of the boot-time TCP established hash (``tcp_init``, net/ipv4/tcp.c)."""
    return large_system_hash_entries(ram_bytes, 8, 17, 0, 512 * 1024)


@dataclass(frozen=True)
class TableConfig:
    """A host's socket tables: organisation and size of each table (see the module docstring).

    `udp_buckets` / `tcp_buckets` are the size of *each* table: the one shared table, or each
    namespace's own.  `source` says where the sizes came from (for reports)."""

    mode: str
    udp_buckets: int
    tcp_buckets: int
    source: str = ""

    @property
    def per_namespace(self) -> bool:
        return self.mode not in SHARED


def table_config(scheme_spec, host_spec, profile) -> TableConfig:
    """The socket tables of a host of `host_spec` running `scheme_spec` with cost `profile`:
    the host's ``socket_tables`` (a scheme with a ``socket_era`` may run the other era's) or
    the scheme's, sized by the host's ``socket_hash_buckets`` / ``tcp_ehash_buckets`` or by the
    kernel's rules (module docstring)."""
    mode = getattr(host_spec, "socket_tables", None) or scheme_spec.socket_tables
    udp = getattr(host_spec, "socket_hash_buckets", None)
    tcp = getattr(host_spec, "tcp_ehash_buckets", None)
    sizes = profile.memory_bytes
    if mode not in SHARED:
        how = "per-namespace tables, the profile's udp_hash_buckets/tcp_ehash_buckets"
        udp_n, tcp_n = udp or sizes.udp_hash_buckets, tcp or sizes.tcp_ehash_buckets
    else:
        ram = getattr(host_spec, "ram_bytes", None) or profile.host.ram_bytes
        how = f"one shared table per protocol, sized at boot from {ram / 2**30:.3g} GiB of RAM"
        udp_n, tcp_n = udp or udp_table_entries(ram), tcp or tcp_ehash_entries(ram)
    if udp or tcp:
        how += " (set on the host: " + ", ".join(
            f"{k}={v}" for k, v in (("socket_hash_buckets", udp), ("tcp_ehash_buckets", tcp)) if v) + ")"
    return TableConfig(mode, int(udp_n), int(tcp_n), how)


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
        self.chain_lengths = np.unique(bucket, return_counts=True)[1]    # of the occupied buckets
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
