"""Where the time goes: per-packet latency split into stage groups, from packets/.

A delivered packet's ``latency_ns`` is exactly the sum of its ``<stage>_ns`` columns (CPU
time per stage, summed over every pass), its per-pass queueing ``pass<k>_queue_ns`` and its
``wire_ns + link_queue_ns``.  `GROUPS` folds the stages into groups a kernel reviewer knows
(each stage names its group in `sim.core.stages`, the one list of stages and groups; a stage
declared in a scenario or profile names one too, and `stage_groups` reads the stage columns
from the data, so a stage column in no list still counts, in "other stages");
the queueing of the first pass and of the later passes are separate groups, so the *second
input pass* of the ``l2-*`` schemes shows as extra IP/netfilter/socket CPU plus "queue,
passes 2+", and the classifier of ``l25-hybrid`` as its own group.

`breakdown(packets, keys)` -> one row per group of ``keys`` with the mean ns of every group
over delivered packets (``packets`` = mean count), plus ``cpu_ns`` (all stage groups) and
``latency_ns`` (their total, equal to the mean latency).  Units: ns per delivered packet.
``declared`` (declared stage -> group key, `declared_groups`) places declared stages.
"""

from __future__ import annotations

from typing import Optional

import pandas as pd

from sim.core.stages import GROUPS as GROUP_LABELS
from sim.core.stages import STAGE_INFO, STAGES

# group label -> its built-in stages (a declared stage's group may have none built in)
GROUPS: dict[str, tuple[str, ...]] = {label: tuple(s.name for s in STAGES if s.group == key)
                                      for key, label in GROUP_LABELS.items()}
OTHER = GROUP_LABELS["other"]
NOT_STAGES = {"t_sent_ns", "t_done_ns", "latency_ns", "queue_ns", "wire_ns", "link_queue_ns"}
QUEUE_GROUPS: dict[str, tuple[str, ...]] = {
    "queue, pass 1": ("pass1_queue",),
    "queue, passes 2+": tuple(f"pass{k}_queue" for k in range(2, 7)),
    "wire and link queue": ("wire", "link_queue"),
}
CPU_GROUPS = tuple(GROUPS)
ALL_GROUPS = tuple(GROUPS) + tuple(QUEUE_GROUPS)
COLORS = {   # groups are not schemes: a separate, sequential-ish palette
    "NIC rx/tx, VNIC demux": "#6b6ecf", "L2 demux, bridge": "#9c9ede", "IP input, routing, forward": "#e6550d",
    "netfilter hooks": "#fd8d3c", "L2.5 classifier": "#843c39", "IP output, dev/veth xmit": "#fdae6b",
    "namespace switch/match": "#31a354", "socket send/lookup/enqueue": "#74c476",
    "BPF programs": "#9467bd", "other stages": "#8c6d31",
    "queue, pass 1": "#bdbdbd", "queue, passes 2+": "#636363", "wire and link queue": "#d9d9d9",
}


def columns_needed() -> list[str]:
    cols = [f"{s}_ns" for g in (*GROUPS.values(), *QUEUE_GROUPS.values()) for s in g]
    return cols + ["latency_ns", "n_passes"]


def stage_columns(columns) -> list[str]:
    """The ``<stage>_ns`` columns among `columns` (built-in and declared stages alike)."""
    return [c for c in columns if c.endswith("_ns") and c not in NOT_STAGES and not c.startswith("pass")]


def stage_groups(columns, declared: Optional[dict[str, str]] = None) -> dict[str, list[str]]:
    """Group label -> the stage columns among `columns` in it (every group, maybe empty): each
    stage column is in exactly one group, its built-in group, its declared group
    (`declared`: stage -> group key) or else "other stages"."""
    out: dict[str, list[str]] = {label: [] for label in GROUPS}
    for col in stage_columns(columns):
        name = col[:-3]
        key = STAGE_INFO[name].group if name in STAGE_INFO else (declared or {}).get(name, "other")
        out[GROUP_LABELS.get(key, OTHER)].append(col)
    return out


def declared_groups(res) -> dict[str, str]:
    """Declared stage -> group key, over the runs of `res` (`sim.results.reader.Results`): the
    resolved scenarios' ``stages:`` blocks and their cost profiles' declared stages."""
    from sim.core.costs import load_profile

    out: dict[str, str] = {}
    for run in getattr(res, "runs", []):
        resolved = run.resolved or {}
        try:
            out.update(load_profile(str(resolved.get("cost_profile") or "default")).stage_set.declared)
        except (OSError, ValueError):
            pass                               # a profile no longer there: its stages go to "other"
        for name, st in (resolved.get("stages") or {}).items():
            if isinstance(st, dict) and st.get("group") in GROUP_LABELS:
                out[name] = st["group"]
    return out


def per_packet(packets: pd.DataFrame, declared: Optional[dict[str, str]] = None) -> pd.DataFrame:
    """Group columns (ns) for each delivered packet; missing columns count 0."""
    d = packets[packets["status"].astype(str) == "delivered"]
    out = pd.DataFrame(index=d.index)
    queue = {name: [f"{s}_ns" for s in stages if f"{s}_ns" in d.columns] for name, stages in QUEUE_GROUPS.items()}
    for name, cols in {**stage_groups(d.columns, declared), **queue}.items():
        out[name] = d[cols].fillna(0.0).sum(axis=1) if cols else 0.0
    out["n_passes"] = d["n_passes"] if "n_passes" in d.columns else float("nan")
    return out


def breakdown(packets: pd.DataFrame, keys: list[str], declared: Optional[dict[str, str]] = None) -> pd.DataFrame:
    """See the module docstring.  `packets` is packet records, or rows of per-group means with a
    ``packets`` count column (`analysis.packetstats.PacketStats.means`): then each row counts as
    that many packets, so the means are those of the packets either way."""
    pp = per_packet(packets, declared)
    for k in keys:
        pp[k] = packets.loc[pp.index, k]
    w = packets.loc[pp.index, "packets"].astype(float) if "packets" in packets.columns else \
        pd.Series(1.0, index=pp.index)
    cols = [*ALL_GROUPS, "n_passes"]
    pp["_w"] = w
    for c in cols:
        pp[c] = pp[c].astype(float) * w
    g = pp.groupby(keys, sort=False, dropna=False)
    out = g[cols].sum(min_count=1).div(g["_w"].sum(), axis=0)
    out["packets"] = g["_w"].sum().astype(int)
    out["cpu_ns"] = out[list(CPU_GROUPS)].sum(axis=1)
    out["latency_ns"] = out[list(ALL_GROUPS)].sum(axis=1)
    return out.reset_index()
