"""Stage costs per traversal from a perf-stages record (issue 12).

`perf-stages` gives, per setup, CPU ns per packet charged to each model stage (summed over
every pass of the packet's path).  The model says how many times each stage is paid on that
path and with how many entries (`sim.calibrate.predict.path_units`, one way = half a round
trip).  So, per stage, over the *fitting* setups (every measured setup except the held-out
``fit_never`` ones):

- a stage whose entry count does not vary across the fitting setups (or has none):
  ``base_ns = sum(measured - prior per-entry cost) / sum(times paid)``, a units-weighted
  mean; its range is the lowest and highest per-setup value ``measured / times paid``.
  With ``repeat=True`` (``--repeat-prices``), a stage that some fitting setups pay again on
  one path (a second IP input after a router's, a router's transmit after the sender's) and
  others pay once is fitted by least squares of ``measured - prior per-entry cost = base *
  first + repeat * repeats``, which gives it a ``repeat_ns`` (docs/calibration.md, "A repeat
  traversal costs less than the first").
- a stage whose entries vary (netfilter hooks with 0, 100, 1000 rules): least squares of
  ``measured = base * times + per_entry * entries``; a negative coefficient is fixed at 0.
- per-byte terms and stages no fitting setup pays keep the prior (labelled so), except the
  stages of `BY_DIFFERENCE`, measured as a setup's difference from a baseline (`by_difference`).

Held-out setups are then predicted from these values (`sim.calibrate.validate.one_way_ns`) and compared with
their measured stage sums: a test of the per-stage model on paths the estimate never saw.
Categories that are not model stages (socket_recv, scheduler, syscall_entry, user, timer_irq,
other) are the application's and the wake-up's share: `unmodelled_ns` reports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.calibrate.predict import MESSAGES_PER_RTT, path_units, term_ns
from sim.calibrate.setups import Setup, by_name
from sim.core.costs import CostProfile
from sim.core.stages import STAGE_NAMES

# entries must vary this much across setups to fit a per-entry term (rules 0..1000: yes; FIB depth 3..7: no)
MIN_ENTRY_SPREAD = 10.0
NOT_STAGES = ("socket_recv", "scheduler", "syscall_entry", "user", "timer_irq", "other")


@dataclass
class StageEstimate:
    stage: str
    base_ns: float
    per_entry_ns: float | None               # None: kept the prior's per-entry term
    low_ns: float                            # lowest per-setup base (per traversal)
    high_ns: float
    setups: list[str] = field(default_factory=list)
    method: str = ""
    repeat_ns: float | None = None           # None: a repeat traversal costs base_ns
    repeat_low_ns: float = 0.0               # lowest and highest per-setup repeat
    repeat_high_ns: float = 0.0


def one_way_units(setup: Setup) -> dict[tuple[str, str], float]:
    """{(stage, term): units paid per packet one way}; every measured setup is symmetric."""
    return {k: v / MESSAGES_PER_RTT for k, v in path_units(setup).items()}


# Stages split out of another stage's symbols after records were taken: stage -> the stage
# whose symbols held it.  A record in which no setup has the new category predates the split:
# there the stage is 0 and the old one holds it (`estimate`).
SPLIT_FROM: dict[str, str] = {"napi_poll": "l2_demux"}


def estimate(measured: dict[str, dict[str, float]], prior: CostProfile,
             repeat: bool = False) -> dict[str, StageEstimate]:
    """Per-stage values from `measured` = {setup: {stage: CPU ns per packet}} of the fitting
    setups; `repeat`: price a stage's repeat traversals apart where the setups allow it."""
    fitting = {n: m for n, m in measured.items() if not by_name(n).fit_never}
    out: dict[str, StageEstimate] = {}
    for stage in STAGE_NAMES:
        if stage in SPLIT_FROM and not any(stage in m for m in measured.values()):
            out[stage] = StageEstimate(stage, 0.0, None, 0.0, 0.0, sorted(fitting),
                                       f"inside {SPLIT_FROM[stage]}: the record predates the {stage} stage")
            continue
        rows = []
        for name, m in fitting.items():
            u = one_way_units(by_name(name))
            first, repeats = u.get((stage, "base"), 0.0), u.get((stage, "repeat"), 0.0)
            if first + repeats:
                rows.append((name, first, repeats, u.get((stage, "entry"), 0.0), m.get(stage, 0.0)))
        if rows:
            out[stage] = _estimate_stage(stage, rows, prior, repeat)
    return out


