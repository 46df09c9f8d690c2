"""Writing a calibrated cost profile, and reading back its calibration record.

The profile is YAML in the format of ``sim/profiles/default.yaml`` (loadable with
`sim.core.costs.load_profile(path)`).  The calibration record (raw measurements, medians, the fit,
kernel version, CPU model, configuration) goes

- into the profile's ``calibration:`` field when `sim.core.costs.CostProfile` has one,
- always into a sidecar ``PROFILE.calibration.json``, and
- in short as comments at the top of the YAML (kernel, CPU, medians, fitted values, memory
  per namespace and per veth pair).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from sim.calibrate.measure import regime
from sim.core.costs import CostProfile


def profile_has_calibration_field() -> bool:
    return "calibration" in CostProfile.model_fields


def sidecar(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".calibration.json")


def write(path: str | Path, data: dict, calibration: dict) -> Path:
    """Validate and write the profile and its sidecar; returns the sidecar's path.  Both are
    written to temporary names first, so a failure leaves no half-written output."""
    path = Path(path)
    body = dict(data)
    # a built-in stage has no group/entries (only a declared one does): keep them out of the file
    body["stages"] = {n: {k: v for k, v in c.items() if not (k in ("group", "entries") and v is None)}
                      for n, c in (body.get("stages") or {}).items()}
    if profile_has_calibration_field():
        body["calibration"] = calibration
    CostProfile.model_validate(body)
    info = calibration.get("host") or (calibration.get("memory") or {}).get("host", {})
    fit = calibration.get("fit", {})
    lines = ["# netns-sim calibrated cost profile, written by `netns-sim calibrate`.",
             f"# kernel {info.get('kernel')}  CPU {info.get('cpu_model')} x{info.get('cpus')}  {info.get('date')}"]
    if fit:
        lines += [f"# fit on {fit.get('train')}; app (measuring program) {fit.get('app_ns', 0):.0f} ns/message",
                  "# group scales vs the prior: " + ", ".join(f"{k}={v:.3g}" for k, v in fit.get("scales", {}).items()),
                  "# notes (kept priors, fixed values): "
                  + "; ".join(f"{k}: {v}" for k, v in fit.get("kept_prior_or_fixed", {}).items())]
    if calibration.get("summary"):
        how = regime(calibration.get("config", {}))
        lines.append(f"# measured round trips (median of per-round medians, us; {how}):")
    for name, s in calibration.get("summary", {}).items():
        lines.append(f"#   {name:16s} {s['rr_median_ns'] / 1000:9.2f}"
                     + (f"   {s['pps'] / 1000:8.1f} kpps" if "pps" in s else ""))
    if calibration.get("memory"):
        from sim.calibrate.memory import summary_lines
        lines.append("# measured kernel memory (memory_bytes' measured terms are set from it):")
        lines += [f"#   {x}" for x in summary_lines(calibration["memory"], body.get("memory_bytes"))]
    lines.append(f"# raw measurements: {sidecar(path).name}")
    text = "\n".join(lines) + "\n\n" + yaml.safe_dump(body, sort_keys=False, width=100)
    side = sidecar(path)
    tmp, tmp_side = path.with_name(path.name + ".tmp"), side.with_name(side.name + ".tmp")
    tmp_side.write_text(json.dumps(calibration, indent=1, default=str))
    tmp.write_text(text)
    tmp_side.replace(side)
    tmp.replace(path)
    return side


def read_calibration(path: str | Path) -> dict:
    """The calibration record of a profile: its ``calibration:`` field, else the sidecar."""
    path = Path(path)
    data = yaml.safe_load(path.read_text()) or {}
    if data.get("calibration"):
        return data["calibration"]
    side = sidecar(path)
    if side.is_file():
        return json.loads(side.read_text())
    return {}


def read_record(path: str | Path) -> dict:
    """A calibration record from a calibrated profile (its field or sidecar) or a sidecar JSON."""
    path = Path(path)
    record = json.loads(path.read_text()) if path.suffix == ".json" else read_calibration(path)
    if not record.get("summary") and not record.get("memory"):
        raise ValueError(f"{path}: no calibration measurements in it (expected a calibrated profile or its "
                         ".calibration.json)")
    return record
