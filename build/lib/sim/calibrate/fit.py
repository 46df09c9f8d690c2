"""Least-squares fit of grouped stage costs to measured round trips.

Parameters (all linear in the round trip, see `sim.calibrate.predict`):

- ``app``: ns per message paid by the application (absolute; free in every fit);
- one *scale* per stage group in `GROUPS`: every cost term of the group's stages is the
  prior times the group's scale, so the priors' split within a group is kept and only the
  group total is learnt from the data.  Stage terms in no group (a NAPI poll, a BPF program)
  keep their prior: their share of each round trip is taken off before the fit
  (`ungrouped_ns`).

Which groups the data can separate depends on the training setups: a group crossed by no
training setup keeps its prior (scale 1); groups crossed in fixed proportion to others (e.g.
the socket send/receive stages, paid once per message on every setup exactly like ``app``)
cannot be told apart; the fit then keeps the prior of the lower one in `PRIORITY` and frees
the rest, and says so.  A scale that comes out negative is fixed at 0 and the fit is redone
(also reported).  Pure numpy (``lstsq`` on the identifiable columns).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.calibrate.predict import MESSAGES_PER_RTT, TERMS, path_units, predict_rtt_ns, term_ns
from sim.calibrate.setups import Setup
from sim.core.costs import CostProfile

_NF = ("nf_prerouting", "nf_local_in", "nf_forward", "nf_local_out", "nf_postrouting")
_L3 = ("l2_demux", "ip_rcv", "nf_prerouting", "route_input", "nf_forward", "ip_forward", "nf_postrouting",
       "ip_output", "dev_xmit")
_SOCKET = ("socket_send", "route_output", "nf_local_out", "nf_local_in", "socket_lookup", "socket_enqueue")

# group -> the (stage, term) pairs it scales.  Netfilter per-rule terms form their own group.
GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "l3": tuple((s, t) for s in _L3 for t in TERMS if not (s in _NF and t == "entry")),
    "veth": tuple(("veth_xmit", t) for t in TERMS),
    "bridge": tuple(("bridge", t) for t in TERMS),
    "socket": tuple((s, t) for s in _SOCKET for t in TERMS if not (s in _NF and t == "entry")),
    "nf_rule": tuple((s, "entry") for s in _NF),
}
GROUP_DOC = {
    "app": "application cost per message (Python measuring program: interpreter, syscalls, wake-up)",
    "l3": "L2/L3 stages a forwarding pass repeats: l2_demux, ip_rcv, route_input, ip_forward, ip_output, "
          "dev_xmit and the netfilter hook bases (PREROUTING, FORWARD, POSTROUTING)",
    "veth": "veth_xmit (pass-through device to the peer's backlog)",
    "bridge": "bridge (br_handle_frame, FDB lookup, br_forward)",
    "socket": "endpoint stages: socket_send, route_output, LOCAL_OUT/LOCAL_IN hook bases, socket_lookup, "
              "socket_enqueue",
    "nf_rule": "cost per netfilter rule evaluated (per_entry_ns of every nf_* stage)",
}
PRIORITY = ("app", "veth", "l3", "nf_rule", "bridge", "socket")


@dataclass
class FitResult:
    app_ns: float
    scales: dict[str, float]
    free: list[str]
    notes: dict[str, str] = field(default_factory=dict)     # parameter -> why it kept its prior / was fixed
    train: list[str] = field(default_factory=list)
    rank: int = 0

    def to_dict(self) -> dict:
        return {"app_ns": self.app_ns, "scales": self.scales, "free": self.free, "kept_prior_or_fixed": self.notes,
                "train": self.train, "rank": self.rank, "groups": GROUP_DOC}


def group_columns(setup: Setup, prior: CostProfile) -> dict[str, float]:
    """ns each group contributes to the setup's round trip at the prior (scale 1)."""
    units = path_units(setup)
    cols = {"app": float(MESSAGES_PER_RTT)}
    for g, pairs in GROUPS.items():
        cols[g] = sum(units.get((s, t), 0.0) * term_ns(prior.stages[s], t) for s, t in pairs)
    return cols


def ungrouped_ns(setup: Setup, prior: CostProfile) -> float:
    """ns of the setup's round trip from stage terms no group scales (napi_poll, tc_bpf, ...):
    they keep their prior in every fit."""
    grouped = {pair for pairs in GROUPS.values() for pair in pairs}
    return sum(u * term_ns(prior.stages[s], t) for (s, t), u in path_units(setup).items()
               if (s, t) not in grouped)


def _identifiable(a: np.ndarray) -> np.ndarray:
    """Per column: is the unit vector in the row space of `a` (its value pinned by the data)?"""
    proj = np.linalg.pinv(a) @ a
    off_diagonal = proj - np.diag(np.diag(proj))
    return np.isclose(np.diag(proj), 1.0, atol=1e-8) & np.all(np.isclose(off_diagonal, 0, atol=1e-8), axis=0)


