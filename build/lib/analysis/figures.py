"""The report's figures by name, for the report and for notebooks.

`FIGURES` lists every figure: name, caption and how to draw it from a loaded result
(`sim.results.reader.Results`).  `figures(res)` draws them all — plus one ``latency_vs_<factor>``
figure per other varied numeric parameter — and returns ``{name: (caption, Figure)}``, leaving out
those the result has nothing for (e.g. no load factor).  `figure(res, name)` draws one.  The
figures use matplotlib's active backend: inline in a notebook, Agg in ``netns-sim report``.
"""

from __future__ import annotations

from typing import Callable, Optional

from analysis import claims as claims_mod
from analysis import packetstats, plots, stages
from analysis.conditions import Roles, short
from analysis.conditions import roles as find_roles
from analysis.packetstats import PacketStats
from sim.results.reader import Results

Draw = Callable[[Results, Roles, dict, Optional[PacketStats]], object]

FIGURES: list[tuple[str, str, Draw]] = [
    ("latency_cdf", "Latency CDF per scheme, one panel per trip (log x).",
     lambda res, roles, ref, pk: pk and plots.fig_latency_cdf(res, roles, ref, pk)),
    ("latency_vs_load", "p50 and p99 latency vs offered load.",
     lambda res, roles, ref, pk: plots.fig_latency_vs(res, roles, ref, roles.load)),
    ("throughput_drops", "Delivered throughput, drops and backlog vs offered load: where each scheme saturates. "
     "Delivered means enqueued on the destination socket: in a short run the receive buffers (rcvbuf) hold packets "
     "the application has not read yet, so a load just below the softirq capacity can show more than the "
     "application sustains, and softirq work at that load can starve senders in process context (the loopback "
     "flow) until ksoftirqd takes over at a higher load.",
     lambda res, roles, ref, pk: plots.fig_throughput_drops(res, roles, ref)),
    ("latency_vs_namespaces", "p50 and p99 latency vs number of namespaces.",
     lambda res, roles, ref, pk: plots.fig_latency_vs(res, roles, ref, roles.namespaces)),
    ("stages", "Where the time goes: CPU per stage group, then queueing, per scheme.",
     lambda res, roles, ref, pk: pk and plots.fig_stages(res, roles, ref, pk)),
    ("memory", "Memory vs number of namespaces (log axes), and its split by kernel structure.",
     lambda res, roles, ref, pk: plots.fig_memory(res, roles, ref)),
    ("cpu", "CPU utilisation per core per scheme.", lambda res, roles, ref, pk: plots.fig_cpu(res, roles, ref)),
]
NEEDS_PACKETS = {"latency_cdf", "stages"}


def packet_columns(res: Results) -> list[str]:
    """The packet columns the figures and the claims read (stage groups and every stage)."""
    return sorted(set(stages.columns_needed()) | set(claims_mod.stage_columns(res.packet_columns()))
                  | ({"size_bytes"} & set(res.packet_columns())))     # the claims' robustness (per-byte terms)


def figures(res: Results, names: Optional[list[str]] = None,
            packets: Optional[PacketStats] = None) -> dict[str, tuple[str, object]]:
    """``{name: (caption, Figure)}`` for `names` (default: all that apply), in report order.
    ``packets``: the packets' aggregates (`analysis.packetstats.aggregate` of `packet_columns`),
    computed here when a figure needs them and none is given."""
    roles = find_roles(res.summary, res.factors)
    ref = roles.reference()
    numeric = [f for f in roles.other                 # a line over a text factor (e.g. an organisation) has no x
               if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in roles.levels[f])]
    todo = list(FIGURES) + [
        (f"latency_vs_{short(f)}", f"p50 and p99 latency vs {f} (the parameter varied across runs).",
         lambda res, roles, ref, pk, f=f: plots.fig_latency_vs(res, roles, ref, f)) for f in numeric]
    if names is not None:
        unknown = set(names) - {n for n, _, _ in todo}
        if unknown:
            raise KeyError(f"unknown figure(s) {sorted(unknown)}; known: {[n for n, _, _ in todo]}")
        todo = [t for t in todo if t[0] in names]
    if packets is None and any(n in NEEDS_PACKETS for n, _, _ in todo):
        packets = packetstats.aggregate(res, packet_columns(res))
    out = {}
    for name, caption, draw in todo:
        fig = draw(res, roles, ref, packets)
        if fig is not None:
            extra = plots.note(fig)                  # curves that coincide, a cut axis
            out[name] = (f"{caption} {extra}" if extra else caption, fig)
    return out


def figure(res: Results, name: str):
    """One figure by name (None when the result has nothing to draw for it)."""
    made = figures(res, [name])
    return made[name][1] if name in made else None
