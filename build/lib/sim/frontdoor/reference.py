"""The scenario reference table (Markdown), generated from the pydantic models.

`markdown()` walks `sim.frontdoor.scenario.Scenario` and the topology generators of `sim.frontdoor.topogen`
and lists every key with its type, unit (from the name suffix, `sim.core.units`) and default.
The README embeds the output; a test keeps the two in sync
(regenerate with ``python -m sim.frontdoor.reference``).
"""

from __future__ import annotations

import typing

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from sim.frontdoor import topogen
from sim.frontdoor.scenario import Scenario

UNITS = (("_ns", "ns"), ("_bps", "bit/s"), ("_pps", "packets/s"), ("_bytes", "bytes"))
NOTES = {
    "scheme": "built-in (`netns-sim schemes`) or defined under `schemes:`",
    "src": "`HOST:nsN`, `HOST:root` or `HOST:wire`",
    "dst": "`HOST:nsN`, `HOST:root`, `HOST:ns*` (random namespace per packet), `HOST:wire` or `group:NAME`",
    "kind": "poisson, constant, onoff (open loop), rr (request/response), tcp_stream or tcp_rr (TCP, docs/tcp.md)",
    "cost_profile": "`default` or a path to a profile YAML",
    "schemes": "extra schemes, same format as `sim/data/schemes.yaml`",
    "stages": "declared stages `{NAME: {base_ns, per_byte_ns, per_entry_ns, group}}` that schemes may run; "
              "each gets a `NAME_ns` column and a place in the report's group (docs/stages.md)",
    "stages.NAME.group": "the report's stage group it is added to",
    "stages.NAME.entries": "what `per_entry_ns` counts: socket chain entries examined, FIB depth, "
                           "classifier rules, or nothing",
    "stages.NAME.doc": "what the stage is (kept as its cost's `source`)",
    "members": "`HOST:nsN` endpoints",
    "hosts[].scheme": "built-in (`netns-sim schemes`) or defined under `schemes:`; the root namespace's own "
                      "paths, and every container's without `namespace_schemes`",
    "hosts[].namespaces": "containers, `ns0` to `nsN-1`; with `namespace_schemes`, their sum (may be left out)",
    "namespace_schemes": "a mixed host: `[{scheme, namespaces}]`, containers numbered in list order, each "
                         "group running its scheme; flows between schemes meet in the root (docs/mixed-hosts.md)",
    "nf_rules": "rules per chain (prerouting, input, forward, output, postrouting) in `root` and each `child`; "
                "a chain listed with 0 rules is registered and empty (docs/netfilter.md)",
    "nf_hooks": "registered netfilter hooks: `declared` (the chains of `nf_rules`, widened to tables by "
                "`iptables-legacy`, plus conntrack's and br_netfilter's), `all` or `none` (docs/netfilter.md)",
    "nf_backend": "`nftables` (iptables-nft, nft) or `iptables-legacy`: per-hook and per-rule costs, and "
                  "which hooks a table registers",
    "br_netfilter": "bridge-nf-call-iptables=1: bridged frames run the root's PREROUTING/FORWARD/POSTROUTING "
                    "(a bridging scheme only)",
    "conntrack": "connection tracking in `root` and each `child`: a lookup per packet, an entry created "
                 "per connection (flow x `connections`)",
    "cost_overrides.netfilter": "`{br_netfilter, conntrack_lookup or conntrack_create: {base_ns}, backends: "
                                "{NAME: {base_ns, per_entry_ns}}}` over the profile",
    "port": "socket index in the destination namespace",
    "max_packets": "stop generating after this many packets",
    "memory_bytes": "",
    "memory_namespace_counts": "namespace counts at which memory.csv is computed",
    "topology.host": "fields given to every generated host (any `hosts[]` key but name)",
    "topology.uplink": "leaf-spine links (default: `link`)",
    "cost_overrides.stages": "`{stage: {base_ns, per_byte_ns, per_entry_ns, repeat_ns}}` over the cost profile "
                             "(`repeat_ns`: the base of the second and later traversal by one packet on one host)",
    "cost_overrides.host": "host defaults of the profile (netdev_max_backlog, ...)",
    "cost_overrides.memory_bytes": "structure sizes of the profile, bytes (an overridden size loses its range)",
    "flows[].size.bytes": "const size, bytes (default 64)",
    "server_dist": "rr: `exponential` draws each request's server work with mean `server_ns`",
    "think_dist": "rr: `exponential` draws each think time with mean `think_ns`",
    "connections": "source ports of the flow; packets take them in turn (RSS/RPS spread by 5-tuple); TCP: "
                   "connections, each with its own state (tcp_rr: one transaction in flight on each)",
    "flows[].tcp": "tcp_stream, tcp_rr: connection parameters, Linux's defaults (docs/tcp.md); others: not allowed",
    "mss_bytes": "TCP payload per segment; a segment's packet is it + 52 header bytes (IPv4, TCP, timestamps)",
    "rwnd_bytes": "the receive window's initial clamp (window_clamp), default net.ipv4.tcp_rmem's default; "
                  "the window offered is the free receive buffer up to it (docs/tcp.md)",
    "rcvbuf_autotune": "grow the receive buffer and the clamp with what the reader takes per RTT "
                       "(tcp_rcv_space_adjust, net.ipv4.tcp_moderate_rcvbuf); false: the buffer stays the host's "
                       "rcvbuf_bytes",
    "wmem_max_bytes": "the most a `tcp_stream` sender's send buffer grows to (net.ipv4.tcp_wmem max); it holds "
                      "the bytes written and not yet acknowledged",
    "rmem_max_bytes": "the most the receive buffer grows to (net.ipv4.tcp_rmem max)",
    "init_cwnd": "initial congestion window, segments (TCP_INIT_CWND)",
    "delack_ns": "delayed-ACK timer (TCP_DELACK_MIN)",
    "rto_min_ns": "floor of the retransmission timeout (TCP_RTO_MIN)",
    "rto_init_ns": "RTO before an RTT sample, and of the SYN (TCP_TIMEOUT_INIT)",
    "delayed_ack": "`false`: ACK every data segment",
    "gso": "GSO/TSO on send and GRO on receive: a packet carries up to `gso_max_bytes` of segments "
           "(docs/tcp.md); `false`: one packet per segment",
    "gso_max_bytes": "payload of a GSO packet at most (sk_gso_max_size), mss_bytes..524280 (GSO_MAX_SIZE); "
                     "default 65536 (GSO_LEGACY_MAX_SIZE), above it BIG TCP",
    "congestion": "congestion control, `cubic` (Linux's default, tcp_cubic.c) or `reno`",
    "hystart": "CUBIC: HyStart leaves slow start on an ACK train or a delay rise (`false`: only a loss does)",
    "loss_rate": "probability that the link loses a packet (each direction, independent draws; 0 <= p < 1); "
                 "drops are `link_loss`",
    "src_core": "pin the sending socket's application thread to this core (docs/execution.md)",
    "dst_core": "pin the receiving socket's application thread to this core",
    "rx_queues": "NIC RX queues, RSS by 5-tuple hash; queue q on core q mod cores (default: one per core)",
    "rps_cpus": "RPS: cores that run the rest of the receive pass after the driver's `nic_rx` stage",
    "xps": "XPS: a packet handed to the NIC takes the TX queue of its core (core c -> queue c mod "
           "`rx_queues`), so its TX completion runs there; `false`: the queue of its flow hash",
    "app_recv_ns": "CPU of each read (recvmsg) on the reading thread's core; 0: no application reads "
                   "(default: the profile's `host.app_recv_ns`)",
    "app_recv_per_byte_ns": "recvmsg's copy to user space, per byte of the packet, added to `app_recv_ns` "
                            "(default: the profile's)",
    "sndbuf_bytes": "socket send buffer (truesize); a full one drops new sends as `sender_blocked`",
    "socket_tables": "the other era's socket tables for a scheme with a `socket_era` (default: the scheme's; "
                     "`per_namespace` as first posted, `shared_permuted` mainline's)",
    "socket_hash_buckets": "UDP slots of each socket table (a power of two), used by lookups and memory alike; "
                           "default: a shared table from `ram_bytes` as the kernel sizes it at boot, a "
                           "per-namespace one the profile's `udp_hash_buckets` (128)",
    "tcp_ehash_buckets": "buckets of each TCP established hash (memory only); default as `socket_hash_buckets`",
    "ram_bytes": "host RAM, sizes the shared socket tables at boot (default: the profile's `host.ram_bytes`)",
}


