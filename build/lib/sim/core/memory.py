"""Memory cost of an isolation scheme as the namespace count grows, by kernel structure.

A scheme's ``memory_per_namespace`` counts, per container, the *things* the kernel creates
for it; this module says what each is made of (`UNITS`) and takes every size from the cost
profile's ``memory_bytes`` (`sim.core.costs.MemorySizes`; the default profile gives each size's
source, docs/design.md "Memory" the model):

- ``netns_struct``  a namespace's own state: ``struct net`` (``netns_struct``), the state
                    its subsystems register per namespace (``netns_subsystems``: sysctl table
                    copies, SNMP MIBs, kernel control sockets, FIB rules, ...) and its per-CPU
                    data (``netns_per_cpu`` x CPUs: MIBs, ``prot_inuse``);
- ``net_device``    one registered device, up, with an address: ``struct net_device`` with
                    its private area, TX/RX queues, sysfs nodes, ``in_device`` and
                    ``inet6_dev`` (each with its devconf sysctl copy), neighbour parameters, the
                    rest (addresses, routes, multicast lists: ``netdev_other``) and per-CPU
                    stats and refcount (``netdev_per_cpu`` x CPUs) — a namespace's loopback, a
                    VNIC;
- ``veth_pair``     two devices plus each end's ``struct veth_rq`` array (``veth_rq``);
- ``proc_entries``, ``bridge_port``, ``fib_table``, ``fib_info_hash``, ``bind_filter``,
  ``classifier_rule``, ``ns_tag``: one structure each; ``nf_table`` once per CPU (x_tables
  kept a copy of each table's rules per CPU in 2006).

Per-CPU sizes are multiplied by the host's core count (the kernel allocates per *possible*
CPU): this is what grows with the machine rather than with the namespaces.

The socket hash tables (structure ``socket_hash_tables``) follow the host's `TableConfig`
(`sim.core.sockets`, the same object the host's lookups use): a shared table counts once
(UDP slots x ``udp_hash_slot`` + TCP buckets x ``socket_hash_bucket`` + the ehash locks);
per-namespace tables count once for the root namespace and once per container, each as
mainline allocates a per-netns table (``udp_pernet_table_alloc``, net/ipv4/udp.c, and
``inet_pernet_hashinfo_alloc``, net/ipv4/inet_hashtables.c: ``vmalloc_huge``, so whole pages,
plus the ``struct udp_table`` / ``struct inet_hashinfo`` copies and the ehash locks).

The returned table is tidy: one row per (scheme, namespaces, structure) with ``bytes``, so a
plot can stack structures.  Each row also says what its bytes are made of (`TERM_COLUMNS`), so
they can be recomputed for other sizes without the scheme or the host (`row_bytes`,
`bytes_at`: the claims' memory robustness and the report's memory bands vary the profile's
``memory_bytes.range`` with them):

- a structure of the profile: ``size_key`` (its size's name) and ``size_count`` (how many:
  count x namespaces, x CPUs for a per-CPU size): bytes = size_count x the size;
- ``socket_hash_tables``: ``size_count`` table sets (1 shared, or namespaces + 1 per
  namespace), each of ``udp_slots`` x ``udp_hash_slot`` and ``tcp_buckets`` x
  ``socket_hash_bucket``, each rounded up to ``page_bytes`` (whole pages for a vmalloc'd
  per-namespace table, 0: not rounded), plus ``fixed_bytes`` that no size of the profile
  changes (the ehash spinlocks, the ``struct udp_table`` / ``struct inet_hashinfo`` copies).

Bytes are linear in each size except for that page rounding (monotone: more bytes per slot
never cost less).
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Optional

import numpy as np
import pandas as pd

from sim.core.costs import CostProfile
from sim.core.schemes import Scheme
from sim.core.sockets import PAGE_SIZE, TableConfig, table_config

SOCKET_TABLES = "socket_hash_tables"
DEVICE = ("net_device", "netdev_queues", "netdev_sysfs", "ipv4_dev", "ipv6_dev", "neigh_parms", "netdev_other",
          "netdev_per_cpu")
# what each counted thing is made of: (size field of the profile, how many)
UNITS: dict[str, tuple[tuple[str, int], ...]] = {
    "netns_struct": (("netns_struct", 1), ("netns_subsystems", 1), ("netns_per_cpu", 1)),
    "net_device": tuple((d, 1) for d in DEVICE),
    "veth_pair": tuple((d, 2) for d in DEVICE) + (("veth_rq", 2),),
}
PER_CPU = ("netns_per_cpu", "netdev_per_cpu", "nf_table")
SPINLOCK_BYTES = 4                  # spinlock_t without lock debugging
L1_CACHE_BYTES = 64
STRUCT_UDP_TABLE = 32               # struct udp_table (BTF, 6.18): kmalloc-32
STRUCT_INET_HASHINFO = 128          # struct inet_hashinfo (BTF, 6.18): kmalloc-128


def structures(scheme: Scheme) -> dict[str, float]:
    """Kernel structures per container of `scheme`: size field -> count (per-CPU ones per CPU)."""
    out: dict[str, float] = {}
    for unit, count in scheme.spec.memory_per_namespace.items():
        for field, k in UNITS.get(unit, ((unit, 1),)):
            out[field] = out.get(field, 0.0) + count * k
    return out


def ehash_locks(buckets: int, cores: int) -> int:
    """Spinlocks of a TCP established hash: 2 cache lines of locks per possible CPU, rounded up
    to a power of two, no more than buckets (``inet_ehash_locks_alloc``, net/ipv4/inet_hashtables.c)."""
    n = max(2 * L1_CACHE_BYTES // SPINLOCK_BYTES, 1) * max(cores, 1)
    return min(1 << (n - 1).bit_length(), buckets)


TERM_COLUMNS = ("size_key", "size_count", "udp_slots", "tcp_buckets", "fixed_bytes", "page_bytes")
SOCKET_SIZES = ("udp_hash_slot", "socket_hash_bucket")      # the sizes a socket-table row is made of


def socket_table_terms(tables: TableConfig, namespaces: int, cores: int) -> dict:
    """What a host's socket hash tables are made of (`TERM_COLUMNS`; module docstring)."""
    fixed = ehash_locks(tables.tcp_buckets, cores) * SPINLOCK_BYTES
    if tables.per_namespace:
        fixed += STRUCT_UDP_TABLE + STRUCT_INET_HASHINFO
    return {"size_key": "", "size_count": float(namespaces + 1 if tables.per_namespace else 1),
            "udp_slots": tables.udp_buckets, "tcp_buckets": tables.tcp_buckets, "fixed_bytes": float(fixed),
            "page_bytes": PAGE_SIZE if tables.per_namespace else 0}


