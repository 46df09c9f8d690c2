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
plot can stack structures.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional

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


def socket_table_bytes(tables: TableConfig, profile: CostProfile, namespaces: int, cores: int) -> float:
    """Bytes of a host's socket hash tables (module docstring)."""
    sizes = profile.memory_bytes
    udp = tables.udp_buckets * sizes.udp_hash_slot
    tcp = tables.tcp_buckets * sizes.socket_hash_bucket
    locks = ehash_locks(tables.tcp_buckets, cores) * SPINLOCK_BYTES
    if not tables.per_namespace:
        return float(udp + tcp + locks)

    def page(n: int) -> int:
        return math.ceil(n / PAGE_SIZE) * PAGE_SIZE
    one = page(udp) + page(tcp) + locks + STRUCT_UDP_TABLE + STRUCT_INET_HASHINFO
    return float((namespaces + 1) * one)


def memory_rows(scheme: Scheme, profile: CostProfile, namespaces: int, cores: int,
                tables: Optional[TableConfig] = None) -> list[dict]:
    """Bytes per structure for `namespaces` containers on a host of `cores` CPUs whose socket
    tables are `tables` (default: the scheme's, sized by the kernel's rules)."""
    sizes = profile.memory_bytes
    rows = []
    for field, count in structures(scheme).items():
        per_cpu = cores if field in PER_CPU else 1
        rows.append({"scheme": scheme.name, "namespaces": namespaces, "structure": field,
                     "bytes": float(count * namespaces * getattr(sizes, field) * per_cpu)})
    tables = tables or table_config(scheme.spec, None, profile)
    rows.append({"scheme": scheme.name, "namespaces": namespaces, "structure": SOCKET_TABLES,
                 "bytes": socket_table_bytes(tables, profile, namespaces, cores)})
    return rows


def memory_table(schemes: Iterable[Scheme], profile: CostProfile, namespace_counts: Iterable[int],
                 cores: int = 1, tables: Optional[TableConfig] = None) -> pd.DataFrame:
    """Tidy table: scheme, namespaces, structure, bytes (`tables`: as for `memory_rows`, for
    every scheme; None gives each scheme its own)."""
    counts = list(namespace_counts)
    rows = [r for s in schemes for n in counts for r in memory_rows(s, profile, n, cores, tables)]
    return pd.DataFrame(rows, columns=["scheme", "namespaces", "structure", "bytes"])
