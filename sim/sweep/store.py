"""The sweep's result store: one partitioned Parquet dataset plus per-point markers.

Layout of OUT::

    sweep.json                       what was asked: scenario, swept keys, replications, points
    packets/K1=V1/K2=V2/part-KEY.parquet
                                     one file per point (variant x replication); hive-style
                                     directories for the swept keys (values URI-encoded)
    points/KEY.json                  completion marker: key, levels, replication, config,
                                     per-point summary rows, run stats
    failed/KEY.json                  a point that failed: levels, config, error, traceback
    summary.csv, points.csv          written at the end (`sim.sweep.aggregate`)
    .netns-sim                       ownership marker (`sim.results.atomic`): a non-empty OUT without
                                     it is refused, never written into or cleaned

Writes are crash-safe: a file is written under a hidden name (``.tmp-...``, which pyarrow
datasets ignore), fsynced and renamed into place; the partition first, the marker last.
A point is done iff its marker exists.  `prepare` (at every start) removes temporary files
and partitions without a marker (a crash between the two renames), so a sweep killed at any
instant, even with SIGKILL, resumes without duplicates or corrupt partitions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Optional
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sim.core.records import PacketColumns
from sim.results.atomic import (  # noqa: F401
    TMP_PREFIX,
    NotOurs,
    atomic_write_bytes,
    atomic_write_json,
    check_replaceable,
    fsync_dir,
    hidden_name,
    is_ours,
    write_marker,
)

PACKETS, POINTS, FAILED = "packets", "points", "failed"


def partition_dir(levels: dict, names: Iterable[str]) -> str:
    """``hosts.*.scheme=l2-routed/flows.*.rate_pps=50000`` (hive style, values URI-encoded)."""
    return "/".join(f"{n}={quote(str(levels[n]), safe='')}" for n in names)


def packets_path(root: Path, levels: dict, names: list[str], key: str) -> Path:
    sub = partition_dir(levels, names)
    return root / PACKETS / sub / f"part-{key}.parquet" if sub else root / PACKETS / f"part-{key}.parquet"


def arrow_table(packets: PacketColumns) -> pa.Table:
    """Packet columns -> Arrow, as `pa.Table.from_pandas` makes their frame (NaN as null) but with
    the coded columns as plain strings (missing: null), so every chunk and every point has
    the same Parquet schema."""
    arrays = [_decoded(v, packets.labels[name]) if name in packets.labels else _numbers(v)
              for name, v in packets.values.items()]
    return pa.Table.from_arrays(arrays, names=list(packets.values))


def _numbers(values: np.ndarray) -> pa.Array:
    """A numeric column, NaN as null (``from_pandas=True``, whose NaN scan costs more)."""
    return _with_nulls(values, np.isnan(values) if values.dtype.kind == "f" else None)


def _decoded(codes: np.ndarray, labels: tuple[str, ...]) -> pa.Array:
    """Codes into `labels` -> the labels as strings (code -1: null), what a categorical
    column's dictionary cast to strings holds; a code out of range raises."""
    return pa.array(labels, type=pa.string()).take(_with_nulls(codes, codes == -1))


def _with_nulls(values: np.ndarray, missing: Optional[np.ndarray]) -> pa.Array:
    """`values` as an Arrow array, null where `missing` (no validity bitmap when none is)."""
    return pa.array(values, mask=missing if missing is not None and missing.any() else None)


