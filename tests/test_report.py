"""The design-review report: numbers equal their sources, the HTML renders in a real browser.

One shortened run of the default scenario (every scheme, two loads, 1 and 10 namespaces,
memory up to 10,000 namespaces; ~5 s) feeds every test; the report is written once.

* Number check: every number in the report's tables (results, stage breakdown, capability
  matrix, claims evidence) is recomputed here *independently* — straight from points.csv,
  memory.csv, the packets/ dataset and sim/data/schemes.yaml with pandas, not through
  `analysis` — and compared with the printed text to within its last printed digit.
* Browser: headless Chromium loads the HTML from a file URL with networking off; no console
  errors, every <img> loaded (complete, natural width > 0), and a screenshot that is not
  blank.  If `chromium` is missing it is installed with apt-get only when running as root
  and ``CI=true`` or ``NETNS_SIM_INSTALL=1`` (tests/debpkg.py); otherwise the test is skipped with the
  reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import browser
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
import yaml

# Every test here runs the CLI on whole scenarios (the module fixture alone takes ~20 s).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
LOAD, NS = "flows.0.rate_pps", "hosts.*.namespaces"


def _run(*args, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([PY, "-m", "sim", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr
    return p


def _small_scenario(path):
    """A shortened default scenario (two loads, 10 and 100 namespaces, 5 ms) written to `path`."""
    path.write_text(yaml.safe_dump({
        "extends": str(ROOT / "scenarios" / "rfc2006-schemes.yaml"), "name": "small",
        "run": {"duration_ns": 5.0e6, "warmup_ns": 1.0e6},
        "memory_namespace_counts": [1, 100, 1000, 10000],
        "compare": {"flows.0.rate_pps": [50000, 500000], "hosts.*.namespaces": [10, 100]}}))
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    scen = _small_scenario(tmp / "small.yaml")
    res = tmp / "res"
    _run("run", str(scen), "--out", str(res), "--quiet")
    out = tmp / "rep" / "review.html"
    p = _run("report", str(res), "--out", str(out))
    assert str(out) in p.stdout                       # the command prints where the report is
    return {"res": res, "html": out, "md": out.with_suffix(".md"), "figs": out.parent / "review_figures"}


# -- parsing the HTML tables ------------------------------------------------------------------

class _Tables(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables: dict[str, dict] = {}
        self._t = self._row = self._cell = None
        self._in_head = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._t = {"header": [], "rows": [], "best": set()}
            self.tables[a.get("id", f"t{len(self.tables)}")] = self._t
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr" and self._t is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
            self._cell_best = "best" in (a.get("class") or "")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell).strip()
            if self._in_head:
                self._t["header"].append(text)
            else:
                if self._cell_best:
                    self._t["best"].add((len(self._t["rows"]), len(self._row)))
                self._row.append(text)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if not self._in_head:
                self._t["rows"].append(self._row)
            self._row = None
        elif tag == "thead":
            self._in_head = False
        elif tag == "table":
            self._t = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables_of(path: Path) -> dict[str, dict]:
    p = _Tables()
    p.feed(path.read_text())
    return p.tables


def num(text: str) -> tuple[float, int]:
    """Printed number -> (value, decimals shown); '≥', '★', ',', '%', units stripped."""
    t = text.replace("★", "").replace("≥", "").replace(",", "").strip()
    m = re.search(r"[-+]?\d+(?:\.(\d+))?", t)
    assert m, f"no number in {text!r}"
    return float(m.group(0)), len(m.group(1) or "")


def close(text: str, expected: float, scale: float = 1.0) -> bool:
    """``text`` shows ``expected * scale`` rounded to its printed decimals."""
    v, d = num(text)
    return abs(v - expected * scale) <= 0.5 * 10 ** -d * 1.0001 + 1e-9


UNIT_BYTES = {"GB": 1e9, "MB": 1e6, "kB": 1e3, "B": 1.0}


def bytes_close(text: str, expected: float) -> bool:
    """``text`` (``36.1 MB``; a memory cell's bracketed range after it is left out) shows `expected`."""
    text = text.split(" (")[0]
    v, d = num(text)
    mult = UNIT_BYTES[text.replace("★", "").split()[-1]]
    return abs(v * mult - expected) <= 0.5 * 10 ** -d * mult * 1.0001


def band_close(text: str, low: float, high: float) -> bool:
    """A memory cell's bracketed range (``36.1 MB (35.5–36.4 MB)``, ``980 kB–1.02 MB`` across units)
    shows [low, high]; a cell without one: the two ends print the same."""
    m = re.search(r"\(([\d.]+)(?: (\w+))?–([\d.]+) (\w+)\)", text)
    if not m:
        return bytes_close(text, low) and bytes_close(text, high) or _same_printed(low, high)
    a, ua, b, ub = m.groups()
    return bytes_close(f"{a} {ua or ub}", low) and bytes_close(f"{b} {ub}", high)


def _same_printed(low: float, high: float) -> bool:
    from analysis.tables import fmt_bytes
    return fmt_bytes(low) == fmt_bytes(high)


def memory_ends(m: pd.DataFrame, profile_yaml: Path) -> tuple[pd.Series, pd.Series]:
    """memory.csv's bytes with every size that has a range at its low end and at its high end,
    recomputed here from the term columns and the profile file (not through sim or analysis)."""
    mb = yaml.safe_load(profile_yaml.read_text())["memory_bytes"]
    key, page = m["size_key"].fillna(""), m["page_bytes"].fillna(0)
    whole = page.where(page > 0, 1)
    out = []
    for end in (0, 1):
        size = {k: v for k, v in mb.items() if k != "range"}
        size.update({k: r[end] for k, r in mb["range"].items()})
        linear = m["size_count"] * np.array([size.get(k, 0.0) if k else 0.0 for k in key])
        udp, tcp = m["udp_slots"] * size["udp_hash_slot"], m["tcp_buckets"] * size["socket_hash_bucket"]
        udp = np.where(page > 0, np.ceil(udp / whole) * page, udp)
        tcp = np.where(page > 0, np.ceil(tcp / whole) * page, tcp)
        tables = m["size_count"] * (udp + tcp + m["fixed_bytes"])
        out.append(pd.Series(np.where(key != "", linear, tables), index=m.index))
    return out[0], out[1]


# -- independent recomputation ---------------------------------------------------------------

@pytest.fixture(scope="module")
def data(report):
    res = report["res"]
    s = pd.read_csv(res / "points.csv")
    m = pd.read_csv(res / "memory.csv")
    fl = pd.read_csv(res / "flows.csv")
    p = ds.dataset(res / "packets", format="parquet", partitioning="hive").to_table().to_pandas()
    warm = yaml.safe_load((res / "scenario.resolved.yaml").read_text())["run"]["warmup_ns"]
    p = p[p["t_sent_ns"] >= warm]
    lo, hi = s[LOAD].min(), s[LOAD].max()
    ns_levels = sorted(s[NS].unique())
    ref_ns = max(x for x in ns_levels if x <= 100)
    m_low, m_high = memory_ends(m, ROOT / "sim" / "profiles" / "default.yaml")
    return {"s": s, "m": m, "f": fl, "p": p, "lo": lo, "hi": hi, "ref_ns": ref_ns, "m_low": m_low, "m_high": m_high}


def sval(s, **eq):
    d = s
    for k, v in eq.items():
        d = d[d[k] == v]
    assert len(d) >= 1, eq
    return float(d["value"].mean())


def test_results_tables_equal_summary_and_memory(report, data):
    s, m, lo, hi, ref_ns = data["s"], data["m"], data["lo"], data["hi"], data["ref_ns"]
    tabs = tables_of(report["html"])
    trips = sorted(s["trip"].dropna().unique())
    checked = 0
    for trip in trips:
        t = tabs[f"results-{trip}"]
        h = t["header"]
        assert len(t["rows"]) == 10, "one row per scheme"
        for row in t["rows"]:
            cell = dict(zip(h, row))
            scheme = cell["scheme"]
            at = dict(scheme=scheme, trip=trip)
            for col, metric in (("p50 (µs)", "latency_p50_ns"), ("p99 (µs)", "latency_p99_ns"),
                                ("p99.9 (µs)", "latency_p999_ns")):
                exp = sval(s, **at, metric=metric, **{LOAD: lo, NS: ref_ns})
                assert close(cell[col], exp, 1e-3), (trip, scheme, col, cell[col], exp)
            exp = sval(s, **at, metric="latency_p99_ns", **{LOAD: hi, NS: ref_ns})
            assert close(cell[f"p99 at {hi:,.0f} pps (µs)"], exp, 1e-3)
            thr = max(sval(s, **at, metric="throughput_pps", **{LOAD: x, NS: ref_ns}) for x in (lo, hi))
            assert close(cell["max throughput (kpps)"], thr, 1e-3), (scheme, cell["max throughput (kpps)"], thr)
            off = sval(s, **at, metric="offered_pps", **{LOAD: hi, NS: ref_ns})
            thr_hi = sval(s, **at, metric="throughput_pps", **{LOAD: hi, NS: ref_ns})
            assert cell["max throughput (kpps)"].startswith("≥") == (thr_hi >= 0.99 * off)
            d = s[(s.scheme == scheme) & (s.trip == trip) & (s[LOAD] == hi) & (s[NS] == ref_ns)]
            drops = d[d.metric.str.startswith("drops_")]["value"].sum() / d[d.metric == "sent"]["value"].sum()
            assert close(cell["drops at highest load (% of sent)"], drops, 100)
            for n in (1, 100, 1000, 10000):
                mm = m[(m.scheme == scheme) & (m.namespaces == n) & (m[LOAD] == lo) & (m[NS] == ref_ns)]
                text = cell[f"memory, {n:,} ns"]
                assert bytes_close(text, mm["bytes"].sum()), (scheme, n)
                low, high = data["m_low"][mm.index].sum(), data["m_high"][mm.index].sum()
                assert low <= mm["bytes"].sum() <= high and band_close(text, low, high), (scheme, n, text)
            checked += 1
        # the best latency per column is marked, and it is the minimum
        j = h.index("p50 (µs)")
        best_rows = {i for i, jj in t["best"] if jj == j}
        vals = [num(r[j])[0] for r in t["rows"]]
        assert best_rows == {i for i, v in enumerate(vals) if v == min(vals)}
    assert checked == 10 * len(trips)


def test_stage_tables_equal_packets(report, data):
    from analysis.stages import ALL_GROUPS, GROUPS, QUEUE_GROUPS  # the group *definitions* only
    p, lo, ref_ns = data["p"], data["lo"], data["ref_ns"]
    tabs = tables_of(report["html"])
    stage_of = {**GROUPS, **QUEUE_GROUPS}
    for trip in sorted(p["trip"].unique()):
        t = tabs[f"stages-{trip}"]
        h = t["header"]
        d = p[(p.trip == trip) & (p[LOAD] == lo) & (p[NS] == ref_ns) & (p.status == "delivered")]
        for row in t["rows"]:
            cell = dict(zip(h, row))
            g = d[d.scheme == cell["scheme"]]
            assert close(cell["passes"], g["n_passes"].mean())
            assert close(cell["mean latency (ns)"], g["latency_ns"].mean()), cell["scheme"]
            cpu = 0.0
            for name in ALL_GROUPS:
                cols = [f"{x}_ns" for x in stage_of[name] if f"{x}_ns" in g.columns]
                v = g[cols].fillna(0).sum(axis=1).mean()
                if name in GROUPS:
                    cpu += v
                if f"{name} (ns)" in cell:
                    assert close(cell[f"{name} (ns)"], v), (trip, cell["scheme"], name)
                else:
                    assert v == 0, f"group {name} hidden although non-zero"
            assert close(cell["CPU total (ns)"], cpu)


def test_capability_matrix_equals_scheme_data(report):
    spec = yaml.safe_load((ROOT / "sim" / "data" / "schemes.yaml").read_text())
    t = tables_of(report["html"])["capabilities"]
    h = t["header"]
    assert len(t["rows"]) == 10
    for row in t["rows"]:
        cell = dict(zip(h, row))
        s = spec[cell["scheme"]]
        assert num(cell["addresses / container"])[0] == s["addresses_per_container"]
        assert num(cell["devices / container"])[0] == s["devices_per_container"]
        assert cell["own routes"] == ("yes" if s["capabilities"]["own_routes"] else "no")
        assert cell["migration with its IP"] == ("yes" if s["capabilities"]["migration_with_ip"] else "no")
        assert num(cell["passes wire_to_ns"])[0] == len(s["trips"]["wire_to_ns"])
        assert num(cell["passes ns_to_ns"])[0] == len(s["trips"]["ns_to_ns"])


STAGE_EXCLUDE = {"t_sent_ns", "t_done_ns", "latency_ns", "queue_ns", "wire_ns", "link_queue_ns"}


def _evidence_value(src: str, data, known: dict) -> float:
    m = re.fullmatch(r"= (E\d+) / (E\d+) - 1", src)
    if m:
        return known[m.group(1)] / known[m.group(2)] - 1
    m = re.fullmatch(r"([\w./]+)\[(.*)\] (.+)", src)
    assert m, src
    f, spec, what = m.groups()
    eq = {}
    for kv in spec.split("; "):
        k, v = kv.split("=", 1)
        eq[k] = v
    frame = {"points.csv": data["s"], "memory.csv": data["m"], "flows.csv": data["f"], "packets/": data["p"]}[f]
    sel = pd.Series(True, index=frame.index)
    for k, v in eq.items():
        col = frame[k]
        sel &= (col == type(col.dropna().iloc[0])(v)) if col.dtype.kind in "if" else (col.astype(str) == v)
    d = frame[sel]
    assert len(d), src
    if f == "points.csv":
        return float(d[d.metric == what]["value"].mean())
    if f == "memory.csv":
        return float(d["bytes"].sum())
    if f == "flows.csv":
        return float(d[re.fullmatch(r"mean\((\w+)\)", what).group(1)].mean())
    d = d[d.status == "delivered"]
    col = re.fullmatch(r"mean\((\w+)\)", what).group(1)
    if col == "cpu_ns":
        cols = [c for c in d.columns if c.endswith("_ns") and c not in STAGE_EXCLUDE and not c.startswith("pass")]
        return float(d[cols].fillna(0).sum(axis=1).mean())
    return float(d[col].mean())


def test_claims_evidence_equals_sources(report, data):
    tabs = tables_of(report["html"])
    ev = tabs["evidence"]
    known, printed = {}, {}
    assert len(ev["rows"]) >= 20
    for eid, what, value, src in ev["rows"]:
        v = _evidence_value(src, data, known)
        known[eid] = v
        printed[eid] = value
        if value.endswith("%"):
            assert close(value, v, 100), (eid, what, value, v)
        elif value.endswith(" pps") or value.endswith(" tps"):
            assert close(value, v), (eid, what, value, v)
        elif value.endswith(" ns"):
            assert close(value, v), (eid, what, value, v)
        else:
            assert bytes_close(value, v), (eid, what, value, v)
    # every "figure (En)" quoted in a claim is the evidence item's printed value
    claims = tabs["claims"]
    assert len(claims["rows"]) == 14
    for row in claims["rows"]:
        for val, eid in re.findall(r"([-+][\d,.]+%) \((E\d+)\)", row[3]):
            assert printed[eid] == val, (eid, val)
        assert row[5] in ("supported", "contradicted") or row[5].startswith("outside the model: "), row[5]
    verdicts = [r[5] for r in claims["rows"]]
    assert verdicts[0] == "supported"           # l2-* pay for the second pass in this model
    assert verdicts[6] in ("supported", "contradicted")   # the default scenario has a multicast trip


def test_markdown_twin_has_the_same_tables(report):
    md = report["md"].read_text()
    tabs = tables_of(report["html"])
    for tid in ("results-wire_to_ns", "stages-ns_to_ns", "capabilities", "claims", "evidence"):
        for row in tabs[tid]["rows"][:3]:
            first = row[0] if tid != "claims" else row[1][:40]
            assert first.replace("★", "").strip() in md, (tid, first)
    for png in re.findall(r"\]\(([^)]+\.png)\)", md):
        assert (report["md"].parent / png).is_file()
    assert "## The thread's claims, measured" in md and "## Assumptions and limits of the model" in md


STEMS = ("latency_cdf", "latency_vs_load", "throughput_drops", "latency_vs_namespaces", "stages", "memory", "cpu")


def _figure_refs(text: str) -> set[str]:
    """Every ``*_figures/<file>`` a report text refers to (links, image sources)."""
    return set(re.findall(r"[\w.-]+_figures/[\w.-]+\.(?:png|svg)", text))


def test_figures_png_by_default_svg_when_asked(report, tmp_path):
    """Each figure is saved once per format asked: PNG by default, PNG and SVG with --svg; the
    report refers only to figure files that exist."""
    for stem in STEMS:
        assert (report["figs"] / f"{stem}.png").stat().st_size > 10_000
    assert not list(report["figs"].glob("*.svg"))
    out = tmp_path / "svg" / "r.html"
    _run("report", str(report["res"]), "--out", str(out), "--svg")
    figs = out.parent / "r_figures"
    for stem in STEMS:
        assert (figs / f"{stem}.png").stat().st_size > 10_000
        assert (figs / f"{stem}.svg").stat().st_size > 10_000
    assert {p.suffix for p in figs.iterdir() if not p.name.startswith(".")} == {".png", ".svg"}
    for html_path, md_path in ((report["html"], report["md"]), (out, out.with_suffix(".md"))):
        refs = _figure_refs(html_path.read_text()) | _figure_refs(md_path.read_text())
        assert refs, "the report refers to no figure file"
        for ref in refs:
            assert (html_path.parent / ref).is_file(), ref


def test_directory_of_runs_compares_the_varied_parameter(report, tmp_path):
    """Two runs differing in hosts.*.cores (2 vs 4) plus a second seed: a table column for the core count."""
    base = report["res"]
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copytree(base, runs / "cores2-seed1", ignore=shutil.ignore_patterns("review*", "report*"))
    scen = _small_scenario(tmp_path / "tiny.yaml")
    _run("run", str(scen), "--out", str(runs / "cores2-seed2"), "--quiet", "--seed", "2")
    _run("run", str(scen), "--out", str(runs / "cores4-seed1"), "--quiet", "--set", "hosts.*.cores=4")
    out = tmp_path / "multi.html"
    _run("report", str(runs), "--out", str(out))
    t = tables_of(out)["results-wire_to_ns"]
    assert "cores" in t["header"]
    cores = {r[t["header"].index("cores")] for r in t["rows"]}
    assert cores == {"2", "4"}
    assert len(t["rows"]) == 20
    # the 2-core rows average the two seeds
    s1 = pd.read_csv(runs / "cores2-seed1" / "points.csv")
    s2 = pd.read_csv(runs / "cores2-seed2" / "points.csv")
    row = next(r for r in t["rows"] if r[0] == "l2-routed" and r[1] == "2")
    at = dict(scheme="l2-routed", trip="wire_to_ns", metric="latency_p50_ns", **{LOAD: 50000, NS: 100})
    exp = (sval(s1, **at) + sval(s2, **at)) / 2
    assert close(row[t["header"].index("p50 (µs)")], exp, 1e-3)
    assert (out.parent / "multi_figures" / "latency_vs_cores.png").is_file()   # the varied parameter's own figure


# -- the browser -------------------------------------------------------------------------------

def test_html_renders_in_headless_chromium(report, tmp_path):
    browser.check(report["html"], tmp_path, min_images=7)


def test_sweep_directory(tmp_path):
    """A `netns-sim sweep` directory: replications averaged, the swept load on the x axis."""
    out = tmp_path / "sweep"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([PY, "-m", "sim", "sweep", "scenarios/sweep-load.yaml", "--out", str(out), "--quiet",
                        "--set", "run.duration_ns=2e6", "--jobs", "2"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    if p.returncode != 0 and "sweep" in p.stderr and "invalid choice" in p.stderr:
        pytest.skip("no sweep command")
    assert p.returncode == 0, p.stderr
    _run("report", str(out))
    t = tables_of(out / "report.html")["results-wire_to_ns"]
    assert len(t["rows"]) == 10
    pts = pd.read_csv(out / "points.csv")
    row = next(r for r in t["rows"] if r[0] == "l2-routed")
    load = "flows.*.rate_pps"                  # sweep-load.yaml sweeps every flow's rate
    exp = pts[(pts.scheme == "l2-routed") & (pts.trip == "wire_to_ns") & (pts.metric == "latency_p50_ns")
              & (pts[load] == pts[load].min())]["value"].mean()
    assert close(row[t["header"].index("p50 (µs)")], exp, 1e-3)
    assert (out / "report_figures" / "latency_vs_load.png").is_file()


def test_report_of_a_run_without_a_load_factor(tmp_path):
    """hpc-multicast compares schemes only (no rate_pps factor): the latency CDF has one row of panels
    (it used to index the reference condition with a load factor of None and fail)."""
    res = tmp_path / "res"
    _run("run", str(ROOT / "scenarios" / "hpc-multicast.yaml"), "--set", "run.duration_ns=2e6",
         "--set", "run.warmup_ns=2e5", "--out", str(res), "--quiet")
    _run("report", str(res))
    assert (res / "report_figures" / "latency_cdf.png").stat().st_size > 10_000


def test_socket_tables_section_equals_memory_and_packets(tmp_path):
    """scenarios/socket-tables.yaml: the report's per-namespace vs shared tables (equal table size,
    equal lookup cost) recomputed from memory.csv and packets/ with pandas."""
    res = tmp_path / "res"
    _run("run", str(ROOT / "scenarios" / "socket-tables.yaml"), "--set", "run.duration_ns=2e6",
         "--set", "run.warmup_ns=2e5", "--out", str(res), "--quiet")
    _run("report", str(res))
    t = tables_of(res / "report.html")["socket-tables-equal-size"]
    tab, buckets = "hosts.*.socket_tables", "hosts.*.socket_hash_buckets"
    m = pd.read_csv(res / "memory.csv")
    m = m[(m.structure == "socket_hash_tables") & (m.namespaces == m.namespaces.max())]
    mem = m.set_index([tab, buckets]).bytes
    p = ds.dataset(res / "packets", format="parquet", partitioning="hive").to_table().to_pandas()
    p = p[(p.t_sent_ns >= 2e5) & (p.status == "delivered")]
    p[buckets] = p[buckets].astype(int)
    look = p.groupby([tab, buckets]).socket_lookup_ns.mean()
    sizes = sorted(m[buckets].unique())
    assert [int(num(r[0])[0]) for r in t["rows"]] == sizes
    for row, b in zip(t["rows"], sizes):
        assert close(row[1], look[("per_namespace", b)]) and close(row[3], look[("shared_permuted", b)])
        assert bytes_close(row[2], mem[("per_namespace", b)]) and bytes_close(row[4], mem[("shared_permuted", b)])
    # equal lookup cost: the smallest shared table within 5% of the per-namespace tables' lookup
    base = look[("per_namespace", sizes[0])]
    cheap = min(b for b in sizes if look[("shared_permuted", b)] <= 1.05 * base)
    text = (res / "report.md").read_text()
    assert f"has {cheap:,} slots" in text
    ratio = mem[("per_namespace", sizes[0])] / mem[("shared_permuted", cheap)]
    assert f"take {ratio:,.1f}x the shared table's memory" in text
    # the thread's premise: at equal size, per-namespace tables cost far more memory, shared ones lookups
    first = t["rows"][0]
    assert num(first[5])[0] > 10 and num(first[6])[0] > 10


def test_a_calibrated_profile_says_where_it_was_measured_and_how_it_did(tmp_path):
    """With a calibrated profile (the development machine's), the report's setup names the
    machine and kernel it belongs to, how its round trips were taken and how many held-out
    setups met issue 12's targets, counted from the profile's own validation rows."""
    from sim.calibrate import profile_io
    record = profile_io.read_calibration(ROOT / "sim" / "profiles" / "amd-epyc-6.18.44.yaml")
    held = [r for r in record["validation"] if r["role"] == "held-out"]
    within = sum(r["extra_error_pct"] is not None and abs(r["extra_error_pct"]) <= 20 for r in held)
    res = tmp_path / "res"
    _run("run", str(ROOT / "scenarios" / "hpc-multicast.yaml"), "--set", "run.duration_ns=1e6",
         "--set", "run.warmup_ns=1e5", "--set", "cost_profile=amd-epyc-6.18.44", "--out", str(res), "--quiet")
    _run("report", str(res))
    text = " ".join((res / "report.md").read_text().split())
    info = record["host"]
    assert f"Calibrated on {info['cpu_model']} ({info['cpus']} CPUs), kernel {info['kernel']}" in text
    assert "belongs to the machine it was measured on" in text
    assert "blocking receives" in text and "stage costs measured with perf" in text
    n_inc = sum(r["extra_error_pct"] is not None for r in held)
    assert f"kernel-only increment within 20% for {within} of {n_inc}" in text