# Stages that no fitting setup pays, or that perf cannot tell apart by symbol, measured as the
# difference between a setup that pays them and a baseline that does not, round by round (the
# rounds interleave the setups): stage -> (category charged, setup, baseline).  veth-bpf-peer
# and veth differ by the router's tc program (its JIT-compiled program, cls_bpf, the redirect)
# and by __netif_receive_skb_core's second round in the receiver's namespace, charged, like the
# first, to l2_demux's symbols (sim/calibrate/symbols.yaml).
BY_DIFFERENCE: dict[str, tuple[str, str, str]] = {
    "tc_bpf": ("tc_bpf", "veth-bpf-peer", "veth"),
    "l2_another_round": ("l2_demux", "veth-bpf-peer", "veth"),
}


def by_difference(raw: dict[str, list[dict]]) -> dict[str, StageEstimate]:
    """Per stage of `BY_DIFFERENCE` whose setup and baseline are both in `raw` (a perf-stages
    record's per-round results): the median over rounds of (setup - baseline) ns per packet in
    the stage's category, divided by the traversals the setup pays one way; the range is the
    rounds' lowest and highest.  Rounds are paired by index (both setups ran in each round)."""
    out: dict[str, StageEstimate] = {}
    for stage, (category, name, base) in BY_DIFFERENCE.items():
        if name not in raw or base not in raw:
            continue
        u = one_way_units(by_name(name))
        times = u.get((stage, "base"), 0.0) + u.get((stage, "repeat"), 0.0)
        if not times:
            raise ValueError(f"{name} does not pay {stage}: BY_DIFFERENCE is wrong")
        diffs = [(a["ns_per_packet"].get(category, 0.0) - b["ns_per_packet"].get(category, 0.0)) / times
                 for a, b in zip(raw[name], raw[base])]
        out[stage] = StageEstimate(stage, max(float(np.median(diffs)), 0.0), None, min(diffs), max(diffs),
                                   [name, base], f"difference {name} - {base} in {category}, median of "
                                   f"{len(diffs)} rounds")
    return out


def record_measured(rec: dict) -> dict[str, dict[str, float]]:
    """{setup: {category: ns per packet}} of a perf-stages record (medians over rounds)."""
    return {n: s["ns_per_packet"] for n, s in rec["setups"].items()}


def all_estimates(rec: dict, prior: CostProfile, repeat: bool = False) -> dict[str, StageEstimate]:
    """`estimate` over a perf-stages record's fitting setups, then `by_difference` for the
    stages it could not give."""
    out = estimate(record_measured(rec), prior, repeat)
    for stage, e in by_difference(rec.get("raw", {})).items():
        out.setdefault(stage, e)
    return out


