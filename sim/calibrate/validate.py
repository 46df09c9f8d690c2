"""Measured vs predicted: one row per setup, training setups and held-out ones.

The prediction is the model's round trip for the setup (`sim.calibrate.predict`) under the
profile, with the application cost per message that the calibration fitted (the measuring
program's cost; it is not part of the kernel profile).  Error = (predicted - measured) /
measured.  Packet rates are reported as measured only (see docs/calibration.md).
"""

from __future__ import annotations

from sim.calibrate.predict import MESSAGES_PER_RTT, predict_rtt_ns
from sim.calibrate.setups import by_name
from sim.core.costs import CostProfile


def fit_app_only(summary: dict, profile: CostProfile, anchor: str = "loopback") -> float:
    """For a profile without a calibration record: the app cost that makes `anchor` exact."""
    if anchor not in summary:
        raise ValueError(f"cannot fit the application cost: setup {anchor!r} was not measured")
    return (summary[anchor]["rr_median_ns"] - predict_rtt_ns(by_name(anchor), profile, 0.0)) / MESSAGES_PER_RTT


def table(summary: dict[str, dict], profile: CostProfile, app_ns: float, train: list[str]) -> list[dict]:
    """Rows per setup.  Besides the whole round trip, the *increment over loopback* (the
    kernel work a setup adds to the no-crossing path) is compared: the application's cost is
    most of the round trip, so the whole-RTT error flatters the model; the increment does not."""
    rows = []
    base_meas = summary["loopback"]["rr_median_ns"] if "loopback" in summary else None
    base_pred = predict_rtt_ns(by_name("loopback"), profile, app_ns)
    for name, s in summary.items():
        setup = by_name(name)
        pred = predict_rtt_ns(setup, profile, app_ns)
        meas = s["rr_median_ns"]
        d_meas = None if base_meas is None else meas - base_meas
        d_pred = pred - base_pred
        rows.append({"setup": name, "role": "train" if name in train else "held-out",
                     "measured_us": meas / 1000, "predicted_us": pred / 1000,
                     "error_pct": 100.0 * (pred - meas) / meas,
                     "extra_measured_us": None if d_meas is None else d_meas / 1000,
                     "extra_predicted_us": d_pred / 1000,
                     "spread_us": s.get("rr_spread_ns", 0.0) / 1000,
                     "measured_kpps": s["pps"] / 1000 if "pps" in s else None})
    return rows


def format_table(rows: list[dict]) -> str:
    head = ("| setup | role | measured RTT (us) | predicted RTT (us) | error | over loopback: measured / "
            "predicted (us) | spread over rounds (us) | measured rate (kpps) |")
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        kpps = "" if r["measured_kpps"] is None else f"{r['measured_kpps']:.0f}"
        extra = ("" if r["extra_measured_us"] is None
                 else f"{r['extra_measured_us']:.2f} / {r['extra_predicted_us']:.2f}")
        lines.append(f"| {r['setup']} | {r['role']} | {r['measured_us']:.2f} | {r['predicted_us']:.2f} | "
                     f"{r['error_pct']:+.1f}% | {extra} | {r['spread_us']:.2f} | {kpps} |")
    return "\n".join(lines)


def worst_error(rows: list[dict], role: str) -> float:
    errs = [abs(r["error_pct"]) for r in rows if r["role"] == role]
    return max(errs) if errs else 0.0