def fit(train: list[Setup], measured_ns: dict[str, float], prior: CostProfile) -> FitResult:
    names = list(PRIORITY)
    x = np.array([[group_columns(s, prior)[p] for p in names] for s in train], dtype=float)
    y = np.array([measured_ns[s.name] - ungrouped_ns(s, prior) for s in train], dtype=float)
    values = {p: 1.0 for p in names}
    values["app"] = 0.0
    notes: dict[str, str] = {}
    free = [p for i, p in enumerate(names) if np.any(x[:, i] != 0)]
    for p in names:
        if p not in free:
            notes[p] = "crossed by no training setup: kept its prior"
    for _ in range(2 * len(names)):
        cols = [names.index(p) for p in free]
        fixed = [i for i, p in enumerate(names) if p not in free]
        a = x[:, cols]
        rhs = y - x[:, fixed] @ np.array([values[names[i]] for i in fixed]) if fixed else y
        ok = _identifiable(a)
        if not ok.all():
            stuck = [free[j] for j in range(len(free)) if not ok[j]]
            drop = [p for p in reversed(PRIORITY) if p in stuck and p != "app"][0]
            others = [p for p in stuck if p != drop]
            notes[drop] = f"not separable from {', '.join(others)} with these setups: kept its prior"
            free.remove(drop)
            continue
        sol, *_ = np.linalg.lstsq(a, rhs, rcond=None)
        for p, v in zip(free, sol):
            values[p] = float(v)
        negative = [p for p in free if p != "app" and values[p] < 0]
        if negative:
            p = min(negative, key=lambda q: values[q])
            notes[p] = f"fit gave a negative scale ({values[p]:.3g}): fixed at 0"
            values[p] = 0.0
            free.remove(p)
            continue
        break
    rank = int(np.linalg.matrix_rank(x[:, [names.index(p) for p in free]])) if free else 0
    return FitResult(values["app"], {p: values[p] for p in names if p != "app"}, list(free), notes,
                     [s.name for s in train], rank)


def fit_app(train: list[Setup], measured_ns: dict[str, float], profile: CostProfile) -> FitResult:
    """Only the application's cost per message, with every stage cost fixed (e.g. measured
    with perf): least squares of one constant, i.e. the mean of the training setups' round
    trips minus their stage costs, per message."""
    gaps = [(measured_ns[s.name] - predict_rtt_ns(s, profile, 0.0)) / MESSAGES_PER_RTT for s in train]
    notes = {g: "stage costs fixed (measured with perf), not fitted" for g in GROUPS}
    app = float(np.mean(gaps))
    if app < 0:
        notes["app"] = (f"the stage costs alone exceed the training round trips by {-app:.0f} ns per message "
                        "(stage costs read in another regime, e.g. a flood's cross-CPU wake-ups in socket_enqueue "
                        "against a ping-pong's same-CPU ones or a busy-poll's none): fixed at 0")
        app = 0.0
    return FitResult(app, {g: 1.0 for g in GROUPS}, ["app"], notes, [s.name for s in train], 1)


def apply(prior: CostProfile, result: FitResult, name: str, description: str) -> dict:
    """The calibrated profile as plain data (the prior with every group scaled)."""
    data = prior.model_dump(exclude={"source_file"})
    data["name"] = name
    data["description"] = description
    for g, pairs in GROUPS.items():
        s = result.scales[g]
        label = (f"fitted (group {g}: scale {s:.3g} of the prior)" if g in result.free
                 else f"prior (group {g}: {result.notes.get(g, 'kept')})")
        for stage, term in pairs:
            field_name = TERMS[term]
            if data["stages"][stage][field_name] is None:
                continue                        # no repeat_ns: a repeat follows base_ns, scaled already
            data["stages"][stage][field_name] = round(data["stages"][stage][field_name] * s, 6)
            data["stages"][stage]["source"] = _join(data["stages"][stage].get("source", ""), field_name, label, s)
            if field_name in data["stages"][stage].get("range", {}) and g in result.free:
                low, high = data["stages"][stage]["range"][field_name]
                data["stages"][stage]["range"][field_name] = (round(low * s, 6), round(high * s, 6))
    return data


def _join(old: str, term: str, label: str, scale: float) -> str:
    """One source string per stage, saying per term where its value comes from."""
    entry = f"{term}: {label}"
    if old.startswith(("base_ns:", "repeat_ns:", "per_byte_ns:", "per_entry_ns:")):
        return old + "; " + entry
    return entry + (f"; prior's source: {old}" if old else "")
