"""The thread's claims (design.md table), each checked against the results by a stated rule.

Every number a claim uses is an *evidence* item ``E<n>`` with its value, unit and a source that
says exactly where it comes from, in one of these forms (the report prints them; the number
test recomputes each one from the files):

* ``points.csv[k=v; ...] METRIC`` — mean over replications of points.csv ``value`` for the
  rows with those column values and that metric (latency percentiles as the simulator wrote them);
* ``memory.csv[k=v; ...] sum(bytes)`` — bytes summed over the matching rows (mean over
  replications) — e.g. one scheme at one namespace count, optionally one structure;
* ``packets/[k=v; ...] mean(COLUMN)`` — mean over *delivered* packets sent at or after
  ``run.warmup_ns``; ``cpu_ns`` is the sum of every ``<stage>_ns`` column (CPU time per
  packet over all passes, no queueing or wire time);
* ``= E<a> / E<b> - 1`` or ``= E<a> - E<b>`` — derived from earlier items.

Claims default to the reference condition (lowest load, `analysis.conditions`) and the
``wire_to_ns`` trip (the first trip present otherwise).  Verdict values: ``supported``,
``contradicted``, ``not measured in these results`` (a scheme, trip or load level the rule
needs is missing), or ``outside the model: <why>`` (a claim the simulator cannot measure, said
so rather than faked).  Thresholds are in `RULES` and printed with each claim.  The claims of
issue 13 (switch point, socket-lookup switching, layer 2.5, scaling, loopback, migration, the
asynchronous switch) are small functions of a `Ctx` after `build`'s first seven.

Each verdict also says how robust it is to the cost profile's ranges (`Claim.robustness`,
`analysis.robustness`): the CPU rules are re-evaluated over the ranges with the affine model
(`Costs`, per condition for the rules that compare namespace counts), the memory rule over the
memory size ranges (`robustness.assess_memory`), and a latency (p50) part by re-running the
reference variants at two corners of the ranges (`Costs.latency_part`, `analysis.reruns`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

from analysis import capabilities, metrics, reruns, robustness
from analysis.conditions import Roles, scheme_factor, select
from analysis.tables import Lookup, fmt_bytes

SUPPORTED, CONTRADICTED, NOT_MEASURED = "supported", "contradicted", "not measured in these results"
OUTSIDE = "outside the model"      # a verdict that starts so says why after a colon
RULES = {"second_pass_cpu": 0.20, "shortcut_cpu": 0.10, "l3_bind": 0.05, "compiled": 0.02, "vnic": 0.05,
         "shared_memory": 10.0, "switch_point_cpu": 0.05, "shared_lookup": 0.25, "l25_cpu": 0.10,
         "scaling_cpu": 0.10, "loopback_cpu": 0.10}
SHORTCUTS = ("shortcut-routing", "shortcut-postrouting", "shortcut-socket")
STAGE_EXCLUDE = {"t_sent_ns", "t_done_ns", "latency_ns", "queue_ns", "wire_ns", "link_queue_ns"}


def stage_columns(columns) -> list[str]:
    return [c for c in columns if c.endswith("_ns") and c not in STAGE_EXCLUDE and not c.startswith("pass")]


@dataclass
class Evidence:
    id: str
    what: str
    value: float
    unit: str           # "ns", "bytes", "fraction", "passes"
    source: str

    def text(self) -> str:
        return format_value(self.value, self.unit)


def format_value(v: float, unit: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if unit == "ns":
        return f"{v:,.1f} ns"
    if unit == "bytes":
        return fmt_bytes(v)
    if unit == "fraction":
        return f"{v * 100:+.1f}%"
    if unit == "ratio":
        return f"{v:,.2f}x"
    if unit == "pps":
        return f"{v:,.0f} pps"
    if unit == "tps":
        return f"{v:,.0f} tps"
    return f"{v:g}"


@dataclass
class Claim:
    claim: str
    who: str
    figure: str
    rule: str
    verdict: str
    robustness: robustness.Robustness | None = None

    @property
    def robustness_text(self) -> str:
        """How robust the verdict is to the cost profile's ranges (`analysis.robustness`)."""
        if self.verdict == NOT_MEASURED or self.verdict.startswith(OUTSIDE):
            return "—"
        return self.robustness.text if self.robustness else robustness.NEEDS_RERUNS


class Book:
    """Collects evidence items; every accessor returns an `Evidence` (value NaN if absent)."""

    def __init__(self, res, roles: Roles, ref: dict, packets: pd.DataFrame | None):
        self.res, self.roles, self.ref, self.packets = res, roles, ref, packets
        self.items: list[Evidence] = []
        self._metric_cache: dict[str, Lookup] = {}

    def _add(self, what, value, unit, source) -> Evidence:
        for e in self.items:                   # the same quantity twice is one item
            if e.source == source:
                return e
        e = Evidence(f"E{len(self.items) + 1}", what, value, unit, source)
        self.items.append(e)
        return e

    def _fixed(self, override: dict) -> dict:
        return {**self.ref, **override}

    @staticmethod
    def _spec(d: dict) -> str:
        return "; ".join(f"{k}={v}" for k, v in d.items())

    def summary(self, scheme, trip, metric, what, **override) -> Evidence:
        fixed = self._fixed(override)
        if metric not in self._metric_cache:
            self._metric_cache[metric] = Lookup(metrics.metric(self.res, metric))
        v = self._metric_cache[metric].value(fixed, scheme=scheme, trip=trip)
        return self._add(what, v, "ns" if metric.endswith("_ns") else "pps" if metric.endswith("_pps") else metric,
                         f"points.csv[{self._spec({'scheme': scheme, 'trip': trip, **fixed})}] {metric}")

    def memory(self, scheme, namespaces, what, structure=None) -> Evidence:
        fixed = {k: v for k, v in self.ref.items() if k in self.res.memory.columns}
        m = select(self.res.memory, fixed)
        m = m[(m["scheme"] == scheme) & (m["namespaces"] == namespaces)]
        spec = {"scheme": scheme, "namespaces": namespaces, **fixed}
        if structure:
            m = m[m["structure"] == structure]
            spec["structure"] = structure
        v = float(m.groupby(["run_dir", "run_id"])["bytes"].sum().mean()) if len(m) else math.nan
        return self._add(what, v, "bytes", f"memory.csv[{self._spec(spec)}] sum(bytes)")

    def packet_mean(self, scheme, trip, column, what, **override) -> Evidence:
        fixed = self._fixed(override)
        v = math.nan
        if self.packets is not None:
            d = select(self.packets, fixed)
            d = d[(d["scheme"] == scheme) & (d["trip"] == trip) & (d["status"].astype(str) == "delivered")]
            if len(d):
                col = d[stage_columns(d.columns)].fillna(0).sum(axis=1) if column == "cpu_ns" else d[column]
                v = float(col.mean())
        return self._add(what, v, "ns",
                         f"packets/[{self._spec({'scheme': scheme, 'trip': trip, **fixed})}] mean({column})")

    def flow(self, scheme, kind, column, what, unit) -> Evidence:
        """Mean of flows.csv `column` over the `kind` flows of `scheme` at the reference condition."""
        f = self.res.flows
        sf = scheme_factor(self.res.factors)
        spec = {**({sf: scheme} if sf else {}), **{k: v for k, v in self.ref.items() if k in f.columns}, "kind": kind}
        v = math.nan
        if len(f) and column in f.columns and all(k in f.columns for k in spec):
            d = select(f, spec)
            v = float(d[column].mean()) if len(d) else math.nan
        return self._add(what, v, unit, f"flows.csv[{self._spec(spec)}] mean({column})")

    def ratio(self, a: Evidence, b: Evidence, what) -> Evidence:
        v = a.value / b.value - 1 if b.value and b.value == b.value else math.nan
        return self._add(what, v, "fraction", f"= {a.id} / {b.id} - 1")