def _estimate_stage(stage: str, rows: list[tuple[str, float, float, float, float]],
                    prior: CostProfile, repeat: bool = False) -> StageEstimate:
    """One stage's values from `rows` = (setup, first traversals, repeat traversals, entries,
    measured ns) per fitting setup (per packet one way); see the module docstring."""
    names = [r[0] for r in rows]
    first = np.array([r[1] for r in rows])
    repeats = np.array([r[2] for r in rows])
    times = first + repeats
    entries = np.array([r[3] for r in rows])
    y = np.array([r[4] for r in rows])
    per_setup = y / times
    spread = entries.max() / max(entries.min(), 1.0) if entries.max() > 0 else 1.0
    if len(rows) >= 3 and spread >= MIN_ENTRY_SPREAD:
        (base, per_entry), *_ = np.linalg.lstsq(np.column_stack([times, entries]), y, rcond=None)
        method = f"least squares over {len(rows)} setups (entries {entries.min():g}..{entries.max():g})"
        if per_entry < 0:
            per_entry, base = 0.0, float(y.sum() / times.sum())
            method += "; per-entry came out negative: fixed at 0"
        elif base < 0:
            base, per_entry = 0.0, float((y @ entries) / (entries @ entries))
            method += "; base came out negative: fixed at 0"
        zero_rule = per_setup[entries == entries.min()]
        return StageEstimate(stage, float(base), float(per_entry), float(zero_rule.min()), float(zero_rule.max()),
                             names, method)
    prior_entry = prior.stages[stage].per_entry_ns
    net = y - prior_entry * entries
    subtracted = " (prior per-entry subtracted)" if entries.any() else ""
    split = _first_and_repeat(stage, names, first, repeats, net) if repeat else None
    if split is not None:
        split.method += subtracted
        return split
    base = float(net.sum() / times.sum())
    per_setup = net / times
    return StageEstimate(stage, max(base, 0.0), None, float(per_setup.min()), float(per_setup.max()), names,
                         f"mean over {len(rows)} setups" + subtracted)


def _first_and_repeat(stage: str, names: list[str], first: np.ndarray, repeats: np.ndarray,
                      net: np.ndarray) -> StageEstimate | None:
    """Least squares of ``net = base * first + repeat * repeats`` when some setups pay the
    stage again and some only once, both coefficients come out non-negative and the repeat
    below the first; else None (one cost per traversal).  The ranges: the once-only setups'
    ``net / first``, and the others' ``(net - base * first) / repeats``."""
    once, again = repeats == 0, repeats > 0
    if not once.any() or not again.any():
        return None
    (base, repeat), *_ = np.linalg.lstsq(np.column_stack([first, repeats]), net, rcond=None)
    if base < 0 or repeat < 0 or repeat >= base:
        return None
    base_each = net[once] / first[once]
    repeat_each = (net[again] - base * first[again]) / repeats[again]
    return StageEstimate(stage, float(base), None, float(base_each.min()), float(base_each.max()), names,
                         f"first and repeat traversals, least squares over {len(names)} setups "
                         f"({int(again.sum())} pay it again)", float(repeat), float(repeat_each.min()),
                         float(repeat_each.max()))


def with_estimates(prior: CostProfile, estimates: dict[str, StageEstimate], where: str) -> dict:
    """The prior as plain data with every estimated term replaced and labelled "measured (perf)"."""
    data = prior.model_dump(exclude={"source_file"})
    for stage, e in estimates.items():
        st = data["stages"][stage]
        st["base_ns"] = round(e.base_ns, 1)
        traversal = "per traversal" if e.repeat_ns is None else "per first traversal"
        labels = [f"base_ns: measured (perf, {where}; {traversal} {e.low_ns:.0f}..{e.high_ns:.0f} "
                  f"over {', '.join(e.setups)})"]
        rng = dict(st.get("range") or {})
        low, high = rng.get("base_ns", (e.base_ns, e.base_ns))
        rng["base_ns"] = (max(0.0, round(min(low, e.low_ns, e.base_ns), 1)), round(max(high, e.high_ns, e.base_ns), 1))
        if e.repeat_ns is not None:
            st["repeat_ns"] = round(e.repeat_ns, 1)
            labels.append(f"repeat_ns: measured (perf, {where}; {e.method}; per setup "
                          f"{e.repeat_low_ns:.0f}..{e.repeat_high_ns:.0f})")
            rng["repeat_ns"] = (max(0.0, round(min(e.repeat_low_ns, e.repeat_ns), 1)),
                                round(max(e.repeat_high_ns, e.repeat_ns), 1))
        if e.per_entry_ns is not None:
            st["per_entry_ns"] = round(e.per_entry_ns, 2)
            labels.append(f"per_entry_ns: measured (perf, {where}; {e.method})")
            low, high = rng.get("per_entry_ns", (e.per_entry_ns, e.per_entry_ns))
            rng["per_entry_ns"] = (round(min(low, e.per_entry_ns), 2), round(max(high, e.per_entry_ns), 2))
        else:
            labels.append("per_entry_ns: prior")
        labels.append("per_byte_ns: prior")
        st["range"] = rng
        st["source"] = "; ".join(labels) + f"; prior's source: {st.get('source', '')}"
    if "socket_enqueue" in estimates:
        # perf charges sock_def_readable's wake-up to socket_enqueue, at the rate its setups
        # woke the reader: the profile then prices the wake-up per packet, not per wake
        host = data["host"]
        for key in ("wakeup_local_send_ns", "wakeup_ipi_send_ns"):
            host[key] = 0.0
            host.setdefault("sources", {})[key] = (
                f"0: inside socket_enqueue (perf, {where}: the wake-ups of the measured setups, "
                "charged per packet)")
    return data


