"""The design-review report: one self-contained HTML file and its Markdown twin.

`write(results_dir, out=None) -> (html_path, md_path)`.  ``out`` defaults to
``RESULTS_DIR/report.html``; the Markdown goes beside it (``report.md``) and the figures to
``<stem>_figures/`` (PNG, plus SVG with ``svg=True`` / ``--svg``; each figure is drawn once and saved
once per format; the Markdown links the PNGs, the HTML embeds them as base64 data URIs, so it
needs no network and no other file to be viewed).  Packets are read in one streaming scan
(`analysis.packetstats`): memory does not grow with the packet count, except that the claims'
robustness reads the reference condition's packets of one scheme and trip at a time.

The report is replaced as a whole: everything is written into a marked staging directory
beside the target (``.tmp-<stem>_figures-PID-RAND``, `sim.results.atomic`) and published by renames
in one `sim.signals.critical` section, so an interrupted report (Ctrl-C, SIGTERM, an error)
leaves the earlier HTML, Markdown and figures untouched and no staging directory.  The
figures directory carries the ``.netns-sim`` marker; an existing one without it is replaced
only if it holds nothing but this report's figure files (written before the marker existed),
else `write` raises `sim.results.atomic.NotOurs` before doing any work.

Sections: the question and the scenario; setup (resolved scenario, seed, versions, cost profile
with its sources); results per trip (table with the best value per column marked, where the
time goes, figures); per-namespace vs shared socket tables at equal table size and at equal
lookup cost, when the results vary ``hosts.*.socket_tables`` (`analysis.sockettables`); the
capability matrix; the thread's claims with measured evidence and
verdicts (`analysis.claims`); assumptions and limits.  Everything is computed from the result
directory (`sim.results.reader`).  Works on one result directory or a directory of several runs.
"""

from __future__ import annotations

import base64
import html
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from analysis import claims as claims_mod
from analysis import packetstats, plots, published, robustness, sockettables, style, tables
from analysis.conditions import roles as find_roles
from analysis.figures import figures, packet_columns
from analysis.profile import describe as describe_profile
from sim import longlived, signals
from sim.results.atomic import MARKER, check_replaceable, clean_stale, remove_ours, staging_dir, swap_in, write_marker
from sim.results.reader import load

QUESTION = ("When every container gets its own network namespace, what does a packet pay, and what does a "
            "namespace cost in memory — for each way of isolating the Linux network stack argued about in the "
            "2006 \"[RFC] network namespaces\" thread (Savochkin, Biederman, Lezcano, Poetzl, Korotaev and "
            "others)?")

