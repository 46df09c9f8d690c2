"""Where the time goes: per-packet latency split into stage groups, from packets/.

A delivered packet's ``latency_ns`` is exactly the sum of its ``<stage>_ns`` columns (CPU
time per stage, summed over every pass), its per-pass queueing ``pass<k>_queue_ns`` and its
``wire_ns + link_queue_ns``.  `GROUPS` folds the stages into groups a kernel reviewer knows;
the queueing of the first pass and of the later passes are separate groups, so the *second
input pass* of the ``l2-*`` schemes shows as extra IP/netfilter/socket CPU plus "queue,
passes 2+", and the classifier of ``l25-hybrid`` as its own group.

`breakdown(packets, keys)` -> one row per group of ``keys`` with the mean ns of every group
over delivered packets (``packets`` = mean count), plus ``cpu_ns`` (all stage groups) and
``latency_ns`` (their total, equal to the mean latency).  Units: ns per delivered packet.
"""

from __future__ import annotations

import pandas as pd

GROUPS: dict[str, tuple[str, ...]] = {
    "NIC rx/tx, VNIC demux": ("nic_rx", "nic_tx", "vnic_demux"),
    "L2 demux, bridge": ("l2_demux", "bridge"),
    "IP input, routing, forward": ("ip_rcv", "route_input", "ip_forward", "route_output"),
    "netfilter hooks": ("nf_prerouting", "nf_local_in", "nf_forward", "nf_local_out", "nf_postrouting"),
    "L2.5 classifier": ("l25_classify",),
    "IP output, dev/veth xmit": ("ip_output", "dev_xmit", "veth_xmit"),
    "namespace switch/match": ("ns_switch", "ns_match"),
    "socket send/lookup/enqueue": ("socket_send", "socket_lookup", "socket_enqueue"),
}
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
    "queue, pass 1": "#bdbdbd", "queue, passes 2+": "#636363", "wire and link queue": "#d9d9d9",
}


def columns_needed() -> list[str]:
    cols = [f"{s}_ns" for g in (*GROUPS.values(), *QUEUE_GROUPS.values()) for s in g]
    return cols + ["latency_ns", "n_passes"]


def per_packet(packets: pd.DataFrame) -> pd.DataFrame:
    """Group columns (ns) for each delivered packet; missing columns count 0."""
    d = packets[packets["status"].astype(str) == "delivered"]
    out = pd.DataFrame(index=d.index)
    for name, stages in {**GROUPS, **QUEUE_GROUPS}.items():
        cols = [f"{s}_ns" for s in stages if f"{s}_ns" in d.columns]
        out[name] = d[cols].fillna(0.0).sum(axis=1) if cols else 0.0
    out["n_passes"] = d["n_passes"] if "n_passes" in d.columns else float("nan")
    return out


def breakdown(packets: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    pp = per_packet(packets)
    for k in keys:
        pp[k] = packets.loc[pp.index, k]
    g = pp.groupby(keys, sort=False, dropna=False)
    out = g[[*ALL_GROUPS, "n_passes"]].mean()
    out["packets"] = g.size()
    out["cpu_ns"] = out[list(CPU_GROUPS)].sum(axis=1)
    out["latency_ns"] = out[list(ALL_GROUPS)].sum(axis=1)
    return out.reset_index()
