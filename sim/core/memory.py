"""Memory cost of an isolation scheme as the namespace count grows, by kernel structure.

Bytes = sum over structures of (count per namespace x namespaces x size), where counts come
from the scheme's ``memory_per_namespace`` and sizes from the cost profile's
``memory_bytes``; plus the socket hash tables: one table shared by everything, or one per
namespace (``socket_tables: per_namespace``), each of ``udp_hash_buckets +
tcp_ehash_buckets`` buckets of ``socket_hash_bucket`` bytes.  Netfilter tables are counted
once per CPU, as x_tables kept a copy of each table's rules per CPU in 2006.

The returned table is tidy: one row per (scheme, namespaces, structure) with ``bytes``, so a
plot can stack structures.
"""

from __future__ import annotations

from typing import Iterable

import pandas as pd

from sim.core.costs import CostProfile
from sim.core.schemes import Scheme

SOCKET_TABLES = "socket_hash_tables"


def memory_rows(scheme: Scheme, profile: CostProfile, namespaces: int, cores: int) -> list[dict]:
    """Bytes per structure for `namespaces` containers on a host of `cores` CPUs."""
    sizes = profile.memory_bytes
    rows = []
    for structure, count in scheme.spec.memory_per_namespace.items():
        per_cpu = cores if structure == "nf_table" else 1
        size = getattr(sizes, structure)
        rows.append({"scheme": scheme.name, "namespaces": namespaces, "structure": structure,
                     "bytes": float(count * namespaces * size * per_cpu)})
    tables = namespaces if scheme.spec.socket_tables == "per_namespace" else 1
    table_bytes = (sizes.udp_hash_buckets + sizes.tcp_ehash_buckets) * sizes.socket_hash_bucket
    rows.append({"scheme": scheme.name, "namespaces": namespaces, "structure": SOCKET_TABLES,
                 "bytes": float(max(tables, 1) * table_bytes)})
    return rows


def memory_table(schemes: Iterable[Scheme], profile: CostProfile, namespace_counts: Iterable[int],
                 cores: int = 1) -> pd.DataFrame:
    """Tidy table: scheme, namespaces, structure, bytes."""
    rows = [r for s in schemes for n in namespace_counts for r in memory_rows(s, profile, n, cores)]
    return pd.DataFrame(rows, columns=["scheme", "namespaces", "structure", "bytes"])
