"""The report's tables, built from result tables, with the best value per column marked.

A `Table` holds raw values (floats in the file's units) and formats them once, so the
Markdown and the HTML show the same text.  Columns with ``better="min"|"max"`` get the best
row(s) marked: ``**…** ★`` in Markdown, ``<td class="best">`` in HTML.  Ties (equal
*printed* values) are all marked.

Tables:
* `results_table(res, roles, ref, trip)` — per scheme (and level of any other factor):
  p50 / p99 / p99.9 latency at the reference condition and p99 at the highest load
  (µs, from points.csv ``latency_*`` rows as written), the highest delivered throughput over
  the offered loads (kpps; ``≥`` when even the highest load was delivered in full, i.e. not
  saturated: throughput >= 99% of offered), the declared netfilter rules its packets bypassed
  (points.csv ``policy_*`` rows, `policy_text`), the drops at the highest load (% of sent), and
  memory at 1 / 100 / 1,000 / 10,000 namespaces (memory.csv, summed over structures;
  "n/a" if the run did not compute that count), each with its range over the profile's memory
  size ranges in brackets (`analysis.robustness.memory_band`: ``36.1 MB (35.5–36.4 MB)``).  All
  averaged over replications.
* `stage_table(res, roles, ref, trip, packets)` — mean ns per stage group per delivered
  packet (from packets/, sent after warm-up), plus passes, CPU and latency.
* `capability_table(res)` — what each scheme gives a container and what it costs.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from analysis import capabilities, metrics, robustness, stages, style
from analysis.conditions import Roles, select, short

MEMORY_COUNTS = (1, 100, 1000, 10000)
SATURATION = 0.99
BAND_NOTE = ("; in brackets, its range over the profile's memory size ranges (every size with a range at its low "
             "end, then at its high end), where the scheme's structures hold such a size")


def fmt_num(v: float, decimals: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:,.{decimals}f}"


def fmt_bytes(v: float) -> str:
    """Three significant digits with a decimal unit: ``2.05 kB``, ``247 MB``."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3), ("B", 1.0)):
        if abs(v) >= div or unit == "B":
            x = v / div
            return f"{x:.0f} {unit}" if abs(x) >= 100 else (f"{x:.1f} {unit}" if abs(x) >= 10 else f"{x:.2f} {unit}")
    return str(v)


def fmt_bytes_range(low: float, high: float) -> str:
    """``35.5–36.4 MB`` (one unit when both ends have it: ``980 kB–1.02 MB`` otherwise); "" when
    the ends print the same (a range below the printed precision) or are not numbers."""
    a, b = fmt_bytes(low), fmt_bytes(high)
    if a == b or "n/a" in (a, b):
        return ""
    (x, ua), ub = a.split(" "), b.split(" ")[1]
    return f"{x}–{b}" if ua == ub else f"{a}–{b}"


@dataclass
class Column:
    key: str
    header: str
    fmt: Callable[[Any], str] | None = None   # value -> text; None: str()
    better: str | None = None        # "min" | "max" | None