LIMITS = [
    "Stage costs are priors from public figures and kernel sources (see the cost profile below), not "
    "measurements of this machine; compare schemes relative to each other, not absolute microseconds. "
    "`netns-sim calibrate` fits them to a real kernel.",
    "The claims' robustness re-evaluates CPU per packet over the profile's stage-cost ranges (an affine model, "
    "exact for CPU), memory over its memory size ranges (memory.csv's size terms: exact at the corners), and "
    "re-runs a claim's latency part at two corners of the ranges only (the corners where the compared schemes' "
    "CPU difference is smallest and largest), so a flip between corners is not excluded; drops are not "
    "re-evaluated, and host values (wake-ups, TX completion) are not varied.",
    "Each stage costs a deterministic (or exponential) CPU time; caches, NUMA, GRO/TSO batching and lock "
    "contention are not modelled. A pass runs to completion on one core.",
    "Cores run softirq work (NIC RX queues, per-CPU backlogs) in NAPI rounds (napi_weight, netdev_budget, "
    "netdev_budget_usecs) with priority over process context; sustained softirq load moves to ksoftirqd, "
    "which shares the core fairly with the application threads (docs/execution.md). Modelled: senders "
    "blocked by a full send buffer (drop reason sender_blocked), one application thread per socket (a flow's "
    "client and server sockets apart) on a core paying app_recv_ns and server_ns, RSS by a 5-tuple hash, RPS, "
    "XPS with a NIC TX completion per packet on its TX queue's core (tx_completion_ns, a prior), wake-up "
    "latency and the waker's CPU per wake of a sleeping thread, not per packet (cores.csv wakeup_ns; not in a "
    "packet's stage breakdown; the default profile's wake-ups are bare-metal priors; a machine profile may "
    "carry measured ones, see its host.sources). Not modelled: preemption inside a pass or read, context-switch CPU, "
    "scheduler slices and load balancing, hard-IRQ cost and interrupt coalescing, BQL, GRO, busy polling, "
    "the IPIs of RPS.",
    "Latency percentiles are taken from points.csv as the simulator computed them (if it uses a streaming "
    "quantile sketch, within its documented relative error); tail percentiles (p99.9) of a short run rest on "
    "few packets.",
    "Throughput is measured at the offered loads of the scenario only: \"max throughput\" is the highest "
    "delivered rate seen, a lower bound of the saturation point when marked ≥.",
    "Packets still queued when a run ends are neither delivered nor dropped (`in_flight`); under overload they "
    "show as a growing backlog rather than drops.",
    "Memory counts the kernel structures a namespace, a device and a veth pair add, as slab objects of one "
    "kernel version (struct sizes from its BTF, remainders measured by `netns-sim calibrate` on one machine); "
    "per-CPU data is scaled by the host's cores, not measured at that count; socket tables are sized by the "
    "kernel's rules unless a host sets them. The memory ranges (in brackets, shaded) cover the measured terms' "
    "spread and a bridge port's uncounted sysfs nodes, not other kernel configurations or CPU counts.",
    "Capabilities and addresses/devices per container are model inputs (scheme data), not measurements.",
    "Hemminger's point that VNIC needs promiscuous mode on many NICs is not a cost in the model.",
]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0;font-size:.86em}caption{caption-side:top;text-align:left;
font-size:.92em;color:#444;padding:.3em 0}
th,td{border:1px solid #ccc;padding:.25em .5em;vertical-align:top}th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td.best{font-weight:bold;
background:#e8f5e9}
figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.9em;color:#444}
pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.8em}code{font-size:.92em}
.verdict-supported{color:#1b5e20;font-weight:bold}.verdict-contradicted{color:#b71c1c;font-weight:bold}
.verdict-not,.verdict-outside{color:#666;font-style:italic}details{margin:.5em 0}
@media print{figure,table{page-break-inside:avoid}}
"""


class Doc:
    """Builds the HTML and the Markdown side by side."""

    def __init__(self):
        self.h: list[str] = []
        self.m: list[str] = []

    def heading(self, level: int, text: str, id: str | None = None):
        self.h.append(f"<h{level}{f' id={chr(34)}{id}{chr(34)}' if id else ''}>{html.escape(text)}</h{level}>")
        self.m.append(f"\n{'#' * level} {text}\n")

    def para(self, text: str, md: str | None = None):
        self.h.append(f"<p>{_inline(text)}</p>")
        self.m.append((md or text) + "\n")

    def bullets(self, items: list[str]):
        self.h.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
        self.m.append("\n".join(f"* {i}" for i in items) + "\n")

    def table(self, t: tables.Table):
        self.h.append(t.html())
        self.m.append(f"*{t.caption}*\n\n{t.markdown()}\n")

    def raw_table(self, id: str, caption: str, header: list[str], rows: list[list[str]], cls=None):
        cls = cls or {}
        th = "".join(f"<th>{html.escape(x)}</th>" for x in header)
        body = "".join("<tr>" + "".join(f'<td class="{cls.get((i, j), "")}">{_inline(c)}</td>'
                                         for j, c in enumerate(r)) + "</tr>" for i, r in enumerate(rows))
        self.h.append(f'<table id="{id}"><caption>{html.escape(caption)}</caption><thead><tr>{th}</tr></thead>'
                      f"<tbody>{body}</tbody></table>")
        md = [f"| {' | '.join(header)} |", "|" + "|".join("---" for _ in header) + "|"]
        md += [f"| {' | '.join(c.replace('|', chr(92) + '|').replace(chr(10), ' ') for c in r)} |" for r in rows]
        self.m.append(f"*{caption}*\n\n" + "\n".join(md) + "\n")

    def figure(self, png: Path, md_rel: str, caption: str, svg_rel: str | None = None):
        """`png` embedded (HTML) or linked as `md_rel` (Markdown); `svg_rel`: a link to its SVG, when saved."""
        data = base64.b64encode(png.read_bytes()).decode()
        link = f' (<a href="{html.escape(svg_rel)}">SVG</a>)' if svg_rel else ""
        self.h.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                      f"<figcaption>{html.escape(caption)}{link}</figcaption></figure>")
        self.m.append(f"![{caption}]({md_rel})\n\n*{caption}*" + (f" ([SVG]({svg_rel}))" if svg_rel else "") + "\n")

    def details(self, summary: str, pre: str):
        self.h.append(f"<details><summary>{html.escape(summary)}</summary><pre>{html.escape(pre)}</pre></details>")
        self.m.append(f"<details><summary>{summary}</summary>\n\n```\n{pre}\n```\n</details>\n")

    def html_doc(self, title: str) -> str:
        return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
                f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<style>{CSS}</style></head><body>\n" + "\n".join(self.h) + "\n</body></html>\n")

    def markdown(self) -> str:
        return "\n".join(self.m).lstrip() + "\n"


def _inline(text: str) -> str:
    """Escape, then render `code` spans (the only inline markup the report uses)."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _flip_sentence(c) -> str:
    r = c.robustness
    if r is None or r.flip_term is None:
        return ""
    return (f" Flip point: the verdict turns when {robustness.term_name(r.flip_term)} goes {r.flip_direction} "
            f"{robustness.fmt_term_value(r.flip_term, r.flip_value)}.")


def _verdict_class(v: str) -> str:
    return "verdict-" + v.split()[0]


FIGURE_STEMS = ("latency_cdf", "latency_vs_load", "throughput_drops", "latency_vs_namespaces", "stages", "memory",
                "cpu", "claims_tornado")


def _adopt_old_figures(figdir: Path) -> None:
    """Mark a figures directory written before the marker existed: only if every entry in
    it is a figure file this report writes (``<stem>.png``/``.svg``)."""
    if not figdir.is_dir() or figdir.is_symlink() or (figdir / MARKER).exists():
        return
    entries = list(figdir.iterdir())
    if entries and all(p.is_file() and not p.is_symlink() and p.suffix in (".png", ".svg")
                       and (p.stem in FIGURE_STEMS or p.stem.startswith("latency_vs_")) for p in entries):
        write_marker(figdir, "report")


def write(results_dir: str | Path, out: str | Path | None = None, svg: bool = False,
          reruns: bool = True) -> tuple[Path, Path]:
    """Write the report of `results_dir` to `out` (see the module docstring); all or nothing.
    Each figure is drawn once and saved as PNG, and also as SVG with `svg`.  `reruns` False skips
    the re-runs of the claims' latency parts (`analysis.claims.Costs.latency_part`)."""
    out = Path(out) if out else Path(results_dir) / "report.html"
    out = out if out.suffix == ".html" else out.with_suffix(".html")
    md_path = out.with_suffix(".md")
    figdir = out.parent / f"{out.stem}_figures"
    _adopt_old_figures(figdir)
    check_replaceable(figdir, "--out")
    res = load(results_dir)
    clean_stale(figdir)
    staging = staging_dir(figdir, "report")
    state = {"published": False}
    signals.set_outcome(lambda: f"report complete at {out}" if state["published"] else
                        f"nothing written; the earlier report at {out} and its figures are unchanged")
    try:
        html_text, md_text = _compose(res, results_dir, figdir, staging, ("png", "svg") if svg else ("png",),
                                      reruns)
        (staging / f".{out.name}").write_text(html_text)
        (staging / f".{md_path.name}").write_text(md_text)
        with signals.critical("publish report"):
            check_replaceable(figdir, "--out")
            os.replace(staging / f".{md_path.name}", md_path)
            os.replace(staging / f".{out.name}", out)
            swap_in(staging, figdir)
            state["published"] = True
    finally:
        if not state["published"]:
            remove_ours(staging)
    return out, md_path


def _host_line(h: dict) -> str:
    """One host of the resolved scenario: cores, scheme, namespaces (per scheme on a mixed host)."""
    groups = h.get("namespace_schemes") or []
    mix = (" (" + ", ".join(f"{g.get('namespaces')} `{g.get('scheme')}`" for g in groups) + "; the root's paths "
           f"`{h.get('scheme')}`)") if groups else ""
    return (f"`{h.get('name')}` {h.get('cores')} core(s), scheme `{h.get('scheme')}`, " if not groups
            else f"`{h.get('name')}` {h.get('cores')} core(s), ") + f"{h.get('namespaces')} namespace(s){mix}"


def _compose(res, results_dir, figdir: Path, staging: Path, formats: tuple[str, ...] = ("png",),
             reruns: bool = True) -> tuple[str, str]:
    """The HTML and Markdown texts; figures are saved to `staging` (linked as `figdir`)."""
    roles = find_roles(res.summary, res.factors)
    ref = roles.reference()
    # the stage groups plus every stage column (CPU per packet in the claims), aggregated in one scan
    stats = packetstats.aggregate(res, packet_columns(res))
    packets = stats.means
    meta = res.runs[0].metadata
    scen = res.runs[0].resolved
    name = meta.get("scenario") or scen.get("name", "scenario")
    title = f"netns-sim design review: {name}" + (f" ({len(res.runs)} runs)" if res.multi else "")

    # -- figures ------------------------------------------------------------------------
    made: dict[str, tuple[Path, str]] = {}
    with longlived.collected_once():
        for stem, (cap, fig) in figures(res, packets=stats).items():
            made[stem] = (plots.save(fig, staging, stem, formats)["png"], cap)
    svg = (lambda stem: f"{figdir.name}/{stem}.svg") if "svg" in formats else (lambda stem: None)

    def put_fig(doc, stem):
        if stem in made:
            png, cap = made[stem]
            doc.figure(png, f"{figdir.name}/{png.name}", cap, svg(stem))

    doc = Doc()
    doc.heading(1, title)
    doc.para(f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} by `netns-sim report` from "
             f"`{Path(results_dir)}`. Every number below is computed from the result files.")

    # -- question ------------------------------------------------------------------------
    doc.heading(2, "The question", "question")
    doc.para(QUESTION)
    desc = " ".join(str(meta.get("description") or scen.get("description") or "").split())
    if desc:
        doc.para(f"Scenario `{name}`: {desc}")

    # -- setup ---------------------------------------------------------------------------
    doc.heading(2, "Setup", "setup")
    run = scen.get("run", {})
    hosts = scen.get("hosts", [])
    seeds = sorted({r.metadata.get("seed") for r in res.runs if r.metadata.get("seed") is not None} |
                   set(res.summary["seed"].dropna().astype(int)))
    reps = sorted(set(res.summary["replication"].dropna().astype(int)))
    items = [f"scenario file `{meta.get('scenario_file', '?')}`; {res.summary['run_id'].nunique()} variant run(s)"
             f"{f' in {len(res.runs)} result directories' if res.multi else ''}",
             f"seed(s) {', '.join(map(str, seeds))}; replication(s) {', '.join(map(str, reps))}",
             f"simulated {float(run.get('duration_ns', 0)) / 1e6:g} ms per variant, the first "
             f"{float(run.get('warmup_ns', 0)) / 1e6:g} ms warm-up excluded from every statistic",
             "hosts: " + "; ".join(_host_line(h) for h in hosts) + " (variant 0; the factors below override)"]
    for f in res.factors:
        if f in roles.levels:
            items.append(f"factor `{f}`: " + ", ".join(f"{v:,}" if isinstance(v, (int, float)) else str(v)
                                                          for v in roles.levels[f]))
        elif f in res.summary.columns:
            items.append(f"factor `{f}`: " + ", ".join(style.order(res.summary[f].dropna().astype(str).unique())))
    items.append(f"reference condition for tables, CDF, stage breakdown and claims: {roles.describe(ref)} "
                 f"(lowest load; largest namespace count ≤ 100)")
    git = meta.get("git") or {}
    items.append(f"netns-sim {meta.get('sim_version', '?')}, git {str(git.get('commit') or '?')[:12]}"
                 f"{' (dirty tree)' if git.get('dirty') else ''}; Python {meta.get('python', '?')}; "
                 + ", ".join(f"{k} {v}" for k, v in (meta.get("packages") or {}).items())
                 + f"; {meta.get('platform', '')}")
    items.append(f"command: `{' '.join(meta.get('command', []))}`; wall time {meta.get('wall_s', '?')} s")
    doc.bullets(items)
    prof = describe_profile(res)
    doc.heading(3, f"Cost profile: {prof.name}")
    doc.para(" ".join(prof.description.split()) + (f" (file `{prof.path}`)" if prof.path else ""))
    if prof.calibration:
        from sim.calibrate.validate import record_summary
        doc.para(record_summary(prof.calibration))
    if any(prof.overrides.get(k) for k in prof.overrides):
        doc.para("The scenario overrides: `" + json.dumps(prof.overrides) + "`")
    doc.para("Every value of the profile with its source and derivation is listed in the appendix.")

    # -- results -------------------------------------------------------------------------
    doc.heading(2, "Results", "results")
    doc.para("Best value per column marked ★ (bold in HTML). Latency in microseconds from points.csv; "
             "memory from memory.csv; the stage breakdown from packets/.")
    for trip in plots.trips(res):
        doc.heading(3, f"{plots.trip_title(trip)}", f"trip-{trip}")
        doc.table(tables.results_table(res, roles, ref, trip))
        doc.table(tables.stage_table(res, roles, ref, trip, packets))
    _tcp_flows(doc, res)
    _published(doc, res)
    for stem in made:
        put_fig(doc, stem)

    # -- socket tables: per-namespace vs shared ------------------------------------------
    cmp_tables = sockettables.compare(res, packets)
    if cmp_tables is not None:
        _socket_tables(doc, cmp_tables, hosts)

    # -- capability ----------------------------------------------------------------------
    doc.heading(2, "Capability matrix", "capabilities")
    doc.para("What each scheme gives a container (yes/no), what it costs in addresses and devices per container, "
             "and how many passes through the host each trip takes. Read beside the numbers above.")
    doc.table(tables.capability_table(res))

    # -- claims --------------------------------------------------------------------------
    doc.heading(2, "The thread's claims, measured", "claims")
    cl, ev = claims_mod.build(res, roles, ref, packets, reruns)
    doc.para("Each claim with the measured figure that supports or contradicts it and the rule that decides the "
             "verdict. The figures cite evidence items E1, E2, …, listed below with the exact rows they come "
             "from.")
    doc.para("The verdict is decided at the run's cost profile; the robustness column says whether it survives the "
             "profile's plausible ranges (every `range:` of a stage cost or of a memory size, "
             "`analysis.robustness`): "
             f"\"{robustness.HOLDS}\", \"{robustness.DEPENDS} X (flips when X crosses v)\" or "
             f"\"{robustness.DEFINITION}\" (the quantity is the same at every plausible cost). CPU per packet is "
             "re-evaluated without re-running (it is affine in the cost terms), and so is memory (memory.csv says "
             "what its bytes are made of); a latency (p50) part is re-run: the reference variant of the compared "
             "schemes simulated again at the two corners of the ranges where their CPU difference is smallest and "
             "largest (`analysis.reruns`; `--no-reruns` skips it). Drops at high load are reported, not judged, and "
             "not re-evaluated.")
    rows = [[str(i), c.claim, c.who, c.figure + _flip_sentence(c), c.rule, c.verdict, c.robustness_text]
            for i, c in enumerate(cl, 1)]
    doc.raw_table("claims", "Claims of the 2006 thread (design.md) against these results.",
                  ["#", "claim", "who", "measured", "rule", "verdict", "robustness"], rows,
                  {(i, 5): _verdict_class(c.verdict) for i, c in enumerate(cl)})
    tornado = plots.fig_tornado([(f"claim {i}", c.robustness) for i, c in enumerate(cl, 1)
                                 if c.robustness is not None and c.robustness.label != robustness.DEFINITION])
    if tornado is not None:
        png = plots.save(tornado, staging, "claims_tornado", formats)["png"]
        doc.figure(png, f"{figdir.name}/{png.name}",
                   "Sensitivity of each claim's quantity to the cost terms (or memory sizes) it depends on most: "
                   "each alone "
                   "at the low (blue) and high (orange) end of its range, from the value at the run's profile (grey "
                   "line); red dashed: the rule's threshold. Claims decided by a scheme's definition have no bars.",
                   svg("claims_tornado"))
    doc.raw_table("evidence", "Evidence: every number the claims use, and where it comes from.",
                  ["id", "quantity", "value", "source"], [[e.id, e.what, e.text(), f"`{e.source}`"] for e in ev])

    # -- limits ---------------------------------------------------------------------------
    doc.heading(2, "Assumptions and limits of the model", "limits")
    lim = list(LIMITS)
    if len(reps) <= 1 and not (res.multi and len(seeds) > 1):
        lim.append("One replication per condition: no confidence intervals. Add replications (several seeds) "
                   "to get 95% bands in the load and namespace plots.")
    counts = sorted(int(x) for x in res.memory["namespaces"].unique()) if len(res.memory) else []
    missing = [c for c in tables.MEMORY_COUNTS if c not in counts]
    if missing:
        lim.append(f"Memory was computed at {', '.join(f'{c:,}' for c in counts)} namespaces "
                   f"(`memory_namespace_counts`); {', '.join(f'{c:,}' for c in missing)} shows as n/a.")
    doc.bullets(lim)

    # -- appendix -------------------------------------------------------------------------
    doc.heading(2, "Appendix: cost profile values and the resolved scenario", "appendix")
    rows = []
    for e in prof.entries:
        v = e.value
        if isinstance(v, dict):
            v = ", ".join(f"{k}={x:g}" if isinstance(x, (int, float)) else f"{k}={x}" for k, x in v.items())
        rows.append([e.section, f"`{e.key}`", str(v), e.note or "—"])
    if rows:
        doc.raw_table("profile", "Every value of the cost profile and where it comes from (the comment above it "
                      "in the profile file).", ["section", "key", "value", "source and derivation"], rows)
    if prof.header:
        doc.details("Sources cited in the profile (its header)", prof.header)
    for r in res.runs:
        doc.details(f"Resolved scenario{f' ({r.name})' if res.multi else ''}: scenario.resolved.yaml",
                    r.resolved_text.strip())

    return doc.html_doc(title), doc.markdown()


def _tcp_flows(doc: Doc, res) -> None:
    """A table of the TCP flows (flows.csv's TCP columns, `sim.core.tcp`), if the run has any."""
    flows = getattr(res, "flows", None)
    if flows is None or not len(flows) or "throughput_bytes_per_s" not in flows.columns:
        return
    tcp = flows[flows["kind"].isin(["tcp_stream", "tcp_rr"])]
    if not len(tcp):
        return
    factors = [f for f in res.factors if f in tcp.columns]

    def num(x, fmt):
        return "—" if x != x else format(x, fmt)
    rows = [[", ".join(str(r[f]) for f in factors) or "—", str(r["flow"]), str(r["kind"]),
             num(r["transactions_per_s"], ",.0f"), num(r["transaction_mean_ns"] / 1e3, ",.2f"),
             num(r["throughput_bytes_per_s"] / 1e6, ",.2f"), num(r["cpu_ns_per_gb"] / 1e9, ",.2f"),
             num(r["data_segments"], ",.0f"), num(r["retransmits"], ",.0f"), num(r["acks"], ",.0f"),
             num(r["timeouts"], ",.0f")] for _, r in tcp.iterrows()]
    doc.heading(3, "TCP flows", "tcp")
    doc.para("Per TCP flow (flows.csv, over the window after warm-up; docs/tcp.md): transactions per second and "
             "mean transaction time (tcp_rr), in-order payload delivered per second, and the stage CPU of the "
             "flow's packets (data and ACKs, both hosts) per GB of that payload; segments sent, of which "
             "retransmissions, pure ACKs and RTO expiries over the whole run. The tables above count a TCP "
             "flow's data segments and ACKs as packets of its trips.")
    doc.raw_table("tcp", "TCP flows.", [", ".join(factors) or "variant", "flow", "kind", "transactions/s",
                                         "transaction mean (µs)", "throughput (MB/s)", "CPU s per GB",
                                         "data segments", "retransmits", "pure ACKs", "RTO expiries"], rows)


def _published(doc: Doc, res) -> None:
    """Published measurements beside this run's predictions (`analysis.published`), for their scenario."""
    rows = published.compare(res)
    if not rows:
        return
    doc.heading(3, "Published figures", "published")
    doc.para("Measurements published for setups this scenario reproduces (analysis/published.yaml), as the "
             "difference of each configuration from the source's baseline, beside the difference this run "
             "predicts for the same flow under the corresponding schemes. Error = (predicted − published) / "
             "|published|; a row matches within 30%. Only ratios are compared: the sources' CPUs and kernels are "
             "not this profile. Each figure's source, setup, assumptions and the explanation of each miss are "
             "below the table and in docs/modern-schemes.md.")
    doc.raw_table("published", "Published figures against this run.", published.HEADER, published.table_rows(rows))
    doc.para(published.summary(rows))
    doc.bullets([published.describe(f) for f in published.shown(rows)])


def _socket_tables(doc: Doc, c: sockettables.Comparison, hosts: list) -> None:
    """Per-namespace vs shared socket tables at equal table size and at equal lookup cost."""
    h = hosts[0] if hosts else {}
    doc.heading(2, f"Socket tables: per-namespace vs shared at {c.namespaces:,} namespaces", "socket-tables")
    doc.para(f"Scheme `{h.get('scheme')}` with `{h.get('sockets_per_namespace')}` socket(s) per namespace; its "
             f"socket tables one per namespace (`{sockettables.PER_NS}`, as first posted in 2006) or one per "
             f"protocol shared by all namespaces with the namespace mixed into the hash (`{sockettables.SHARED}`, "
             "PATCH 4/9 and mainline's `net_hash_mix`). Lookup: mean `socket_lookup_ns` of delivered packets "
             f"(packets/); memory: `socket_hash_tables` of memory.csv at {c.namespaces:,} namespaces (UDP and TCP "
             "tables of every namespace, or the shared ones).")
    rows = []
    for p, s in c.equal_size:
        rows.append([f"{p.buckets:,}", f"{p.lookup_ns:,.1f}", tables.fmt_bytes(p.memory_bytes),
                     f"{s.lookup_ns:,.1f}", tables.fmt_bytes(s.memory_bytes),
                     f"{p.memory_bytes / s.memory_bytes:,.0f}x" if s.memory_bytes else "n/a",
                     f"{s.lookup_ns / p.lookup_ns:,.2f}x" if p.lookup_ns else "n/a"])
    doc.raw_table("socket-tables-equal-size", "At equal table size: the same number of UDP slots in each "
                  "namespace's table as in the one shared table.",
                  ["UDP slots per table", "per-namespace: lookup (ns)", "per-namespace: memory",
                   "shared: lookup (ns)", "shared: memory", "memory, per-namespace / shared",
                   "lookup, shared / per-namespace"], rows)
    if c.equal_cost is None:
        doc.para(f"At equal lookup cost: no shared table size in these results brings the shared lookup within "
                 f"{sockettables.COST_TOLERANCE:.0%} of the per-namespace tables'; add larger "
                 "`hosts.*.socket_hash_buckets` levels.")
        return
    p, s = c.equal_cost
    note = (f" Mainline caps the boot-time UDP table at {sockettables.UDP_HTABLE_SIZE_MAX:,} slots "
            "(`UDP_HTABLE_SIZE_MAX`), so this shared table is a what-if for today's kernels."
            if s.buckets > sockettables.UDP_HTABLE_SIZE_MAX else "")
    doc.para(f"At equal lookup cost: per-namespace tables of {p.buckets:,} slots look a socket up in "
             f"{p.lookup_ns:,.1f} ns and take {tables.fmt_bytes(p.memory_bytes)}; the smallest shared table whose "
             f"mean lookup is within {sockettables.COST_TOLERANCE:.0%} of that has {s.buckets:,} slots "
             f"({s.lookup_ns:,.1f} ns) and takes {tables.fmt_bytes(s.memory_bytes)}: the per-namespace tables take "
             f"{p.memory_bytes / s.memory_bytes:,.1f}x the shared table's memory for the same lookup cost." + note)


def main(argv=None) -> int:
    import argparse
    p = argparse.ArgumentParser(prog="netns-sim report")
    p.add_argument("results")
    p.add_argument("--out")
    p.add_argument("--svg", action="store_true")
    p.add_argument("--no-reruns", action="store_true")
    a = p.parse_args(argv)
    h, m = write(a.results, a.out, svg=a.svg, reruns=not a.no_reruns)
    print(f"report: {h}\nmarkdown: {m}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
