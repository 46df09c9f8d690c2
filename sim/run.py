"""The Python API: `run(scenario)` simulates one scenario and returns its result frames."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

from sim.memory import memory_table
from sim.model import Model
from sim.scenario import Scenario


@dataclass
class Results:
    """Frames of one run.

    packets   one row per packet copy (see `sim.records`);
    cores     host, core, busy_ns, utilisation over [warmup_ns, duration_ns];
    memory    scheme, namespaces, structure, bytes for every scheme used by a host, at the
              scenario's ``memory_namespace_counts`` (on a host of that scheme's core count);
    flows     one row per flow: name, kind, src, dst, sent packets;
    stats     engine events, packets generated, records (rows, streamed ones included),
              wall seconds.
    """

    scenario: Scenario
    packets: pd.DataFrame
    cores: pd.DataFrame
    memory: pd.DataFrame
    flows: pd.DataFrame
    stats: dict = field(default_factory=dict)


def simulate(scenario: Scenario) -> Model:
    """Build and run the model; the raw model (recorder, hosts, flows) is returned."""
    model = Model(scenario)
    t0 = time.perf_counter()
    model.run()
    model.wall_s = time.perf_counter() - t0
    return model


def collect(model: Model) -> Results:
    """Turn a finished model into result frames."""
    sc = model.scenario
    cores = pd.DataFrame([
        {"host": h.name, "scheme": h.scheme.name, "core": i, "busy_ns": c.busy_ns, "utilisation": u}
        for h in model.hosts for i, (c, u) in enumerate(zip(h.cores, h.utilisation()))
    ])
    used = {}
    for h in model.hosts:
        used.setdefault(h.scheme.name, (h.scheme, h.n_cores))
    memory = pd.concat([memory_table([s], model.profile, sc.memory_namespace_counts, cores=n)
                        for s, n in used.values()], ignore_index=True)
    flows = pd.DataFrame([{"flow": f.spec.name or f"flow{f.idx}", "kind": f.spec.kind, "src": f.spec.src,
                           "dst": f.spec.dst, "sent": f.sent} for f in model.flows],
                         columns=["flow", "kind", "src", "dst", "sent"])
    packets = model.recorder.frame()
    stats = {"events": model.engine.events, "generated": model.generated,
             "records": model.recorder.flushed_rows + len(packets),
             "wall_s": getattr(model, "wall_s", float("nan"))}
    return Results(sc, packets, cores, memory, flows, stats)


def run(scenario: Scenario | dict) -> Results:
    """Validate (if a dict), simulate and collect one scenario."""
    if not isinstance(scenario, Scenario):
        scenario = Scenario.model_validate(scenario)
    return collect(simulate(scenario))
