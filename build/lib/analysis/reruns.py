"""Re-running one variant of a result with other costs: what the affine model cannot price.

The affine CPU model (`analysis.robustness`) moves costs without a re-run, but latency
percentiles include queueing, so a claim's latency part needs the simulator itself.  This
module rebuilds the scenario of one variant of a result and runs it again, in this process,
with some cost terms moved.

Contract:

* `variant_scenario(res, scheme, fixed)` — the scenario (a dict, as `Scenario` validates it) of
  the variant of `res` that ran `scheme` at the condition `fixed` (factor -> level, e.g. the
  report's reference condition): the run's ``scenario.resolved.yaml`` (every default filled in)
  without its ``compare:``/``sweep:`` grid, with the variant's levels assigned by their key paths
  (``hosts.*.scheme``, ``flows.0.rate_pps``), exactly as the front door assigns ``compare:``
  levels.  For a directory of runs, the run whose own values match `fixed`.  Raises
  `RerunUnavailable` (with the reason) when that cannot be done.
* `Rerunner(res).summary(scheme, fixed, costs)` — the tidy summary (points.csv rows: scheme,
  trip, metric, value) of that variant simulated with the result's cost profile and the terms
  `costs` (``(stage, term) -> value``, `analysis.robustness.Term`) overriding it; cached per
  (scheme, condition, costs).  The seed and replication are the run's, so the traffic is the
  same packet for packet and a difference is the costs' alone.  With no cost moved the variant's
  own rows of the result are returned instead of a re-run (they are what a re-run gives, row
  for row: tests/test_reruns.py), when exactly one variant of a single result directory
  matches; ``Rerunner(res, reuse_stored=False)`` always simulates.
* `Rerunner.metric(...)` — one metric of one trip from that summary (NaN if absent).

Costs: one variant of the default scenario simulates in about 0.2 s here; a claim's latency
part re-runs 2 schemes at 2 corners.
"""

from __future__ import annotations

import copy
import math
from typing import Mapping

import pandas as pd

from analysis import robustness
from analysis.conditions import scheme_factor, select
from sim.core.summary import COLUMNS as SUMMARY_COLUMNS


class RerunUnavailable(RuntimeError):
    """The variant cannot be re-run (its scenario or profile cannot be rebuilt); `str` says why."""


def _run_for(res, fixed: Mapping):
    """The result directory whose own (per-run) values match `fixed`."""
    per_run = getattr(res, "_run_factor_values", {}) or {}
    for r in res.runs:
        if all(per_run[k].get(r.name) == v for k, v in fixed.items() if k in per_run):
            return r
    raise RerunUnavailable("no run of the result matches the condition " + repr(dict(fixed)))


def variant_scenario(res, scheme: str, fixed: Mapping) -> dict:
    """The scenario of the variant of `res` that ran `scheme` at `fixed` (see module docstring)."""
    from sim.frontdoor import keypath

    run = _run_for(res, fixed)
    doc = copy.deepcopy(run.resolved or {})
    if not doc.get("hosts"):
        raise RerunUnavailable(f"{run.path}: no scenario.resolved.yaml to rebuild the variant from")
    doc.pop("compare", None)
    doc.pop("sweep", None)
    per_run = getattr(res, "_run_factor_values", {}) or {}
    levels = {k: v for k, v in fixed.items() if k not in per_run and k in res.factors}
    sf = scheme_factor(res.factors)
    if sf is not None:
        levels[sf] = scheme
    elif any(h.get("scheme") != scheme for h in doc["hosts"]) and not any(h.get("namespace_schemes")
                                                                           for h in doc["hosts"]):
        raise RerunUnavailable(f"scheme {scheme!r} is neither a factor nor the hosts' scheme of {run.path}")
    for key, value in levels.items():
        try:
            keypath.assign(doc, keypath.parse(key), value.item() if hasattr(value, "item") else value, create=False)
        except keypath.KeyPathError as e:
            raise RerunUnavailable(f"factor {key!r} is not a key path of the resolved scenario: {e}") from e
    return doc


class Rerunner:
    """Re-runs variants of one result with moved costs (see module docstring)."""

    def __init__(self, res, reuse_stored: bool = True) -> None:
        self.res = res
        self.reuse_stored = reuse_stored
        self.profile = robustness.result_profile(res)
        self._cache: dict[tuple, pd.DataFrame] = {}
        self.runs = 0                          # simulations done (for the report's statement)

    def summary(self, scheme: str, fixed: Mapping, costs: Mapping[robustness.Term, float]) -> pd.DataFrame:
        """The points.csv rows of the variant re-run with `costs` (see module docstring)."""
        from sim.core.simulate import simulate
        from sim.frontdoor.scenario import Scenario

        if self.profile is None:
            raise RerunUnavailable(robustness.NO_PROFILE)
        key = (scheme, tuple(sorted((k, str(v)) for k, v in fixed.items())),
               tuple(sorted((robustness.term_name(t), float(v)) for t, v in costs.items())))
        if key not in self._cache and not costs and self.reuse_stored:
            stored = self._stored(scheme, fixed)
            if stored is not None:
                self._cache[key] = stored
        if key not in self._cache:
            scenario = Scenario.model_validate(variant_scenario(self.res, scheme, fixed))
            over: dict[str, dict] = {"stages": {}, "netfilter": {}}
            for t, v in costs.items():
                for part, by in robustness.override_for(t, float(v)).items():
                    for name, terms in by.items():
                        over[part].setdefault(name, {}).update(terms)
            profile = self.profile.with_overrides(stages=over["stages"], netfilter=over["netfilter"])
            self._cache[key] = simulate(scenario, profile=profile).summary
            self.runs += 1
        return self._cache[key]

    def _stored(self, scheme: str, fixed: Mapping) -> pd.DataFrame | None:
        """The result's own summary rows of the variant (the columns `summary` returns), or None
        unless the result is one directory and exactly one variant (run_id) matches."""
        if self.res.multi:
            return None
        s = select(self.res.summary, dict(fixed))
        s = s[s["scheme"] == scheme]
        if s["run_id"].nunique() != 1:
            return None
        return s[list(SUMMARY_COLUMNS)].reset_index(drop=True)

    def metric(self, scheme: str, trip: str, metric: str, fixed: Mapping,
               costs: Mapping[robustness.Term, float]) -> float:
        """`metric` of `scheme` on `trip` in the re-run (NaN if the re-run has no such row)."""
        s = self.summary(scheme, fixed, costs)
        row = s[(s["scheme"] == scheme) & (s["trip"] == trip) & (s["metric"] == metric)]
        return float(row["value"].iloc[0]) if len(row) else math.nan
