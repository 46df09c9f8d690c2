"""Which factor is the offered load, which the namespace count, and the reference condition.

Factor columns are named by key path (``flows.*.rate_pps``, ``hosts.*.namespaces``).  The
*load* factor is the first whose last key ends in ``rate_pps``; the *namespaces* factor the
first whose last key is ``namespaces``; every other factor is *other* (compared in the
tables, held at its reference level in the plots that vary load or namespaces).

The reference condition (used by the latency CDF, the stage breakdown, the results tables and
the claims) is stated in every caption:  lowest offered load (the unloaded cost of a packet),
the largest namespace count not above 100 (the thread's "hundreds"; the smallest level if all
are above), and the first level (sorted) of every other factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


def short(factor: str) -> str:
    """``flows.*.rate_pps`` -> ``rate_pps``."""
    return factor.rsplit(".", 1)[-1]


LABELS = {"rate_pps": "offered load per flow (packets/s)", "namespaces": "namespaces on the host"}


def label(factor: str) -> str:
    return LABELS.get(short(factor), factor)


def _levels(frame: pd.DataFrame, factor: str) -> list:
    vals = frame[factor].dropna().unique().tolist()
    try:
        return sorted(vals)
    except TypeError:
        return sorted(vals, key=str)


@dataclass
class Roles:
    load: str | None
    namespaces: str | None
    other: list[str]
    levels: dict[str, list]

    def reference(self) -> dict:
        ref = {}
        for f, lv in self.levels.items():
            if f == self.load:
                ref[f] = lv[0]
            elif f == self.namespaces:
                le = [x for x in lv if x <= 100]
                ref[f] = le[-1] if le else lv[0]
            else:
                ref[f] = lv[0]
        return ref

    def describe(self, fixed: dict) -> str:
        """``offered load 50,000 pps per flow, 100 namespaces`` for the levels in ``fixed``."""
        parts = []
        for f, v in fixed.items():
            if f == self.load:
                parts.append(f"offered load {v:,.0f} pps per flow")
            elif f == self.namespaces:
                parts.append(f"{v:,} namespace{'s' if v != 1 else ''}")
            else:
                parts.append(f"{f} = {v}")
        return ", ".join(parts)


def roles(frame: pd.DataFrame, factors: list[str]) -> Roles:
    present = [f for f in factors if f in frame.columns and f != "run_dir"]
    load = next((f for f in present if short(f).endswith("rate_pps")), None)
    ns = next((f for f in present if short(f) == "namespaces"), None)
    other = [f for f in present if f not in (load, ns) and not short(f) == "scheme"]
    return Roles(load, ns, other, {f: _levels(frame, f) for f in present if short(f) != "scheme"})


def scheme_factor(factors: list[str]) -> str | None:
    """The factor that sets the hosts' scheme (``hosts.*.scheme``), if one does."""
    return next((f for f in factors if f.split(".")[0] == "hosts" and short(f) == "scheme"), None)


def select(frame: pd.DataFrame, fixed: dict) -> pd.DataFrame:
    """Rows whose factor columns equal ``fixed`` (factors absent from the frame are ignored)."""
    m = pd.Series(True, index=frame.index)
    for f, v in fixed.items():
        if f in frame.columns:
            m &= frame[f] == v
    return frame[m]