def _have(*evs: Evidence) -> bool:
    return all(e.value == e.value for e in evs)


def _pct(e: Evidence) -> str:
    return f"{e.text()} ({e.id})"


class Costs:
    """The claims' CPU per packet as affine functions of the cost terms (`analysis.robustness`),
    per (scheme, trip, condition), a claim's `Robustness` from them, and the latency parts that
    need re-runs (`analysis.reruns`; skipped when `rerun` is False)."""

    def __init__(self, res, ref: dict, packets: pd.DataFrame | None, rerun: bool = True):
        self.res, self.ref, self.packets = res, ref, packets
        self.profile = robustness.result_profile(res) if packets is not None else None
        if self.profile is not None:
            self.nominal, self.ranges = robustness.nominal_and_ranges(self.profile)
            self.plain_nf = robustness.plain_netfilter(res)
            self.stages = stage_columns(res.packet_columns())     # listing the dataset walks packets/
        self.reruns = reruns.Rerunner(res) if rerun and self.profile is not None else None
        self._cache: dict[tuple, robustness.Affine | None] = {}

    def affine(self, scheme: str, trip: str, columns: tuple[str, ...] = (), **override) -> robustness.Affine | None:
        """The `Affine` of `scheme` on `trip` at the reference condition with `override`'s levels;
        `columns` limits it to those ``<stage>_ns`` columns (one stage's cost), all stages if empty."""
        key = (scheme, trip, columns, tuple(sorted(override.items())))
        if key not in self._cache:
            a = None
            if self.profile is not None and self.packets is not None:
                fixed = {**self.ref, **override}
                cols = list(columns) or self.stages
                d = self.res.packets(columns=[*cols, "size_bytes"], fixed={**fixed, "scheme": scheme, "trip": trip},
                                     delivered=True)
                if len(d):
                    a = robustness.decompose(d, self.profile, robustness.plan_counts(self.res, scheme, trip, fixed),
                                             self.ranges, self.plain_nf)
            self._cache[key] = a
        return self._cache[key]

    def assess(self, rule: robustness.CpuRule, trip: str,
               at: dict[str, tuple[str, tuple[str, ...], dict]] | None = None) -> robustness.Robustness | None:
        """`rule`'s robustness; each of its keys is a scheme at the reference condition, or what
        `at` maps it to: (scheme, columns, levels) for `affine`."""
        if self.profile is None:
            return robustness.Robustness(robustness.NO_PROFILE, robustness.NO_PROFILE)
        where = {k: (at or {}).get(k, (k, (), {})) for k in rule.schemes}
        aff = {k: self.affine(s, trip, cols, **lv) for k, (s, cols, lv) in where.items()}
        if any(a is None for a in aff.values()):
            return None
        return robustness.assess(rule, {k: a for k, a in aff.items() if a is not None}, self.nominal, self.ranges)

    def latency_part(self, r: robustness.Robustness | None, scheme: str, trip: str, ok: Callable[[float], bool],
                     whole_ok: bool) -> robustness.Robustness | None:
        """`r` with the robustness of a p50 part "`ok`(p50 of `scheme` / p50 of host - 1)" added:
        the reference variant of both re-run at the two corners of the ranges where `scheme`'s
        extra CPU per packet vs host on `trip` is smallest and largest (`robustness.extreme_corners`).
        The label becomes DEPENDS when the p50 part changes at a corner and that changes the
        verdict (`whole_ok`: the rest of the rule is met)."""
        if self.reruns is None or self.profile is None:
            why = "re-runs not asked for (--no-reruns)" if self.profile is not None else robustness.NO_PROFILE
            if r is not None:
                r.text += f"; the p50 part is held at its measured value ({why})"
                return r
            return robustness.Robustness(robustness.NEEDS_RERUNS, f"{robustness.NEEDS_RERUNS}: {why}")
        found = {s: self.affine(s, trip) for s in ("host", scheme)}
        aff = {s: a for s, a in found.items() if a is not None}
        if len(aff) < len(found):
            return r

        def extra(c: robustness.Costs) -> float:
            return _extra({s: a.at(c) for s, a in aff.items()}, scheme)
        terms = [t for t in self.ranges if any(a.counts.get(t, 0.0) for a in aff.values())] or list(self.ranges)
        low, high = robustness.extreme_corners(extra, terms, self.nominal, self.ranges)
        moves = abs(extra(high) - extra(low)) > 1e-9
        names = ("smallest", "largest") if moves else ("all-low", "all-high")
        try:
            d = {}
            for name, corner in zip(("nominal", *names), (self.nominal, low, high)):
                moved = {t: v for t, v in corner.items() if v != self.nominal[t]}
                p_host, p_s = (self.reruns.metric(x, trip, "latency_p50_ns", self.ref, moved) for x in ("host", scheme))
                d[name] = p_s / p_host - 1 if p_host else math.nan
        except (reruns.RerunUnavailable, ValueError) as e:
            text = f"the p50 part is held at its measured value (re-run not possible: {e})"
            if r is None:
                return robustness.Robustness(robustness.NEEDS_RERUNS, f"{robustness.NEEDS_RERUNS}; {text}")
            r.text += "; " + text
            return r
        held = [k for k in names if ok(d[k])]
        where = (f"where {scheme}'s extra CPU per packet vs host is smallest and largest" if moves
                 else f"all at their low and all at their high ends ({scheme}'s extra CPU per packet vs host is the "
                      "same at both)")
        n = min(self.reruns.metric(x, trip, "delivered", self.ref, {}) for x in ("host", scheme))
        part = (f"the p50 part, re-run at the corners of the {len(terms)} ranged cost terms on these paths {where}: "
                f"p50 {d[names[0]] * 100:+.1f}% and {d[names[1]] * 100:+.1f}% vs host (each p50 over about "
                f"{n:,.0f} delivered packets: a longer run, run.duration_ns, narrows it)")
        flips = whole_ok and any(ok(d[k]) != ok(d["nominal"]) for k in names)
        part += (", the rule met at both" if len(held) == 2 else
                 ", the rule met at neither" if not held else
                 f", the rule met only at the {held[0]} corner")
        if r is None:
            label = robustness.DEPENDS if flips else robustness.HOLDS
            head = (f"{robustness.DEPENDS} the costs together (the p50 part flips the verdict at a corner)" if flips
                    else f"{robustness.HOLDS} at the corners re-run")
            return robustness.Robustness(label, f"{head}: {part}")
        if flips and r.label in (robustness.HOLDS, robustness.DEFINITION):
            r.label = robustness.DEPENDS
            r.text = (f"{robustness.DEPENDS} the costs together through the p50 part (the CPU part: "
                      f"{r.text}); {part}")
        else:
            r.text += "; " + part
        return r


