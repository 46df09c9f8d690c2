"""The report's figures, from result tables only (matplotlib: the active backend, so figures show
inline in a notebook; `netns-sim report` selects Agg).  PNG, and SVG when asked.

Every ``fig_*`` function takes a loaded `Results`, its `Roles` and the reference condition
and returns a `Figure` (or None when the results hold nothing to draw: e.g. no load factor
for a figure against load).  `save(fig, outdir, stem, formats)` writes ``stem.png`` (and
``stem.svg`` with ``"svg"`` in `formats`).
Conventions: one colour/marker/dash per scheme (`analysis.style`) in every figure; axes say
their unit; the legend sits outside the axes (below them) so it never hides data; each
figure's title states the condition held fixed.  Times are plotted in microseconds.
Readability: schemes whose curves coincide (`coinciding`: within `COINCIDE_REL`) are drawn with
hollow markers on all but the first, and `note(fig)` names them for the caption; a stage bar
over `OUTLIER_RATIO` x the median is cut at the axis with its value printed (and noted); memory
is absolute bytes on log axes, each curve shaded over its range across the profile's memory size
ranges (`analysis.robustness.memory_band`; noted in the caption).
"""

from __future__ import annotations

import textwrap
import weakref
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, PercentFormatter

from analysis import metrics, robustness, stages, style
from analysis.conditions import Roles, label, select, short
from analysis.figlayout import arrange
from analysis.packetstats import EDGES, PacketStats
from analysis.robustness import Robustness, term_name
from sim.results.reader import Results

TRIP_TITLES = {"wire_to_ns": "wire → namespace", "ns_to_ns": "namespace → namespace (same host)",
               "ns_to_wire": "namespace → wire",
               "multicast": "multicast (from the wire, or to members on another host)",
               "ns_to_remote_ns": "namespace → namespace (other host)",
               "wire_to_root": "wire → root namespace", "root_to_wire": "root namespace → wire",
               "root_to_ns": "root → namespace (same host)", "ns_to_root": "namespace → root (same host)",
               "ns_to_self": "namespace → itself (loopback)", "root_to_self": "root → itself (loopback)",
               "root_to_remote_ns": "root → namespace (other host)",
               "ns_to_remote_root": "namespace → root (other host)", "root_to_remote_root": "root → root (other host)",
               "multicast_local": "multicast (namespace → group members on its host)"}
_US = 1e-3


def trip_title(trip: str) -> str:
    return f"{TRIP_TITLES.get(trip, trip)} ({trip})" if trip in TRIP_TITLES else trip


TITLE_CHARS = 46          # a panel title wraps at this width, so neighbouring panels' titles never overlap


def _panel_title(ax, text: str) -> None:
    ax.set_title("\n".join(textwrap.fill(line, TITLE_CHARS) for line in text.split("\n")))


def trips(res: Results) -> list[str]:
    t = res.summary["trip"].dropna().astype(str)
    order = list(TRIP_TITLES)
    found = [x for x in t.unique() if x]
    return [x for x in order if x in found] + sorted(x for x in found if x not in order)


def _legend(fig, axes, ncol=5):
    handles: dict = {}
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    names = style.order(handles) + [n for n in handles if n not in style.order(handles)]
    if not names:                   # nothing drawn (no delivered packet at this condition)
        return
    fig.legend([handles[n] for n in names], names, loc="lower center", ncol=min(ncol, len(names)),
               frameon=False)


def _us_formatter():
    return FuncFormatter(lambda v, _: f"{v:g}")


def _log_axis(axis):
    """Log axis with plain-number labels at 1, 2, 5 x 10^k (narrow ranges) or 10^k; no minor labels.

    Call after the data are drawn (the range decides the tick density)."""
    lo, hi = axis.get_view_interval()
    wide = lo > 0 and hi / lo > 300
    axis.set_major_locator(LogLocator(base=10, subs=(1.0,) if wide else (1.0, 2.0, 5.0)))
    axis.set_major_formatter(_us_formatter())
    axis.set_minor_formatter(NullFormatter())


