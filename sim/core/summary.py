"""One run's packets -> the tidy long summary table (one row per metric), in one streaming pass.

`Summarizer` takes the packet frame in chunks (as `sim.core.records.Recorder` hands them over
during a run) and keeps, per (scheme, trip), counters and a `sim.core.sketch.QuantileSketch` of
latency, so memory does not grow with the number of packets.  `summarize(...)` is the
one-shot form.  Columns: ``scheme, trip, host, core, metric, value, unit``.  Packet metrics
are per (scheme, trip) over packets *sent* at or after ``warmup_ns`` (``host``/``core``
empty):

==================  ======  ================================================================
metric              unit    meaning
==================  ======  ================================================================
sent                packets packet copies sent after warm-up (every status)
delivered           packets of those, delivered
in_flight           packets of those, still inside the model at the end
drops_<reason>      packets of those, dropped for <reason> (every reason of the run)
offered_pps         pps     sent / (duration_ns - warmup_ns)
throughput_pps      pps     delivered / (duration_ns - warmup_ns)
latency_mean_ns     ns      mean latency of the delivered ones, exact (NaN if none)
latency_p50_ns ...  ns      p50, p90, p99, p999 (99.9th percentile) likewise, from the sketch:
                            within 0.1% (relative) of the exact order statistic of rank
                            ceil(q * n) (numpy ``method="inverted_cdf"``)
==================  ======  ================================================================

Per-core rows: ``metric = utilisation`` (unit ``fraction``, busy time over
[warmup_ns, duration_ns]) with ``host`` and ``core`` set, ``scheme`` the host's scheme
and ``trip`` empty.
"""

from __future__ import annotations

import pandas as pd

from sim.core.sketch import QuantileSketch

COLUMNS = ["scheme", "trip", "host", "core", "metric", "value", "unit"]
PERCENTILES = (("latency_p50_ns", 0.50), ("latency_p90_ns", 0.90), ("latency_p99_ns", 0.99),
               ("latency_p999_ns", 0.999))
QUANTILE_RELATIVE_ERROR = 0.001


class _Group:
    __slots__ = ("sent", "delivered", "in_flight", "drops", "latency")

    def __init__(self) -> None:
        self.sent = self.delivered = self.in_flight = 0
        self.drops: dict[str, int] = {}
        self.latency = QuantileSketch(QUANTILE_RELATIVE_ERROR)


class Summarizer:
    """Streaming summary of one run (see the module docstring)."""

    def __init__(self, warmup_ns: float, duration_ns: float) -> None:
        self.warmup_ns = warmup_ns
        self.window_s = (duration_ns - warmup_ns) / 1e9
        self.groups: dict[tuple[str, str], _Group] = {}
        self.reasons: set[str] = set()

    def add(self, packets: pd.DataFrame) -> None:
        """Fold in a chunk of the packet frame."""
        cats = getattr(packets["drop_reason"].dtype, "categories", [])
        self.reasons.update(r for r in cats if r)
        after = packets[packets["t_sent_ns"] >= self.warmup_ns]
        for (scheme, trip), g in after.groupby(["scheme", "trip"], observed=True, sort=False):
            acc = self.groups.setdefault((str(scheme), str(trip)), _Group())
            status = g["status"].astype(str)
            delivered = (status == "delivered").to_numpy()
            acc.sent += len(g)
            acc.delivered += int(delivered.sum())
            acc.in_flight += int((status == "in_flight").sum())
            for r, n in g.loc[status == "dropped", "drop_reason"].astype(str).value_counts().items():
                acc.drops[r] = acc.drops.get(r, 0) + int(n)
            acc.latency.add(g["latency_ns"].to_numpy(dtype=float)[delivered])

    def table(self, cores: pd.DataFrame) -> pd.DataFrame:
        rows: list[tuple] = []
        for (scheme, trip) in sorted(self.groups):
            acc = self.groups[(scheme, trip)]

            def add(metric, value, unit):
                rows.append((scheme, trip, "", "", metric, float(value), unit))  # noqa: B023 (called at once)

            add("sent", acc.sent, "packets")
            add("delivered", acc.delivered, "packets")
            add("in_flight", acc.in_flight, "packets")
            for r in sorted(self.reasons):
                add(f"drops_{r}", acc.drops.get(r, 0), "packets")
            add("offered_pps", acc.sent / self.window_s, "pps")
            add("throughput_pps", acc.delivered / self.window_s, "pps")
            add("latency_mean_ns", acc.latency.mean, "ns")
            for name, q in PERCENTILES:
                add(name, acc.latency.quantile(q), "ns")
        for c in cores.itertuples(index=False):
            rows.append((c.scheme, "", c.host, int(c.core), "utilisation", float(c.utilisation), "fraction"))
        return pd.DataFrame(rows, columns=COLUMNS)


def summarize(packets: pd.DataFrame, cores: pd.DataFrame, warmup_ns: float, duration_ns: float) -> pd.DataFrame:
    """One-shot form of `Summarizer`: the whole packet frame at once."""
    s = Summarizer(warmup_ns, duration_ns)
    s.add(packets)
    return s.table(cores)
