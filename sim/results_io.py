"""The result directory, written atomically.

`ResultDir(target, force)` creates ``<parent>/.tmp-<name>-<pid>-<random>`` next to the
target (same filesystem) and everything is written there; `commit()` renames it to the
target.  With ``force`` an existing target is first renamed aside to ``.old-<name>-<pid>-…``,
the new one renamed in, then the old one deleted — so at every instant the target is either
the complete old result or the complete new one.  `abort()` (also on an exception inside a
``with`` block) deletes the temporary directory.  Leftovers of killed runs (``.tmp-*`` and
``.old-*`` whose process is gone) are cleaned when the next run for the same target starts;
an ``.old-*`` left by a crash between the two renames is restored if the target is missing.

Files (see the README for their columns): packets.parquet, summary.csv, memory.csv,
cores.csv, flows.csv, scenario.resolved.yaml, metadata.json.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class TargetExists(FileExistsError):
    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(target: Path) -> list[Path]:
    """Remove leftovers of dead runs writing `target`; returns what was removed or restored."""
    touched = []
    parent = target.parent
    if not parent.is_dir():
        return touched
    for kind in (".old-", ".tmp-"):
        for p in sorted(parent.glob(f"{kind}{target.name}-*")):
            try:
                pid = int(p.name[len(kind) + len(target.name) + 1:].split("-")[0])
            except ValueError:
                continue
            if _alive(pid) and pid != os.getpid():
                continue
            if kind == ".old-" and not target.exists():
                os.replace(p, target)          # crash between the two renames: restore
            else:
                shutil.rmtree(p, ignore_errors=True)
            touched.append(p)
    return touched


def _arrow_table(df: pd.DataFrame) -> pa.Table:
    """Categoricals as plain strings (cast inside Arrow, no Python objects), so every variant
    and every chunk has the same Parquet schema."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
    return table


class ResultDir:
    def __init__(self, target: str | Path, force: bool = False) -> None:
        self.target = Path(target)
        self.force = force
        clean_stale(self.target)
        if self.target.exists() and not force:
            raise TargetExists(f"{self.target} already exists; use --force to replace it "
                               f"(the old result stays intact until the new one is complete) or --out DIR")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.target.parent / f".tmp-{self.target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.tmp.mkdir()
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._tables: dict[str, list[pd.DataFrame]] = {}
        self.done = False

    def __enter__(self) -> "ResultDir":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.done:
            self.abort()

    # -- writing ------------------------------------------------------------------------
    def add_packets(self, frame: pd.DataFrame) -> None:
        """Append packet rows (a chunk of a variant) to packets.parquet as a row group."""
        table = _arrow_table(frame)
        if self._writer is None:      # all-null columns (no drops yet) are strings, not nulls
            self._schema = pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f
                                      for f in table.schema]).remove_metadata()
            self._writer = pq.ParquetWriter(self.tmp / "packets.parquet", self._schema, compression="zstd")
        self._writer.write_table(table.select(self._schema.names).cast(self._schema))

    def add_table(self, name: str, frame: pd.DataFrame) -> None:
        """Accumulate rows of a CSV table (written at commit)."""
        self._tables.setdefault(name, []).append(frame)

    def write_text(self, name: str, text: str) -> None:
        (self.tmp / name).write_text(text)

    def write_json(self, name: str, data: dict) -> None:
        (self.tmp / name).write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")

    # -- ending -------------------------------------------------------------------------
    def commit(self) -> Path:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for name, frames in self._tables.items():
            pd.concat(frames, ignore_index=True).to_csv(self.tmp / name, index=False)
        for f in self.tmp.iterdir():       # data on disk before the rename makes it visible
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if self.target.exists():
            if not self.force:
                raise TargetExists(f"{self.target} appeared while running; the result is left in {self.tmp}")
            old = self.target.parent / f".old-{self.target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.replace(self.target, old)
            os.replace(self.tmp, self.target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.target)
        self.done = True
        return self.target

    def abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:
                pass
            self._writer = None
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.done = True
