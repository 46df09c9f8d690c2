"""Calibration, model side (no root needed): the analytic round trip equals a simulation,
the fit recovers known costs and reproduces its training setups, the written profile loads,
and the entry points refuse politely without root or iproute2."""

import os
import shutil
from pathlib import Path

import pytest

from sim.calibrate import fit as fitmod
from sim.calibrate import netns, profile_io, validate
from sim.calibrate.__main__ import main
from sim.calibrate.predict import predict_rtt_ns, simulate_rtt_ns
from sim.calibrate.setups import CUSTOM_SCHEMES, SETUPS, by_name, idle_setup
from sim.core.costs import CostProfile, load_profile
from sim.core.schemes import SchemeSpec

ALL = list(SETUPS) + [idle_setup(100)]


def test_custom_schemes_are_valid_scheme_data():
    for spec in CUSTOM_SCHEMES.values():
        SchemeSpec.model_validate(spec)


@pytest.mark.parametrize("setup", ALL, ids=lambda s: s.name)
def test_analytic_rtt_equals_simulation(setup):
    prior = load_profile("default")
    assert predict_rtt_ns(setup, prior, 1234.0) == pytest.approx(simulate_rtt_ns(setup, "default", 1234.0, 20))


def test_model_orders_setups_by_crossings():
    prior = load_profile("default")
    rtt = {s: predict_rtt_ns(by_name(s), prior, 0) for s in ("loopback", "veth", "routed", "routed-fw100")}
    assert rtt["loopback"] < rtt["veth"] < rtt["routed"] < rtt["routed-fw100"]


def _synthetic(truth_scales, app):
    prior = load_profile("default")
    truth = CostProfile.model_validate(fitmod.apply(prior, fitmod.FitResult(app, truth_scales, []), "t", ""))
    return prior, {s.name: predict_rtt_ns(s, truth, app) for s in ALL}


def test_fit_recovers_identifiable_costs_and_keeps_priors():
    scales = {"veth": 2.0, "l3": 0.5, "nf_rule": 0.2, "bridge": 1.0, "socket": 1.0}
    prior, measured = _synthetic(scales, 3000.0)
    train = [s for s in SETUPS if s.train]
    r = fitmod.fit(train, measured, prior)
    assert r.app_ns == pytest.approx(3000.0)
    for g in ("veth", "l3", "nf_rule"):
        assert r.scales[g] == pytest.approx(scales[g])
    assert "socket" in r.notes and "app" in r.notes["socket"]      # not separable from app
    assert "bridge" in r.notes                                      # crossed by no training setup
    prof = CostProfile.model_validate(fitmod.apply(prior, r, "fit", ""))
    rows = validate.table({k: {"rr_median_ns": v} for k, v in measured.items()}, prof, r.app_ns, r.train)
    assert validate.worst_error(rows, "train") < 10.0
    assert validate.worst_error(rows, "held-out") < 1e-6           # bridge scale was the prior's


def test_fit_fixes_negative_scales_at_zero():
    prior, measured = _synthetic({"veth": 1.0, "l3": 1.0, "nf_rule": 1.0, "bridge": 1.0, "socket": 1.0}, 2000.0)
    measured["veth"] = measured["loopback"] - 100.0                 # veth "faster" than loopback
    r = fitmod.fit([by_name("loopback"), by_name("veth"), by_name("routed")], measured, prior)
    fixed = [g for g, note in r.notes.items() if "negative" in note]
    assert fixed and all(r.scales[g] == 0.0 for g in fixed)        # the group veth adds over loopback
    assert all(v >= 0.0 for v in r.scales.values())


def test_written_profile_loads_and_carries_its_record(tmp_path):
    prior, measured = _synthetic({"veth": 1.5, "l3": 0.7, "nf_rule": 0.3, "bridge": 1.0, "socket": 1.0}, 2500.0)
    r = fitmod.fit([s for s in SETUPS if s.train], measured, prior)
    record = {"host": {"kernel": "k", "cpu_model": "c", "cpus": 2, "date": "d"}, "fit": r.to_dict(),
              "summary": {k: {"rr_median_ns": v} for k, v in measured.items()}}
    out = tmp_path / "cal.yaml"
    profile_io.write(out, fitmod.apply(prior, r, "cal", "test"), record)
    prof = load_profile(str(out))
    assert prof.name == "cal"
    assert profile_io.read_calibration(out)["fit"]["app_ns"] == pytest.approx(2500.0)
    assert out.read_text().startswith("# netns-sim calibrated cost profile")


def test_link_names_fit_ifnamsiz(monkeypatch, tmp_path):
    monkeypatch.setattr(netns, "check_environment", lambda: None)
    monkeypatch.setenv("NETNS_SIM_LOCK_DIR", str(tmp_path))      # its own locks: no clash with a real run
    lab = netns.Lab("ffff")
    for tag in ("va", "vb", "r1r", "r2c", "h1r", "bbr", "n2c", "mlow", "mlop", "m1", "pd", "pe"):
        assert len(lab.link_name(tag)) <= netns.IFNAMSIZ
    with pytest.raises(ValueError):
        lab.addr(lab.ns_name("x"), "eth0", "192.168.1.1/24")


def test_without_root_says_so_and_exits_nonzero(monkeypatch, capsys):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert main(["calibrate", "--out", "/nonexistent/x.yaml"]) == 2
    assert "needs root" in capsys.readouterr().err
    assert main(["validate-real", "--cleanup"]) == 2


def test_without_iproute2_says_so(monkeypatch, capsys):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 0)
    real = shutil.which
    monkeypatch.setattr(netns.shutil, "which", lambda name: None if name == "ip" else real(name))
    assert main(["validate-real"]) == 2
    assert "iproute2" in capsys.readouterr().err


