"""How robust a claim's verdict is to what we do not know: the cost profile's plausible ranges.

One concept: a claim's CPU quantity as an *affine function of the stage cost terms*, evaluated
at the corners of the profile's ranges.

The model.  A stage traversal costs ``base_ns + per_byte_ns * bytes + per_entry_ns * entries``
(`sim.core.costs`), so a delivered packet's ``<stage>_ns`` column is
``n * base_ns + (n * bytes) * per_byte_ns + E * per_entry_ns`` with ``n`` its traversals of
the stage and ``E`` the entries summed over them.  `decompose` recovers, for the delivered
packets of one (scheme, trip, condition), the mean *counts* of each term (`Affine.counts`,
keyed ``(stage, term)``: traversals for ``base_ns``, bytes x traversals for ``per_byte_ns``,
entries for ``per_entry_ns``), so the mean CPU per packet under any other profile is
``Affine.at(costs)`` without a re-run:

* a stage without a per-entry term: ``n = column / (base_ns + per_byte_ns * size_bytes)`` per
  packet, when that is a whole number (so it also sees a short-cut's switch that is skipped
  because the packet is already in that namespace);
* a stage with entries (FIB, socket chain, classifier): ``n`` is the number of times the
  scheme's trip plan (`sim.core.schemes`) names the stage, and ``E`` the rest of the column
  divided by ``per_entry_ns``;
* a netfilter hook that ran, when no host has rules, conntrack or the legacy backend
  (`plain_netfilter`): ``column / base_ns`` hooks; a bridge that runs br_netfilter's hooks
  (the plan says which, `plan_counts`) adds the ``netfilter.br_netfilter.base_ns`` term
  (`BR_NF`);
* held at the run's value (`Affine.held_ns`, listed in `Affine.held`) when that does not
  decompose: a hook with rules, conntrack or the legacy backend (their terms are in its
  price), a stage whose traversals the plan cannot give (multicast fan-out), a column that
  is not a whole number of traversals (``cost_distribution: exponential``), a stage the plan
  runs more than once that the profile prices apart on a repeat (``repeat_ns``).  A stage with a
  zero column that costs more than 0 per traversal was not traversed; one that costs 0 and
  has no range is moot; one that costs 0 but has a range takes its traversals from the plan.

The corners.  Each term with a range ``[low, high]`` in the profile is moved alone to its low
and its high end (the tornado), then every term at once to the end that hurts the nominal
verdict most (the sign of its own one-at-a-time effect; for a rule built of ratios, minima
and absolute values this worst corner is a bound only approximately).  `assess` returns one
of the labels:

* `DEFINITION` — "decided by the scheme's definition, not measured": the claim's quantity
  is the same (within 1e-9 relative) at every corner and no stage is held: the compared paths
  run the same stages, or differ only in stages whose cost is fixed (e.g. 0 with no range);
* `HOLDS` — "holds for every plausible cost": the verdict is the same at every corner;
* `DEPENDS` — "depends on X (flips when X crosses v)": X is the most influential term whose
  range flips the verdict on its own, v the value where it flips (bisection on the affine
  model), other terms that flip it alone are listed; if no term flips it alone but the worst
  corner does, "depends on several costs together".

Memory (`assess_memory`).  A memory.csv row's bytes are a function of the profile's
``memory_bytes`` sizes (its term columns, `sim.core.memory.row_bytes`): linear in each size,
except that a per-namespace socket table is rounded up to whole pages (monotone, so more bytes
per slot never cost less).  A memory rule (`MemoryRule`) compares quantities (`MemoryPart`: the
memory.csv rows of, e.g., one scheme's socket tables at one namespace count) recomputed at each
size with a ``range`` alone at its low and high end (the tornado bars, terms keyed
``("memory_bytes", size)``) and at every corner of the ranges that move them (all of them when
there are at most `MAX_CORNERS_EXACT` such sizes; else the sign of each bar, as for CPU).  With
linear parts a ratio is linear-fractional in each size, so its extremes over the box are at the
corners: they are exact, up to the page rounding.  The labels are the CPU rules':
`DEFINITION` when the quantity is the same at every corner, with why (no size it is made of has
a range, or the ranged ones cancel: they move the compared sides in proportion, or page
rounding absorbs them); `HOLDS`; `DEPENDS` with the flip point (bisection).  `memory_band`
gives the report's bands: every row's bytes with every ranged size at its low end and at its
high end (the exact minimum and maximum of a sum of rows, which only grow with each size).

What is not evaluated here: latency percentiles (queueing) and drops — see `NEEDS_RERUNS`,
`NO_RANGE` (a memory rule when memory.csv has no size terms: results written before them) and
`NO_PROFILE` (runs priced with different profiles).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

import numpy as np
import pandas as pd

from analysis.metrics import per_result

HOLDS = "holds for every plausible cost"
DEPENDS = "depends on"
DEFINITION = "decided by the scheme's definition, not measured"
NEEDS_RERUNS = "robustness not evaluated (needs re-runs over the profile ranges: not done)"
NO_RANGE = "no range in the profile: robustness not evaluated"
NO_PROFILE = "robustness not evaluated (the cost profile of these runs cannot be read, or differs between them)"
TERMS = ("base_ns", "per_byte_ns", "per_entry_ns")
UNITS = {"base_ns": "ns", "per_byte_ns": "ns/B", "per_entry_ns": "ns/entry"}
CONSTANT_RTOL = 1e-9
MEMORY = "memory_bytes"       # a memory size's Term is (MEMORY, size name)
MAX_CORNERS_EXACT = 12        # memory: every corner of up to this many moving sizes is evaluated
Term = tuple[str, str]        # (stage, cost term), or (MEMORY, size)
Costs = Mapping[Term, float]


def term_name(t: Term) -> str:
    return f"{t[0]}.{t[1]}"


def fmt_term_value(t: Term, v: float) -> str:
    if t[0] == MEMORY:                  # a size: whole bytes, but a flip point between two of them shows where
        return f"{v:,.0f} B" if abs(v) >= 1000 or v == int(v) else f"{v:.4g} B"
    return f"{v:,.4g} {UNITS[t[1]]}"


# -- the profile and the plans of a result ------------------------------------------------

def result_profile(res):
    """The `sim.core.costs.CostProfile` the runs of `res` used: the ``cost_profile`` with the
    scenario's ``cost_overrides`` and declared ``stages``; None if it cannot be read or the runs
    (or a factor) use different ones."""
    from analysis.profile import _find
    from sim.core.costs import CostProfile, load_profile

    resolved = res.runs[0].resolved or {}
    keys = ("cost_profile", "cost_overrides", "stages")
    if any(any(k in f for k in keys) for f in res.factors) or \
            any([(r.resolved or {}).get(k) for k in keys] != [resolved.get(k) for k in keys] for r in res.runs):
        return None                              # the runs were priced with different profiles
    name = str(resolved.get("cost_profile") or "default")
    path = _find(name, res)
    try:
        prof: CostProfile = load_profile(str(path) if path else name)
        ov = resolved.get("cost_overrides") or {}
        prof = prof.with_overrides(ov.get("stages"), ov.get("host"), ov.get("memory_bytes"), ov.get("netfilter"))
        declared = resolved.get("stages") or {}
        if declared:
            from sim.frontdoor.scenario import DeclaredStage
            prof = prof.with_stages({k: DeclaredStage.model_validate(v) for k, v in declared.items()})
    except (OSError, ValueError, ImportError):
        return None
    return prof


BR_NF = ("netfilter.br_netfilter", "base_ns")     # a bridge that runs br_netfilter's hooks adds it


def nominal_and_ranges(profile) -> tuple[dict[Term, float], dict[Term, tuple[float, float]]]:
    """Every stage term's value (and `BR_NF`'s), and the ``[low, high]`` of those with a range
    (low < high)."""
    nominal: dict[Term, float] = {}
    ranges: dict[Term, tuple[float, float]] = {}
    items = [(stage, c) for stage, c in profile.stages.items()] + [(BR_NF[0], profile.netfilter.br_netfilter)]
    for stage, c in items:
        for term in TERMS:
            if stage == BR_NF[0] and term != "base_ns":
                continue                        # the simulator uses br_netfilter's base_ns only
            nominal[(stage, term)] = float(getattr(c, term))
            if term in c.range:
                lo, hi = (float(x) for x in c.range[term])
                if lo < hi:
                    ranges[(stage, term)] = (lo, hi)
    return nominal, ranges


def override_for(term: Term, value: float) -> dict:
    """A scenario ``cost_overrides`` block that sets `term` to `value`."""
    if term == BR_NF:
        return {"netfilter": {"br_netfilter": {"base_ns": value}}}
    return {"stages": {term[0]: {term[1]: value}}}


def plain_netfilter(res) -> bool:
    """No rules, no conntrack and the nftables backend on every host of every run (then a
    registered hook costs its stage's ``base_ns`` alone), and no factor that changes that."""
    for r in res.runs:
        for h in (r.resolved or {}).get("hosts") or []:
            rules = h.get("nf_rules") or {}
            ct = h.get("conntrack") or {}
            if any(rules.get(g) for g in ("root", "child")) or any(ct.get(g) for g in ("root", "child")) \
                    or h.get("nf_backend", "nftables") != "nftables":
                return False
    return not any(k in f for f in res.factors for k in ("nf_", "conntrack"))


def plan_counts(res, scheme: str, trip: str, fixed: Optional[dict] = None) -> Optional[dict[str, int]]:
    """Stage name -> how many times the scheme's plan for `trip` names it, on the hosts as the
    run built them (br_netfilter's hooks added when the hosts have them: a factor's level in
    `fixed`, the condition, or else the resolved hosts); ``"bridge+br_nf"`` counts the bridges
    that run br_netfilter.  None for a multicast trip, an unknown scheme or trip, or hosts that
    differ in br_netfilter."""
    from sim.core.netfilter import BR_NF as KIND_BR_NF
    from sim.core.netfilter import br_netfilter_trips, bridges
    from sim.core.schemes import builtin_registry, registry_with

    extra: dict = {}
    br_flags = set()
    for r in res.runs:
        extra.update(r.resolved.get("schemes") or {})
        br_flags |= {bool(h.get("br_netfilter", True)) for h in (r.resolved.get("hosts") or [])}
    factor = [f for f in res.factors if "br_netfilter" in f]
    if factor:
        if len(factor) > 1 or factor[0] not in (fixed or {}):
            return None
        br_flags = {bool((fixed or {})[factor[0]])}
    if len(br_flags) > 1:
        return None
    try:
        reg = registry_with(extra) if extra else builtin_registry()
        sch = reg.get(scheme)
    except (KeyError, ValueError):
        return None
    plans = (br_netfilter_trips(sch) if (br_flags or {True}) == {True} and bridges(sch) else None) or sch.trips
    passes = plans.get(trip)
    if not passes or any(p.fanout or p.wire_stages or p.root_stages or p.loop_stages for p in passes):
        return None
    names = reg.stages.names
    out: dict[str, int] = {}
    for p in passes:
        for st in p.stages:
            out[names[st.index]] = out.get(names[st.index], 0) + 1
            if st.entry_kind == KIND_BR_NF:
                out["bridge+br_nf"] = out.get("bridge+br_nf", 0) + 1
    return out


# -- the affine model ---------------------------------------------------------------------

@dataclass
class Affine:
    """Mean CPU per delivered packet (ns) = ``held_ns + sum(counts[t] * cost[t])``."""

    counts: dict[Term, float]
    held_ns: float = 0.0
    held: list[str] = field(default_factory=list)       # "stage (why)" held at the run's value
    packets: int = 0

    def at(self, costs: Costs) -> float:
        return self.held_ns + sum(n * costs[t] for t, n in self.counts.items())


def _whole(n: np.ndarray) -> bool:
    return bool(np.all(np.abs(n - np.round(n)) <= 1e-6))


def decompose(d: pd.DataFrame, profile, plan: Optional[dict[str, int]], ranges=None,
              plain_nf: bool = True) -> Affine:
    """`Affine` of the delivered packets `d` (one scheme, trip and condition; needs the
    ``<stage>_ns`` columns and ``size_bytes``) under `profile`, the one they were priced with;
    `plan` is `plan_counts` of their scheme and trip and `plain_nf` `plain_netfilter` of the
    result (see the module docstring)."""
    from sim.core.stages import STAGE_INFO

    if ranges is None:
        ranges = nominal_and_ranges(profile)[1]
    if "size_bytes" not in d.columns:
        total = sum(float(d[c].fillna(0.0).mean()) for c in (f"{s}_ns" for s in profile.stages) if c in d.columns)
        return Affine({}, total, ["every stage (no size_bytes column)"], len(d))
    size = d["size_bytes"].to_numpy(dtype=float)
    br_nf = profile.netfilter.br_netfilter.base_ns
    counts: dict[Term, float] = {}
    held_ns, held = 0.0, []

    def hold(stage: str, total: float, why: str) -> None:
        nonlocal held_ns
        held_ns += total
        held.append(f"{stage} ({why})")

    def put(stage: str, n, entries: float = 0.0) -> None:
        counts[(stage, "base_ns")] = float(np.mean(n))
        counts[(stage, "per_byte_ns")] = float(np.mean(n * size))
        counts[(stage, "per_entry_ns")] = entries

    for stage, c in profile.stages.items():
        col = f"{stage}_ns"
        if col not in d.columns:
            continue
        v = d[col].fillna(0.0).to_numpy(dtype=float)
        total = float(v.mean()) if len(v) else 0.0
        kind = STAGE_INFO[stage].entry_kind if stage in STAGE_INFO else (c.entries or "none")
        ranged = any((stage, t) in ranges for t in TERMS)
        per = c.base_ns + c.per_byte_ns * size
        if (c.repeat_ns not in (None, c.base_ns) and not kind.startswith("nf:") and plan is not None
                and plan.get(stage, 0) > 1):
            if total:
                hold(stage, total, "run again on the path and priced apart on a repeat (repeat_ns)")
            continue
        if kind.startswith("nf:"):
            if total == 0.0:
                continue                         # no hook registered: nf_hook() returns at once
            n = np.divide(v, per, out=np.full_like(v, 0.5), where=per > 0)
            if plain_nf and _whole(n):
                put(stage, n)                    # registered, empty chains: base_ns per hook
            else:
                hold(stage, total, "a registered netfilter hook with rules, conntrack or another backend")
            continue
        if kind == "none" and bool(np.all(per > 0)):
            n = v / per
            if _whole(n):
                put(stage, n)
                continue
            k = (plan or {}).get("bridge+br_nf", 0)
            if stage == "bridge" and k and plan is not None:
                n_bridge = plan.get("bridge", 0)
                if np.allclose(v, n_bridge * per + k * br_nf, rtol=1e-9, atol=1e-6):
                    put(stage, np.full_like(v, n_bridge))
                    counts[BR_NF] = float(k)
                    continue
            hold(stage, total, "not a whole number of traversals: randomised costs or an unknown extra")
            continue
        if total == 0.0 and (not ranged or c.base_ns > 0 or c.per_entry_ns > 0):
            continue                             # not traversed (a traversal costs > 0), or moot
        if plan is None:
            hold(stage, total, "traversals not given by the plan of this trip")
            continue
        n_plan = float(plan.get(stage, 0))
        if n_plan == 0.0:
            if total != 0.0:
                hold(stage, total, "charged but not in the plan")
            continue
        rest = v - n_plan * per
        if c.per_entry_ns > 0 and kind != "none":
            e = rest / c.per_entry_ns
            if np.any(e < -1e-6):
                hold(stage, total, "below the plan's traversals x base: skipped traversals or scaled costs")
                continue
            put(stage, np.full_like(v, n_plan), float(e.mean()))
        elif np.allclose(rest, 0.0, atol=1e-6):
            put(stage, np.full_like(v, n_plan))
            if (stage, "per_entry_ns") in ranges and kind != "none":
                held.append(f"{stage} (per_entry_ns is 0 in the run: its entries are unknown, counted as 0)")
        else:
            hold(stage, total, "not the plan's traversals x cost")
    return Affine(counts, held_ns, held, len(d))


# -- a claim's verdict over the corners ---------------------------------------------------

@dataclass
class Bar:
    term: Term
    low: float                # the range's ends
    high: float
    q_low: float              # the claim's quantity with this term alone at its low / high end
    q_high: float
    flips: bool               # the verdict flips at either end


@dataclass
class Robustness:
    label: str                # HOLDS, DEPENDS, DEFINITION, NEEDS_RERUNS, NO_RANGE or NO_PROFILE
    text: str                 # the label in full, with the flip point
    quantity: str = ""        # what `nominal` etc. measure, with the threshold's meaning
    unit: str = "fraction"
    threshold: float = math.nan
    nominal: float = math.nan
    worst: float = math.nan   # the quantity at the worst corner
    bars: list[Bar] = field(default_factory=list)     # by influence, largest first
    flip_term: Optional[Term] = None
    flip_value: float = math.nan
    flip_direction: str = ""  # "above" or "below": the side of flip_value where the verdict differs
    others: list[Term] = field(default_factory=list)  # other terms that flip it alone
    held: list[str] = field(default_factory=list)


@dataclass
class CpuRule:
    """A claim's CPU rule over the mean CPU per packet of some schemes (`cpu`: scheme -> ns).

    ``margin(cpu) >= 0`` means the rule is met (the CPU part of "supported");
    ``quantity(cpu)`` is what the report plots against ``threshold``."""

    schemes: tuple[str, ...]
    quantity: Callable[[dict[str, float]], float]
    margin: Callable[[dict[str, float]], float]
    threshold: float
    what: str
    unit: str = "fraction"
    also_ok: bool = True      # the rest of the rule (held at its measured value) is met


def _solve(f: Callable[[float], float], a: float, b: float) -> float:
    """A point where ``f >= 0`` changes, between `a` (the nominal side) and `b`."""
    fa = f(a) >= 0
    for _ in range(200):
        m = (a + b) / 2
        if (f(m) >= 0) == fa:
            a = m
        else:
            b = m
        if abs(b - a) <= 1e-12 * max(1.0, abs(a)):
            break
    return b


def assess(rule: CpuRule, affines: Mapping[str, Affine], nominal: dict[Term, float],
           ranges: Mapping[Term, tuple[float, float]]) -> Robustness:
    """The robustness of `rule` (see the module docstring) with each scheme's `Affine`."""
    def cpu(costs: Costs) -> dict[str, float]:
        return {s: affines[s].at(costs) for s in rule.schemes}

    def q(costs: Costs) -> float:
        return rule.quantity(cpu(costs))

    def m(costs: Costs) -> float:
        return rule.margin(cpu(costs))

    def verdict(costs: Costs) -> bool:
        return m(costs) >= 0 and rule.also_ok

    held = sorted({h for s in rule.schemes for h in affines[s].held})
    used = [t for t in ranges if any(affines[s].counts.get(t, 0.0) != 0.0 for s in rule.schemes)]
    v0, q0 = verdict(nominal), q(nominal)
    bars, corners = [], [q0]
    for t in used:
        lo, hi = ranges[t]
        c_lo, c_hi = {**nominal, t: lo}, {**nominal, t: hi}
        bars.append(Bar(t, lo, hi, q(c_lo), q(c_hi), verdict(c_lo) != v0 or verdict(c_hi) != v0))
        corners += [bars[-1].q_low, bars[-1].q_high]
    # the worst corner: every term at the end that moves the margin against the nominal verdict
    worst = dict(nominal)
    for t in used:
        lo, hi = ranges[t]
        m_lo, m_hi = m({**nominal, t: lo}), m({**nominal, t: hi})
        worst[t] = (lo if m_lo <= m_hi else hi) if v0 else (lo if m_lo >= m_hi else hi)
    qw = q(worst)
    corners.append(qw)
    bars.sort(key=lambda b: -abs(b.q_high - b.q_low))
    base = Robustness("", "", rule.what, rule.unit, rule.threshold, q0, qw, bars, held=held)
    scale = max(1.0, *(abs(x) for x in corners if x == x))
    margins = [m(nominal)] + [m({**nominal, b.term: e}) for b in bars for e in (b.low, b.high)] + [m(worst)]
    held_any = any(affines[s].held_ns != 0.0 for s in rule.schemes)
    note = ("; not varied (held at the run's value): " + "; ".join(held)) if held else ""
    if not held_any and all(abs(x - q0) <= CONSTANT_RTOL * scale for x in corners) and \
            all(abs(x - margins[0]) <= CONSTANT_RTOL * max(1.0, abs(margins[0])) for x in margins):
        base.label, base.text = DEFINITION, (
            f"{DEFINITION}: {rule.what} is {_fmt(q0, rule.unit)} at every plausible cost (the compared paths "
            "differ only in stages the profile fixes)")
        base.text += note
        return base
    flipping = [b for b in bars if b.flips]
    if not flipping:
        if verdict(worst) == v0:
            base.label, base.text = HOLDS, (f"{HOLDS}: {rule.what} from {_fmt(min(corners), rule.unit)} to "
                                            f"{_fmt(max(corners), rule.unit)} over the corners (worst corner "
                                            f"{_fmt(qw, rule.unit)}; threshold {_fmt(rule.threshold, rule.unit)})")
        else:
            top = ", ".join(f"{term_name(b.term)} at {fmt_term_value(b.term, worst[b.term])}" for b in bars[:4])
            base.label, base.text = DEPENDS, (f"{DEPENDS} several costs together: no cost alone flips the verdict "
                                              f"but all at their worst ends do ({rule.what} "
                                              f"{_fmt(qw, rule.unit)}; the most influential there: {top})")
        base.text += note
        return base
    b = flipping[0]
    end = b.low if verdict({**nominal, b.term: b.low}) != v0 else b.high
    x0 = nominal[b.term]
    v = _solve(lambda x: m({**nominal, b.term: x}), x0, end)
    _set_flip(base, b, v, x0, end, [o.term for o in flipping[1:]])
    base.text += note
    return base


def _set_flip(base: "Robustness", b, v: float, x0: float, end: float, others: list) -> None:
    """`base` labelled DEPENDS on bar `b`'s term, which flips the verdict at `v` (the run used
    `x0`; `end` is the end of its range where it flips), with the `others` that flip it alone."""
    base.flip_term, base.flip_value = b.term, v
    base.flip_direction = "above" if end > x0 else "below"
    base.others = others
    base.label = DEPENDS
    base.text = (f"{DEPENDS} {term_name(b.term)} (flips when {term_name(b.term)} crosses "
                 f"{fmt_term_value(b.term, v)}; the run used {fmt_term_value(b.term, x0)}, "
                 f"range {fmt_term_value(b.term, b.low)}–{fmt_term_value(b.term, b.high)})")
    if others:
        base.text += "; also flipped alone by " + ", ".join(term_name(t) for t in others)


def _fmt(v: float, unit: str) -> str:
    if v != v:
        return "n/a"
    if unit == "fraction":
        return f"{v * 100:+.1f}%"
    if unit == "ns":
        return f"{v:,.1f} ns"
    if unit == "ratio":
        return f"{v:,.2f}x"
    if unit == "bytes":
        from analysis.tables import fmt_bytes
        return fmt_bytes(v)
    return f"{v:g}"


def extreme_corners(quantity: Callable[[Costs], float], terms: list[Term], nominal: dict[Term, float],
                    ranges: Mapping[Term, tuple[float, float]]) -> tuple[dict[Term, float], dict[Term, float]]:
    """The corners of `terms`' ranges that make `quantity` (a function of the costs) smallest and
    largest: each term at the end its own one-at-a-time effect says (exact for an affine
    quantity).  A term with no effect on `quantity` goes to its low end in the first corner and
    its high end in the second, so a quantity the ranges cannot move still gets the two corners
    "every such cost low" and "every such cost high" — what moves the rest of the latency
    (queueing) when the compared paths differ only in fixed stages."""
    low, high = dict(nominal), dict(nominal)
    for t in terms:
        lo, hi = ranges[t]
        q_lo, q_hi = quantity({**nominal, t: lo}), quantity({**nominal, t: hi})
        if q_lo == q_hi or not (q_lo == q_lo and q_hi == q_hi):
            low[t], high[t] = lo, hi
        elif q_lo < q_hi:
            low[t], high[t] = lo, hi
        else:
            low[t], high[t] = hi, lo
    return low, high


# -- memory: the claims' memory rules over the profile's size ranges ------------------------

def memory_nominal_and_ranges(profile) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Every ``memory_bytes`` size (and count) by name, and the ``[low, high]`` of those with a
    range (low < high)."""
    sizes = {k: float(v) for k, v in profile.memory_bytes.sizes().items()}
    ranges = {k: (float(lo), float(hi)) for k, (lo, hi) in profile.memory_bytes.range.items() if lo < hi}
    return sizes, ranges


def has_terms(rows: pd.DataFrame) -> bool:
    """The memory.csv rows say what their bytes are made of (`sim.core.memory.TERM_COLUMNS`; results
    written before they were recorded do not)."""
    from sim.core.memory import TERM_COLUMNS
    return len(rows) > 0 and set(TERM_COLUMNS) <= set(rows.columns) and bool(rows["size_count"].notna().all())


@dataclass
class MemoryPart:
    """Some memory.csv rows (e.g. one scheme's socket tables at one namespace count) as a function
    of the sizes: their bytes summed per run, averaged over runs (as `analysis.claims.Book.memory`)."""

    rows: pd.DataFrame

    def at(self, sizes: Mapping[str, float]) -> float:
        from sim.core.memory import bytes_at
        b = pd.Series(bytes_at(self.rows, sizes), index=self.rows.index)
        keys = [c for c in ("run_dir", "run_id") if c in self.rows.columns]
        return float(b.groupby([self.rows[c] for c in keys]).sum().mean()) if keys else float(b.sum())

    def sizes(self) -> set[str]:
        """The sizes its bytes are made of."""
        from sim.core.memory import SOCKET_SIZES
        keys = self.rows["size_key"].fillna("").astype(str)
        return set(keys[keys != ""]) | (set(SOCKET_SIZES) if (keys == "").any() else set())


def memory_part(memory: pd.DataFrame, fixed: dict, scheme: str, namespaces, structure: str | None = None) -> MemoryPart:
    """The `MemoryPart` of memory.csv rows at the condition `fixed` (its factors that memory.csv has),
    of one scheme at one namespace count, optionally one structure."""
    from analysis.conditions import select
    m = select(memory, {k: v for k, v in fixed.items() if k in memory.columns})
    m = m[(m["scheme"] == scheme) & (m["namespaces"] == namespaces)]
    if structure is not None:
        m = m[m["structure"] == structure]
    return MemoryPart(m)


@dataclass
class MemoryRule:
    """A claim's memory rule over some quantities (`MemoryPart` by name; ``b``: name -> bytes).

    ``margin(b) >= 0`` means the rule is met; ``quantity(b)`` is what is reported against
    ``threshold``."""

    parts: tuple[str, ...]
    quantity: Callable[[dict[str, float]], float]
    margin: Callable[[dict[str, float]], float]
    threshold: float
    what: str
    unit: str = "ratio"
    also_ok: bool = True


def assess_memory(rule: MemoryRule, parts: Mapping[str, MemoryPart], nominal: Mapping[str, float],
                  ranges: Mapping[str, tuple[float, float]]) -> Robustness:
    """The robustness of a memory `rule` over the sizes' `ranges` (module docstring, "Memory")."""
    def b(sizes: Mapping[str, float]) -> dict[str, float]:
        return {p: parts[p].at(sizes) for p in rule.parts}

    def q(sizes: Mapping[str, float]) -> float:
        return rule.quantity(b(sizes))

    def m(sizes: Mapping[str, float]) -> float:
        return rule.margin(b(sizes))

    def verdict(sizes: Mapping[str, float]) -> bool:
        return m(sizes) >= 0 and rule.also_ok

    def at(**moved: float) -> dict[str, float]:
        return {**nominal, **moved}

    made_of = set().union(*(parts[p].sizes() for p in rule.parts))
    moving = [k for k in sorted(ranges) if k in made_of and
              any(parts[p].at(at(**{k: ranges[k][0]})) != parts[p].at(at(**{k: ranges[k][1]})) for p in rule.parts)]
    v0, q0 = verdict(nominal), q(nominal)
    bars = []
    for k in moving:
        lo, hi = ranges[k]
        bars.append(Bar((MEMORY, k), lo, hi, q(at(**{k: lo})), q(at(**{k: hi})),
                        verdict(at(**{k: lo})) != v0 or verdict(at(**{k: hi})) != v0))
    # the corners: all of them when few sizes move the parts, else the sign of each one's effect
    if len(moving) <= MAX_CORNERS_EXACT:
        corners = [at(**dict(zip(moving, ends))) for ends in itertools.product(*(ranges[k] for k in moving))]
    else:
        corners = [at(**{k: (ranges[k][0] if (m(at(**{k: ranges[k][0]})) <= m(at(**{k: ranges[k][1]}))) == v0
                             else ranges[k][1]) for k in moving})]
    qs = [q(c) for c in corners]
    margins = [m(c) for c in corners]
    w = int(np.argmin(margins) if v0 else np.argmax(margins))
    worst, qw = corners[w], qs[w]
    bars.sort(key=lambda x: -abs(x.q_high - x.q_low))
    base = Robustness("", "", rule.what, rule.unit, rule.threshold, q0, qw, bars)
    scale = max(1.0, *(abs(x) for x in qs + [q0] if x == x))
    if all(abs(x - q0) <= CONSTANT_RTOL * scale for x in qs) and \
            all(abs(x - m(nominal)) <= CONSTANT_RTOL * max(1.0, abs(m(nominal))) for x in margins):
        base.label, base.text = DEFINITION, (f"{DEFINITION}: {rule.what} is {_fmt(q0, rule.unit)} at every plausible "
                                             f"size: {_why_constant(parts, rule.parts, made_of, ranges, nominal)}")
        return base
    flipping = [x for x in bars if x.flips]
    if not flipping:
        if verdict(worst) == v0:
            base.label, base.text = HOLDS, (f"{HOLDS}: {rule.what} from {_fmt(min(qs + [q0]), rule.unit)} to "
                                            f"{_fmt(max(qs + [q0]), rule.unit)} over the corners of the memory size "
                                            f"ranges (worst corner {_fmt(qw, rule.unit)}; threshold "
                                            f"{_fmt(rule.threshold, rule.unit)}; sizes that move it: "
                                            f"{', '.join(moving)})")
        else:
            top = ", ".join(f"{term_name(x.term)} at {fmt_term_value(x.term, worst[x.term[1]])}" for x in bars[:4])
            base.label, base.text = DEPENDS, (f"{DEPENDS} several sizes together: no size alone flips the verdict "
                                              f"but all at their worst ends do ({rule.what} {_fmt(qw, rule.unit)}; "
                                              f"the most influential there: {top})")
        return base
    first = flipping[0]
    k = first.term[1]
    end = first.low if verdict(at(**{k: first.low})) != v0 else first.high
    x0 = nominal[k]
    v = _solve(lambda x: m(at(**{k: x})), x0, end)
    _set_flip(base, first, v, x0, end, [o.term for o in flipping[1:]])
    return base


def _and(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _why_constant(parts: Mapping[str, MemoryPart], names: tuple[str, ...], made_of: set[str],
                  ranges: Mapping[str, tuple[float, float]], nominal: Mapping[str, float]) -> str:
    """Why a memory quantity is the same at every corner: which of the sizes it is made of have a
    range, and what happens to those that do."""
    ranged = sorted(k for k in made_of if k in ranges)
    unranged = sorted(made_of - set(ranged))
    them = "they are" if len(names) > 1 else "it is"
    out = []
    if unranged:
        out.append(f"{them} made of {_and(unranged)}, which {'have' if len(unranged) > 1 else 'has'} no range in the "
                   "profile (exact on its kernel, as each size's comment says)")
    cancel = [k for k in ranged if any(parts[p].at({**nominal, k: ranges[k][0]}) !=
                                       parts[p].at({**nominal, k: ranges[k][1]}) for p in names)]
    if cancel:
        out.append(f"{_and(cancel)} {'move' if len(cancel) > 1 else 'moves'} the compared quantities in proportion: "
                   "the bytes per unit cancel in the ratio")
    absorbed = [k for k in ranged if k not in cancel]
    if absorbed:
        out.append(f"{_and(absorbed)} {'stay' if len(absorbed) > 1 else 'stays'} within the same whole pages over "
                   "the range (page rounding absorbs it)")
    other = sorted(set(ranges) - made_of)
    if other:
        out.append(f"the sizes with a range ({_and(other)}) are not in {'them' if len(names) > 1 else 'it'}")
    return "; ".join(out)


@per_result
def memory_band(res) -> Optional[pd.DataFrame]:
    """Per (scheme, namespaces, factors): memory.csv's bytes summed over structures, averaged over
    replications (as `analysis.metrics.memory_total`), with every ranged size at its low end
    (``low``) and at its high end (``high``): the range of the total over the profile's memory
    size ranges.  None when the runs' profile cannot be read (or differs between them), it has no
    memory range, or memory.csv has no size terms."""
    from sim.core.memory import bytes_at
    from sim.results.stats import aggregate

    m = res.memory
    profile = result_profile(res) if len(m) else None
    if profile is None or not has_terms(m):
        return None
    nominal, ranges = memory_nominal_and_ranges(profile)
    if not ranges:
        return None
    fac = [f for f in res.factors if f in m.columns]
    keys = ["scheme", "namespaces", *fac]
    out = None
    for name, end in (("low", 0), ("high", 1)):
        d = m.assign(bytes=bytes_at(m, {**nominal, **{k: r[end] for k, r in ranges.items()}}))
        per_run = d.groupby(["run_dir", "run_id", *keys], sort=False, dropna=False)["bytes"].sum().reset_index()
        a = aggregate(per_run, keys, "bytes")[[*keys, "mean"]].rename(columns={"mean": name})
        out = a if out is None else out.merge(a, on=keys, how="outer")
    return out