def _kilo(v, _=None) -> str:
    return f"{v / 1e3:,.0f}k" if abs(v) >= 1e3 else f"{v:,.0f}"


def _level_ticks(ax, levels):
    """Ticks at the factor's levels, unless two would collide (then the default ticks)."""
    lv = sorted(float(v) for v in levels)
    log = ax.get_xscale() == "log"
    pos = np.log10(lv) if log else np.asarray(lv)
    span = (pos[-1] - pos[0]) or 1.0
    if len(lv) <= 8 and np.all(np.diff(pos) >= 0.08 * span):
        ax.set_xticks(lv, [_kilo(v) for v in lv])
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(_kilo))
    ax.xaxis.set_minor_formatter(NullFormatter())


def save(fig, outdir: Path, stem: str, formats: tuple[str, ...] = ("png",)) -> dict[str, Path]:
    """Write `fig` once per format in `formats` (``stem.png``, ``stem.svg``) and close it."""
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ext in formats:
        p = outdir / f"{stem}.{ext}"
        fig.savefig(p, format=ext)
        paths[ext] = p
    plt.close(fig)
    return paths


# -- readability: curves that coincide, outliers ----------------------------------------------

COINCIDE_REL = 0.01        # curves within 1% of each other everywhere (CDFs: 0.01 in fraction) coincide
OUTLIER_RATIO = 20.0       # a bar over 20x the median bar is cut (its value printed) so the rest stay readable
_NOTES: "weakref.WeakKeyDictionary[object, list[str]]" = weakref.WeakKeyDictionary()
_COINCIDE: "weakref.WeakKeyDictionary[object, dict[tuple[str, ...], list[str]]]" = weakref.WeakKeyDictionary()


def note(fig) -> str:
    """What the figure's caption must add (curves that coincide, a cut axis); "" if nothing."""
    parts = []
    groups = _COINCIDE.get(fig, {})
    if groups:
        parts.append(f"Curves that coincide (within {COINCIDE_REL:.0%}; the later ones drawn with hollow markers): "
                     + "; ".join(f"{', '.join(g[:-1])} and {g[-1]} ({', '.join(w)})" for g, w in groups.items())
                     + ".")
    return " ".join([*parts, *dict.fromkeys(_NOTES.get(fig, []))])


def _add_note(fig, text: str) -> None:
    _NOTES.setdefault(fig, []).append(text)


def coinciding(curves: dict[str, np.ndarray], absolute: float | None = None) -> list[list[str]]:
    """Groups (of 2 or more) of schemes whose curves coincide: same length and every point within
    `COINCIDE_REL` relative (or `absolute`, e.g. for CDF fractions) of the group's first curve."""
    groups: list[list[str]] = []
    for name, y in curves.items():
        for g in groups:
            z = curves[g[0]]
            if len(z) == len(y) and len(y) and np.all(
                    np.abs(y - z) <= (absolute if absolute is not None
                                      else COINCIDE_REL * np.maximum(np.abs(y), np.abs(z)))):
                g.append(name)
                break
        else:
            groups.append([name])
    return [g for g in groups if len(g) > 1]


