"""One run's result frames -> the tidy long summary table (one row per metric).

Columns: ``scheme, trip, host, core, metric, value, unit``.  Packet metrics are per
(scheme, trip) over packets *sent* at or after ``warmup_ns`` (``host``/``core`` empty):

==================  ======  ================================================================
metric              unit    meaning
==================  ======  ================================================================
sent                packets packet copies sent after warm-up (every status)
delivered           packets of those, delivered
in_flight           packets of those, still inside the model at the end
drops_<reason>      packets of those, dropped for <reason> (every reason of the run)
offered_pps         pps     sent / (duration_ns - warmup_ns)
throughput_pps      pps     delivered / (duration_ns - warmup_ns)
latency_mean_ns     ns      mean latency of the delivered ones (NaN if none)
latency_p50_ns ...  ns      p50, p90, p99, p999 (99.9th percentile) likewise
==================  ======  ================================================================

Per-core rows: ``metric = utilisation`` (unit ``fraction``, busy time over
[warmup_ns, duration_ns]) with ``host`` and ``core`` set, ``scheme`` the host's scheme
and ``trip`` empty.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = ["scheme", "trip", "host", "core", "metric", "value", "unit"]
PERCENTILES = (("latency_p50_ns", 50.0), ("latency_p90_ns", 90.0), ("latency_p99_ns", 99.0),
               ("latency_p999_ns", 99.9))


def summarize(packets: pd.DataFrame, cores: pd.DataFrame, warmup_ns: float, duration_ns: float) -> pd.DataFrame:
    window_s = (duration_ns - warmup_ns) / 1e9
    rows: list[tuple] = []
    after = packets[packets["t_sent_ns"] >= warmup_ns]
    reasons = [r for r in getattr(packets["drop_reason"].dtype, "categories", []) if r]
    for (scheme, trip), g in after.groupby(["scheme", "trip"], observed=True, sort=True):
        status = g["status"].astype(str)
        delivered = status == "delivered"
        lat = g.loc[delivered, "latency_ns"].to_numpy(dtype=float)

        def add(metric, value, unit):
            rows.append((scheme, trip, "", "", metric, float(value), unit))

        add("sent", len(g), "packets")
        add("delivered", delivered.sum(), "packets")
        add("in_flight", (status == "in_flight").sum(), "packets")
        dropped = g.loc[status == "dropped", "drop_reason"].astype(str).value_counts()
        for r in reasons:
            add(f"drops_{r}", dropped.get(r, 0), "packets")
        add("offered_pps", len(g) / window_s, "pps")
        add("throughput_pps", delivered.sum() / window_s, "pps")
        add("latency_mean_ns", lat.mean() if len(lat) else np.nan, "ns")
        for name, q in PERCENTILES:
            add(name, np.percentile(lat, q) if len(lat) else np.nan, "ns")
    for c in cores.itertuples(index=False):
        rows.append((c.scheme, "", c.host, int(c.core), "utilisation", float(c.utilisation), "fraction"))
    return pd.DataFrame(rows, columns=COLUMNS)
