"""Plausible ranges of the memory sizes (issue 13): the profile's ``memory_bytes.range``, how
it is validated, how calibration derives it, and that the shipped profiles' ranges hold their
values and rest on the committed measurement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sim.calibrate import memory as mem
from sim.core.costs import MEMORY_COUNTS, MemorySizes, load_profile

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "sim" / "profiles"
RECORD = json.loads((PROFILES / "amd-epyc-6.18.44.calibration.json").read_text())["memory"]


def _profile_with_range(tmp_path: Path, rng: dict) -> Path:
    data = yaml.safe_load((PROFILES / "default.yaml").read_text())
    data["memory_bytes"]["range"] = rng
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("name", ["default", "amd-epyc-6.18.44"])
def test_shipped_ranges_hold_their_values_and_are_bytes_not_counts(name):
    sizes = load_profile(name).memory_bytes
    assert sizes.range, name
    for key, (lo, hi) in sizes.range.items():
        assert 0 <= lo <= getattr(sizes, key) <= hi and lo < hi, key
        assert key not in MEMORY_COUNTS


def test_every_range_has_its_basis_in_the_default_profile():
    """Each size says in a "range:" comment line what its range rests on, or why it has none."""
    from analysis.profile import parse
    _, notes = parse((PROFILES / "default.yaml").read_text())
    sizes = load_profile("default").memory_bytes
    for key in sizes.sizes():
        note = notes[("memory_bytes", key)]
        if key in MEMORY_COUNTS:
            continue
        assert "range:" in note, key
        if key in sizes.range:
            lo, hi = sizes.range[key]
            assert f"range: [{lo}, {hi}]" in note, key
        else:
            assert "range: none" in note, key


@pytest.mark.parametrize("rng, words", [
    ({"netns_subsystems": [1, 2]}, ["memory_bytes.range.netns_subsystems", "does not contain", "162951",
                                    "low <= 162951 <= high"]),
    ({"netns_subsystems": [170000, 150000]}, ["memory_bytes.range.netns_subsystems", "low 170000 > high 150000",
                                              "[150000, 170000]"]),
    ({"udp_hash_buckets": [64, 256]}, ["memory_bytes.range.udp_hash_buckets", "a count", "remove udp_hash_buckets",
                                       "hosts[].socket_hash_buckets"]),
    ({"no_such_size": [1, 2]}, ["memory_bytes.range.no_such_size", "unknown size", "netns_subsystems"]),
    ({"netns_subsystems": [-5, 200000]}, ["memory_bytes.range.netns_subsystems", "greater than or equal to 0"]),
])
def test_a_bad_range_is_refused_naming_the_key_and_the_fix(tmp_path, rng, words):
    path = _profile_with_range(tmp_path, rng)
    with pytest.raises(ValueError) as e:
        load_profile(str(path))
    text = str(e.value)
    assert text.startswith(f"{path} is not a cost profile")
    for w in words:
        assert w in text, (w, text)


def test_an_overridden_size_loses_its_range_and_a_range_cannot_be_overridden():
    prof = load_profile("default")
    assert "netns_subsystems" in prof.memory_bytes.range
    moved = prof.with_overrides(memory_bytes={"netns_subsystems": 100000})      # outside the range: allowed
    assert moved.memory_bytes.netns_subsystems == 100000 and "netns_subsystems" not in moved.memory_bytes.range
    assert moved.memory_bytes.range["netdev_other"] == prof.memory_bytes.range["netdev_other"]
    with pytest.raises(ValueError, match="memory_bytes.range cannot be overridden"):
        prof.with_overrides(memory_bytes={"range": {}})


def test_derive_gives_the_measured_terms_the_spread_of_the_records_estimates_at_scale():
    """The committed record holds two estimates per unit at scale (100 -> 1000, the headline, and
    0 -> 1000): each measured term's range is the term derived from each, the others held; the
    first 100 units (cheaper: half-used slab pages) are not in it.  That is the calibrated
    profile's range, and the default profile's ranges contain it."""
    prior = load_profile("default").memory_bytes.model_dump()
    sizes, notes = mem.derive(RECORD, prior)
    assert notes == {}
    cal = load_profile("amd-epyc-6.18.44").memory_bytes
    assert MemorySizes.model_validate(sizes) == cal
    cpus = RECORD["possible_cpus"]
    overall = RECORD["namespace"]["overall"]
    lo_per_cpu = round((overall["percpu_bytes"] - sizes["netdev_per_cpu"] * cpus) / cpus)
    assert sizes["range"]["netns_per_cpu"] == [lo_per_cpu, sizes["netns_per_cpu"]]
    first = mem._namespace_terms(sizes, RECORD["namespace"]["steps"][0], cpus, lambda n, v: round(v))
    assert first["netns_subsystems"] < sizes["range"]["netns_subsystems"][0]       # left out
    default = load_profile("default").memory_bytes.range
    for k, (lo, hi) in cal.range.items():
        assert default[k][0] <= lo and hi <= default[k][1], k


def test_a_record_with_one_estimate_per_unit_gives_no_range_to_the_measured_terms():
    rec = {"possible_cpus": 2,
           "namespace": {"count": 1000, "from_count": 100, "bytes": 240000.0, "percpu_bytes": 5600.0},
           "veth_pair": {"count": 1000, "from_count": 100, "bytes": 108000.0, "percpu_bytes": 2400.0}}
    sizes, _ = mem.derive(rec, load_profile("default").memory_bytes.model_dump())
    assert set(sizes["range"]) == {"bridge_port"}            # the prior's range of a size not measured
    MemorySizes.model_validate(sizes)


# -- memory.csv says what its bytes are made of ----------------------------------------------

def test_memory_csv_rows_recompute_from_their_terms_and_move_with_a_size(tmp_path):
    """Every memory.csv row's bytes follow from its term columns and the profile's sizes (the
    socket tables' page rounding included), for every scheme; with another size the same terms
    give what a run with that size writes."""
    import pandas as pd

    from sim.cli import main
    from sim.core.memory import SOCKET_TABLES, TERM_COLUMNS, bytes_at, row_bytes

    doc = {"name": "terms", "hosts": [{"name": "h0", "scheme": "l2-bridged", "namespaces": 3, "cores": 3}],
           "flows": [{"kind": "constant", "src": "h0:wire", "dst": "h0:ns*", "rate_pps": 1e5}],
           "run": {"duration_ns": 2e5}, "memory_namespace_counts": [1, 7, 300],
           "compare": {"hosts.*.scheme": ["l2-bridged", "shortcut-socket", "shortcut-routing", "l3-bind"]}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    outs = {}
    for name, sets in (("a", []), ("b", ["--set", "cost_overrides.memory_bytes.udp_hash_slot=100",
                                          "--set", "cost_overrides.memory_bytes.bridge_port=3000"])):
        assert main(["run", str(path), "--out", str(tmp_path / name), "--quiet", *sets]) == 0
        outs[name] = pd.read_csv(tmp_path / name / "memory.csv")
    a, b = outs["a"], outs["b"]
    assert set(TERM_COLUMNS) <= set(a.columns)
    sizes = load_profile("default").memory_bytes.sizes()
    assert bytes_at(a, sizes) == pytest.approx(a["bytes"].to_numpy(), rel=1e-12)
    for _, r in a.iterrows():
        assert row_bytes(r, sizes) == pytest.approx(r["bytes"], rel=1e-12)
    per_ns = a[(a.structure == SOCKET_TABLES) & (a.page_bytes > 0)]
    assert len(per_ns) and (per_ns.size_count == per_ns.namespaces + 1).all()
    moved = {**sizes, "udp_hash_slot": 100, "bridge_port": 3000}
    assert bytes_at(a, moved) == pytest.approx(b["bytes"].to_numpy(), rel=1e-12)
    assert not (bytes_at(a, moved) == a["bytes"].to_numpy()).all()


# -- claim 5 over the memory size ranges (analysis.robustness.assess_memory) -----------------

def _part(rows: list[dict]):
    import pandas as pd

    from analysis import robustness
    from sim.core.memory import TERM_COLUMNS
    base = {"size_key": "", "size_count": 1.0, "udp_slots": 0, "tcp_buckets": 0, "fixed_bytes": 0.0, "page_bytes": 0}
    return robustness.MemoryPart(pd.DataFrame([{**base, **r} for r in rows], columns=list(TERM_COLUMNS)))


def _ratio_rule(lim: float):
    from analysis import robustness

    def q(b):
        return b["a"] / b["b"]
    return robustness.MemoryRule(("a", "b"), quantity=q, margin=lambda b: q(b) - lim, threshold=lim, what="a / b")


SIZES = {"udp_hash_slot": 64.0, "socket_hash_bucket": 8.0, "netns_subsystems": 160000.0, "bridge_port": 1024.0}


def test_a_ratio_whose_bytes_per_slot_cancel_is_decided_by_definition_and_says_why():
    """Two shared tables (no page rounding), 4x the slots of the other: the ratio is one of slot
    counts whatever a slot costs, so its range cancels; a range on a size they are not made of
    does not enter."""
    from analysis import robustness
    a = _part([{"udp_slots": 4096, "tcp_buckets": 0}])
    b = _part([{"udp_slots": 1024, "tcp_buckets": 0}])
    r = robustness.assess_memory(_ratio_rule(2.0), {"a": a, "b": b}, SIZES,
                                 {"udp_hash_slot": (16.0, 128.0), "netns_subsystems": (150000.0, 170000.0)})
    assert r.label == robustness.DEFINITION and r.nominal == pytest.approx(4.0)
    assert "udp_hash_slot moves the compared quantities in proportion: the bytes per unit cancel" in r.text
    assert "the sizes with a range (netns_subsystems) are not in them" in r.text
    # with no range on what they are made of: said so, not "cancels"
    r = robustness.assess_memory(_ratio_rule(2.0), {"a": a, "b": b}, SIZES, {"bridge_port": (1024.0, 6056.0)})
    assert r.label == robustness.DEFINITION and "made of socket_hash_bucket and udp_hash_slot, which have no range" \
        in r.text


def test_page_rounding_that_absorbs_a_range_is_named():
    from analysis import robustness
    a = _part([{"udp_slots": 128, "tcp_buckets": 128, "page_bytes": 4096, "size_count": 1001.0}])
    b = _part([{"udp_slots": 16384, "tcp_buckets": 0, "fixed_bytes": 2.0e6}])
    r = robustness.assess_memory(_ratio_rule(1.0), {"a": a, "b": b}, SIZES, {"socket_hash_bucket": (4.0, 16.0)})
    assert r.label == robustness.DEFINITION and "socket_hash_bucket stays within the same whole pages" in r.text


def test_the_flip_point_of_a_memory_ratio_is_the_closed_form_and_the_tornado_bars_are_exact():
    """a = 1000 x bridge_port, b = 100 x netns_subsystems / 1000: a / b >= 60 flips where
    bridge_port = 60 x b / 1000; every corner is evaluated, so the worst corner is the exact
    minimum of the ratio over the box."""
    from analysis import robustness
    a = _part([{"size_key": "bridge_port", "size_count": 1000.0}])
    b = _part([{"size_key": "netns_subsystems", "size_count": 0.1}])
    ranges = {"bridge_port": (1024.0, 6056.0), "netns_subsystems": (150000.0, 170000.0)}
    r = robustness.assess_memory(_ratio_rule(60.0), {"a": a, "b": b}, SIZES, ranges)
    # nominal 1024000 / 16000 = 64 >= 60: supported; bridge_port below 60 x 16000 / 1000 = 960 would flip,
    # but its range starts at 1024; netns_subsystems above 1024000 / 60 / 0.1 = 170666.7 would, range ends at 170000
    assert r.label == robustness.HOLDS and r.worst == pytest.approx(1024000 / 17000)
    assert {x.term for x in r.bars} == {("memory_bytes", "bridge_port"), ("memory_bytes", "netns_subsystems")}
    bar = next(x for x in r.bars if x.term[1] == "bridge_port")
    assert (bar.q_low, bar.q_high) == pytest.approx((64.0, 6056000 / 16000))
    r = robustness.assess_memory(_ratio_rule(60.0), {"a": a, "b": b}, SIZES,
                                 {**ranges, "netns_subsystems": (150000.0, 180000.0)})
    assert r.label == robustness.DEPENDS and r.flip_term == ("memory_bytes", "netns_subsystems")
    assert r.flip_value == pytest.approx(1024000 / 60 / 0.1, rel=1e-9) and r.flip_direction == "above"
    assert "flips when memory_bytes.netns_subsystems crosses 170,667 B" in r.text


def _claim5_run(tmp_path: Path, profile: Path, name: str, *sets: str):
    from analysis import claims
    from analysis.conditions import roles as find_roles
    from sim.cli import main
    from sim.results.reader import load

    doc = {"name": "claim5", "cost_profile": str(profile),
           "hosts": [{"name": "h0", "scheme": "shortcut-socket", "namespaces": 2, "cores": 2}],
           "flows": [{"kind": "constant", "src": "h0:wire", "dst": "h0:ns*", "rate_pps": 1e5}],
           "run": {"duration_ns": 2e5}, "memory_namespace_counts": [1, N_CLAIM5],
           "compare": {"hosts.*.scheme": ["shortcut-socket", "shortcut-routing"]}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = tmp_path / name
    assert main(["run", str(path), "--out", str(out), "--quiet", *sets]) == 0
    res = load(out)
    roles = find_roles(res.summary, res.factors)
    return claims.build(res, roles, roles.reference(), None)[0][4]


N_CLAIM5 = 2000


def _synthetic_profile(tmp_path: Path, rng: dict) -> Path:
    data = yaml.safe_load((PROFILES / "default.yaml").read_text())
    data["name"] = "synthetic"
    data["memory_bytes"]["range"] = rng
    path = tmp_path / "synthetic.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_claim5_depends_on_a_size_whose_range_crosses_the_threshold_and_flips_there(tmp_path):
    """At 2,000 namespaces the per-namespace tables (1 + 2,000 sets of a 2-page UDP table, a 1-page
    TCP ehash, locks and structs: 12,704 B) take 8.1x the shared ones (16,384 x 64 B + 262,144 x
    8 B + locks): contradicted (< 10x).  A TCP bucket of b bytes costs the shared table 262,144 b
    while every per-namespace ehash stays one page, so the ratio reaches 10x at b = 5.70 B; with a
    range of [4, 8] B the claim "depends on memory_bytes.socket_hash_bucket" with that flip point,
    and re-running with 5 B (past it) flips the verdict, with 6 B (before it) does not."""
    from analysis import claims, robustness
    prof = _synthetic_profile(tmp_path, {"socket_hash_bucket": [4, 8]})
    c = _claim5_run(tmp_path, prof, "nominal")
    assert c.verdict == claims.CONTRADICTED
    r = c.robustness
    assert r.label == robustness.DEPENDS and r.flip_term == ("memory_bytes", "socket_hash_bucket")
    one = 2 * 4096 + 4096 + 64 * 4 + 32 + 128
    flip = (one * (N_CLAIM5 + 1) / 10 - 16384 * 64 - 64 * 4) / 262144
    assert r.flip_value == pytest.approx(flip, rel=1e-6) and r.flip_direction == "below"
    assert robustness.fmt_term_value(r.flip_term, r.flip_value) in c.robustness_text
    assert "5.696 B" in c.robustness_text
    past = _claim5_run(tmp_path, prof, "past", "--set", "cost_overrides.memory_bytes.socket_hash_bucket=5")
    before = _claim5_run(tmp_path, prof, "before", "--set", "cost_overrides.memory_bytes.socket_hash_bucket=6")
    assert past.verdict == claims.SUPPORTED and before.verdict == claims.CONTRADICTED
    # a range that stays on one side: the verdict holds, from the same run's memory.csv
    prof2 = _synthetic_profile(tmp_path, {"socket_hash_bucket": [6, 8]})
    held = _claim5_run(tmp_path, prof2, "held")
    assert held.verdict == claims.CONTRADICTED and held.robustness.label == robustness.HOLDS
    assert held.robustness.worst == pytest.approx(one * (N_CLAIM5 + 1) / (16384 * 64 + 262144 * 6 + 256))


def test_claim5_with_the_default_profile_is_decided_by_definition_and_says_why(tmp_path):
    """The socket tables are made of udp_hash_slot and socket_hash_bucket, exact struct sizes
    with no range: the ranged sizes (remainders, per-CPU terms, bridge_port) are not in them."""
    from analysis import robustness
    c = _claim5_run(tmp_path, PROFILES / "default.yaml", "default")
    r = c.robustness
    assert r.label == robustness.DEFINITION and c.robustness_text.startswith(robustness.DEFINITION)
    assert "made of socket_hash_bucket and udp_hash_slot, which have no range" in r.text
    assert "netns_subsystems" in r.text and "the hosts set" in r.text


def test_the_memory_band_contains_the_nominal_total_and_is_the_all_low_all_high_sum(tmp_path):
    """Per scheme and count the band's ends bracket memory.csv's total, widen with the count for
    schemes made of ranged sizes, and are the totals a run with every ranged size at its low (or
    high) end writes."""
    from analysis import robustness
    from analysis.metrics import memory_total
    from sim.cli import main
    from sim.results.reader import load

    doc = {"name": "band", "hosts": [{"name": "h0", "scheme": "l2-bridged", "namespaces": 2, "cores": 2}],
           "flows": [{"kind": "constant", "src": "h0:wire", "dst": "h0:ns*", "rate_pps": 1e5}],
           "run": {"duration_ns": 2e5}, "memory_namespace_counts": [1, 100, 10000],
           "compare": {"hosts.*.scheme": ["l2-bridged", "shortcut-socket", "l2-routed"]}}
    path = tmp_path / "band.yaml"
    path.write_text(yaml.safe_dump(doc))
    rng = load_profile("default").memory_bytes.range
    outs = {}
    for name, end in (("nominal", None), ("low", 0), ("high", 1)):
        sets = [] if end is None else [x for k, r in rng.items()
                                       for x in ("--set", f"cost_overrides.memory_bytes.{k}={r[end]}")]
        assert main(["run", str(path), "--out", str(tmp_path / name), "--quiet", *sets]) == 0
        outs[name] = load(tmp_path / name)
    band = robustness.memory_band(outs["nominal"])
    keys = ["scheme", "namespaces"]
    tot = memory_total(outs["nominal"]).merge(band, on=[*keys, "hosts.*.scheme"])
    assert (tot["low"] <= tot["mean"]).all() and (tot["mean"] <= tot["high"]).all()
    for name, col in (("low", "low"), ("high", "high")):
        other = memory_total(outs[name])[[*keys, "mean"]]
        both = tot.merge(other, on=keys, suffixes=("", "_run"))
        assert both[col].to_numpy() == pytest.approx(both["mean_run"].to_numpy(), rel=1e-12)
    wide = tot.assign(w=tot["high"] - tot["low"]).set_index(keys)["w"]
    assert wide[("l2-bridged", 10000)] > wide[("l2-bridged", 100)] > 0
    assert wide[("l2-bridged", 100)] > wide[("l2-routed", 100)]          # bridge_port's range
    assert (wide.xs("shortcut-socket") == 0).all()          # ns_tag and shared tables: no size with a range


def test_memory_rows_written_before_the_size_terms_are_not_assessed():
    """Results from before memory.csv recorded its terms: no band and no memory label from them."""
    import pandas as pd

    from analysis import robustness
    old = pd.DataFrame({"scheme": ["x"], "namespaces": [1], "structure": ["netns_struct"], "bytes": [1.0]})
    assert not robustness.has_terms(old)
    assert not robustness.has_terms(old.assign(size_key=None, size_count=float("nan"), udp_slots=None,
                                               tcp_buckets=None, fixed_bytes=None, page_bytes=None))
