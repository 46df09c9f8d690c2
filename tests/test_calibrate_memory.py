"""The memory measurement of `netns-sim calibrate` without root: the per-unit arithmetic, the
remainders it derives, and a profile written from a recorded measurement.  (Building real
namespaces is tests/test_calibrate_real.py's, which needs root.)"""

import json

import pytest

from sim.calibrate import memory as mem
from sim.calibrate.__main__ import main
from sim.core.costs import MemorySizes, load_profile

PRIOR = load_profile("default").memory_bytes.model_dump()


def _snap(slab, percpu, caches=None):
    return {"meminfo": {**dict.fromkeys(mem.MEMINFO_KEYS, 0), "Slab": slab, "Percpu": percpu},
            "slab": caches, "t": 0.0}


def test_a_unit_costs_the_slab_and_percpu_it_added_divided_by_the_units():
    a = _snap(1_000_000, 50_000, {"kmalloc-2k": (100, 2048), "tiny": (10, 8)})
    b = _snap(1_000_000 + 10 * 200_000, 50_000 + 10 * 4_000, {"kmalloc-2k": (280, 2048), "tiny": (12, 8)})
    d = mem.delta(a, b, 10)
    assert d["bytes"] == 204_000 and d["percpu_bytes"] == 4_000
    assert d["slab_by_cache"] == {"kmalloc-2k": {"objects": 18.0, "object_size": 2048, "bytes": 36864}}
    assert mem.delta(_snap(0, 0), _snap(10, 0), 1).get("slab_by_cache") is None      # slabinfo unreadable


def test_the_headline_is_the_last_steps_marginal_cost(monkeypatch):
    snaps = iter([_snap(0, 0), _snap(100 * 150_000, 0), _snap(100 * 150_000 + 900 * 230_000, 900 * 5_000)])
    monkeypatch.setattr(mem, "snapshot", lambda settle_s: next(snaps))
    built = []
    r = mem._series((1000, 100), lambda made, n: built.append((made, n)), 0.0, "x", log=lambda m: None)
    assert built == [(0, 100), (100, 1000)]
    assert (r["from_count"], r["count"], r["bytes"], r["percpu_bytes"]) == (100, 1000, 235_000, 5_000)
    assert r["overall"]["bytes"] == pytest.approx((100 * 150_000 + 900 * 235_000) / 1000)
    assert [s["bytes"] for s in r["steps"]] == [150_000, 235_000]


RECORD = {"possible_cpus": 4, "host": {"kernel": "k", "cpu_model": "cpu", "cpus": 4, "date": "d"},
          "namespace": {"count": 1000, "from_count": 100, "bytes": 260_000.0, "percpu_bytes": 12_000.0,
                        "what": "ns"},
          "veth_pair": {"count": 1000, "from_count": 100, "bytes": 110_000.0, "percpu_bytes": 4_800.0,
                        "what": "pair"}}


def test_the_derived_terms_make_the_model_equal_the_measurement():
    sizes, notes = mem.derive(RECORD, PRIOR)
    assert notes == {}
    assert sizes["netdev_per_cpu"] == 600 and sizes["netns_per_cpu"] == (12_000 - 600 * 4) / 4
    totals = mem.model_totals(sizes, 4)
    assert totals["namespace"] == pytest.approx(260_000, abs=1) and totals["veth_pair"] == pytest.approx(110_000, abs=1)
    named = {k: v for k, v in sizes.items() if k not in mem.DEVICE_MEASURED + mem.NAMESPACE_MEASURED + ("range",)}
    assert named == {k: v for k, v in PRIOR.items() if k in named}        # the named sizes are the prior's
    # one estimate per unit in this record: the measured terms have no spread, so no range; the
    # prior's ranges of sizes not measured here are kept
    assert sizes["range"] == {k: list(v) for k, v in PRIOR["range"].items()
                              if k not in mem.DEVICE_MEASURED + mem.NAMESPACE_MEASURED}


def test_a_negative_remainder_is_fixed_at_zero_and_said():
    small = {**RECORD, "namespace": {**RECORD["namespace"], "bytes": 20_000.0, "percpu_bytes": 100.0}}
    sizes, notes = mem.derive(small, PRIOR)
    assert sizes["netns_subsystems"] == 0 and sizes["netns_per_cpu"] == 0
    assert set(notes) == {"netns_subsystems", "netns_per_cpu"} and "fixed at 0" in notes["netns_subsystems"]


def test_memory_only_writes_a_profile_from_a_recorded_measurement(tmp_path, capsys):
    side = tmp_path / "rec.calibration.json"
    side.write_text(json.dumps({"memory": {**RECORD, "settle_s": 1.0}}))
    out = tmp_path / "p.yaml"
    assert main(["calibrate", "--memory-only", "--measurements", str(side), "--out", str(out), "--name", "m"]) == 0
    prof = load_profile(str(out))
    want, _ = mem.derive(RECORD, PRIOR)
    assert prof.memory_bytes == MemorySizes.model_validate(want)
    assert prof.stages == load_profile("default").stages                 # nothing else moves
    assert prof.calibration["memory"]["derived"]["memory_bytes"] == want
    assert "per veth pair: 107.4 KiB" in out.read_text()                  # said in the header
    # a calibrated prior keeps its own record (round trips, fit) beside the memory one
    out2 = tmp_path / "q.yaml"
    assert main(["calibrate", "--memory-only", "--measurements", str(side), "--prior", "amd-epyc-6.18.44",
                 "--out", str(out2)]) == 0
    rec = load_profile(str(out2)).calibration
    assert rec["summary"] and rec["fit"] and rec["memory"]["namespace"]["bytes"] == 260_000.0


@pytest.mark.parametrize("args", [["--memory-namespaces", "ten"], ["--memory-veth", "0"],
                                  ["--memory-namespaces", "5000"]])
def test_bad_counts_are_refused_before_anything_is_built(tmp_path, capsys, args):
    assert main(["calibrate", "--memory-only", "--out", str(tmp_path / "p.yaml"), *args]) == 2
    assert "counts" in capsys.readouterr().err and not (tmp_path / "p.yaml").exists()