def _extra(cpu: dict[str, float], s: str, base: str = "host") -> float:
    return cpu[s] / cpu[base] - 1 if cpu[base] else math.nan


def _within(costs: Costs, scheme: str, lim: float, p50_ok: bool, trip: str) -> robustness.Robustness | None:
    """Robustness of "CPU per packet of `scheme` within ±lim of host" and its p50 part (re-runs)."""
    r = costs.assess(robustness.CpuRule(
        ("host", scheme), quantity=lambda c: abs(_extra(c, scheme)), margin=lambda c: lim - abs(_extra(c, scheme)),
        threshold=lim, also_ok=p50_ok,
        what=f"the size of {scheme}'s extra CPU per packet vs host (supported at or below the threshold)"), trip)
    cpu_ok = r is not None and not math.isnan(r.nominal) and r.nominal <= lim
    if r is not None and not p50_ok:
        r.text += "; the p50 part alone makes it contradicted at the run's costs"
    return costs.latency_part(r, scheme, trip, lambda d: abs(d) <= lim, cpu_ok)


def _latency_only(costs: Costs, scheme: str, trip: str, ok: Callable[[float], bool],
                  whole_ok: bool = True) -> robustness.Robustness | None:
    """A p50 claim of `scheme` vs host (`ok` of the relative p50 difference): decided by
    definition for the CPU part when their CPU per packet is the same at every plausible cost;
    the p50 part from re-runs at the corners."""
    r = costs.assess(robustness.CpuRule(
        ("host", scheme), quantity=lambda c: _extra(c, scheme), margin=lambda c: 0.0, threshold=0.0,
        what=f"{scheme}'s extra CPU per packet vs host"), trip)
    if r is not None and r.label == robustness.DEFINITION:
        r.text += "; the p50 difference left is queueing alone"
    else:
        r = None
    return costs.latency_part(r, scheme, trip, ok, whole_ok)


def _tables_memory_robustness(res, ref: dict, perns: str, shared: str, top: int,
                              lim: float) -> robustness.Robustness:
    """Claim 5's robustness: "per-namespace socket tables take at least `lim` x the shared ones'
    memory at `top` namespaces" over the profile's memory size ranges (`robustness.assess_memory`;
    the rows are `Book.memory`'s)."""
    profile = robustness.result_profile(res)
    if profile is None:
        return robustness.Robustness(robustness.NO_PROFILE, robustness.NO_PROFILE)
    parts = {s: robustness.memory_part(res.memory, ref, s, top, "socket_hash_tables") for s in (perns, shared)}
    if not all(robustness.has_terms(p.rows) for p in parts.values()):
        return robustness.Robustness(robustness.NO_RANGE, robustness.NO_RANGE + " (memory.csv has no size terms: "
                                     "results written before they were recorded; re-run to evaluate it)")
    nominal, ranges = robustness.memory_nominal_and_ranges(profile)

    def ratio(b: dict[str, float]) -> float:
        return b[perns] / b[shared] if b[shared] else math.nan
    r = robustness.assess_memory(robustness.MemoryRule(
        (perns, shared), quantity=ratio, margin=lambda b: ratio(b) - lim, threshold=lim,
        what=f"per-namespace over shared socket-table memory at {top:,} namespaces ({perns} / {shared})"),
        parts, nominal, ranges)
    if r.label == robustness.DEFINITION:
        r.text += "; the ratio moves only with the tables' slots and buckets, which the hosts set"
    return r