def _type_name(ann) -> str:
    origin = typing.get_origin(ann)
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        return _type_name(args[0])
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "mapping"
    if origin is typing.Literal:
        return " \\| ".join(str(a) for a in typing.get_args(ann))
    if origin is typing.Annotated:
        return _type_name(args[0])
    if isinstance(ann, type):
        if issubclass(ann, BaseModel):
            return "mapping"
        return ann.__name__
    return str(ann).replace("typing.", "")


def _constraint(field) -> str:
    for m in field.metadata:
        for attr, sym in (("gt", ">"), ("ge", ">="), ("min_length", "len >=")):
            v = getattr(m, attr, None)
            if v is not None:
                return f" ({sym} {v})"
    return ""


def _default(field) -> str:
    if field.is_required():
        return "**required**"
    d = field.default
    if d is PydanticUndefined or d is None:
        return "—"
    if isinstance(d, BaseModel):
        return "see below" if type(d).model_fields else "{}"
    if d == {} or d == []:
        return f"`{d}`"
    return f"`{d}`"


def _unit(name: str) -> str:
    if name == "bytes":
        return "bytes"
    for suffix, unit in UNITS:
        if name.endswith(suffix):
            return unit
    return ""


def _rows(model: type[BaseModel], prefix: str, seen: set) -> list[str]:
    rows = []
    nested = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        rows.append(f"| `{key}` | {_type_name(field.annotation)}{_constraint(field)} | {_unit(name)} | "
                    f"{_default(field)} | {NOTES.get(key, NOTES.get(name, '')) if '.' not in name else ''} |")
        inner = None
        for a in [field.annotation, *typing.get_args(field.annotation)]:
            for b in [a, *typing.get_args(a)]:
                if isinstance(b, type) and issubclass(b, BaseModel):
                    inner = b
        if inner is not None and inner not in seen:
            seen.add(inner)
            origin = typing.get_origin(field.annotation)
            sep = "[]." if origin is list else ".NAME." if origin is dict else "."
            nested.append((inner, f"{key}{sep}"))
    for inner, p in nested:
        rows += _rows(inner, p, seen)
    return rows


def markdown() -> str:
    head = "| key | type | unit | default | notes |\n|---|---|---|---|---|"
    out = [head, *_rows(Scenario, "", set())]
    out.append("")
    out.append("Front-door keys (not part of one run): `extends: FILE` (deep merge), `compare: {key.path: [values]}` "
               "(grid of variants), `sweep: {replications, grid, zip}` (read by `netns-sim sweep` only, see "
               "[Sweeps](#sweeps)), and `topology:` with one of these generators:")
    out.append("")
    out.append(head)
    for gen in (topogen.SingleHost, topogen.Star, topogen.LeafSpine, topogen.FatTree):
        out += _rows(gen, "topology.", {topogen.LinkDefaults} if gen is not topogen.SingleHost else set())
    seen_link = _rows(topogen.LinkDefaults, "topology.link.", set())
    out += seen_link
    # drop exact duplicate rows (shared `host`/`link` fields of every generator)
    uniq, seen = [], set()
    for r in out:
        if r.startswith("| `") and r in seen:
            continue
        seen.add(r)
        uniq.append(r)
    return "\n".join(uniq) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
