"""What the report needs from packets/, aggregated in one streaming scan (issue 13, "report streams").

`aggregate(res, columns) -> PacketStats`.  The delivered packets sent at or after ``run.warmup_ns``
are read one record batch at a time (`sim.results.reader.Results.iter_packets`: the warm-up and
status filters run in the pyarrow scan, only `columns` are read) and folded into per-group sums, so
memory is bounded by the number of groups, not of packets.  A group is one value of ``scheme``,
``trip`` and every factor of the result (`Results.factors`) but the scheme factor (whose levels
are the ``scheme`` values): replications, seeds and result directories of one condition are
pooled, as in the packet means the claims cite, so selecting a full condition
(`analysis.conditions.Roles.reference`) and one scheme and trip gives one row whose means are
those of its packets.

`PacketStats.means` has one row per group: the group's key columns, ``status`` (always
``"delivered"``, so code that filters a packet frame on it works unchanged), ``packets`` (the
group's delivered packets) and, per column, the mean over the group's packets where the column
is not null (pandas ``mean``; NaN when it is null for every packet).  A mean over several groups
must weight them by ``packets`` (`weighted_mean`).  `PacketStats.hist[i]` counts the
``latency_ns`` of row ``i``'s packets in the log-spaced bins `EDGES` (`BINS_PER_DECADE` per
decade, so a CDF read from it is exact at the bin edges and within 1.2% in latency between them;
values below or above the range fall in the first or last bin).

Units: ns, packets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.conditions import short

BINS_PER_DECADE = 200
EDGES = np.logspace(0, 11, 11 * BINS_PER_DECADE + 1)     # 1 ns .. 100 s
HIST_COLUMN = "latency_ns"


@dataclass
class PacketStats:
    """Per-group means and latency histograms of the delivered packets (module docstring)."""

    means: pd.DataFrame
    hist: np.ndarray                # (len(means), len(EDGES) - 1) packet counts
    keys: list[str]

    def histogram(self, rows: pd.DataFrame) -> np.ndarray:
        """Latency counts per bin summed over `rows` (a selection of `means`, same index)."""
        return self.hist[rows.index.to_numpy()].sum(axis=0) if len(rows) else np.zeros(len(EDGES) - 1)


def weighted_mean(rows: pd.DataFrame, column: str) -> float:
    """Mean of `column` over the packets of `rows` (rows of `PacketStats.means`): weighted by ``packets``."""
    w = rows["packets"].to_numpy(dtype=float)
    v = rows[column].to_numpy(dtype=float)
    ok = ~np.isnan(v)
    return float(np.dot(w[ok], v[ok]) / w[ok].sum()) if ok.any() and w[ok].sum() > 0 else float("nan")


def aggregate(res, columns: list[str]) -> PacketStats:
    """One scan of `res`'s delivered packets after warm-up (see the module docstring)."""
    keys: list[str] = []
    parts: list[pd.DataFrame] = []
    hist: dict[tuple, np.ndarray] = {}
    nb = len(EDGES) - 1
    cols: list[str] = []
    read = list(dict.fromkeys(["scheme", "trip", *columns, HIST_COLUMN]))
    for df in res.iter_packets(columns=read, delivered=True, id_columns=False):
        if not keys:
            keys = [k for k in dict.fromkeys(["scheme", "trip", *(f for f in res.factors if short(f) != "scheme")])
                    if k in df.columns]
            cols = [c for c in dict.fromkeys(columns) if c in df.columns and c not in keys]
        if not len(df):
            continue
        num = df[cols].astype(float)
        g = num.groupby([df[k] for k in keys], sort=False, dropna=False)
        part = pd.concat([g.sum(min_count=1).add_suffix("\0sum"), g.count().add_suffix("\0n"),
                          g.size().rename("packets")], axis=1)
        parts.append(part)            # one row per group of the batch: small
        codes = g.ngroup().to_numpy()
        lat = df[HIST_COLUMN].to_numpy(dtype=float)
        b = np.clip(np.searchsorted(EDGES, lat, side="right") - 1, 0, nb - 1)
        counts = np.bincount(codes * nb + b, minlength=g.ngroups * nb).reshape(g.ngroups, nb)
        for i, key in enumerate(_group_keys(g)):
            hist[key] = hist[key] + counts[i] if key in hist else counts[i].copy()
    if not parts:
        return PacketStats(pd.DataFrame(columns=[*keys, "status", "packets", *cols]), np.zeros((0, nb)), keys)
    sums = pd.concat(parts).groupby(level=list(range(len(keys))), sort=False, dropna=False).sum(min_count=1)
    out = pd.DataFrame(index=sums.index)
    for c in cols:
        n = sums[f"{c}\0n"]
        out[c] = (sums[f"{c}\0sum"] / n).where(n > 0)
    out["packets"] = sums["packets"].astype(int)
    order = list(out.index)
    out = out.reset_index()
    out.columns = [*keys, *out.columns[len(keys):]]
    out.insert(len(keys), "status", "delivered")
    h = np.vstack([hist[k if isinstance(k, tuple) else (k,)] for k in order])
    return PacketStats(out, h, keys)


def _group_keys(g) -> list[tuple]:
    """The group keys of `g` in `ngroup` order, each a tuple."""
    idx = g.size().index          # sort=False: in order of first appearance, as ngroup numbers them
    return [k if isinstance(k, tuple) else (k,) for k in idx]
