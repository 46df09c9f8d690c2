"""The one place a model is built and run: ``simulate(scenario) -> Results``.

The command line (``netns-sim run`` and ``netns-sim sweep``, through `sim.point`), the
Python API (`sim.api`) and the benchmarks all call `simulate`.  It follows the usual
shape of a simulation runner (desmod's ``simulate()``): configuration -> build -> run ->
results.

Contract:
- `scenario` is a validated `sim.frontdoor.scenario.Scenario` (or a dict, validated here with pydantic;
  the front-door features — ``extends:``, ``compare:``, topology generators — are the
  loader's, see `sim.api.load`).  `registry` and `profile` default to the built-in schemes
  plus the scenario's own, and the scenario's cost profile with its overrides.
- With `on_packets`, packet records are handed over during the run in DataFrames of at most
  `chunk_rows` rows (memory stays flat however long the run) and `Results.packets` is empty;
  otherwise they stay in the model's compact columnar buffers and `Results.packets` builds
  the DataFrame on first use.  `on_columns` is the same hand-over without the DataFrame: each
  chunk as `sim.core.records.PacketColumns` (what the sweep's Parquet writer takes).
- `on_progress(now_ns, until_ns, packets)` is called `progress_steps` times during the run.
- `Results.summary` is the tidy summary of `sim.core.summary` (over packets sent at or after
  ``run.warmup_ns``, with the policy metrics of the scenario's declared rules) plus one
  ``memory_bytes`` row per host (its scheme's memory at the host's own namespace count; a mixed
  host's is the sum over its groups of each scheme's memory at the group's count) and,
  for a host with conntrack, ``conntrack_entries`` (connections tracked, summed over its
  namespaces, at the end of the run: no entry expires within a run) and ``conntrack_bytes``
  (the host's one nf_conntrack hash table, ``conntrack_hash_buckets`` x 8 B, plus the
  entries x ``conntrack_entry``).  Both it and `Results.packets` are computed once, lazily.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Optional

import pandas as pd

from sim.core.costs import CostProfile
from sim.core.memory import memory_rows, memory_table
from sim.core.model import Model
from sim.core.netfilter import PolicyScope
from sim.core.records import PacketColumns
from sim.core.schemes import SchemeRegistry
from sim.core.summary import COLUMNS as SUMMARY_COLUMNS
from sim.core.summary import Summarizer
from sim.frontdoor.scenario import Scenario

PacketSink = Callable[[pd.DataFrame], None]
ColumnSink = Callable[[PacketColumns], None]
Progress = Callable[[float, float, int], None]
CHUNK_ROWS = 50_000
# transactions_per_s, transaction_mean_ns: rr flows only (NaN for the others), over
# [warmup_ns, duration_ns] (`sim.core.traffic.RequestResponseFlow.transaction_stats`)
# TCP flows only (NaN for the others; `sim.core.tcp.TcpFlow.tcp_stats`): throughput_bytes_per_s
# (in-order payload delivered in the window per second), cpu_ns_per_gb (stage CPU of the flow's
# packets, both ways, that ended in the window, per GB of that payload), data_segments (sent,
# retransmissions included), retransmits, acks (pure ACKs sent), timeouts (RTO expiries)
TCP_COLUMNS = ["throughput_bytes_per_s", "cpu_ns_per_gb", "data_segments", "retransmits", "acks", "timeouts"]
CORE_COLUMNS = ["host", "scheme", "core", "busy_ns", "utilisation", "tx_completion_ns", "wakeup_ns"]
FLOW_COLUMNS = ["flow", "kind", "src", "dst", "sent", "transactions_per_s", "transaction_mean_ns"] + TCP_COLUMNS


@dataclass
class Results:
    """One simulated run (see the module docstring).

    cores     host, scheme (the host's ``scheme``, also on a mixed host), core, busy_ns, utilisation
              over [warmup_ns, duration_ns], and
              tx_completion_ns: the part of busy_ns spent on NIC TX completions (`sim.core.txq`),
              wakeup_ns: the part spent waking sleeping threads (`sim.core.apps`: try_to_wake_up
              and its IPI, by the waker's core);
    memory    scheme, namespaces, structure, bytes for every scheme a host uses (a mixed host's
              containers' schemes too), at the
              scenario's ``memory_namespace_counts`` (on the first host running that scheme:
              its core count and socket tables, `sim.core.sockets.TableConfig`);
    flows     one row per flow: flow, kind, src, dst, sent packets;
    stats     engine events, packets generated, records (rows, streamed ones included), wall
              seconds of the run (model construction and results excluded);
    model     the finished `sim.core.model.Model` (recorder, hosts, flows), for benchmarks and debugging.
    """

    scenario: Scenario
    profile: CostProfile
    registry: SchemeRegistry
    cores: pd.DataFrame
    memory: pd.DataFrame
    flows: pd.DataFrame
    stats: dict
    model: Model = field(repr=False)
    _summarizer: Summarizer = field(repr=False)
    _streamed: bool = field(repr=False, default=False)

    @cached_property
    def packet_columns(self) -> PacketColumns:
        """`packets` before the DataFrame is built (`sim.core.records.PacketColumns`)."""
        return self.model.recorder.columns()

    @cached_property
    def packets(self) -> pd.DataFrame:
        """One row per packet copy (`sim.core.records`); empty when the records were streamed."""
        return self.packet_columns.frame()

    @cached_property
    def summary(self) -> pd.DataFrame:
        """Tidy long table: scheme, trip, host, core, metric, value, unit."""
        if not self._streamed:
            self._summarizer.add(self.packet_columns)
        return pd.DataFrame(self._summarizer.rows(self.cores) + self._memory_metric_rows(), columns=SUMMARY_COLUMNS)

    def _memory_metric_rows(self) -> list[tuple]:
        rows = []
        for h in self.model.hosts:
            total = sum(r["bytes"] for s, n, t in h.memory_groups          # a mixed host: its groups' sum
                        for r in memory_rows(s, self.profile, n, h.n_cores, t))
            rows.append((h.scheme.name, "", h.name, "", "memory_bytes", float(total), "bytes"))
        mem = self.profile.memory_bytes
        for spec, host in zip(self.scenario.hosts, self.model.hosts):
            if spec.conntrack.root or spec.conntrack.child:  # sim.core.netfilter: the host's conntrack table
                entries = len(host.ct_seen)
                table = mem.conntrack_hash_buckets * mem.socket_hash_bucket + entries * mem.conntrack_entry
                rows.append((spec.scheme, "", spec.name, "", "conntrack_entries", float(entries), "entries"))
                rows.append((spec.scheme, "", spec.name, "", "conntrack_bytes", float(table), "bytes"))
        return rows


def simulate(scenario: Scenario | dict, *, registry: Optional[SchemeRegistry] = None,
             profile: Optional[CostProfile] = None, on_packets: Optional[PacketSink] = None,
             on_columns: Optional[ColumnSink] = None, on_progress: Optional[Progress] = None,
             progress_steps: int = 50, chunk_rows: int = CHUNK_ROWS) -> Results:
    """Build the model of `scenario`, run it to ``run.duration_ns`` and return its Results."""
    if not isinstance(scenario, Scenario):
        scenario = Scenario.model_validate(scenario)
    run = scenario.run
    summarizer = Summarizer(run.warmup_ns, run.duration_ns, PolicyScope.of(scenario.hosts))
    streamed = on_packets is not None or on_columns is not None
    sink = None
    if streamed:
        def sink(chunk: PacketColumns) -> None:
            summarizer.add(chunk)
            if on_columns is not None:
                on_columns(chunk)
            if on_packets is not None:
                on_packets(chunk.frame())
    model = Model(scenario, registry=registry, profile=profile, record_sink=sink, chunk_rows=chunk_rows)
    t0 = time.perf_counter()
    model.start()
    steps = progress_steps if on_progress is not None else 1
    for k in range(1, steps + 1):
        model.advance(run.duration_ns * k / steps)
        if on_progress is not None:
            on_progress(model.engine.now, run.duration_ns, model.generated)
    model.finish()
    wall_s = time.perf_counter() - t0
    return Results(scenario, model.profile, model.registry, _cores(model), _memory(model), _flows(model),
                   {"events": model.engine.events, "generated": model.generated,
                    "records": model.recorder.flushed_rows + len(model.recorder), "wall_s": wall_s},
                   model, summarizer, streamed)


def _cores(model: Model) -> pd.DataFrame:
    return pd.DataFrame([
        {"host": h.name, "scheme": h.scheme.name, "core": i, "busy_ns": c.busy_ns, "utilisation": u,
         "tx_completion_ns": h.txq.done_ns[i], "wakeup_ns": h.apps.wakeup_ns[i]}
        for h in model.hosts for i, (c, u) in enumerate(zip(h.cores, h.utilisation()))
    ], columns=CORE_COLUMNS)


def _memory(model: Model) -> pd.DataFrame:
    used: dict = {}
    for h in model.hosts:                  # a scheme's memory on the first host that runs it
        used.setdefault(h.scheme.name, (h.scheme, h.n_cores, h.table_config))
        for s, _, t in h.memory_groups:    # and each scheme of a mixed host's containers
            used.setdefault(s.name, (s, h.n_cores, t))
    return pd.concat([memory_table([s], model.profile, model.scenario.memory_namespace_counts, cores=n, tables=t)
                      for s, n, t in used.values()], ignore_index=True)


def _flows(model: Model) -> pd.DataFrame:
    window_ns = min(model.engine._now, model.until_ns) - model.warmup_ns
    rows = []
    for f in model.flows:
        tps, mean_ns = f.transaction_stats(window_ns) if hasattr(f, "transaction_stats") else (math.nan, math.nan)
        tcp = f.tcp_stats(window_ns) if hasattr(f, "tcp_stats") else dict.fromkeys(TCP_COLUMNS, math.nan)
        rows.append({"flow": f.spec.name or f"flow{f.idx}", "kind": f.spec.kind, "src": f.spec.src,
                     "dst": f.spec.dst, "sent": f.sent, "transactions_per_s": tps, "transaction_mean_ns": mean_ns,
                     **tcp})
    return pd.DataFrame(rows, columns=FLOW_COLUMNS)
