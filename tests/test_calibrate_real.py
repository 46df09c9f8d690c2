"""Calibration against the real kernel: builds real namespaces, so it needs root and
iproute2 (skipped otherwise).  Checks that every setup passes traffic, that measurements are
positive and ordered as crossings add up, that nothing is left behind (also after a failure
or Ctrl-C mid-run, and via --cleanup), and that the fit reproduces its training setups."""

import os
import shutil

import pytest

from sim.calibrate import measure, netns, profile_io
from sim.calibrate.__main__ import main
from sim.calibrate.measure import Config, measure_rounds, measure_rr, summarise
from sim.calibrate.netns import Lab, list_namespaces, root_links, sh
from sim.calibrate.setups import SETUPS, availability, by_name
from sim.costs import load_profile

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("taskset") is None,
                                 reason="builds real network namespaces: needs root, iproute2 (ip) and taskset")]

QUICK = Config(rounds=1, round_trips=50, warmup=10, rate=False)


def _assert_no_leftovers(run_id):
    assert [n for n in list_namespaces() if n.startswith(f"nsim-{run_id}-")] == []
    assert root_links() == []
    links = sh(["ip", "-o", "link"]).stdout
    assert f"nsim{run_id}" not in links


def test_every_available_setup_passes_traffic():
    with Lab() as lab:
        missing = availability(lab)
        run_id = lab.run_id
        for s in SETUPS:
            if any(n in missing for n in s.needs):
                continue
            r = measure_rr(lab, s.build(lab), QUICK)
            assert r["round_trips"] == 50 and r["lost"] == 0, s.name
            assert r["median_ns"] > 0
    _assert_no_leftovers(run_id)


def test_round_trips_grow_with_crossings():
    cfg = Config(rounds=7, round_trips=1000, warmup=200, rate=False)   # differences are ~0.6 us
    with Lab() as lab:
        eps = {n: by_name(n).build(lab) for n in ("loopback", "veth", "routed")}
        summary = summarise(measure_rounds(lab, eps, cfg, log=lambda m: None))
        run_id = lab.run_id
    med = {k: v["rr_median_ns"] for k, v in summary.items()}
    assert 0 < med["loopback"] < med["veth"] < med["routed"], med
    _assert_no_leftovers(run_id)


def test_packet_rate_is_positive():
    with Lab() as lab:
        r = measure.measure_rate(lab, by_name("veth").build(lab), Config(rate_packets=5000, rate_max_s=0.3))
        assert r["received"] > 0 and r["pps"] > 0


@pytest.mark.parametrize("exc, status", [(RuntimeError("injected failure"), 1), (KeyboardInterrupt(), 130)])
def test_failure_mid_run_leaves_nothing_behind(monkeypatch, tmp_path, exc, status):
    calls = {"n": 0}
    real = measure.measure_rr

    def flaky(lab, ep, cfg, count=None):
        calls["n"] += 1
        if calls["n"] == 3:
            flaky.run_id = lab.run_id
            raise exc
        return real(lab, ep, cfg, count)

    monkeypatch.setattr(measure, "measure_rr", flaky)
    out = tmp_path / "p.yaml"
    rc = main(["calibrate", "--out", str(out), "--rounds", "1", "--round-trips", "20", "--no-rate",
               "--idle-counts", "5"])
    assert rc == status
    assert not out.exists() and not profile_io.sidecar(out).exists()
    _assert_no_leftovers(flaky.run_id)


def test_cleanup_removes_leftovers_of_a_killed_run():
    lab = Lab("dead")           # never cleaned up by itself: a run that was killed
    a, c = lab.add_ns("a"), lab.add_ns("c")
    lab.veth(a, "x", c, "y")
    lab.popen(a, ["sleep", "30"])
    assert main(["calibrate", "--cleanup"]) == 0
    _assert_no_leftovers("dead")


def test_calibrate_fits_its_training_setups_and_validate_real_reads_it(tmp_path, capsys):
    out = tmp_path / "cal.yaml"
    train = "loopback,veth,routed"
    rc = main(["calibrate", "--out", str(out), "--rounds", "3", "--round-trips", "300", "--no-rate",
               "--idle-counts", "", "--setups", "loopback,veth,routed,bridge", "--train", train])
    assert rc == 0, capsys.readouterr().err
    prof = load_profile(str(out))
    record = profile_io.read_calibration(out)
    assert record["host"]["kernel"] and record["host"]["cpu_model"]
    for row in record["validation"]:
        if row["role"] == "train":
            assert abs(row["error_pct"]) < 10.0, row
    assert {r["setup"] for r in record["validation"] if r["role"] == "held-out"} == {"bridge"}
    assert prof.stages["veth_xmit"].base_ns >= 0
    capsys.readouterr()
    assert main(["validate-real", "--profile", str(out)]) == 0
    assert "| bridge | held-out |" in capsys.readouterr().out