def _mark_coinciding(fig, ax, groups: list[list[str]], where: str) -> None:
    """Give every curve of a coinciding group but the first its scheme's marker (hollow, spread out)
    so both show, and note the group in the caption."""
    for g in groups:
        for line in ax.get_lines():
            if line.get_label() in g[1:]:
                line.set_marker(style.marker(str(line.get_label())))
                line.set_markerfacecolor("none")
                line.set_markevery(max(1, len(line.get_xdata()) // 8) if len(line.get_xdata()) > 12 else 1)
                line.set_markersize(6)
        _COINCIDE.setdefault(fig, {}).setdefault(tuple(g), []).append(where)


def _figure(nrows, ncols, w=None, h=None, **kw):
    with plt.rc_context(style.RC):
        fig, axes = plt.subplots(nrows, ncols, figsize=(w or 4.6 * ncols + 0.6, h or 3.3 * nrows + 1.0),
                                 squeeze=False, layout="none", **kw)
    return fig, axes


# -- latency CDF --------------------------------------------------------------------------

def fig_latency_cdf(res: Results, roles: Roles, ref: dict, stats: PacketStats):
    """CDF of the delivered packets' latency per scheme, from `stats`' histograms (`analysis.packetstats`:
    exact at the bin edges, 1.2% apart in latency)."""
    loads = [None] if roles.load is None else sorted({roles.levels[roles.load][0],
                                                      roles.levels[roles.load][-1]})
    tr = trips(res)
    with plt.rc_context(style.RC):
        fig, axes = _figure(len(loads), len(tr))
        for i, ld in enumerate(loads):
            fixed = dict(ref)
            if roles.load:
                fixed[roles.load] = ld
            sub = select(stats.means, fixed)
            for j, trip in enumerate(tr):
                ax = axes[i][j]
                st = sub[sub["trip"] == trip]
                cdfs = {}
                for scheme in style.order(st["scheme"].unique()):
                    h = stats.histogram(st[st["scheme"] == scheme])
                    if h.sum():
                        cdfs[scheme] = np.cumsum(h) / h.sum()
                        nz = h > 0
                        x = EDGES[1:][nz] * _US
                        y = np.cumsum(h)[nz] / h.sum()
                        kw = style.line_kw(scheme)
                        ax.step(x, y, where="post", color=kw["color"], linestyle=kw["linestyle"],
                                linewidth=1.4, label=scheme)
                _mark_coinciding(fig, ax, coinciding(cdfs, absolute=COINCIDE_REL),
                                 trip + (f" at {ld:,.0f} pps" if roles.load else ""))
                ax.set_xscale("log")
                _log_axis(ax.xaxis)
                ax.set_xlabel("latency (µs, log scale)")
                ax.set_ylabel("fraction of delivered packets")
                ax.set_ylim(0, 1.01)
                t = trip_title(trip)
                if roles.load:
                    t += f"\n{ld:,.0f} pps per flow"
                _panel_title(ax, t)
        rest = {k: v for k, v in ref.items() if k != roles.load}
        fig.suptitle(f"Latency CDF per scheme — {roles.describe(rest)}" if rest else "Latency CDF per scheme")
        _legend(fig, axes)
    return arrange(fig)


# -- a metric against one factor ------------------------------------------------------------

def _vs(ax, frame, factor, scheme, scale=1.0):
    """One scheme's mean line with its 95% band; returns the means drawn (for axis limits)."""
    d = frame[frame["scheme"] == scheme].sort_values(factor)
    if d.empty:
        return np.array([])
    x, y, ci = d[factor].to_numpy(dtype=float), d["mean"].to_numpy() * scale, d["ci"].to_numpy() * scale
    ax.plot(x, y, **style.line_kw(scheme))
    if np.isfinite(ci).any():
        ax.fill_between(x, np.maximum(y - ci, 1e-12), y + ci, color=style.color(scheme), alpha=0.18, linewidth=0)
    return y


def _limits_from_means(ax, ys, log=True):
    """Axis range from the means, so a band reaching 0 on a log axis cannot squash the lines."""
    y = np.concatenate([v for v in ys if len(v)]) if ys else np.array([])
    y = y[np.isfinite(y) & (y > 0)] if log else y[np.isfinite(y)]
    if len(y):
        ax.set_ylim(y.min() / 1.6, y.max() * 1.6) if log else None


def fig_latency_vs(res: Results, roles: Roles, ref: dict, factor: str | None):
    """p50 (top row) and p99 (bottom row) latency against ``factor``, one panel per trip."""
    if factor is None or len(roles.levels.get(factor, [])) < 2:
        return None
    fixed = {k: v for k, v in ref.items() if k != factor}
    tr = trips(res)
    reps = res.summary["replication"].nunique() > 1 or (res.multi and "seed" in res.summary
                                                        and res.summary["seed"].nunique() > 1)
    with plt.rc_context(style.RC):
        fig, axes = _figure(2, len(tr))
        for i, (m, mlabel) in enumerate((("latency_p50_ns", "p50"), ("latency_p99_ns", "p99"))):
            d = select(metrics.metric(res, m), fixed)
            for j, trip in enumerate(tr):
                ax = axes[i][j]
                dt = d[d["trip"] == trip]
                names = style.order(dt["scheme"].unique())
                ys = [_vs(ax, dt, factor, scheme, _US) for scheme in names]
                _mark_coinciding(fig, ax, coinciding(dict(zip(names, ys))), f"{mlabel} {trip}")
                ax.set_yscale("log")
                _limits_from_means(ax, ys)
                _log_axis(ax.yaxis)
                ax.set_ylabel(f"{mlabel} latency (µs, log scale)")
                ax.set_xlabel(label(factor) + (" (log scale)" if short(factor) == "namespaces" else ""))
                if short(factor) == "namespaces":
                    ax.set_xscale("log")
                _level_ticks(ax, roles.levels[factor])
                _panel_title(ax, f"{mlabel}: {trip_title(trip)}")
        band = "; bands: 95% confidence interval over replications" if reps else " (one replication: no bands)"
        cond = f" — {roles.describe(fixed)}" if fixed else ""
        fig.suptitle(f"p50 and p99 latency vs {label(factor)}{cond}{band}")
        _legend(fig, axes)
    return arrange(fig)


def fig_throughput_drops(res: Results, roles: Roles, ref: dict):
    """Delivered throughput (top) and drop fraction (bottom) vs offered load, per trip."""
    factor = roles.load
    if factor is None or len(roles.levels[factor]) < 2:
        return None
    fixed = {k: v for k, v in ref.items() if k != factor}
    tr = trips(res)
    thr = select(metrics.metric(res, "throughput_pps"), fixed)
    off = select(metrics.metric(res, "offered_pps"), fixed)
    drops = select(metrics.drop_fraction(res), fixed)
    inflight = select(metrics.drop_fraction(res, ("in_flight",)), fixed)
    with plt.rc_context(style.RC):
        fig, axes = _figure(3, len(tr), h=9.6)
        for j, trip in enumerate(tr):
            ax = axes[0][j]
            o = off[off["trip"] == trip].groupby(factor)["mean"].mean()
            ax.plot(o.index, o.to_numpy() / 1e3, color="black", linestyle=":", linewidth=1,
                    label="offered (all schemes)")
            dt = thr[thr["trip"] == trip]
            for scheme in style.order(dt["scheme"].unique()):
                _vs(ax, dt, factor, scheme, 1e-3)
            ax.set_ylabel("delivered throughput (kpps)")
            ax.set_xlabel(label(factor))
            _level_ticks(ax, roles.levels[factor])
            _panel_title(ax, f"throughput: {trip_title(trip)}")
            for row, (frame, what, ylab) in enumerate(((drops, "drops", "dropped (% of sent)"),
                                                       (inflight, "backlog", "still queued at the end (% of sent)")),
                                                      start=1):
                ax2 = axes[row][j]
                dd = frame[frame["trip"] == trip]
                for scheme in style.order(dd["scheme"].unique()):
                    _vs(ax2, dd, factor, scheme, 1.0)
                ax2.yaxis.set_major_formatter(PercentFormatter(1.0))
                ax2.set_ylabel(ylab)
                ax2.set_xlabel(label(factor))
                _level_ticks(ax2, roles.levels[factor])
                _panel_title(ax2, f"{what}: {trip_title(trip)}")
        fig.suptitle("Where each scheme saturates" + (f" — {roles.describe(fixed)}" if fixed else ""))
        _legend(fig, axes, ncol=6)
    return arrange(fig)


# -- where the time goes ----------------------------------------------------------------------

def _cut_at(totals: np.ndarray) -> float | None:
    """Where to cut a bar axis so bars over `OUTLIER_RATIO` x the median do not squash the rest
    (None: no outlier)."""
    pos = totals[totals > 0]
    if len(pos) < 3:
        return None
    med = float(np.median(pos))
    rest = pos[pos <= OUTLIER_RATIO * med]
    if len(rest) == len(pos) or not len(rest):
        return None
    return float(rest.max()) * 1.6


def fig_stages(res: Results, roles: Roles, ref: dict, stats: PacketStats):
    sub = select(stats.means, ref)
    b = stages.breakdown(sub, ["trip", "scheme"], stages.declared_groups(res))
    tr = [t for t in trips(res) if t in set(b["trip"])]
    if not tr:
        return None
    n = b["scheme"].nunique()
    with plt.rc_context(style.RC):
        fig, axes = _figure(1, len(tr), h=0.36 * n + 2.6)
        for j, trip in enumerate(tr):
            ax = axes[0][j]
            bt = b[b["trip"] == trip].set_index("scheme")
            names = style.order(bt.index)[::-1]
            left = np.zeros(len(names))
            for g in stages.ALL_GROUPS:
                vals = bt.loc[names, g].to_numpy() * _US
                if not np.any(vals > 0):
                    continue
                ax.barh(names, vals, left=left, color=stages.COLORS[g], label=g, edgecolor="white", linewidth=0.4)
                left += vals
            cut = _cut_at(left)
            for k, s in enumerate(names):
                passes = f"{bt.loc[s, 'n_passes']:.0f} pass{'es' if bt.loc[s, 'n_passes'] >= 1.5 else ''}"
                if cut is not None and left[k] > cut:      # the bar runs off the cut axis: value inside it
                    ax.text(cut * 0.98, k, f"{left[k]:.2f} µs, {passes} ▶", va="center", ha="right", fontsize=7,
                            color="white", fontweight="bold")
                else:
                    ax.text(left[k], k, f" {left[k]:.2f} µs, {passes}", va="center", fontsize=7)
            if cut is not None:
                over = [(s, left[k]) for k, s in enumerate(names) if left[k] > cut]
                _add_note(fig, f"The {trip} axis is cut at {cut:.2f} µs so the other bars stay readable: "
                               + ", ".join(f"{s} ({v:.2f} µs)" for s, v in over) + " runs off it.")
            ax.set_xlim(0, cut if cut is not None else left.max() * 1.35)
            ax.set_xlabel("mean latency per delivered packet (µs)")
            _panel_title(ax, trip_title(trip))
            for tick in ax.get_yticklabels():
                tick.set_color(style.color(tick.get_text()))
        fig.suptitle(f"Where the time goes (CPU per stage group, then queueing) — {roles.describe(ref)}")
        handles, labels = axes[0][0].get_legend_handles_labels()
        for ax in axes[0][1:]:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        fig.legend(handles, labels, loc="lower center", ncol=4, frameon=False)
    return arrange(fig)


# -- memory -------------------------------------------------------------------------------------

def fig_memory(res: Results, roles: Roles, ref: dict):
    if res.memory.empty:
        return None
    fixed = {k: v for k, v in ref.items() if k != roles.namespaces}
    # memory does not depend on the run's own namespace count: take the reference variant
    mt = select(metrics.memory_total(res), ref)
    ms = select(metrics.memory_by_structure(res), ref)
    if mt.empty:
        return None
    band = robustness.memory_band(res)
    if band is not None:                 # the range over the profile's memory size ranges (low, high)
        mt = mt.merge(band, on=[c for c in band.columns if c not in ("low", "high")], how="left")
    banded = []
    top = mt["namespaces"].max()
    with plt.rc_context(style.RC):
        fig, axes = _figure(1, 2, w=12, h=5.2)
        ax = axes[0][0]
        for scheme in style.order(mt["scheme"].unique()):
            d = mt[mt["scheme"] == scheme].sort_values("namespaces")
            ax.plot(d["namespaces"], d["mean"], **style.line_kw(scheme))
            if band is not None and (d["high"] > d["low"]).any():
                ax.fill_between(d["namespaces"], d["low"], d["high"], color=style.color(scheme), alpha=0.18, lw=0)
                banded.append(scheme)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.yaxis.set_major_formatter(FuncFormatter(_bytes_fmt))
        ax.set_xlabel("namespaces (log scale)")
        ax.set_ylabel("kernel memory for networking isolation (bytes, log scale)")
        ax.set_title("total vs namespace count")
        ax2 = axes[0][1]
        d = ms[ms["namespaces"] == top]
        piv = d.pivot_table(index="scheme", columns="structure", values="mean", aggfunc="sum").fillna(0.0)
        names = style.order(piv.index)[::-1]
        piv = piv.loc[names]
        structs = piv.sum(axis=0).sort_values(ascending=False).index.tolist()
        cmap = plt.get_cmap("tab20")
        left = np.zeros(len(names))
        tot = piv.sum(axis=1).to_numpy()
        for k, s in enumerate(structs):
            v = piv[s].to_numpy() / np.where(tot > 0, tot, 1)
            ax2.barh(names, v, left=left, color=cmap(k % 20), label=s, edgecolor="white", linewidth=0.4)
            left += v
        top_band = mt[mt["namespaces"] == top].set_index("scheme") if band is not None else None
        for k in range(len(names)):
            text = _bytes_fmt(tot[k])
            if top_band is not None and names[k] in top_band.index:
                lo, hi = (float(top_band.loc[names[k], e]) for e in ("low", "high"))
                a, b = _bytes_fmt(lo), _bytes_fmt(hi)
                if a != b:
                    same = a.split(" ")[-1] == b.split(" ")[-1]
                    text += f"\n({a.split(' ')[0] if same else a}–{b})"
            ax2.text(1.01, k, text, va="center", fontsize=7, linespacing=1.0)
        ax2.set_xlim(0, 1.25)
        ax2.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax2.set_xlabel(f"share of total at {top:,} namespaces (total at right)")
        ax2.set_title(f"stacked by kernel structure, {top:,} namespaces")
        for tick in ax2.get_yticklabels():
            tick.set_color(style.color(tick.get_text()))
        ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=4, frameon=False, fontsize=7)
        fig.suptitle("Memory per scheme vs number of namespaces" + (f" — {roles.describe(fixed)}" if res.multi and
                                                                    roles.other else ""))
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=4, frameon=False,
                  fontsize=7)
    if banded:
        d = mt[mt["scheme"].isin(banded)]
        down, up = float((1 - d["low"] / d["mean"]).max()), float((d["high"] / d["mean"] - 1).max())
        _add_note(fig, "Shaded around a curve, and in brackets under a total: its range over the profile's memory size "
                       "ranges (every size with a range at its low end, then at its high end; the schemes whose "
                       f"structures hold one: {', '.join(banded)}); here at most −{down:.1%} / +{up:.1%} of a total"
                       + (", narrower than the lines on these log axes." if max(down, up) < 0.05 else "."))
    return arrange(fig)