def stage_ns(setup: Setup, profile: CostProfile) -> dict[str, float]:
    """{stage: CPU ns per packet one way} that `profile` charges on `setup`'s path."""
    out: dict[str, float] = {}
    for (stage, term), units in one_way_units(setup).items():
        out[stage] = out.get(stage, 0.0) + units * term_ns(profile.stages[stage], term)
    return out


def unmodelled_ns(ns_per_packet: dict[str, float]) -> float:
    """CPU ns per packet of the categories that are not model stages (application, wake-up)."""
    return sum(v for k, v in ns_per_packet.items() if k in NOT_STAGES)


def estimates_table(estimates: dict[str, StageEstimate], prior: CostProfile) -> str:
    """Markdown: per stage, the prior vs the perf value per traversal, its per-setup range and method."""
    lines = ["| stage | prior base (ns) | perf base per traversal (ns) | per-setup range (ns) | "
             "perf repeat traversal (ns) | prior per entry | perf per entry | how |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for stage, e in estimates.items():
        p = prior.stages[stage]
        per_entry = "" if e.per_entry_ns is None else f"{e.per_entry_ns:.2f}"
        repeat = "" if e.repeat_ns is None else f"{e.repeat_ns:.0f} ({e.repeat_low_ns:.0f}..{e.repeat_high_ns:.0f})"
        lines.append(f"| {stage} | {p.base_ns:g} | {e.base_ns:.0f} | {e.low_ns:.0f}..{e.high_ns:.0f} | {repeat} | "
                     f"{p.per_entry_ns:g} | {per_entry} | {e.method} |")
    return "\n".join(lines)


def check_table(measured: dict[str, dict[str, float]], profile: CostProfile) -> list[dict]:
    """Per setup: measured model-stage CPU ns per packet vs what `profile` charges (held-out
    setups are the test; fitting setups show the residual)."""
    from sim.calibrate.validate import one_way_ns
    rows = []
    for name, m in measured.items():
        setup = by_name(name)
        meas = sum(v for k, v in m.items() if k in STAGE_NAMES)
        pred = one_way_ns(setup, profile)
        role = "fit" if not setup.fit_never else "held-out"
        if setup.fit_never and (own := [st for st, (_, n, _) in BY_DIFFERENCE.items() if n == name]):
            role = f"held-out but {', '.join(own)}"
        rows.append({"setup": name, "role": role, "measured_ns": meas,
                     "predicted_ns": pred, "error_pct": 100.0 * (pred - meas) / meas if meas else None,
                     "unmodelled_ns": unmodelled_ns(m)})
    return rows


def format_check(rows: list[dict]) -> str:
    lines = ["| setup | role | model stages, measured (ns/packet) | predicted | error | not model stages "
             "(app, wake-up, scheduler; ns/packet) |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        err = "" if r["error_pct"] is None else f"{r['error_pct']:+.0f}%"
        lines.append(f"| {r['setup']} | {r['role']} | {r['measured_ns']:.0f} | {r['predicted_ns']:.0f} | {err} | "
                     f"{r['unmodelled_ns']:.0f} |")
    return "\n".join(lines)