def build(res, roles: Roles, ref: dict, packets: pd.DataFrame | None,
          rerun: bool = True) -> tuple[list[Claim], list[Evidence]]:
    """The claims and their evidence; `rerun` False skips the re-runs of the latency parts'
    robustness (`Costs.latency_part`), which then say so."""
    book = Book(res, roles, ref, packets)
    costs = Costs(res, ref, packets, rerun)
    trips = [t for t in ("wire_to_ns", "ns_to_ns") if t in set(res.summary["trip"].dropna())] or \
        sorted(set(res.summary["trip"].dropna()) - {""})
    trip = trips[0] if trips else "wire_to_ns"
    hi = {roles.load: roles.levels[roles.load][-1]} if roles.load and len(roles.levels[roles.load]) > 1 else None
    claims: list[Claim] = []

    def cpu(s):
        return book.packet_mean(s, trip, "cpu_ns", f"CPU per packet, {s}, {trip}")

    def p50(s, t=trip, **o):
        return book.summary(s, t, "latency_p50_ns", f"p50 latency, {s}, {t}", **o)

    # 1. full separation: a second input pass
    host_cpu, host_p50 = cpu("host"), p50("host")
    parts, ok, have = [], [], _have(host_cpu, host_p50)
    for s in ("l2-routed", "l2-bridged"):
        c, lat = cpu(s), p50(s)
        dc, dl = book.ratio(c, host_cpu, f"extra CPU per packet, {s} vs host"), \
            book.ratio(lat, host_p50, f"extra p50 latency, {s} vs host")
        have = have and _have(c, lat)
        ok.append(dc.value >= RULES["second_pass_cpu"])
        text = f"{s}: CPU/packet {_pct(dc)}, p50 {_pct(dl)} vs host"
        if hi:
            h9, s9 = (book.summary(x, trip, "latency_p99_ns", f"p99 latency at highest load, {x}, {trip}", **hi)
                      for x in ("host", s))
            d9 = book.ratio(s9, h9, f"extra p99 at highest load, {s} vs host")
            have = have and _have(h9, s9)
            text += f"; at the highest load p99 {_pct(d9)} (queueing of the extra pass)"
        parts.append(text)
    rr = len(res.flows) and "kind" in res.flows.columns and (res.flows["kind"] == "rr").any()
    if rr and "ns_to_ns" in trips:
        tps = {s: book.flow(s, "rr", "transactions_per_s", f"transactions per second, rr flow, {s}", "tps")
               for s in ("host", "l2-routed", "l2-bridged")}
        parts.append("request/response container to container (ns_to_ns, one transaction in flight; reported, not "
                     "judged): transactions per second " + ", ".join(f"{s} {tps[s].text()} ({tps[s].id})" for s in tps)
                     + ", l2-* vs host " + ", ".join(
                         _pct(book.ratio(tps[s], tps["host"], f"transactions per second, {s} vs host"))
                         for s in ("l2-routed", "l2-bridged")))
    claims.append(Claim(
        "Full separation makes a packet for a child traverse input, output, then input again when the root "
        "namespace routes (or bridges) to it.", "Savochkin", "; ".join(parts) + f" ({trip}, {roles.describe(ref)}).",
        f"supported if both l2-* schemes spend ≥ {RULES['second_pass_cpu']:.0%} more CPU per packet than host "
        f"on {trip} at the reference condition; contradicted otherwise.",
        (SUPPORTED if all(ok) else CONTRADICTED) if have else NOT_MEASURED,
        costs.assess(robustness.CpuRule(
            ("host", "l2-routed", "l2-bridged"),
            quantity=lambda c: min(_extra(c, "l2-routed"), _extra(c, "l2-bridged")),
            margin=lambda c: min(_extra(c, "l2-routed"), _extra(c, "l2-bridged")) - RULES["second_pass_cpu"],
            threshold=RULES["second_pass_cpu"],
            what="the smaller extra CPU per packet of l2-routed and l2-bridged vs host (supported at or above "
                 "the threshold)"), trip) if have else None))

    # 2. short-cuts avoid the second input path
    l2_cpu = [cpu(s) for s in ("l2-routed", "l2-bridged")]
    parts, ok, have = [], [], _have(host_cpu, *l2_cpu)
    caps = {r["scheme"]: r for r in capabilities.matrix(res)}
    for s in SHORTCUTS:
        c = cpu(s)
        d = book.ratio(c, host_cpu, f"extra CPU per packet, {s} vs host")
        have = have and _have(c)
        ok.append(d.value <= RULES["shortcut_cpu"] and c.value < min(e.value for e in l2_cpu))
        lost = [capabilities.HEADERS[k] for k in capabilities.HEADERS if not caps.get(s, {}).get(k, True)]
        parts.append(f"{s}: CPU/packet {_pct(d)} vs host, {c.text()} vs l2-bridged {l2_cpu[1].text()} "
                     f"({c.id}, {l2_cpu[1].id}); gives up {', '.join(lost) or 'nothing'}")
    claims.append(Claim(
        "Short-cuts (switching namespace at routing, at the post-routing hook or at socket-hash lookup) avoid "
        "the second input path.", "Savochkin", "; ".join(parts) + ".",
        f"supported if every short-cut's CPU per packet is within {RULES['shortcut_cpu']:.0%} of host and below "
        f"both l2-* schemes ({trip}, reference condition).",
        (SUPPORTED if all(ok) else CONTRADICTED) if have else NOT_MEASURED,
        costs.assess(robustness.CpuRule(
            ("host", "l2-routed", "l2-bridged") + SHORTCUTS,
            quantity=lambda c: max(_extra(c, s) for s in SHORTCUTS),
            margin=lambda c: min(RULES["shortcut_cpu"] - max(_extra(c, s) for s in SHORTCUTS),
                                 min((min(c["l2-routed"], c["l2-bridged"]) - c[s]) / c["host"] for s in SHORTCUTS)),
            threshold=RULES["shortcut_cpu"],
            what="the largest extra CPU per packet of the short-cuts vs host (supported at or below the threshold, "
                 "each short-cut also below both l2-* schemes)"), trip) if have else None))

    # 3. layer-3 bind filtering: little to no packet overhead
    c, lat = cpu("l3-bind"), p50("l3-bind")
    dc, dl = book.ratio(c, host_cpu, "extra CPU per packet, l3-bind vs host"), \
        book.ratio(lat, host_p50, "extra p50 latency, l3-bind vs host")
    lim = RULES["l3_bind"]
    claims.append(Claim(
        "Layer-3 bind filtering has \"little to no packet level overhead\".", "Biederman, Poetzl",
        f"l3-bind vs host: CPU/packet {_pct(dc)}, p50 {_pct(dl)} ({trip}, {roles.describe(ref)}).",
        f"supported if both differences are within ±{lim:.0%}.",
        (SUPPORTED if abs(dc.value) <= lim and abs(dl.value) <= lim else CONTRADICTED)
        if _have(c, lat, host_cpu, host_p50) else NOT_MEASURED,
        _within(costs, "l3-bind", lim, abs(dl.value) <= lim, trip) if _have(c, lat, host_cpu, host_p50) else None))

    # 4. no measurable penalty for the current cases
    c, lat = cpu("host-ns-compiled"), p50("host-ns-compiled")
    dc, dl = book.ratio(c, host_cpu, "extra CPU per packet, host-ns-compiled vs host"), \
        book.ratio(lat, host_p50, "extra p50 latency, host-ns-compiled vs host")
    lim = RULES["compiled"]
    claims.append(Claim(
        "\"A Layer 2 approach that did not slow down the networking stack\" is the bar: \"no measurable "
        "penalty for the current cases\" (namespaces compiled in, unused).", "Biederman",
        f"host-ns-compiled vs host: CPU/packet {_pct(dc)}, p50 {_pct(dl)} ({trip}, {roles.describe(ref)}).",
        f"supported if both differences are within ±{lim:.0%} (below what the p50 of these runs resolves).",
        (SUPPORTED if abs(dc.value) <= lim and abs(dl.value) <= lim else CONTRADICTED)
        if _have(c, lat, host_cpu, host_p50) else NOT_MEASURED,
        _within(costs, "host-ns-compiled", lim, abs(dl.value) <= lim, trip)
        if _have(c, lat, host_cpu, host_p50) else None))

    # 5. shared socket hashes with a permutation vs per-namespace tables
    counts = sorted(res.memory["namespaces"].unique()) if len(res.memory) else []
    top = int(counts[-1]) if counts else None
    shared = next((r["scheme"] for r in caps.values() if r["socket_tables"] == "shared_permuted"), None)
    perns = next((s for s in ("shortcut-routing", "shortcut-postrouting", "l2-routed") if s in caps
                  and caps[s]["socket_tables"] == "per_namespace"), None)
    if shared and perns and top:
        ms = book.memory(shared, top, f"socket hash tables, {shared}, {top} namespaces", "socket_hash_tables")
        mp = book.memory(perns, top, f"socket hash tables, {perns}, {top} namespaces", "socket_hash_tables")
        times = mp.value / ms.value if ms.value else math.nan
        fig = (f"socket hash tables at {top:,} namespaces: {perns} (per-namespace) {mp.text()} ({mp.id}) vs "
               f"{shared} (shared, permuted) {ms.text()} ({ms.id}), {times:,.0f}x")
        enough = times >= RULES["shared_memory"]
        have = _have(ms, mp)
        if roles.namespaces and len(roles.levels[roles.namespaces]) > 1:
            lo_n, hi_n = roles.levels[roles.namespaces][0], roles.levels[roles.namespaces][-1]
            a = book.packet_mean(shared, trip, "socket_lookup_ns", f"socket lookup, {shared}, {lo_n} namespace(s)",
                                 **{roles.namespaces: lo_n})
            b = book.packet_mean(shared, trip, "socket_lookup_ns", f"socket lookup, {shared}, {hi_n} namespaces",
                                 **{roles.namespaces: hi_n})
            g = book.ratio(b, a, f"socket lookup growth, {shared}, {lo_n} -> {hi_n} namespaces")
            fig += (f"; the price: {shared}'s socket lookup {a.text()} at {lo_n:,} → {b.text()} at {hi_n:,} "
                    f"namespaces ({_pct(g)}, longer shared chains)")
        claims.append(Claim(
            "Shared socket hash tables with a per-namespace permutation, because per-namespace tables waste "
            "memory with \"hundreds\" of namespaces.", "Savochkin", fig + ".",
            f"supported if per-namespace socket tables take ≥ {RULES['shared_memory']:g}x the shared tables' "
            f"memory at the largest namespace count computed ({top:,}); the lookup growth is reported, not judged.",
            (SUPPORTED if enough else CONTRADICTED) if have else NOT_MEASURED,
            _tables_memory_robustness(res, ref, perns, shared, top, RULES["shared_memory"]) if have else None))
    else:
        claims.append(Claim("Shared socket hash tables vs per-namespace tables.", "Savochkin",
                            "needs a shared-table and a per-namespace scheme in memory.csv", "—", NOT_MEASURED))

    # 6. VNIC as fast as a normal networking stack (a receive-side claim: the NIC demultiplexes)
    parts, verdict = [], NOT_MEASURED
    lim = RULES["vnic"]
    for t in trips:
        h, v = p50("host", t), p50("vnic", t)
        d = book.ratio(v, h, f"extra p50 latency, vnic vs host, {t}")
        if t == "wire_to_ns":
            if _have(h, v):
                verdict = SUPPORTED if abs(d.value) <= lim else CONTRADICTED
            parts.append(f"{t}: vnic p50 {_pct(d)} vs host")
        else:
            parts.append(f"{t} (reported, not judged: no NIC on that path): vnic p50 {_pct(d)} vs host")
    claims.append(Claim(
        "VNIC: the NIC demultiplexes by destination MAC into per-namespace queues, \"as fast as a normal "
        "networking stack\" (needing promiscuous mode on many NICs: Hemminger, not modelled as a cost).",
        "Biederman", "; ".join(parts) + f" ({roles.describe(ref)}).",
        f"supported if vnic's p50 on wire_to_ns (packets from the NIC) is within ±{lim:.0%} of host; "
        f"contradicted otherwise.", verdict,
        _latency_only(costs, "vnic", "wire_to_ns", lambda x: abs(x) <= lim) if verdict != NOT_MEASURED else None))

    # 7. application containers: multicast, 2 IPs and 2 devices per container at layer 2
    l2 = caps.get("l2-routed")
    fig = (f"per container, from the scheme data: l2-routed {l2['addresses_per_container']} addresses and "
           f"{l2['devices_per_container']} devices" if l2 else "l2-routed not in these results")
    others = [f"{s} {r['addresses_per_container']}/{r['devices_per_container']}" for s, r in caps.items()
              if s != "l2-routed"]
    if others:
        fig += " (addresses/devices: " + ", ".join(others) + ")"
    verdict = NOT_MEASURED
    if "multicast" in set(res.summary["trip"].dropna()) and l2:
        h, v = p50("host", "multicast"), p50("l2-routed", "multicast")
        d = book.ratio(v, h, "extra p50 latency, l2-routed vs host, multicast")
        ch, cl2 = (book.packet_mean(x, "multicast", "cpu_ns", f"CPU per delivered copy, {x}, multicast")
                   for x in ("host", "l2-routed"))
        dc = book.ratio(cl2, ch, "extra CPU per delivered copy, l2-routed vs host, multicast")
        fig += (f"; multicast fan-out to the group's members: l2-routed p50 {_pct(d)}, CPU per delivered copy "
                f"{_pct(dc)} vs host")
        verdict = (SUPPORTED if d.value > 0 and l2["addresses_per_container"] >= 2 else CONTRADICTED) \
            if _have(h, v) else NOT_MEASURED
    else:
        fig += "; no multicast trip in these results (see scenarios/hpc-multicast.yaml)"
    claims.append(Claim(
        "Application containers (HPC jobs) use broadcast/multicast and burn 2 IPs and 2 devices per container at "
        "layer 2.", "Lezcano", fig + ".",
        "supported if the results have a multicast trip on which l2-routed is slower than host and l2-routed "
        "needs ≥ 2 addresses per container; the address/device counts alone are model inputs, not measurements.",
        verdict, _latency_only(costs, "l2-routed", "multicast", lambda x: x > 0,
                               l2 is not None and l2["addresses_per_container"] >= 2)
        if verdict != NOT_MEASURED else None))

    ctx = Ctx(book, costs, res, roles, ref, trip, caps, capabilities.specs(res), cpu)
    claims += [_switch_point(ctx), _socket_switch(ctx), _l25(ctx), _scaling(ctx), _loopback(ctx),
               _migration(ctx), _async_switch()]
    return claims, book.items


