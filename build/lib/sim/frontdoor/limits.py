"""Resource limits checked at validation, so an absurd scenario is refused, not run.

Estimates (rough upper bounds, good to a factor of a few):

* engine events of one variant = sum over flows of packets x (2 x passes at the source and
  destination hosts + 4), where an open-loop flow sends ``rate_pps`` over its active time
  (``start_ns`` .. ``stop_ns`` or the end of the run; a multicast packet once per group
  member), a request/response flow ``concurrency`` x ``duration_ns`` / (``think_ns`` +
  ``server_ns`` + `RR_MIN_RTT_NS`) transactions of two packets, plus one event per
  outstanding transaction; a TCP flow (`sim.core.tcp`) ``connections`` x ``duration_ns`` /
  `TCP_MIN_PACKET_NS` packets (tcp_stream: segments and their ACKs) or, tcp_rr, like rr with
  ``connections`` transactions in flight; ``run.max_packets`` caps the packets;
* memory of one variant (bytes) = per host: namespaces x (`NAMESPACE_BYTES` + sockets x
  `SOCKET_BYTES`) + cores x `CORE_BYTES` (socket tables hold one entry per socket whatever
  their bucket count, `sim.core.sockets`); plus rr
  concurrency x `PROCESS_BYTES` and packets x `RECORD_BYTES` (packet records held in memory);
* counts: ``compare:`` variants, generated topology hosts and links, sweep runs (points x replications).

The defaults (`Limits`) allow every shipped scenario with a wide margin (the largest,
10,000 namespaces x 4 sockets, needs ~40 MB).  A scenario raises them with a ``limits:``
block (or ``--set limits.max_events=1e10``), e.g. ``limits: {max_events: 1e10}``.
"""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict

from sim.frontdoor.endpoints import host_of, parse
from sim.frontdoor.numbers import PositiveFloat, PositiveInt

RR_MIN_RTT_NS = 2_000.0       # no request/response round trip is faster than this
TCP_MIN_PACKET_NS = 500.0     # no TCP connection sends (segments and ACKs) faster than one packet per this
NAMESPACE_BYTES = 2_048       # measured ~1.4 KB per namespace (l2-routed) with 4 sockets
SOCKET_BYTES = 512
CORE_BYTES = 1_024
PROCESS_BYTES = 4_096         # one simpy process per outstanding rr transaction
RECORD_BYTES = 100            # one packet record in a DataFrame


class Limits(BaseModel):
    """The ``limits:`` block of a scenario: the largest sizes validation lets through."""
    model_config = ConfigDict(extra="forbid")
    max_events: PositiveFloat = 2e9            # about an hour of engine time
    max_memory_bytes: PositiveFloat = 16e9
    max_variants: PositiveInt = 10_000         # compare: grid size
    max_hosts: PositiveInt = 10_000            # hosts a topology generator may make
    max_links: PositiveInt = 100_000           # links a topology generator may make
    max_sweep_runs: PositiveInt = 100_000      # sweep points x replications


def _fix(key: str, needed: float) -> str:
    return f"or, if you mean it, raise the limit: limits: {{{key}: {_num(needed * 2)}}}"


def _num(x: float) -> str:
    """1e4 -> '10000', 2.5 -> '2.5', 1.2e13 -> '1.20e13'."""
    if x >= 1e6:
        return f"{x:.2e}".replace("e+0", "e").replace("e+", "e")
    return str(int(x)) if x == int(x) else f"{x:.3g}"


def exceeds(what: str, n: float, key: str, limits: Limits) -> Optional[tuple[str, str]]:
    """(message, fix) when `n` (a count or estimate of `what`) is above ``limits.<key>``."""
    limit = getattr(limits, key)
    if n <= limit:
        return None
    return (f"{what}: about {_num(n)}, above the limit of {_num(limit)} (limits.{key})",
            f"make it smaller, {_fix(key, n)}")


def _packets_and_events(sc, registry) -> tuple[float, float, float]:
    """(packets, engine events, rr transactions outstanding) of one variant, estimated."""
    hosts = {h.name: h for h in sc.hosts}
    groups = {g.name: len(g.members) for g in sc.groups}

    def passes(host_name: str) -> int:          # a mixed host: its longest scheme (a cross trip is no longer)
        names = {hosts[host_name].scheme, *(s for s, _ in hosts[host_name].scheme_groups())}
        return max(len(p) for s in names for p in registry.get(s).trips.values())

    run = sc.run
    packets = events = outstanding = 0.0
    for f in sc.flows:
        src, dst_ep = host_of(f.src), parse(f.dst)
        members = groups.get(dst_ep.group, 1) if dst_ep.group is not None else 1
        dst = dst_ep.host if dst_ep.host is not None and dst_ep.host in hosts else src   # a group: as src
        per_packet = 2 * (passes(src) + passes(dst)) + 4
        if f.kind == "rr":
            n = 2 * f.concurrency * run.duration_ns / (f.think_ns + f.server_ns + RR_MIN_RTT_NS)
            outstanding += f.concurrency
            events += f.concurrency
        elif f.kind == "tcp_rr":
            n = 3 * f.connections * run.duration_ns / (f.think_ns + f.server_ns + RR_MIN_RTT_NS)
        elif f.kind == "tcp_stream":
            n = f.connections * max(min(f.stop_ns or run.duration_ns, run.duration_ns) - f.start_ns, 0.0) \
                / TCP_MIN_PACKET_NS
        else:
            end = min(f.stop_ns or run.duration_ns, run.duration_ns)
            n = f.rate_pps * max(end - f.start_ns, 0.0) / 1e9 * members
        packets += n
        events += n * per_packet
    if run.max_packets is not None and packets > run.max_packets:
        events *= run.max_packets / packets
        packets = float(run.max_packets)
    return packets, events, outstanding


def memory_bytes(sc, packets: float, outstanding: float) -> float:
    """Estimated peak memory of one variant (see the module doc)."""
    total = 0.0
    for h in sc.hosts:
        total += h.namespaces * (NAMESPACE_BYTES + h.sockets_per_namespace * SOCKET_BYTES) + h.cores * CORE_BYTES
    return total + outstanding * PROCESS_BYTES + packets * RECORD_BYTES


def check_variant(sc, registry, limits: Limits) -> list[tuple[tuple, str, str]]:
    """Problems of one validated variant as (key path, message, fix); [] when it fits.
    `registry` must know every host's scheme."""
    packets, events, outstanding = _packets_and_events(sc, registry)
    out: list[tuple[tuple, str, str]] = []
    hit = exceeds(f"engine events of the run ({_num(packets)} packets)", events, "max_events", limits)
    if hit:
        out.append((("run", "duration_ns"), hit[0], "shorten run.duration_ns, lower rate_pps or concurrency, "
                    + _fix("max_events", events)))
    mem = memory_bytes(sc, packets, outstanding)
    hit = exceeds("memory of the run in bytes", mem, "max_memory_bytes", limits)
    if hit:
        out.append(((), hit[0], "use fewer namespaces, sockets, cores or packets, "
                    + _fix("max_memory_bytes", mem)))
    return out
