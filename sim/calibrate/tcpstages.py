"""TCP's own per-stage CPU, measured like `perfstages` does for UDP (issue 15).

Two namespaces joined by one veth pair (`sim.calibrate.setups.build_veth`, the topology of the
UDP ``veth`` setup).  Per round, each of:

- ``veth-udp``: the UDP flood of ``perf-stages`` (32-byte datagrams), for a same-session,
  same-load reference;
- ``veth-tcp``: ``sockperf tp --tcp`` (32-byte messages; sockperf sets TCP_NODELAY) into
  ``sockperf sr --tcp``, with TSO, GSO and GRO off on both veth ends (``ethtool -K``), so one
  skb is one segment;
- ``veth-tcp-offload``: the same with TSO, GSO and GRO on (veth's GRO is off by default; on,
  veth receives through its own NAPI poll), where one skb may carry many segments;

each sampled with ``perf record -e cpu-clock -a -g`` (`perfstages.record`), and TCP and UDP
ping-pongs (``sockperf pp [--tcp]``, 32-byte messages) on the offloads-on pair and TCP on the
offloads-off one.  Two more floods on request (`FLOODS`): ``veth-tcp-bulk`` and
``veth-tcp-bulk-offload``, 65,000-byte writes, for the per-skb / per-byte shape of the cost.

A TCP flood's counts in perf's window (`perfstages._logs`): data segments (the server's
InSegs), pure ACKs (its OutSegs), the veth's received skbs and bytes.  Every segment - data or
pure ACK - is built and sent once and received once, so a TCP category's cost *per segment*
is its CPU over data segments + pure ACKs (`per_segment`): the price the model charges each
TCP packet, data and ACK alike (docs/tcp.md says what that averages over).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import statistics
import subprocess
from typing import Callable

from sim.calibrate import perfstages, sockperf
from sim.calibrate.hostinfo import host_info, loadavg
from sim.calibrate.netns import Lab, Unavailable
from sim.calibrate.setups import build_veth

ETHTOOL_HINT = "ethtool is not installed (Debian: apt-get install ethtool)"
OFFLOADS = ("tso", "gso", "gro")
# What the model's TCP stages are made of (per segment): the TCP categories plus the generic
# socket-layer work a TCP segment still does (the sendmsg syscall layers above tcp_sendmsg,
# the reader's wake-up), which the UDP stages socket_send and socket_enqueue price for UDP.
# The floods: the three of the module docstring, and two bulk ones (BULK_BYTES per write) whose
# skbs carry one segment (offloads off) or many (TSO/GSO/GRO on), for a per-skb / per-byte split.
FLOODS = ("veth-udp", "veth-tcp", "veth-tcp-offload", "veth-tcp-bulk", "veth-tcp-bulk-offload")
DEFAULT_FLOODS = FLOODS[:3]
BULK_BYTES = 65000
MODEL_TCP_STAGES: dict[str, tuple[str, ...]] = {"tcp_send": ("tcp_send", "socket_send"),
                                                "tcp_rcv": ("tcp_rcv", "socket_enqueue")}


def set_offloads(lab: Lab, ns: str, on: bool) -> None:
    """TSO, GSO and GRO on or off on every non-loopback device of `ns`."""
    links = lab.exec(ns, "ls", "/sys/class/net").stdout.split()
    for dev in (d for d in links if d != "lo"):
        lab.exec(ns, "ethtool", "-K", dev, *[x for o in OFFLOADS for x in (o, "on" if on else "off")])


def offload_state(lab: Lab, ns: str) -> dict[str, str]:
    """``ethtool -k`` lines of the offloads we set, for the record."""
    links = [d for d in lab.exec(ns, "ls", "/sys/class/net").stdout.split() if d != "lo"]
    text = lab.exec(ns, "ethtool", "-k", links[0]).stdout
    want = ("tcp-segmentation-offload", "generic-segmentation-offload", "generic-receive-offload")
    return {k.strip(): v.strip() for k, v in (ln.split(":", 1) for ln in text.splitlines() if ":" in ln)
            if k.strip() in want}


def per_segment(run: dict) -> dict:
    """A TCP flood run's ns per segment (data + pure ACKs) per category, the model's TCP
    stages (`MODEL_TCP_STAGES`), and the window's segment mix."""
    c = run["counts_in_window"]
    data, acks = c["received"], c["acks"]
    scale = data / max(data + acks, 1)            # run["ns_per_packet"] is per data segment
    ns = {k: v * scale for k, v in run["ns_per_packet"].items()}
    model = {stage: sum(ns.get(cat, 0.0) for cat in cats) for stage, cats in MODEL_TCP_STAGES.items()}
    per_skb = data / c["rx_skbs"] if c["rx_skbs"] else 0.0      # data segments per received skb
    return {"ns_per_segment": ns, "model_stage_ns_per_segment": model,
            "model_stage_ns_per_rx_skb": {k: v / scale * per_skb for k, v in model.items()} if scale else {},
            "acks_per_data_segment": acks / max(data, 1),
            "data_segments_per_rx_skb": data / c["rx_skbs"] if c["rx_skbs"] else None,
            "rx_bytes_per_skb": c["rx_bytes"] / max(c["rx_skbs"], 1),
            # one frame header per skb, a GSO skb's included; from one counter read where the
            # record has it (rx_payload), else from two logged apart
            "payload_bytes_per_data_segment": c.get("rx_payload", c["rx_bytes"] - perfstages.TCP_FRAME_HEADER_BYTES
                                                    * c["rx_skbs"]) / max(data, 1)}


