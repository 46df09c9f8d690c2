"""Per-namespace vs shared socket tables, at equal table size and at equal lookup cost.

Applies to results that vary ``hosts.*.socket_tables`` over ``per_namespace`` and
``shared_permuted`` (and, to find the equal-cost point, ``hosts.*.socket_hash_buckets``), e.g.
``scenarios/socket-tables.yaml``.  From the result files only:

* lookup: the mean ``socket_lookup_ns`` of delivered packets sent after warm-up (packets/),
  per (organisation, table size), averaged over replications as one pool;
* memory: the ``socket_hash_tables`` bytes of memory.csv at the largest namespace count it
  has (the scenario's own count: `NAMESPACES` in the row), per (organisation, table size).

`compare(res, packets)` -> `Comparison` or None (nothing to compare); ``packets`` is packet
records or per-group means with a ``packets`` count (`analysis.packetstats`):

* ``rows``: every (table size, organisation) measured;
* ``equal_size``: for every size both organisations ran, per-namespace vs shared memory and
  lookup (the thread's comparison: the same table in each namespace or once);
* ``equal_cost``: the per-namespace tables at their smallest size, against the smallest
  shared table whose mean lookup is within `COST_TOLERANCE` of theirs (None if no shared
  size got there), with both memories.

Table sizes are the UDP slots of each table, as the host's `TableConfig` used them (the size
the scenario set, or, when it set none, not comparable here: rows without a size are left
out).  Mainline caps the boot-time UDP table at 65,536 slots (``UDP_HTABLE_SIZE_MAX``,
include/linux/udp.h); larger shared tables are a what-if, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pandas as pd

TABLES = "hosts.*.socket_tables"
BUCKETS = "hosts.*.socket_hash_buckets"
PER_NS, SHARED = "per_namespace", "shared_permuted"
COST_TOLERANCE = 0.05
UDP_HTABLE_SIZE_MAX = 65536


@dataclass
class Row:
    buckets: int
    tables: str
    lookup_ns: float
    memory_bytes: float
    packets: int


@dataclass
class Comparison:
    namespaces: int
    rows: list[Row]
    equal_size: list[tuple[Row, Row]] = field(default_factory=list)       # (per-namespace, shared)
    equal_cost: Optional[tuple[Row, Row]] = None


def applies(res) -> bool:
    return TABLES in res.factors and BUCKETS in res.factors and \
        {PER_NS, SHARED} <= set(res.memory.get(TABLES, pd.Series(dtype=str)).dropna())


def compare(res, packets: pd.DataFrame) -> Optional[Comparison]:
    """See the module docstring."""
    if not applies(res):
        return None
    mem = res.memory[res.memory["structure"] == "socket_hash_tables"]
    top = int(mem["namespaces"].max())
    mem = mem[mem["namespaces"] == top].groupby([TABLES, BUCKETS])["bytes"].mean()
    ok = packets[packets["status"] == "delivered"]
    w = ok["packets"].astype(float) if "packets" in ok.columns else pd.Series(1.0, index=ok.index)
    look = ok.assign(_s=ok["socket_lookup_ns"] * w, _w=w).groupby([TABLES, BUCKETS])[["_s", "_w"]].sum()
    look = pd.DataFrame({"mean": look["_s"] / look["_w"], "size": look["_w"].astype(int)})
    rows = [Row(int(b), str(t), float(look.loc[(t, b), "mean"]), float(mem.loc[(t, b)]), int(look.loc[(t, b), "size"]))
            for (t, b) in mem.index if (t, b) in look.index]
    rows.sort(key=lambda r: (r.buckets, r.tables != PER_NS))
    by = {(r.tables, r.buckets): r for r in rows}
    out = Comparison(top, rows)
    out.equal_size = [(by[(PER_NS, b)], by[(SHARED, b)]) for b in sorted({r.buckets for r in rows})
                      if (PER_NS, b) in by and (SHARED, b) in by]
    per_ns = [r for r in rows if r.tables == PER_NS]
    if per_ns:
        base = min(per_ns, key=lambda r: r.buckets)
        cheap = [r for r in rows if r.tables == SHARED and r.lookup_ns <= base.lookup_ns * (1 + COST_TOLERANCE)]
        if cheap:
            out.equal_cost = (base, min(cheap, key=lambda r: r.buckets))
    return out