# -- the claims added for issue 13 (each: evidence, rule, verdict, robustness) ---------------

LOOKUP = ("socket_lookup_ns",)          # the socket lookup stage alone (`Costs.affine` columns)


@dataclass
class Ctx:
    book: Book
    costs: Costs
    res: Any
    roles: Roles
    ref: dict
    trip: str
    caps: dict
    specs: dict
    cpu: Callable[[str], Evidence]


def _verdict(ok: bool, *evs: Evidence) -> str:
    return (SUPPORTED if ok else CONTRADICTED) if _have(*evs) else NOT_MEASURED


def _ns_levels(ctx: Ctx) -> tuple[Any, Any]:
    r = ctx.roles
    if r.namespaces and len(r.levels[r.namespaces]) > 1:
        return r.levels[r.namespaces][0], r.levels[r.namespaces][-1]
    return None, None


def child_chains(spec: dict | None, trip: str) -> list[str]:
    """The netfilter stages a scheme's `trip` plan runs in the destination container's namespace
    (after its switch to the container, or in a pass that starts there): the container's own
    rules that still apply."""
    out: list[str] = []
    for p in ((spec or {}).get("trips") or {}).get(trip) or []:
        in_dst = p.get("ns") == "dst"
        for st in p.get("stages") or []:
            name = str(st).rstrip("*")
            if name.startswith("ns_switch"):
                in_dst = name in ("ns_switch:dst", "ns_switch") or str(st).endswith("*")
            elif name.startswith("nf_") and in_dst:
                out.append(name)
    return out


