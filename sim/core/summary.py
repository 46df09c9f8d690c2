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

With a `sim.core.netfilter.PolicyScope` (``simulate`` always gives one), per (scheme, trip),
over the delivered packets sent after warm-up, in ``rules``: ``policy_declared``, the mean
number of rules declared in the chains of the namespaces the trip touches (its containers'
and its hosts' roots, `sim.core.netfilter.policy_sums`); ``policy_bypassed``, the mean
number of those in chains the packet's path never crossed; and, for every (where, chain)
with rules declared, ``policy_bypassed_<where>_<chain>`` (where: ``src`` container,
``root`` of either host, ``dst`` container; chain: prerouting, input, forward, output,
postrouting), the mean number of its rules bypassed (0: all met).  NaN when none was
delivered.

Per-core rows: ``metric = utilisation`` (unit ``fraction``, busy time over
[warmup_ns, duration_ns]) with ``host`` and ``core`` set, ``scheme`` the host's scheme
and ``trip`` empty.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from sim.core.netfilter import WHERE, PolicyRows, PolicyScope, host_positions, policy_sums, policy_sums_of
from sim.core.records import PacketColumns
from sim.core.sketch import QuantileSketch
from sim.core.stages import NF_CHAINS

COLUMNS = ["scheme", "trip", "host", "core", "metric", "value", "unit"]
PERCENTILES = (("latency_p50_ns", 0.50), ("latency_p90_ns", 0.90), ("latency_p99_ns", 0.99),
               ("latency_p999_ns", 0.999))
QUANTILE_RELATIVE_ERROR = 0.001
CODED_KEYS = ("scheme", "trip", "status", "drop_reason")    # coded columns `Summarizer.add` needs


class _Group:
    __slots__ = ("sent", "delivered", "in_flight", "drops", "latency", "declared", "bypassed")

    def __init__(self) -> None:
        self.sent = self.delivered = self.in_flight = 0
        self.drops: dict[str, int] = {}
        self.latency = QuantileSketch(QUANTILE_RELATIVE_ERROR)
        self.declared = np.zeros((len(WHERE), len(NF_CHAINS)))     # rules summed over delivered packets
        self.bypassed = np.zeros((len(WHERE), len(NF_CHAINS)))


class Summarizer:
    """Streaming summary of one run (see the module docstring)."""

    def __init__(self, warmup_ns: float, duration_ns: float, policy: Optional[PolicyScope] = None) -> None:
        self.policy = policy
        self.warmup_ns = warmup_ns
        self.window_s = (duration_ns - warmup_ns) / 1e9
        self.groups: dict[tuple[str, str], _Group] = {}
        self.reasons: set[str] = set()

    def add(self, packets: PacketColumns | pd.DataFrame) -> None:
        """Fold in a chunk of the packet records: `PacketColumns` or a packet frame."""
        cats = packets.labels["drop_reason"] if isinstance(packets, PacketColumns) \
            else getattr(packets["drop_reason"].dtype, "categories", [])
        self.reasons.update(r for r in cats if r)
        if isinstance(packets, PacketColumns) or \
                all(isinstance(packets[c].dtype, pd.CategoricalDtype) for c in CODED_KEYS):
            self._add_coded(packets)
            return
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
            if self.policy is not None:
                declared, bypassed = policy_sums(g[delivered], self.policy)
                acc.declared += declared
                acc.bypassed += bypassed

    def _add_coded(self, packets: PacketColumns | pd.DataFrame) -> None:
        """`add` for records whose scheme, trip, status and drop_reason are coded (`PacketColumns`,
        or the categorical columns of the records' frame): the same groups, counts and arrays
        in the same order, from the codes instead of a DataFrame and string conversions per
        group."""
        keep = np.flatnonzero(_values(packets, "t_sent_ns") >= self.warmup_ns)
        (s_all, s_names), (t_all, t_names) = _codes_and_labels(packets, "scheme"), _codes_and_labels(packets, "trip")
        s_code = s_all[keep].astype(np.int64)
        t_code = t_all[keep].astype(np.int64)
        combo = s_code * (len(t_names) + 1) + t_code
        combo[(s_code < 0) | (t_code < 0)] = -1            # a missing key: no group (observed, dropna)
        uniq, first = np.unique(combo, return_index=True)
        st_all, st_names = _codes_and_labels(packets, "status")
        st_code = st_all[keep]
        r_all, r_names = _codes_and_labels(packets, "drop_reason")
        r_code = r_all[keep]
        latency = _values(packets, "latency_ns").astype(float, copy=False)[keep]
        policy = self.policy
        ends = _policy_rows(packets, policy).take(keep) if policy is not None else None

        def code_of(name: str) -> int:
            return st_names.index(name) if name in st_names else -2
        delivered_c, in_flight_c, dropped_c = code_of("delivered"), code_of("in_flight"), code_of("dropped")
        for u in uniq[np.argsort(first, kind="stable")]:      # groups in order of first appearance
            if u < 0:
                continue
            rows = np.flatnonzero(combo == u)
            sc, tc = divmod(int(u), len(t_names) + 1)
            acc = self.groups.setdefault((s_names[sc], t_names[tc]), _Group())
            st = st_code[rows]
            delivered = st == delivered_c
            acc.sent += len(rows)
            acc.delivered += int(delivered.sum())
            acc.in_flight += int((st == in_flight_c).sum())
            dropped = r_code[rows[st == dropped_c]]
            for c, n in zip(*np.unique(dropped, return_counts=True)):
                r = r_names[c] if c >= 0 else "nan"
                acc.drops[r] = acc.drops.get(r, 0) + int(n)
            acc.latency.add(latency[rows][delivered])
            if policy is not None and ends is not None:
                declared, bypassed = policy_sums_of(ends.take(rows[delivered]), policy)
                acc.declared += declared
                acc.bypassed += bypassed

    def table(self, cores: pd.DataFrame) -> pd.DataFrame:
        """The summary (see the module docstring) with the utilisation rows of `cores`."""
        return pd.DataFrame(self.rows(cores), columns=COLUMNS)

    def rows(self, cores: pd.DataFrame) -> list[tuple]:
        """`table`'s rows, as tuples in `COLUMNS` order."""
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
            if self.policy is not None:
                n = acc.delivered or np.nan
                add("policy_declared", acc.declared.sum() / n, "rules")
                add("policy_bypassed", acc.bypassed.sum() / n, "rules")
                for w, where in enumerate(WHERE):
                    for c, chain in enumerate(NF_CHAINS):
                        if acc.declared[w, c] > 0:
                            add(f"policy_bypassed_{where}_{chain}", acc.bypassed[w, c] / n, "rules")
        per_core = zip(*(cores[c].tolist() for c in ("scheme", "host", "core", "utilisation")))
        rows += [(s, "", h, int(c), "utilisation", float(u), "fraction") for s, h, c, u in per_core]
        return rows


def _values(packets: PacketColumns | pd.DataFrame, name: str) -> np.ndarray:
    """Column `name` as a numpy array."""
    return packets.values[name] if isinstance(packets, PacketColumns) else packets[name].to_numpy()


def _codes_and_labels(packets: PacketColumns | pd.DataFrame, name: str) -> tuple[np.ndarray, list[str]]:
    """Coded (categorical) column `name`: its codes (-1 = missing) and its labels as strings."""
    if isinstance(packets, PacketColumns):
        return packets.values[name], list(packets.labels[name])
    cat = packets[name].cat
    return cat.codes.to_numpy(), [str(c) for c in cat.categories]


def _policy_rows(packets: PacketColumns | pd.DataFrame, policy: PolicyScope) -> PolicyRows:
    """What `policy_sums_of` reads of every row of `packets`, host positions in `policy`."""
    return PolicyRows(host_positions(policy, *_codes_and_labels(packets, "src_host")),
                      host_positions(policy, *_codes_and_labels(packets, "dst_host")),
                      _values(packets, "src_netns"), _values(packets, "dst_netns"), _values(packets, "nf_chains"))


def summarize(packets: pd.DataFrame, cores: pd.DataFrame, warmup_ns: float, duration_ns: float,
              policy: Optional[PolicyScope] = None) -> pd.DataFrame:
    """One-shot form of `Summarizer`: the whole packet frame at once."""
    s = Summarizer(warmup_ns, duration_ns, policy)
    s.add(packets)
    return s.table(cores)