class PacketWriter:
    """Streams one point's packet records into one Parquet file (zstd), each chunk a row group.
    Only the text columns are dictionary-encoded: dictionaries of the numbers (pyarrow's
    default) took a fifth of the write's CPU and left the files larger than plain zstd.

    `sink` is a path (a temporary name in the store, see `Store.temp_path`) or a binary
    buffer.  Every row is prefixed with the `ident` columns (run_id, point, replication,
    seed).  The first chunk (`PacketColumns`) fixes the schema (all-null columns as strings).
    `close(empty)` returns the buffer's bytes (None for a path); `discard()` removes a partial file.
    """

    def __init__(self, sink, ident: dict) -> None:
        self.sink = sink
        self.path = sink if isinstance(sink, Path) else None
        self.ident = ident
        self._writer: Optional[pq.ParquetWriter] = None
        self._schema: Optional[pa.Schema] = None

    def add(self, packets: PacketColumns) -> None:
        table = arrow_table(packets)
        n = table.num_rows
        for i, (k, v) in enumerate(self.ident.items()):
            table = table.add_column(i, k, pa.repeat(v, n))       # the type pa.array([v] * n) infers
        if self._writer is None:
            self._schema = pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f
                                      for f in table.schema]).remove_metadata()
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            text = [f.name for f in self._schema if pa.types.is_string(f.type)]
            self._writer = pq.ParquetWriter(self.sink, self._schema, compression="zstd", use_dictionary=text)
        assert self._schema is not None          # fixed together with the writer, by the first chunk
        self._writer.write_table(table.select(self._schema.names).cast(self._schema))

    def close(self, empty: Optional[PacketColumns] = None) -> Optional[bytes]:
        """Finish the file.  A point without a single packet writes `empty` (the records'
        columns without a row, for the schema)."""
        if self._writer is None:
            assert empty is not None, "a point without packets needs their empty columns for the schema"
            self.add(empty)
        assert self._writer is not None          # add() opened it
        self._writer.close()
        if self.path is not None:
            with open(self.path, "rb") as fh:
                os.fsync(fh.fileno())
            return None
        return self.sink.getvalue()

    def discard(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:   # noqa: BLE001 - already failing; remove what we can
                pass
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class Store:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- paths --------------------------------------------------------------------------
    def temp_path(self, rel: str) -> Path:
        """A hidden temporary name beside ``root/rel`` (removed by `prepare` if left behind)."""
        return hidden_name(self.root / rel, TMP_PREFIX)

    def marker(self, key: str) -> Path:
        return self.root / POINTS / f"{key}.json"

    def failure(self, key: str) -> Path:
        return self.root / FAILED / f"{key}.json"

    # -- lifecycle ----------------------------------------------------------------------
    def prepare(self) -> dict:
        """Create the layout; remove temporary files and partitions without a marker.

        The root must be absent, empty, or a sweep directory netns-sim created (it carries
        the ``.netns-sim`` marker, written here); anything else raises `NotOurs` before a
        single file is written or removed."""
        check_replaceable(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        if not is_ours(self.root):
            write_marker(self.root, "sweep")
        for d in (PACKETS, POINTS, FAILED):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        done = self.done_keys()
        removed = {"temp": 0, "orphan": 0}
        for dirpath, _dirs, files in os.walk(self.root):
            for f in files:
                p = Path(dirpath) / f
                if f.startswith(TMP_PREFIX):
                    p.unlink(missing_ok=True)
                    removed["temp"] += 1
                elif f.startswith("part-") and f.endswith(".parquet") and f[5:-8] not in done \
                        and Path(dirpath).is_relative_to(self.root / PACKETS):
                    p.unlink(missing_ok=True)
                    removed["orphan"] += 1
        return removed

    def done_keys(self) -> set[str]:
        d = self.root / POINTS
        if not d.is_dir():
            return set()
        return {p.name[:-5] for p in d.iterdir() if p.name.endswith(".json") and not p.name.startswith(".")}

    def markers(self, keys: Optional[Iterable[str]] = None) -> list[dict]:
        keys = sorted(self.done_keys() if keys is None else keys)
        return [json.loads(self.marker(k).read_text()) for k in keys if self.marker(k).exists()]

    def failures(self) -> list[dict]:
        d = self.root / FAILED
        return [json.loads(p.read_text()) for p in sorted(d.glob("*.json"))] if d.is_dir() else []

    # -- one point (called in the worker when it sees the store, else in the client) ------
    def commit_point(self, marker: dict, packets: Optional[bytes | Path]) -> None:
        """Partition first, marker last, each via temp + fsync + rename.  `packets` is the
        partition's bytes, a finished temporary file (`temp_path`) to rename, or None (already
        in place)."""
        if isinstance(packets, Path):
            final = self.root / marker["file"]
            os.replace(packets, final)
            fsync_dir(final.parent)
        elif packets is not None:
            atomic_write_bytes(self.root / marker["file"], packets)
        atomic_write_json(self.marker(marker["key"]), marker)
        self.failure(marker["key"]).unlink(missing_ok=True)

    def record_failure(self, info: dict) -> None:
        atomic_write_json(self.failure(info["key"]), info)

    # -- reading ------------------------------------------------------------------------
    def files(self, keys: Optional[Iterable[str]] = None) -> list[str]:
        """Partition files of finished points only (a marker is the commit)."""
        out = []
        for m in self.markers(keys):
            p = self.root / m["file"]
            if p.exists():
                out.append(str(p))
        return out

    def dataset(self, keys: Optional[Iterable[str]] = None) -> ds.Dataset:
        """The packets of finished points as one pyarrow dataset; hive columns for swept keys."""
        files = self.files(keys)
        part = ds.HivePartitioning.discover(infer_dictionary=False, segment_encoding="uri")
        return ds.dataset(files, format="parquet", partitioning=part,
                          partition_base_dir=str(self.root / PACKETS))
