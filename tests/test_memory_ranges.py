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