def merge_tcp(runs: list[dict]) -> dict:
    """`perfstages.merge` plus the medians of the per-segment figures over the runs."""
    out = perfstages.merge(runs)
    segs = [per_segment(r) for r in runs]
    for key in ("ns_per_segment", "model_stage_ns_per_segment", "model_stage_ns_per_rx_skb"):
        names = dict.fromkeys(k for s in segs for k in s[key])
        out[key] = {k: statistics.median(s[key].get(k, 0.0) for s in segs) for k in names}
    for key in ("acks_per_data_segment", "data_segments_per_rx_skb", "rx_bytes_per_skb",
                "payload_bytes_per_data_segment"):
        vals = [s[key] for s in segs if s[key] is not None]
        out[key] = statistics.median(vals) if vals else None
    out["model_stage_spread_ns"] = {k: max(s["model_stage_ns_per_segment"][k] for s in segs)
                                    - min(s["model_stage_ns_per_segment"][k] for s in segs)
                                    for k in MODEL_TCP_STAGES}
    return out


def run(rounds: int, perf_s: float, freq: int, pp_seconds: float, log: Callable[[str], None],
        mps: int | None = None, floods: tuple[str, ...] = DEFAULT_FLOODS, pingpongs: bool = True,
        pp_cpus: tuple[int, int] | None = None) -> dict:
    """Measure the `floods` (names of `FLOODS`) and, with `pingpongs`, the ping-pongs of the
    module docstring, `rounds` interleaved rounds; floods at `mps` messages per second
    (sockperf ``--mps``), or back to back.  Floods run sender on CPU 0, sink on CPU 1;
    ping-pongs client and server on `pp_cpus` (default the same two)."""
    unknown = sorted(set(floods) - set(FLOODS))
    if unknown:
        raise ValueError(f"unknown floods {unknown}; known: {', '.join(FLOODS)}")
    if not sockperf.available():
        raise Unavailable(sockperf.INSTALL_HINT)
    for tool, hint in (("perf", "perf is not installed (Debian: apt-get install linux-perf)"),
                       ("ethtool", ETHTOOL_HINT)):
        if shutil.which(tool) is None:
            raise Unavailable(hint)
    cpus = (0, 1 if (os.cpu_count() or 1) > 1 else 0)
    pp_cpus = pp_cpus or cpus
    runs: dict[str, list] = {}
    pings: dict[str, list] = {}
    with Lab() as lab:
        log(f"run {lab.run_id}: namespaces nsim-{lab.run_id}-*")
        plain = build_veth(lab, "tv")
        bare = build_veth(lab, "tn")
        for ns in (bare.client_ns, bare.server_ns):
            set_offloads(lab, ns, on=False)
        for ns in (plain.client_ns, plain.server_ns):
            set_offloads(lab, ns, on=True)
        eps = {"veth-udp": plain, "veth-tcp": dataclasses.replace(bare, tcp=True),
               "veth-tcp-offload": dataclasses.replace(plain, tcp=True),
               "veth-tcp-bulk": dataclasses.replace(bare, tcp=True, size=BULK_BYTES),
               "veth-tcp-bulk-offload": dataclasses.replace(plain, tcp=True, size=BULK_BYTES)}
        offloads = {"veth-tcp": offload_state(lab, bare.server_ns),
                    "veth-tcp-offload": offload_state(lab, plain.server_ns)}
        for rnd in range(rounds):
            for name in list(floods)[::-1 if rnd % 2 else 1]:
                r = perfstages.record(lab, eps[name], perf_s, freq, cpus, mps=mps)
                runs.setdefault(name, []).append(r)
                log(f"  round {rnd + 1}: {name:17s} {r['pps_in_window'] / 1000:7.1f} k(data)pkt/s, "
                    f"{sum(r['ns_per_packet'].values()):6.0f} ns/(data)packet; load {r['loadavg']}")
            for name, ep in (("udp", plain), ("tcp", dataclasses.replace(plain, tcp=True)),
                             ("tcp-no-offload", dataclasses.replace(bare, tcp=True))) if pingpongs else ():
                p = sockperf.pingpong(lab, ep, pp_seconds, pp_cpus)
                p["loadavg"] = loadavg()
                pings.setdefault(name, []).append(p)
                log(f"  round {rnd + 1}: ping-pong {name:15s} median {p['median_ns'] / 1000:6.2f} us")
    setups = {n: (merge_tcp(rs) if eps[n].tcp else perfstages.merge(rs)) for n, rs in runs.items()}
    return {"host": host_info(), "sockperf": sockperf.version(), "ethtool": _ethtool_version(),
            "rounds": rounds, "mps": mps, "perf_s": perf_s, "freq_hz": freq, "cpus": list(cpus),
            "pp_cpus": list(pp_cpus), "offloads": offloads,
            "setups": setups, "pingpong": {n: pingpong_summary(ps) for n, ps in pings.items()},
            "raw": {"floods": runs, "pingpong": pings}}