def _switch_point(ctx: Ctx) -> Claim:
    """Short-cut at routing vs at post-routing: cost, and which of the container's rules still apply."""
    b, t = ctx.book, ctx.trip
    r, p = ctx.cpu("shortcut-routing"), ctx.cpu("shortcut-postrouting")
    d = b.ratio(p, r, "CPU per packet, shortcut-postrouting vs shortcut-routing")
    met = {s: child_chains(ctx.specs.get(s), t) for s in ("shortcut-routing", "shortcut-postrouting")}
    fig = (f"CPU/packet shortcut-postrouting {p.text()} vs shortcut-routing {r.text()} ({p.id}, {r.id}), "
           f"{_pct(d)}; the container's own chains on {t}, from the schemes' plans: shortcut-routing "
           f"{', '.join(met['shortcut-routing']) or 'none'}, shortcut-postrouting "
           f"{', '.join(met['shortcut-postrouting']) or 'none'}")
    declared = select(metrics.metric(ctx.res, "policy_declared"), ctx.ref) \
        if "policy_declared" in set(ctx.res.summary["metric"]) else pd.DataFrame()
    pol = [b.summary(s, t, "policy_bypassed", f"declared rules bypassed per packet, {s}, {t}")
           for s in ("shortcut-routing", "shortcut-postrouting")
           if len(declared) and float(declared[(declared["scheme"] == s) & (declared["trip"] == t)]["mean"].max()) > 0]
    fig += ("; declared rules bypassed per packet: " + ", ".join(f"{e.text()} ({e.id})" for e in pol)) if pol else \
        "; no netfilter rules declared in these results (the policy rows measure it: scenarios/policy-bypass.yaml)"
    lim = RULES["switch_point_cpu"]
    ok = abs(d.value) <= lim and bool(met["shortcut-routing"]) and not met["shortcut-postrouting"]
    return Claim(
        "Switching namespace at the routing decision costs about what switching at the post-routing hook costs, "
        "and keeps the container's own LOCAL_IN rules, which the post-routing switch bypasses.", "Savochkin",
        fig + f" ({t}, {ctx.roles.describe(ctx.ref)}).",
        f"supported if the two short-cuts' CPU per packet are within ±{lim:.0%} of each other and only "
        f"shortcut-routing runs a netfilter hook in the container's namespace on {t}.",
        _verdict(ok, r, p),
        ctx.costs.assess(robustness.CpuRule(
            ("shortcut-routing", "shortcut-postrouting"),
            quantity=lambda c: abs(c["shortcut-postrouting"] / c["shortcut-routing"] - 1),
            margin=lambda c: lim - abs(c["shortcut-postrouting"] / c["shortcut-routing"] - 1), threshold=lim,
            also_ok=bool(met["shortcut-routing"]) and not met["shortcut-postrouting"],
            what="the size of the CPU per packet difference between the two switch points"), t)
        if _have(r, p) else None)