def _bytes_fmt(v, _=None) -> str:
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(v) >= div:
            return f"{v / div:.0f} {unit}" if v / div >= 100 else f"{v / div:.3g} {unit}"
    return f"{v:g} B"


# -- CPU --------------------------------------------------------------------------------------

def fig_cpu(res: Results, roles: Roles, ref: dict):
    u = metrics.utilisation(res)
    if u.empty:
        return None
    lv = roles.levels[roles.load] if roles.load else []
    # the lowest, a middle and the highest load: a panel per level of a long load curve is unreadable
    loads = [None] if roles.load is None else sorted({lv[0], lv[len(lv) // 2], lv[-1]})
    with plt.rc_context(style.RC):
        fig, axes = _figure(1, len(loads), h=4.4)
        for i, ld in enumerate(loads):
            fixed = dict(ref)
            if roles.load:
                fixed[roles.load] = ld
            d = select(u, fixed)
            ax = axes[0][i]
            names = style.order(d["scheme"].unique())
            d = d.assign(core=d["core"].astype(int))
            cores = sorted(d[["host", "core"]].drop_duplicates().itertuples(index=False, name=None))
            w = 0.8 / max(1, len(cores))
            for c, (host, core) in enumerate(cores):
                dc = d[(d["host"] == host) & (d["core"] == core)].set_index("scheme").reindex(names)
                x = np.arange(len(names)) + (c - (len(cores) - 1) / 2) * w
                ax.bar(x, dc["mean"].to_numpy(), w * 0.95, color=[style.color(n) for n in names],
                       alpha=1.0 - 0.45 * (c % 2), edgecolor="black", linewidth=0.4,
                       hatch=None if c % 2 == 0 else "//")
                if np.isfinite(dc["ci"]).any():
                    ax.errorbar(x, dc["mean"], yerr=dc["ci"], fmt="none", ecolor="black", capsize=2, linewidth=0.8)
            ax.set_xticks(np.arange(len(names)), names, rotation=40, ha="right")
            for tick in ax.get_xticklabels():
                tick.set_color(style.color(tick.get_text()))
            ax.set_ylim(0, 1.05)
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
            ax.set_ylabel("core busy (% of measured time)")
            hosts = sorted({h for h, _ in cores})
            lbl = ", ".join(f"{h}:core{c}" for h, c in cores) if len(hosts) > 1 else \
                ", ".join(f"core {c}" for _, c in cores)
            ax.set_title((f"{ld:,.0f} pps per flow" if ld is not None else "") + f"\nbars left to right: {lbl}"
                         + ("; hatched = odd cores" if len(cores) > 1 else ""))
        rest = {k: v for k, v in ref.items() if k != roles.load}
        fig.suptitle("CPU utilisation per core per scheme" + (f" — {roles.describe(rest)}" if rest else ""))
    return arrange(fig)


# -- claims: sensitivity of each verdict to the cost profile's ranges ---------------------

TORNADO_TERMS = 8


def fig_tornado(panels: list[tuple[str, Robustness]]):
    """One tornado panel per claim (`panels`: (title, `analysis.robustness.Robustness`) with
    bars): the claim's quantity with each of its `TORNADO_TERMS` most influential cost terms
    alone at the low and at the high end of its range, from the value at the run's profile (grey
    line); the rule's threshold is the red dashed line.  None if no claim has bars."""
    panels = [(t, r) for t, r in panels if r.bars]
    if not panels:
        return None
    n = len(panels)
    ncols = 2 if n > 1 else 1
    nrows = (n + ncols - 1) // ncols
    fig, axes = _figure(nrows, ncols, w=6.4 * ncols + 0.6, h=3.2 * nrows + 1.0)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.set_visible(False)
            continue
        title, r = panels[k]
        bars = r.bars[:TORNADO_TERMS][::-1]          # the most influential on top
        y = np.arange(len(bars))
        pct = r.unit == "fraction"
        s = 100.0 if pct else 1.0
        q0 = r.nominal * s
        lo = [b.q_low * s - q0 for b in bars]
        hi = [b.q_high * s - q0 for b in bars]
        ax.barh(y, lo, left=q0, height=0.38, align="edge", color="#1f77b4", label="term at its range's low end")
        ax.barh(y - 0.38, hi, left=q0, height=0.38, align="edge", color="#ff7f0e",
                label="term at its range's high end")
        ax.set_yticks(y, [term_name(b.term) + (" ⚑" if b.flips else "") for b in bars], fontsize=7)
        ax.axvline(q0, color="#4c4c4c", lw=1)
        if r.threshold == r.threshold:
            ax.axvline(r.threshold * s, color="#b71c1c", ls="--", lw=1.2, label="the rule's threshold")
        if pct:
            ax.xaxis.set_major_formatter(PercentFormatter(decimals=None))
        ax.set_xlabel(r.quantity.split(" (")[0] + (" (%)" if pct else ""), fontsize=8)
        ax.set_title(title, fontsize=9)
    _legend(fig, axes[0, :1], ncol=3)
    fig.suptitle("Sensitivity of each claim to the cost profile's ranges (one term at a time; ⚑: flips the "
                 "verdict alone)", fontsize=10)
    return arrange(fig)