def test_run_locks_tell_live_runs_from_dead_ones(monkeypatch, tmp_path):
    """A held lock is a live run; a released one (or a process that died: the kernel drops
    its flock) is dead; a fresh id is never one whose lock file exists."""
    from sim.calibrate import runlock
    monkeypatch.setenv("NETNS_SIM_LOCK_DIR", str(tmp_path))
    a = runlock.RunLock.claim()
    assert runlock.is_alive(a.run_id)
    with pytest.raises(RuntimeError, match="in use by a live calibration run"):
        runlock.RunLock.claim(a.run_id)
    b = runlock.RunLock.claim()
    assert b.run_id != a.run_id
    a.release(remove=False)                 # as if the process had died: the file stays, the lock goes
    assert not runlock.is_alive(a.run_id)
    runlock.forget(a.run_id)
    assert not (tmp_path / f"{a.run_id}.lock").exists() and runlock.is_alive(b.run_id)
    b.release()
    assert list(tmp_path.iterdir()) == []


def test_a_profile_is_read_once_and_again_when_its_file_changes(tmp_path):
    """load_profile caches by (path, mtime, size): the same object while the file is the
    same, the new values as soon as it is rewritten (a calibration writing a profile that a
    later run of the same process reads)."""
    src = (Path(load_profile().source_file)).read_text()
    out = tmp_path / "p.yaml"
    out.write_text(src)
    first = load_profile(str(out))
    assert load_profile(str(out)) is first
    name = first.name
    out.write_text(src.replace(f"name: {name}", "name: rewritten", 1))
    os.utime(out, ns=(first_mtime := out.stat().st_mtime_ns, first_mtime + 1_000_000))
    again = load_profile(str(out))
    assert again is not first and again.name == "rewritten"


def _measure_config(monkeypatch, argv: list[str], cpus: int = 2):
    import argparse

    from sim.calibrate import __main__ as cli
    monkeypatch.setattr(cli.os, "cpu_count", lambda: cpus)
    monkeypatch.setattr(cli.sockperf, "available", lambda: True)
    p = argparse.ArgumentParser()
    cli._measure_args(p)
    return cli._config(p.parse_args(argv))


def test_busy_poll_puts_the_two_spinning_ends_on_two_cpus(monkeypatch):
    from sim.calibrate.measure import regime
    cfg = _measure_config(monkeypatch, ["--busy-poll"])
    assert (cfg.client_cpu, cfg.server_cpu, cfg.busy_poll, cfg.tool) == (0, 1, True, "sockperf")
    assert "busy-polling" in regime(cfg.to_dict()) and "CPUs 0 and 1" in regime(cfg.to_dict())
    plain = _measure_config(monkeypatch, [])
    assert (plain.client_cpu, plain.server_cpu, plain.busy_poll) == (0, 0, False)
    assert regime(plain.to_dict()) == "ping-pong on CPU 0, blocking receives (wake-ups)"


@pytest.mark.parametrize("argv, cpus, said", [
    (["--busy-poll", "--pin", "same"], 2, "must not share a CPU"),
    (["--busy-poll", "--tool", "python"], 2, "needs sockperf"),
    (["--busy-poll"], 1, "needs two CPUs")])
def test_busy_poll_refuses_what_would_not_measure_it(monkeypatch, argv, cpus, said):
    with pytest.raises(SystemExit, match=said):
        _measure_config(monkeypatch, argv, cpus)


def _validation(rows: list[tuple[str, float, list]]) -> dict:
    return {"summary": {"loopback": {}}, "validation": [
        {"setup": s, "role": "held-out", "extra_measured_us": m, "extra_ci_us": ci} for s, m, ci in rows]}


def test_repeatability_finds_the_predictions_within_the_tolerance_of_every_run(tmp_path, capsys):
    """A prediction p is within 20 % of increment m when 0.8 m <= p <= 1.2 m; over runs that is
    [0.8 max, 1.2 min], empty once max / min > 1.5.  A run whose increment is <= 0 gets no
    verdict (no relative error).  An interval counts as resolved when it lies within 20 % of
    its own increment.  The command reads records and prints the table; a missing file is bad
    input."""
    import json
    recs = {"a": _validation([("steady", 2.0, [1.7, 2.3]), ("drifts", 1.0, [0.5, 1.5]), ("flat", 0.5, [])]),
            "b": _validation([("steady", 2.4, [1.8, 3.0]), ("drifts", 1.6, [1.0, 2.0]), ("flat", -0.1, [])])}
    rows = {r["setup"]: r for r in validate.repeatability(recs, 20.0)}
    assert rows["steady"]["feasible"] and rows["steady"]["within_all_us"] == pytest.approx((1.92, 2.4))
    assert rows["drifts"]["feasible"] is False and rows["drifts"]["max_over_min"] == pytest.approx(1.6)
    assert rows["flat"]["feasible"] is None
    assert rows["steady"]["ci_within"] == 1 and rows["drifts"]["ci_within"] == 0     # 1.7..2.3 around 2.0
    assert "1 of 2 held-out setups: no prediction" in validate.format_repeatability(list(rows.values()))
    paths = []
    for name, rec in recs.items():
        paths.append(tmp_path / f"{name}.calibration.json")
        paths[-1].write_text(json.dumps(rec))
    assert main(["repeatability", *map(str, paths)]) == 0
    assert "| drifts | 1.00 [0.50..1.50]; 1.60 [1.00..2.00] | 1.60 | none |" in capsys.readouterr().out
    assert main(["repeatability", str(tmp_path / "missing.json")]) == 2
    assert main(["repeatability", str(paths[0]), "--tolerance", "0"]) == 2
