"""Trips between containers of two schemes on one host (mixed hosts): where they meet.

Contract: a packet from a container of scheme A to a container of scheme B (A != B, same
host) runs A's ``via_root.send`` (`sim.core.schemes.ViaRootSpec`) up to the root
namespace's routing decision, then B's ``via_root.receive`` in the same pass (the same
softirq or process context goes on), then B's ``via_root.then``.  Between the two halves,
what the root does depends on how the packet reached the decision and how it leaves:

==============  ==============  ===============================================================
A's decision    B's receive     the root between them
==============  ==============  ===============================================================
input           device          forwards it: ``nf_forward, ip_forward`` (net/ipv4/ip_forward.c
                                ``ip_forward``; the root's FORWARD rules apply)
input           local           nothing: ``ip_local_deliver`` follows the input route
                                (net/ipv4/ip_input.c)
output          device          ``nf_local_out`` (net/ipv4/ip_output.c ``ip_local_out``), then
                                B's device
output          local           ``nf_local_out, ip_output, nf_postrouting, dev_xmit`` to the
                                root's loopback (drivers/net/loopback.c ``loopback_xmit``,
                                ``netif_rx``), then a new pass from the backlog:
                                ``l2_demux, ip_rcv, nf_prerouting`` and B's receive — no
                                ``route_input``: the skb keeps its output route
==============  ==============  ===============================================================

``nf_local_out`` is added once: a send half that already runs LOCAL_OUT in its last pass
(shortcut-routing runs the container's before switching to the root) does not run it again.
`cross_trip` compiles the result once per (A, B) for a registry; None when either scheme
has no ``via_root`` (the front door refuses such a flow, `missing_via_root`).
"""

from __future__ import annotations

from typing import Optional

from sim.core.schemes import CompiledPass, PassSpec, SchemeRegistry, ViaRootSpec, _stage_name

FORWARD = ["nf_forward", "ip_forward"]                      # ip_forward: FORWARD hook, then out
LOCAL_OUT = "nf_local_out"                                  # ip_local_out's LOCAL_OUT hook
LOOPBACK_OUT = ["ip_output", "nf_postrouting", "dev_xmit"]  # out to lo: loopback_xmit -> netif_rx
LOOPBACK_IN = ["l2_demux", "ip_rcv", "nf_prerouting"]       # process_backlog: in, output route kept


def label(a: str, b: str) -> str:
    """The records' scheme label of a packet from a container of `a` to one of `b`."""
    return f"{a}>{b}"


def _joined(p: PassSpec, extra: list[str]) -> PassSpec:
    return p.model_copy(update={"stages": [*p.stages, *extra]})


def cross_passes(a: ViaRootSpec, b: ViaRootSpec) -> list[PassSpec]:
    """The passes of a packet from a container whose scheme's half is `a` to one whose half
    is `b` (see the module docstring)."""
    *head, last = a.send
    if a.decision == "input":
        between = FORWARD if b.by == "device" else []
        return [*head, _joined(last, between + b.receive), *b.then]
    local_out = [] if any(_stage_name(t) == LOCAL_OUT for t in last.stages) else [LOCAL_OUT]
    if b.by == "device":
        return [*head, _joined(last, local_out + b.receive), *b.then]
    back_in = PassSpec(ns="root", queue="backlog", stages=LOOPBACK_IN + b.receive)
    return [*head, _joined(last, local_out + LOOPBACK_OUT), back_in]


def cross_trip(registry: SchemeRegistry, a: str, b: str
               ) -> Optional[tuple[tuple[PassSpec, ...], tuple[CompiledPass, ...]]]:
    """(pass specs, compiled passes) of the trip from a container of scheme `a` to one of
    scheme `b` (compiled once per registry), or None if either scheme has no ``via_root``."""
    key = (a, b)
    if key not in registry.cross:
        va, vb = registry.get(a).spec.via_root, registry.get(b).spec.via_root
        if va is None or vb is None:
            return None
        specs = cross_passes(va, vb)
        registry.cross[key] = (tuple(specs), registry.compile_passes(specs))
    return registry.cross[key]


def missing_via_root(a: str, b: str, registry: SchemeRegistry) -> Optional[tuple[str, str]]:
    """(message, fix) when a flow from a container of `a` to one of `b` cannot be composed."""
    lacking = [s for s in (a, b) if registry.get(s).spec.via_root is None]
    if not lacking:
        return None
    return (f"a flow between containers of schemes {a!r} and {b!r} on one host meets in the root namespace, but "
            f"scheme {lacking[0]!r} has no via_root (its half of such a trip)",
            f"add via_root to scheme {lacking[0]!r} (format: sim/data/schemes.yaml, sim/core/mixing.py), or put "
            "both ends in one scheme")
