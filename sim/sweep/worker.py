"""One point of a study (a variant at one replication): simulate it and commit it to the store.

`run_point` is what every executor runs — the in-process one of ``netns-sim run``, the local
process pool and Dask workers of ``netns-sim sweep`` — so a point's records are the same
whoever runs it.  It is a plain function of JSON-able arguments.  It calls
`sim.core.simulate.simulate` (the one place a model is built and run), streams the packet
records into the point's Parquet partition as they come (memory stays flat), and writes the
point's marker (`sim.sweep.store`) with its summary, memory, cores and flows rows.  When the
worker does not see the store directory (a remote Dask worker), the partition is returned as
bytes and the client commits it.  Exceptions become a failure record (configuration, error,
traceback), except a full disk (ENOSPC, EDQUOT), which stops the whole study.
"""

from __future__ import annotations

import io
import os
import socket
import time
import traceback
from typing import Optional

from sim import longlived
from sim.frontdoor.outpath import FULL_DISK


def _records(frame) -> list[dict]:
    """JSON-able rows (``frame.to_dict("records")``): NaN and empty strings become None.
    Built from each column's ``tolist()`` (the Python scalars ``to_dict`` gives), not value by value."""
    names = list(frame.columns)
    columns = [frame[c].tolist() for c in frame.columns]
    return [{k: (None if v == "" or v != v else v) for k, v in zip(names, row)} for row in zip(*columns)]


def run_point(task: dict, root: str, partition_file: str, scenario: str, on_progress=None) -> dict:
    """Simulate `task` (see `sim.sweep.spec.Point.task`) and commit it to the store at `root`.

    Returns ``{"ok": True, "marker": {...}, "packets": bytes | None}`` (bytes only when the
    store was not visible here) or ``{"ok": False, "failure": {...}}``.  In a command's own
    process, with one garbage collection at the end (`sim.longlived.collected_once`)."""
    with longlived.collected_once():
        return _run_point(task, root, partition_file, scenario, on_progress)


def _run_point(task: dict, root: str, partition_file: str, scenario: str, on_progress=None) -> dict:
    """`run_point` without its garbage-collection bracket."""
    from sim.core.costs import CostProfile
    from sim.core.simulate import simulate
    from sim.frontdoor.scenario import Scenario
    from sim.sweep.store import PacketWriter, Store
    t0 = time.perf_counter()
    base = {"key": task["key"], "id": task["id"], "levels": task["levels"], "replication": task["replication"],
            "scenario": scenario, "host": socket.gethostname(), "pid": os.getpid()}
    store = Store(root)
    visible = os.path.isdir(os.path.join(root, "points"))
    writer: Optional[PacketWriter] = None
    try:
        cfg = dict(task["config"])
        cfg.setdefault("name", scenario)
        sc = Scenario.model_validate(cfg)
        profile = CostProfile.model_validate(task["profile"])
        ident = {"run_id": task["key"], "point": task["id"], "replication": sc.run.replication, "seed": sc.run.seed}
        writer = PacketWriter(store.temp_path(partition_file) if visible else io.BytesIO(), ident)
        res = simulate(sc, profile=profile, on_columns=writer.add, on_progress=on_progress)
        data = writer.close(empty=res.packet_columns)
        marker = {**base, "file": partition_file, "seed": sc.run.seed, "config": task["config"],
                  "packets": res.stats["records"], "stats": res.stats, "summary": _records(res.summary),
                  "memory": _records(res.memory), "cores": _records(res.cores), "flows": _records(res.flows),
                  "wall_s": round(time.perf_counter() - t0, 4)}
        if visible:
            store.commit_point(marker, writer.path)
            return {"ok": True, "marker": marker, "packets": None}
        return {"ok": True, "marker": marker, "packets": data}
    except Exception as e:  # noqa: BLE001 - every failure becomes a record, but a full disk stops the study
        if writer is not None:
            writer.discard()
        if isinstance(e, OSError) and e.errno in FULL_DISK:
            raise
        return {"ok": False, "failure": {**base, "config": task["config"], "error": f"{type(e).__name__}: {e}",
                                         "traceback": traceback.format_exc(),
                                         "wall_s": round(time.perf_counter() - t0, 4)}}


WARM_UP = {"name": "warm-up", "hosts": [{"name": "h0", "namespaces": 2}],
           "flows": [{"src": "h0:wire", "dst": "h0:ns1", "rate_pps": 1e5}],
           "run": {"duration_ns": 1e5, "warmup_ns": 0}}


def warm_up() -> None:
    """Pay a pool worker's one-time costs before its first point: the imports `run_point`
    makes (pyarrow's Parquet writer among them) and the parses `simulate` caches per process
    (built-in schemes, the default cost profile), by running a ten-packet scenario into a
    buffer.  Called once per local pool worker as it starts (`sim.sweep.executors`); nothing
    is written."""
    from sim.core.costs import load_profile
    from sim.core.simulate import simulate
    from sim.frontdoor.scenario import Scenario
    from sim.sweep.store import PacketWriter
    writer = PacketWriter(io.BytesIO(), {"run_id": "warm-up", "point": "warm-up", "replication": 0, "seed": 1})
    res = simulate(Scenario.model_validate(WARM_UP), profile=load_profile("default"), on_columns=writer.add)
    writer.close(empty=res.packet_columns)
    for frame in (res.summary, res.memory, res.cores, res.flows):
        _records(frame)
