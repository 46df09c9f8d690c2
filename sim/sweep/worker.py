"""The task one executor runs per point: simulate, summarise, write partition then marker.

`run_point` is a plain function of JSON-able arguments, so the local process pool and Dask
ship the same thing and get the same records.  When the worker sees the store directory
(same machine or a shared filesystem) it writes the point itself; otherwise it returns the
Parquet bytes and the client writes them.  Exceptions are caught and returned as a failure
record (configuration, error, traceback); they never escape to the executor.
"""

from __future__ import annotations

import os
import socket
import time
import traceback


_REGISTRIES: dict = {}


def registry_for(sc):
    """Built-in plus the scenario's own schemes; cached per process (building the built-in
    registry parses sim/data/schemes.yaml, which costs more than a short run)."""
    import json
    from sim.schemes import builtin_registry
    key = json.dumps({n: s.model_dump(mode="json") for n, s in sc.schemes.items()}, sort_keys=True)
    if key not in _REGISTRIES:
        if "" not in _REGISTRIES:
            _REGISTRIES[""] = builtin_registry()
        reg = _REGISTRIES[""].copy()
        for name, spec in sc.schemes.items():
            reg.add(name, spec)
        _REGISTRIES[key] = reg
    return _REGISTRIES[key]


def point_summary(res, run) -> list[dict]:
    """Tidy per-point rows: `sim.summary.summarize` plus each host's memory at its namespace count."""
    from sim.memory import memory_rows
    from sim.summary import summarize
    rows = summarize(res.packets, res.cores, run.warmup_ns, run.duration_ns)
    out = [{k: (None if v == "" else v) for k, v in r.items()} for r in rows.to_dict("records")]
    sc = res.scenario
    reg, profile = registry_for(sc), res.profile
    for h in sc.hosts:
        scheme = reg.get(h.scheme)
        total = sum(r["bytes"] for r in memory_rows(scheme, profile, h.namespaces, h.cores))
        out.append({"scheme": h.scheme, "trip": None, "host": h.name, "core": None,
                    "metric": "memory_bytes", "value": float(total), "unit": "bytes"})
    return out


def simulate_point(task: dict):
    """Run one point; returns sim.run.Results with `.profile` attached."""
    from sim.costs import CostProfile
    from sim.model import Model
    from sim.run import collect
    from sim.scenario import Scenario
    cfg = dict(task["config"])
    cfg.setdefault("name", task.get("scenario", "sweep"))
    sc = Scenario.model_validate(cfg)
    profile = CostProfile.model_validate(task["profile"])
    model = Model(sc, registry=registry_for(sc), profile=profile)
    t0 = time.perf_counter()
    model.run()
    model.wall_s = time.perf_counter() - t0
    res = collect(model)
    res.profile = profile
    return res


def run_point(task: dict, root: str, partition_file: str, scenario: str) -> dict:
    """Simulate `task` and commit it to the store at `root`.

    Returns ``{"ok": True, "marker": {...}, "packets": bytes | None}`` (bytes only when the
    store was not visible here) or ``{"ok": False, "failure": {...}}``."""
    from sim.sweep.store import Store, arrow_table, parquet_bytes
    t0 = time.perf_counter()
    base = {"key": task["key"], "id": task["id"], "levels": task["levels"], "replication": task["replication"],
            "scenario": scenario, "host": socket.gethostname(), "pid": os.getpid()}
    try:
        res = simulate_point(task)
        run = res.scenario.run
        pk = res.packets
        ident = {"point_key": task["key"], "point": task["id"], "scenario": scenario,
                 "seed": run.seed, "replication": run.replication}
        import pandas as pd
        front = pd.DataFrame({k: [v] * len(pk) for k, v in ident.items()}, index=pk.index)
        data = parquet_bytes(arrow_table(pd.concat([front, pk], axis=1)))
        marker = {**base, "file": partition_file, "seed": run.seed, "config": task["config"],
                  "packets": int(len(pk)), "stats": res.stats, "summary": point_summary(res, run),
                  "wall_s": round(time.perf_counter() - t0, 4)}
        store = Store(root)
        if os.path.isdir(os.path.join(root, "points")):
            store.commit_point(marker, data)
            return {"ok": True, "marker": marker, "packets": None}
        return {"ok": True, "marker": marker, "packets": data}
    except Exception as e:  # noqa: BLE001 - every failure becomes a record
        return {"ok": False, "failure": {**base, "config": task["config"], "error": f"{type(e).__name__}: {e}",
                                         "traceback": traceback.format_exc(),
                                         "wall_s": round(time.perf_counter() - t0, 4)}}