def _socket_switch(ctx: Ctx) -> Claim:
    """Switching at socket lookup: shared hashes with a per-namespace permutation keep chains short."""
    b, t = ctx.book, ctx.trip
    shared = next((s for s, r in ctx.caps.items() if r["socket_tables"] == "shared_permuted"), None)
    perns = next((s for s in ("shortcut-routing", "shortcut-postrouting", "l2-routed") if s in ctx.caps
                  and ctx.caps[s]["socket_tables"] == "per_namespace"), None)
    lo, hi = _ns_levels(ctx)
    claim = ("Switching namespace at socket lookup, with shared socket hashes and a per-namespace permutation, "
             "keeps lookups as cheap as per-namespace tables as containers multiply.")
    if not (shared and perns and hi):
        return Claim(claim, "Savochkin", "needs a shared-table scheme, a per-namespace one and two namespace counts",
                     "—", NOT_MEASURED)
    ns = str(ctx.roles.namespaces)
    a = b.packet_mean(shared, t, "socket_lookup_ns", f"socket lookup, {shared}, {lo} namespaces", **{ns: lo})
    s_hi = b.packet_mean(shared, t, "socket_lookup_ns", f"socket lookup, {shared}, {hi} namespaces", **{ns: hi})
    p_hi = b.packet_mean(perns, t, "socket_lookup_ns", f"socket lookup, {perns}, {hi} namespaces", **{ns: hi})
    g = b.ratio(s_hi, a, f"socket lookup growth, {shared}, {lo} -> {hi} namespaces")
    d = b.ratio(s_hi, p_hi, f"socket lookup, {shared} vs {perns}, {hi} namespaces")
    lim = RULES["shared_lookup"]
    return Claim(
        claim, "Savochkin",
        f"{shared} (shared, permuted) socket lookup {a.text()} at {lo:,} → {s_hi.text()} at {hi:,} namespaces "
        f"({_pct(g)}); {perns} (per-namespace tables) {p_hi.text()} at {hi:,} ({p_hi.id}): shared vs per-namespace "
        f"{_pct(d)} ({t}, the hosts' default table size, the same for both; per-namespace vs shared at equal table "
        f"size and at equal lookup cost: the socket-table section of scenarios/socket-tables.yaml's report).",
        f"supported if {shared}'s socket lookup at {hi:,} namespaces is at most {lim:.0%} above {perns}'s.",
        _verdict(d.value <= lim, a, s_hi, p_hi),
        ctx.costs.assess(robustness.CpuRule(
            ("shared", "perns"), quantity=lambda c: c["shared"] / c["perns"] - 1,
            margin=lambda c: lim - (c["shared"] / c["perns"] - 1), threshold=lim,
            what=f"{shared}'s socket lookup vs {perns}'s at {hi:,} namespaces (supported at or below the threshold)"),
            t, at={"shared": (shared, LOOKUP, {ns: hi}), "perns": (perns, LOOKUP, {ns: hi})})
        if _have(s_hi, p_hi) else None)


def _l25(ctx: Ctx) -> Claim:
    """Layer 2.5 for application containers: one pass, a classifier rule per container, multicast."""
    b, t = ctx.book, ctx.trip
    h, c = ctx.cpu("host"), ctx.cpu("l25-hybrid")
    d = b.ratio(c, h, "extra CPU per packet, l25-hybrid vs host")
    lim = RULES["l25_cpu"]
    fig = f"l25-hybrid vs host: CPU/packet {_pct(d)} ({t}, {ctx.roles.describe(ctx.ref)})"
    lo, hi = _ns_levels(ctx)
    if hi:
        ns = str(ctx.roles.namespaces)
        k_lo = b.packet_mean("l25-hybrid", t, "l25_classify_ns", f"classifier, l25-hybrid, {lo} namespaces", **{ns: lo})
        k_hi = b.packet_mean("l25-hybrid", t, "l25_classify_ns", f"classifier, l25-hybrid, {hi} namespaces", **{ns: hi})
        fig += (f"; its classifier {k_lo.text()} per packet at {lo:,} namespaces ({k_lo.id}), {k_hi.text()} at "
                f"{hi:,} ({k_hi.id}): one rule per container")
    mc = "multicast" in set(ctx.res.summary["trip"].dropna())
    ok_mc = False
    if mc:
        mh, ml = (b.summary(s, "multicast", "latency_p50_ns", f"p50 latency, {s}, multicast")
                  for s in ("host", "l25-hybrid"))
        dm = b.ratio(ml, mh, "extra p50 latency, l25-hybrid vs host, multicast")
        th = b.summary("l25-hybrid", "multicast", "throughput_pps",
                       "delivered copies per second, l25-hybrid, multicast")
        ok_mc = th.value > 0
        fig += f"; multicast to the group: p50 {_pct(dm)} vs host, {th.text()} of copies delivered ({th.id})"
    else:
        fig += "; no multicast trip in these results"
    return Claim(
        "Layer 2.5 (a classifier picks each packet's container) gives application containers isolation in one "
        "pass, multicast included.", "Lezcano", fig + ".",
        f"supported if l25-hybrid's CPU per packet on {t} is within {lim:.0%} of host at the reference condition "
        "and its multicast trip delivers copies to the group's members; the classifier's growth is reported.",
        _verdict(abs(d.value) <= lim and ok_mc, h, c) if mc else NOT_MEASURED,
        _within(ctx.costs, "l25-hybrid", lim, ok_mc, t) if mc and _have(h, c) else None)