@dataclass
class Table:
    id: str
    title: str
    caption: str
    columns: list[Column]
    rows: list[dict] = field(default_factory=list)
    prefix: dict = field(default_factory=dict)       # (row index, key) -> text before the number
    suffix: dict = field(default_factory=dict)       # (row index, key) -> text after it (a memory range)

    def text(self, i: int, c: Column) -> str:
        v = self.rows[i].get(c.key)
        s = c.fmt(v) if c.fmt else ("" if v is None else str(v))
        return self.prefix.get((i, c.key), "") + s + self.suffix.get((i, c.key), "")

    def best(self) -> set[tuple[int, str]]:
        out = set()
        for c in self.columns:
            if not c.better:
                continue
            vals = [(i, v) for i, v in ((i, r.get(c.key)) for i, r in enumerate(self.rows))
                    if isinstance(v, (int, float)) and not math.isnan(v)]
            if len(vals) < 2:
                continue
            target = (min if c.better == "min" else max)(v for _, v in vals)
            shown = c.fmt(target) if c.fmt else str(target)
            out |= {(i, c.key) for i, v in vals if (c.fmt(v) if c.fmt else str(v)) == shown}
        return out

    def markdown(self) -> str:
        best = self.best()
        lines = [f"| {' | '.join(c.header for c in self.columns)} |",
                 "|" + "|".join("---" if c.fmt is None else "--:" for c in self.columns) + "|"]
        for i in range(len(self.rows)):
            cells = []
            for c in self.columns:
                t = self.text(i, c).replace("|", "\\|")
                cells.append(f"**{t}** ★" if (i, c.key) in best else t)
            lines.append(f"| {' | '.join(cells)} |")
        return "\n".join(lines)

    def html(self) -> str:
        best = self.best()
        head = "".join(f"<th>{html.escape(c.header)}</th>" for c in self.columns)
        body = []
        for i, r in enumerate(self.rows):
            tds = []
            for c in self.columns:
                cls = ["num"] if c.fmt is not None else []
                if (i, c.key) in best:
                    cls.append("best")
                style_attr = ""
                if c.key == "scheme" and isinstance(r.get("scheme"), str):
                    style_attr = f' style="border-left:6px solid {style.color(r["scheme"])}"'
                t = html.escape(self.text(i, c)) + (" ★" if (i, c.key) in best else "")
                tds.append(f'<td class="{" ".join(cls)}"{style_attr}>{t}</td>')
            body.append("<tr>" + "".join(tds) + "</tr>")
        return (f'<table id="{self.id}"><caption>{html.escape(self.caption)}</caption>'
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def _us(v):
    return fmt_num(v * 1e-3 if v == v else v, 2)


class Lookup:
    """The first row of `frame` whose columns hold given values, found in a dict: what `select` then
    ``==`` filters then ``iloc[0]`` give, with one pass over `frame` per set of columns asked
    about instead of one per question (the results table asks hundreds)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._index: dict[tuple[str, ...], dict[tuple, int]] = {}

    def row(self, fixed: dict, **eq) -> int | None:
        """Position of the first row equal to `fixed` on its keys that are columns (the others are
        ignored, as in `select`) and to `eq` (all columns); None if there is none."""
        want = {k: v for k, v in fixed.items() if k in self.frame.columns}
        for k, v in eq.items():
            if k in want and not want[k] == v:
                return None                     # asked for two values of one column
            want[k] = v
        cols = tuple(want)
        if cols not in self._index:
            self._index[cols] = self._first_rows(cols)
        return self._index[cols].get(tuple(want.values()))

    def _first_rows(self, cols: tuple[str, ...]) -> dict[tuple, int]:
        """{values of `cols`: position of their first row}; a null never equals anything (``==``)."""
        out: dict[tuple, int] = {}
        for i, key in enumerate(zip(*(self.frame[c].tolist() for c in cols))):
            if not any(x is None or x is pd.NA or x != x for x in key):
                out.setdefault(key, i)
        return out

    def value(self, fixed: dict, column: str = "mean", **eq) -> float:
        """`column` of `row`'s row (NaN if there is none)."""
        i = self.row(fixed, **eq)
        return math.nan if i is None else float(self.frame[column].iat[i])


def row_keys(res, roles: Roles) -> list[dict]:
    """One dict per table row: scheme plus the level of every *other* factor."""
    s = res.summary
    cols = ["scheme", *roles.other]
    d = s[s["scheme"].notna()][cols].drop_duplicates()
    out = []
    for scheme in style.order(d["scheme"].unique()):
        for _, r in d[d["scheme"] == scheme].sort_values(roles.other or ["scheme"]).iterrows():
            out.append({c: r[c] for c in cols})
    return out


def results_table(res, roles: Roles, ref: dict, trip: str) -> Table:
    p = {m: metrics.metric(res, m) for m in ("latency_p50_ns", "latency_p99_ns", "latency_p999_ns",
                                              "throughput_pps", "offered_pps")}
    at = {m: Lookup(f) for m, f in p.items()}
    drops = Lookup(metrics.drop_fraction(res))
    mem = metrics.memory_total(res)
    mem_at = Lookup(mem)
    band = robustness.memory_band(res)
    band_at = Lookup(band) if band is not None else None
    pol = {name: Lookup(f) for name, f in policy_metrics(res).items()}
    hi = roles.levels[roles.load][-1] if roles.load else None
    cols = [Column("scheme", "scheme")] + [Column(f, short(f)) for f in roles.other] + [
        Column("p50", "p50 (µs)", _us, "min"), Column("p99", "p99 (µs)", _us, "min"),
        Column("p999", "p99.9 (µs)", _us, "min")]
    if roles.load and len(roles.levels[roles.load]) > 1:
        cols.append(Column("p99_hi", f"p99 at {hi:,.0f} pps (µs)", _us, "min"))
    cols += [Column("thr", "max throughput (kpps)", lambda v: fmt_num(v / 1e3, 1), "max"),
             Column("policy", "policy bypassed (declared rules skipped)"),
             Column("drops", "drops at highest load (% of sent)", lambda v: fmt_num(v * 100, 2), "min")]
    have = sorted(int(x) for x in mem["namespaces"].unique())
    # the standard counts (n/a where the run did not compute one); a run with none of them: its own
    counts = list(MEMORY_COUNTS) if set(have) & set(MEMORY_COUNTS) else have
    cols += [Column(f"mem{c}", f"memory, {c:,} ns", fmt_bytes, "min") for c in counts]
    t = Table(f"results-{trip}", f"Results: {trip}",
              f"{trip}: latency at the reference condition ({roles.describe(ref)}); p99 at the highest "
              f"load; max delivered throughput over the offered loads (≥: not saturated, every offered "
              f"packet delivered at the highest load); policy: netfilter rules declared for the "
              f"namespaces this trip touches (chains that apply to it or that it crosses) that its "
              f"packets never met, per packet, with the chains (points.csv policy_* rows); drops at the "
              f"highest load; kernel memory at the given namespace counts (n/a: not computed by this "
              f"run){BAND_NOTE if band is not None else ''}. ★ best per column.", cols)
    for rk in row_keys(res, roles):
        fixed = {**ref, **{k: v for k, v in rk.items() if k != "scheme"}}
        scheme = rk["scheme"]
        row = dict(rk)
        row["p50"] = at["latency_p50_ns"].value(fixed, scheme=scheme, trip=trip)
        row["p99"] = at["latency_p99_ns"].value(fixed, scheme=scheme, trip=trip)
        row["p999"] = at["latency_p999_ns"].value(fixed, scheme=scheme, trip=trip)
        free = {k: v for k, v in fixed.items() if k != roles.load}
        if roles.load:
            row["p99_hi"] = at["latency_p99_ns"].value({**free, roles.load: hi}, scheme=scheme, trip=trip)
        thr = select(p["throughput_pps"], free)
        thr = thr[(thr["scheme"] == scheme) & (thr["trip"] == trip)]
        if len(thr) == 0:
            continue
        row["thr"] = float(thr["mean"].max())
        top = {**free, roles.load: hi} if roles.load else free
        off_hi = at["offered_pps"].value(top, scheme=scheme, trip=trip)
        thr_hi = at["throughput_pps"].value(top, scheme=scheme, trip=trip)
        row["drops"] = drops.value(top, scheme=scheme, trip=trip)
        row["policy"] = policy_text(pol, fixed, scheme, trip)
        if off_hi > 0 and thr_hi >= SATURATION * off_hi:
            t.prefix[(len(t.rows), "thr")] = "≥ "
        mfix = {k: v for k, v in fixed.items() if k in mem.columns}
        for c in counts:
            row[f"mem{c}"] = mem_at.value(mfix, scheme=scheme, namespaces=c)
            if band_at is not None:
                b = band_at.row(mfix, scheme=scheme, namespaces=c)
                rng = "" if b is None else fmt_bytes_range(float(band_at.frame["low"].iat[b]),
                                                           float(band_at.frame["high"].iat[b]))
                if rng:
                    t.suffix[(len(t.rows), f"mem{c}")] = f" ({rng})"
        t.rows.append(row)
    return t


def policy_metrics(res) -> dict[str, pd.DataFrame]:
    """Every ``policy_*`` metric of points.csv, averaged per condition (`metrics.metric`)."""
    names = sorted(str(m) for m in res.summary["metric"].dropna().unique() if str(m).startswith("policy_"))
    return {name: metrics.metric(res, name) for name in names}


def policy_text(pol: dict[str, Lookup], fixed: dict, scheme: str, trip: str) -> str:
    """The results table's policy cell from `policy_metrics` (each frame in a `Lookup`): ``bypasses
    100 of 105: root FORWARD 100``, ``meets all 105``, ``none declared`` or ``n/a`` (no policy rows: results
    written before issue 11, or nothing delivered)."""
    if "policy_declared" not in pol:
        return "n/a"
    declared = pol["policy_declared"].value(fixed, scheme=scheme, trip=trip)
    bypassed = pol["policy_bypassed"].value(fixed, scheme=scheme, trip=trip)
    if math.isnan(declared) or math.isnan(bypassed):
        return "n/a"
    if declared == 0:
        return "none declared"
    if bypassed == 0:
        return f"meets all {declared:,.4g}"
    parts = []
    for name, lookup in pol.items():
        if not name.startswith("policy_bypassed_"):
            continue
        v = lookup.value(fixed, scheme=scheme, trip=trip)
        if v > 0:
            where, chain = name[len("policy_bypassed_"):].split("_", 1)
            parts.append(f"{where} {chain.upper()} {v:,.4g}")
    return f"bypasses {bypassed:,.4g} of {declared:,.4g}" + (f": {', '.join(parts)}" if parts else "")


def stage_table(res, roles: Roles, ref: dict, trip: str, packets: pd.DataFrame) -> Table:
    sub = select(packets, ref)
    sub = sub[sub["trip"] == trip]
    b = stages.breakdown(sub, ["scheme"], stages.declared_groups(res)).set_index("scheme")
    groups = [g for g in stages.ALL_GROUPS if (b[g] > 0).any()] if len(b) else []
    ns = lambda v: fmt_num(v, 1)  # noqa: E731
    cols = [Column("scheme", "scheme"), Column("n_passes", "passes", lambda v: fmt_num(v, 2)),
            *[Column(g, f"{g} (ns)", ns) for g in groups],
            Column("cpu_ns", "CPU total (ns)", ns, "min"), Column("latency_ns", "mean latency (ns)", ns, "min")]
    t = Table(f"stages-{trip}", f"Where the time goes: {trip}",
              f"{trip}, {roles.describe(ref)}: mean ns per delivered packet (sent after warm-up) by stage "
              f"group, summed over all passes, from packets/; CPU total = the stage groups; mean "
              f"latency = CPU + queueing + wire.", cols)
    for scheme in style.order(b.index):
        t.rows.append({"scheme": scheme, **{c.key: float(b.loc[scheme, c.key]) for c in cols[1:]}})
    return t


def capability_table(res) -> Table:
    caps = capabilities.matrix(res)
    yn = lambda v: "yes" if v else "no"  # noqa: E731
    cols = [Column("scheme", "scheme")] + [Column(c, h, yn) for c, h in capabilities.HEADERS.items()] + [
        Column("addresses_per_container", "addresses / container", lambda v: str(int(v))),
        Column("devices_per_container", "devices / container", lambda v: str(int(v))),
        Column("socket_tables", "socket tables"),
        *[Column(f"passes_{trip}", f"passes {trip}", lambda v: "–" if v is None else str(int(v)))
          for trip in capabilities.TRIPS_SHOWN]]
    t = Table("capabilities", "Capability matrix",
              "What each scheme gives a container and what it costs (sim/data/schemes.yaml, or the "
              "scenario's own schemes: in scenario.resolved.yaml); passes = passes through the host per trip.",
              cols)
    t.rows = caps
    return t