def _rounded(n: float, page: int) -> float:
    return math.ceil(n / page) * page if page else n


def row_bytes(row: Mapping, sizes: Mapping[str, float]) -> float:
    """Bytes of one memory row (its `TERM_COLUMNS`) with the profile sizes `sizes` (name -> bytes)."""
    key = row["size_key"]
    if isinstance(key, str) and key:        # (a CSV reads the socket tables' "" back as NaN)
        return float(row["size_count"] * sizes[key])
    page = int(row["page_bytes"])
    one = (_rounded(row["udp_slots"] * sizes["udp_hash_slot"], page)
           + _rounded(row["tcp_buckets"] * sizes["socket_hash_bucket"], page) + row["fixed_bytes"])
    return float(row["size_count"] * one)


def bytes_at(rows: pd.DataFrame, sizes: Mapping[str, float]) -> np.ndarray:
    """`row_bytes` of every row of a memory table (memory.csv rows with `TERM_COLUMNS`)."""
    key = rows["size_key"].fillna("").astype(str).to_numpy()
    count = rows["size_count"].to_numpy(dtype=float)
    linear = np.array([float(sizes[k]) if k else 0.0 for k in key])
    page = rows["page_bytes"].fillna(0).to_numpy(dtype=float)

    def rounded(n: np.ndarray) -> np.ndarray:
        return np.where(page > 0, np.ceil(n / np.where(page > 0, page, 1.0)) * page, n)
    tables = (rounded(rows["udp_slots"].fillna(0).to_numpy(dtype=float) * float(sizes["udp_hash_slot"]))
              + rounded(rows["tcp_buckets"].fillna(0).to_numpy(dtype=float) * float(sizes["socket_hash_bucket"]))
              + rows["fixed_bytes"].fillna(0).to_numpy(dtype=float))
    return count * np.where(key != "", linear, tables)


def socket_table_bytes(tables: TableConfig, profile: CostProfile, namespaces: int, cores: int) -> float:
    """Bytes of a host's socket hash tables (module docstring)."""
    return row_bytes(socket_table_terms(tables, namespaces, cores), profile.memory_bytes.sizes())


def memory_rows(scheme: Scheme, profile: CostProfile, namespaces: int, cores: int,
                tables: Optional[TableConfig] = None) -> list[dict]:
    """Bytes per structure for `namespaces` containers on a host of `cores` CPUs whose socket
    tables are `tables` (default: the scheme's, sized by the kernel's rules), each row with
    what its bytes are made of (`TERM_COLUMNS`)."""
    sizes = profile.memory_bytes.sizes()
    none = {"udp_slots": 0, "tcp_buckets": 0, "fixed_bytes": 0.0, "page_bytes": 0}
    rows = []
    for field, count in structures(scheme).items():
        per_cpu = cores if field in PER_CPU else 1
        terms = {"size_key": field, "size_count": float(count * namespaces * per_cpu), **none}
        rows.append({"scheme": scheme.name, "namespaces": namespaces, "structure": field,
                     "bytes": row_bytes(terms, sizes), **terms})
    tables = tables or table_config(scheme.spec, None, profile)
    terms = socket_table_terms(tables, namespaces, cores)
    rows.append({"scheme": scheme.name, "namespaces": namespaces, "structure": SOCKET_TABLES,
                 "bytes": row_bytes(terms, sizes), **terms})
    return rows


def memory_table(schemes: Iterable[Scheme], profile: CostProfile, namespace_counts: Iterable[int],
                 cores: int = 1, tables: Optional[TableConfig] = None) -> pd.DataFrame:
    """Tidy table: scheme, namespaces, structure, bytes and the `TERM_COLUMNS` (`tables`: as for
    `memory_rows`, for every scheme; None gives each scheme its own)."""
    counts = list(namespace_counts)
    rows = [r for s in schemes for n in counts for r in memory_rows(s, profile, n, cores, tables)]
    return pd.DataFrame(rows, columns=["scheme", "namespaces", "structure", "bytes", *TERM_COLUMNS])