def _scaling(ctx: Ctx) -> Claim:
    """Hundreds and thousands of containers: CPU per packet at the smallest vs largest count."""
    b, t = ctx.book, ctx.trip
    lo, hi = _ns_levels(ctx)
    claim = ("The design must scale to hundreds and thousands of containers on one host: the per-packet cost "
             "must not grow with their number.")
    if not hi:
        return Claim(claim, "Savochkin, Korotaev", "needs two namespace counts", "—", NOT_MEASURED)
    ns, lim = str(ctx.roles.namespaces), RULES["scaling_cpu"]
    parts, grew, evs = [], [], []
    for s in ctx.caps:
        a = b.packet_mean(s, t, "cpu_ns", f"CPU per packet, {s}, {t}, {lo} namespaces", **{ns: lo})
        z = b.packet_mean(s, t, "cpu_ns", f"CPU per packet, {s}, {t}, {hi} namespaces", **{ns: hi})
        g = b.ratio(z, a, f"CPU per packet growth, {s}, {lo} -> {hi} namespaces")
        evs += [a, z]
        parts.append(f"{s} {_pct(g)}")
        if g.value > lim:
            grew.append(s)
    return Claim(
        claim, "Savochkin, Korotaev",
        f"CPU per packet on {t} from {lo:,} to {hi:,} namespaces: " + ", ".join(parts)
        + (f"; growing more than {lim:.0%}: {', '.join(grew)}" if grew else "") + ".",
        f"supported if no scheme's CPU per packet on {t} grows more than {lim:.0%} from {lo:,} to {hi:,} "
        "namespaces (lowest load); the schemes that do are named.",
        _verdict(not grew, *evs),
        ctx.costs.assess(robustness.CpuRule(
            tuple(f"{s}@{k}" for s in ctx.caps for k in ("lo", "hi")),
            quantity=lambda c: max(c[f"{s}@hi"] / c[f"{s}@lo"] - 1 for s in ctx.caps),
            margin=lambda c: lim - max(c[f"{s}@hi"] / c[f"{s}@lo"] - 1 for s in ctx.caps), threshold=lim,
            what=f"the largest growth of a scheme's CPU per packet from {lo:,} to {hi:,} namespaces (supported at "
                 "or below the threshold)"),
            t, at={f"{s}@{k}": (s, (), {ns: n}) for s in ctx.caps for k, n in (("lo", lo), ("hi", hi))})
        if _have(*evs) else None)


def _loopback(ctx: Ctx) -> Claim:
    """Per-namespace loopback: a container talking to itself takes one pass, no veth."""
    b, t = ctx.book, "ns_to_self"
    claim = ("Each namespace has its own loopback: a container talking to itself does not pay full "
             "separation's pass-through device.")
    if t not in set(ctx.res.summary["trip"].dropna()):
        return Claim(claim, "Savochkin, Biederman", "no ns_to_self trip in these results", "—", NOT_MEASURED)
    h = b.packet_mean("host", t, "cpu_ns", f"CPU per packet, host, {t}")
    lim, parts, ok, evs = RULES["loopback_cpu"], [], True, [h]
    for s in ("l2-routed", "l2-bridged"):
        c = b.packet_mean(s, t, "cpu_ns", f"CPU per packet, {s}, {t}")
        d = b.ratio(c, h, f"extra CPU per packet, {s} vs host, {t}")
        veth = any("veth" in str(st) for p in (ctx.specs.get(s, {}).get("trips") or {}).get(t, [])
                   for st in p.get("stages") or [])
        parts.append(f"{s} {_pct(d)} vs host, {'a veth stage' if veth else 'no veth stage'} in its plan")
        ok = ok and abs(d.value) <= lim and not veth
        evs.append(c)
    return Claim(
        claim, "Savochkin, Biederman", "; ".join(parts) + f" ({t}, {ctx.roles.describe(ctx.ref)}).",
        f"supported if both l2-* schemes' CPU per packet on {t} is within ±{lim:.0%} of host's and neither "
        "plan crosses a veth.",
        _verdict(ok, *evs),
        ctx.costs.assess(robustness.CpuRule(
            ("host", "l2-routed", "l2-bridged"),
            quantity=lambda c: max(abs(_extra(c, "l2-routed")), abs(_extra(c, "l2-bridged"))),
            margin=lambda c: lim - max(abs(_extra(c, "l2-routed")), abs(_extra(c, "l2-bridged"))), threshold=lim,
            what=f"the larger size of the l2-* schemes' extra CPU per packet vs host on {t}"), t)
        if _have(*evs) else None)


def _migration(ctx: Ctx) -> Claim:
    """Migration with the container's IP: a capability of the scheme's definition."""
    own = {s: r for s, r in ctx.caps.items() if (r["addresses_per_container"] or 0) >= 1}
    no = [s for s, r in own.items() if not r["migration_with_ip"]]
    fig = ("migration with its IP, from the scheme data: "
           + ", ".join(f"{s} {'yes' if r['migration_with_ip'] else 'no'}" for s, r in ctx.caps.items()))
    return Claim(
        "A container can migrate to another host keeping its IP address, under every scheme that gives it an "
        "address of its own.", "Biederman, Lezcano", fig + ".",
        "supported if every scheme with at least one address per container allows migration with its IP "
        "(capability matrix); a definition, not a measurement.",
        (SUPPORTED if not no else CONTRADICTED) if own else NOT_MEASURED,
        robustness.Robustness(robustness.DEFINITION, robustness.DEFINITION + " (the schemes' capability data)"))


def _async_switch() -> Claim:
    return Claim(
        "The namespace switch can be made asynchronous (the packet queued and handed to the target namespace "
        "later) to keep the switching cost off the receive path.", "Savochkin, Biederman",
        "not measured: no built-in scheme defines a deferred switch.", "—",
        f"{OUTSIDE}: every ns_switch runs synchronously inside its pass; a deferred switch would be a new scheme "
        "(a pass that ends at the switch and resumes on a backlog queue), which is not defined or validated here, "
        "so no number is given.")