def pingpong_summary(runs: list[dict]) -> dict:
    """Medians over rounds of each ping-pong figure, and the rounds' load averages."""
    keys = ("median_ns", "p25_ns", "p75_ns", "p99_ns", "mean_ns")
    return {**{k: statistics.median(r[k] for r in runs) for k in keys},
            "round_trips": sum(r["round_trips"] for r in runs), "loadavg": [r["loadavg"] for r in runs]}


def _ethtool_version() -> str:
    return subprocess.run(["ethtool", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()


def table(rec: dict) -> str:
    """Markdown: ns per segment per category of each TCP flood (per datagram for UDP), the
    model's TCP stages, where each CPU spent its time (`cpu_table`), and the ping-pong medians."""
    names = list(rec["setups"])
    lines = _flood_table(rec, names) if names else []
    lines += [line for n in names for line in cpu_table(n, rec["setups"][n])]
    pp = rec["pingpong"]
    raw = rec["raw"]["pingpong"]
    if not pp:
        return "\n".join(lines)
    lines += ["", "| ping-pong | median (us) | p25 | p75 | p99 | round trips | minus UDP, same round (median, us) |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for n, p in pp.items():
        paired = statistics.median(a["median_ns"] - b["median_ns"] for a, b in zip(raw[n], raw["udp"])) / 1000
        lines.append(f"| {n} | {p['median_ns'] / 1000:.2f} | {p['p25_ns'] / 1000:.2f} | {p['p75_ns'] / 1000:.2f} "
                     f"| {p['p99_ns'] / 1000:.2f} | {p['round_trips']} | {paired:+.2f} |")
    return "\n".join(lines)


def cpu_table(name: str, setup: dict) -> list[str]:
    """Markdown: flood `name`'s kernel CPU on each CPU by category and context (softirq or
    other kernel work), and user space, ns per data packet (median over rounds): which CPU runs
    what (the model's per-core split, docs/tcp.md).  Empty for a record made before these
    figures were kept."""
    cats = setup.get("cpu_category_ns_per_packet")
    if not cats:
        return []
    cpus = sorted(cats)
    user = {c: setup.get("cpu_context_ns_per_packet", {}).get(c, {}).get("user", 0.0) for c in cpus}
    rows = sorted(dict.fromkeys(k for c in cpus for k in cats[c]),
                  key=lambda k: -sum(cats[c].get(k, 0.0) for c in cpus))
    lines = ["", f"{name}: ns per data packet by CPU", "",
             "| category (context) | " + " | ".join(f"CPU {c}" for c in cpus) + " |", "|---|" + "---:|" * len(cpus)]
    lines += [f"| {k} | " + " | ".join(f"{cats[c].get(k, 0.0):.0f}" for c in cpus) + " |" for k in rows]
    lines.append("| user space | " + " | ".join(f"{user[c]:.0f}" for c in cpus) + " |")
    lines.append("| **all** | " + " | ".join(f"{sum(cats[c].values()) + user[c]:.0f}" for c in cpus) + " |")
    xmit = setup.get("cpu_write_xmit_ns_per_packet")
    if xmit:
        lines += ["", f"{name}: CPU under tcp_write_xmit by its caller (where data leaves from), share of all", "",
                  "| CPU | caller | share |", "|---|---|---:|"]
        lines += [f"| {c} | {who} | {share:.1%} |" for c, who, share in write_xmit_shares(setup)]
    return lines


def write_xmit_shares(setup: dict) -> list[tuple[str, str, float]]:
    """(CPU, caller, share) of a flood's samples under tcp_write_xmit (`perfstages.xmit_context`):
    the share of TCP's data transmit that each CPU ran from softirq (an ACK let data out), from
    the owner's release_sock or from the writer's sendmsg.  Empty for older records."""
    xmit = setup.get("cpu_write_xmit_ns_per_packet") or {}
    total = sum(v for per in xmit.values() for v in per.values())
    return [(c, who, v / total) for c, per in sorted(xmit.items()) for who, v in sorted(per.items())] if total else []


def _flood_table(rec: dict, names: list[str]) -> list[str]:
    cats = list(dict.fromkeys(c for s in rec["setups"].values() for c in s["ns_per_packet"]))
    lines = ["| category | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]

    def cell(s: dict, c: str) -> str:
        return f"{s.get('ns_per_segment', s['ns_per_packet']).get(c, 0.0):.0f}"
    for c in cats:
        lines.append(f"| {c} | " + " | ".join(cell(rec["setups"][n], c) for n in names) + " |")
    for key, label in (("model_stage_ns_per_segment", "per segment"), ("model_stage_ns_per_rx_skb", "per data skb")):
        for stage in MODEL_TCP_STAGES:
            lines.append(f"| **model {stage}**, {label} | " + " | ".join(
                f"{rec['setups'][n][key][stage]:.0f}" if rec["setups"][n].get(key) else "" for n in names) + " |")
    for label, key, fmt in (("pure ACKs per data segment", "acks_per_data_segment", "{:.2f}"),
                            ("data segments per received skb", "data_segments_per_rx_skb", "{:.2f}"),
                            ("bytes per received skb", "rx_bytes_per_skb", "{:.0f}"),
                            ("payload bytes per data segment (InSegs)", "payload_bytes_per_data_segment", "{:.0f}")):
        lines.append(f"| {label} | " + " | ".join(fmt.format(rec["setups"][n][key])
                                                  if rec["setups"][n].get(key) is not None else ""
                                                  for n in names) + " |")
    lines.append("| k(data)packets/s in the perf window | " + " | ".join(
        f"{rec['setups'][n]['pps_in_window'] / 1000:.0f}" for n in names) + " |")
    ctx = {n: cpu_contexts(rec["raw"]["floods"].get(n, [])) for n in names}
    rows = sorted({(c, k) for n in names for c, ks in ctx[n].items() for k in ks})
    for c, k in rows:
        lines.append(f"| CPU {c} ({'sender' if c == str(rec['cpus'][0]) else 'sink'}) {k}, ns per data packet | "
                     + " | ".join(f"{ctx[n].get(c, {}).get(k, 0.0):.0f}" for n in names) + " |")
    return lines


def cpu_contexts(runs: list[dict]) -> dict[str, dict[str, float]]:
    """Per CPU and context (softirq, kernel, user, softirq_in_idle), the median over rounds of
    the ns per data packet our processes spent there (`perfstages.attribute`); {} for records
    made before the split was kept."""
    per: dict[str, dict[str, list[float]]] = {}
    for r in runs:
        for c, ks in r.get("cpu_context_ns_per_packet", {}).items():
            for k, v in ks.items():
                per.setdefault(c, {}).setdefault(k, []).append(v)
    return {c: {k: statistics.median(vs) for k, vs in ks.items()} for c, ks in per.items()}
