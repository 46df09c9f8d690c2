"""The wake-up measurement's arithmetic (`sim.calibrate.wakeup`) against the model itself: round
trips the simulator gives with both programs on one core and on two must give back the
profile's cross-core wake-up.  Runs without root (no real namespaces)."""

import json
from pathlib import Path

import pytest

from sim.calibrate import wakeup
from sim.calibrate.__main__ import main
from sim.core.costs import load_profile
from sim.core.simulate import simulate

HOST = load_profile().host


def model_rtt_ns(dst: str, cores: tuple[int, int], ipi_ns: float) -> float:
    """Mean round trip of an rr flow (one transaction at a time) h1:ns0 -> `dst` in the model."""
    sc = {"name": "wake", "hosts": [{"name": "h1", "scheme": "l2-routed", "namespaces": 2, "cores": 2}],
          "flows": [{"kind": "rr", "src": "h1:ns0", "dst": dst, "concurrency": 1, "src_core": cores[0],
                     "dst_core": cores[1]}],
          "cost_overrides": {"host": {"wakeup_ipi_ns": ipi_ns}},
          "run": {"duration_ns": 2e6, "seed": 1}}
    f = simulate(sc).model.flows[0]
    return f.transaction_ns / f.transactions


def model_summary(ipi_ns: float) -> dict:
    """A `wakeup.summarise`-shaped summary of simulated round trips (three rounds alike)."""
    out: dict = {}
    for name, dst in (("loopback", "h1:ns0"), ("veth", "h1:ns1")):
        for pin, cores in wakeup.PINS.items():
            rtt = model_rtt_ns(dst, cores, ipi_ns)
            out.setdefault(name, {})[pin] = {"round_medians_ns": [rtt] * 3, "median_ns": rtt, "spread_ns": 0.0}
    return out


@pytest.mark.parametrize("ipi_ns", [3000.0, 25000.0])
def test_derive_gives_back_the_models_cross_core_wakeup(ipi_ns):
    res = wakeup.derive(model_summary(ipi_ns), HOST.wakeup_local_ns)
    assert res["wakeup_ipi_ns"] == pytest.approx(ipi_ns, rel=0.02)
    (veth,) = res["held_out"]
    assert abs(veth["error_pct"]) < 2          # the difference is the same on every path


def test_derive_refuses_a_fit_setup_without_both_pinnings():
    summary = {"loopback": {"one_cpu": {"round_medians_ns": [1.0], "median_ns": 1.0, "spread_ns": 0.0}}}
    with pytest.raises(ValueError, match="both pinnings"):
        wakeup.derive(summary, HOST.wakeup_local_ns)


def test_wakeup_from_a_record_writes_the_profile(tmp_path, capsys):
    """`wakeup --from REC --profile P` sets P's wakeup_ipi_ns with a 'measured' source and keeps
    the record; the profile still loads."""
    rec = {"host": {"cpu_model": "test CPU", "cpus": 2, "kernel": "test", "date": "2026-12-02", "loadavg": [0, 0, 0]},
           "measuring_program": "sockperf test", "rounds": 3, "raw": [], "summary": model_summary(20000.0)}
    (tmp_path / "w.json").write_text(json.dumps(rec))
    prof = tmp_path / "p.yaml"
    prof.write_text(Path(load_profile().source_file).read_text())
    assert main(["wakeup", "--from", str(tmp_path / "w.json"), "--profile", str(prof)]) == 0
    got = load_profile(str(prof))
    assert got.host.wakeup_ipi_ns == pytest.approx(20000.0, rel=0.02)
    assert got.host.sources["wakeup_ipi_ns"].startswith("measured (sockperf")
    assert "| veth | held-out |" in capsys.readouterr().out


@pytest.mark.parametrize("argv, says", [
    (["--rounds", "0"], "--rounds must be >= 1"),
    (["--from", "/nonexistent/w.json"], "No such file"),
    (["--from", "BAD"], "not a wakeup record"),
])
def test_bad_input_is_refused_with_a_reason(tmp_path, capsys, argv, says):
    bad = tmp_path / "bad.json"
    bad.write_text('{"host": {}}')
    argv = [str(bad) if x == "BAD" else x for x in argv]
    assert main(["wakeup", *argv]) == 2
    assert says in capsys.readouterr().err


def test_paced_table_halves_the_same_round_difference_per_pace():
    """Per pace: the medians over rounds of each pinning's round trip, and half the same-round
    difference (one wake-up each way); a period shorter than the two-CPU round trip is marked
    as run back to back."""
    rows = [{"round": k, "rate": rate, "pin": pin, "median_ns": ns}
            for k, extra in enumerate((0.0, 2000.0, 4000.0))
            for rate, one, two in ((0, 10_000.0, 60_000.0), (1000, 12_000.0, 90_000.0))
            for pin, ns in (("one_cpu", one), ("two_cpus", two + extra))]
    table = wakeup.paced_table(rows)
    assert "| back to back | - | 10.00 | 62.00 | 26.00 [25.00..27.00] |" in table
    assert "| 1000 | 1000 | 12.00 | 92.00 | 40.00 [39.00..41.00] |" in table
    fast = [dict(r, rate=40000) for r in rows if r["rate"] == 0]
    assert "25 (< RTT: back to back)" in wakeup.paced_table(fast)
