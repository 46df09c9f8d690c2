"""Published measurements beside netns-sim's predictions for the same setups (issue 15).

`analysis/published.yaml` lists figures: what a source published for several configurations of
one setup (netperf TCP_RR latency, TCP_STREAM throughput, ...), the netns-sim scheme of each
configuration, and the flow of a shipped scenario that reproduces the setup.  `compare(res)`
puts each configuration's published ratio to the figure's baseline beside the ratio the run
predicts for the same flow and schemes:

    published delta  = published[c] / published[baseline] - 1
    predicted delta  = metric(flow, scheme of c) / metric(flow, scheme of baseline) - 1
    error            = (predicted delta - published delta) / |published delta|

so an error of -0.9 means the model has a tenth of the published difference, +1.0 twice it.  A
row *matches* when |error| <= `TOLERANCE` (issue 15: within 30% of the published delta).  A
figure's setup is *matched* (`Figure.matched`) when the scenario reproduces it: the same
machine and commands, or a source that gives every parameter the comparison depends on; else
the scenario guessed some (its `assumption`), and a miss may be the guess.  `summary` counts
the two apart, as issue 15 asks for the matched ones.
Ratios, not absolute values, are compared: the sources' CPUs, kernels and tools are not the
model's profile.  ``python -m analysis.published RESULT_DIR`` prints the table in Markdown;
`netns-sim report` includes it for a run of the figures' scenario.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator

from sim.yamlload import safe_load

FIGURES = Path(__file__).with_name("published.yaml")
SCHEME_FACTOR = "hosts.*.scheme"
TOLERANCE = 0.30


class Figure(BaseModel):
    """One published figure: a metric for several configurations of one setup."""

    model_config = ConfigDict(extra="forbid")
    id: str
    source: str
    setup: str
    scenario: str
    flow: str
    metric: str
    scale: PositiveFloat = 1.0                 # published unit -> the flows.csv column's unit
    baseline: str
    published: dict[str, PositiveFloat] = Field(min_length=2)
    schemes: dict[str, str]
    assumption: str = ""
    why: str = ""
    matched: bool = False                      # the scenario reproduces the setup (see the module docstring)

    @model_validator(mode="after")
    def _consistent(self) -> "Figure":
        if set(self.published) != set(self.schemes):
            raise ValueError(f"figure {self.id}: `published` and `schemes` must name the same configurations "
                             f"({sorted(self.published)} vs {sorted(self.schemes)})")
        if self.baseline not in self.published:
            raise ValueError(f"figure {self.id}: baseline {self.baseline!r} is not one of {sorted(self.published)}")
        return self


def figures(path: Path = FIGURES) -> list[Figure]:
    """The figures of `path` (default: analysis/published.yaml), validated."""
    data = safe_load(path.read_text())
    return [Figure(**f) for f in data["figures"]]


@dataclass(frozen=True)
class Row:
    """One configuration of a figure against its baseline."""

    figure: Figure
    config: str
    published_delta: float
    predicted_delta: float           # nan when the run lacks the flow or a scheme

    @property
    def error(self) -> float:
        """(predicted - published delta) / |published delta|."""
        return (self.predicted_delta - self.published_delta) / abs(self.published_delta)

    @property
    def matches(self) -> bool:
        return abs(self.error) <= TOLERANCE


def _metric(flows, fig: Figure, scheme: str) -> float:
    """Mean of `fig.metric` over the rows of `fig.flow` run under `scheme` (replications averaged)."""
    if SCHEME_FACTOR not in flows.columns or fig.metric not in flows.columns:
        return math.nan
    sel = flows[(flows["flow"] == fig.flow) & (flows[SCHEME_FACTOR].astype(str) == scheme)][fig.metric]
    return float(sel.mean()) if len(sel) else math.nan


def compare(res, figs: list[Figure] | None = None) -> list[Row]:
    """Every non-baseline configuration of the figures whose scenario is the run's, in file order."""
    name = res.runs[0].metadata.get("scenario") or res.runs[0].resolved.get("name")
    rows = []
    for fig in figs if figs is not None else figures():
        if fig.scenario != name:
            continue
        base = _metric(res.flows, fig, fig.schemes[fig.baseline])
        for config, value in fig.published.items():
            if config == fig.baseline:
                continue
            pub = value / fig.published[fig.baseline] - 1.0
            pred = _metric(res.flows, fig, fig.schemes[config]) / base - 1.0
            rows.append(Row(fig, config, pub, pred))
    return rows


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{x:+.0%}"


HEADER = ["figure", "configuration (scheme) vs baseline (scheme)", "published", "netns-sim", "error", "within 30%",
          "setup"]


def table_rows(rows: list[Row]) -> list[list[str]]:
    """`HEADER`'s cells for each row (deltas as signed percentages)."""
    out = []
    for r in rows:
        f = r.figure
        out.append([f.id, f"{r.config} ({f.schemes[r.config]}) vs {f.baseline} ({f.schemes[f.baseline]})",
                    _pct(r.published_delta), _pct(r.predicted_delta),
                    "n/a" if r.error != r.error else f"{r.error:+.2f}",
                    "n/a" if r.error != r.error else ("yes" if r.matches else "no"),
                    "matched" if f.matched else "guessed"])
    return out


def summary(rows: list[Row]) -> str:
    """One sentence: of the rows whose setup is matched, how many are within `TOLERANCE`; of
    the others, how many, each explained in its figure's `why`."""
    judged = [r for r in rows if r.error == r.error]
    same = [r for r in judged if r.figure.matched]
    guessed = [r for r in judged if not r.figure.matched]
    return (f"Setups matched: {sum(r.matches for r in same)} of {len(same)} rows within {TOLERANCE:.0%} of the "
            f"published difference. Setups the scenario had to guess: {sum(r.matches for r in guessed)} of "
            f"{len(guessed)} within {TOLERANCE:.0%}; each figure's explanation says what was guessed and what "
            f"of the difference the model has.")


def markdown(rows: list[Row]) -> str:
    """The comparison as a Markdown table, then each figure's source, setup, assumption and explanation."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c) + " |" for c in table_rows(rows)]
    lines += ["", summary(rows)]
    for f in shown(rows):
        lines += ["", describe(f)]
    return "\n".join(lines)


def shown(rows: list[Row]) -> list[Figure]:
    """The figures of `rows`, each once, in order."""
    return list({r.figure.id: r.figure for r in rows}.values())


def describe(f: Figure) -> str:
    """One paragraph: the figure's source, setup, what the scenario assumed and why it came out so."""
    return (f"**{f.id}**: {f.source.strip()}. Setup: {f.setup.strip()}."
            + (f" Assumed: {f.assumption.strip()}." if f.assumption else "")
            + (f" Why: {f.why.strip()}" if f.why else ""))


def main(argv: list[str] | None = None) -> int:
    """``python -m analysis.published RESULT_DIR``: the comparison table of a run, in Markdown."""
    from sim.results.reader import load
    ap = argparse.ArgumentParser(prog="python -m analysis.published", description=__doc__.splitlines()[0])
    ap.add_argument("result", help="a result directory of a scenario named in analysis/published.yaml (modern)")
    args = ap.parse_args(argv)
    rows = compare(load(args.result))
    if not rows:
        names = sorted({f.scenario for f in figures()})
        print(f"{args.result}: no published figure is for this run's scenario; run one of: "
              f"{', '.join(f'scenarios/{n}.yaml' for n in names)}", file=sys.stderr)
        return 2
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
