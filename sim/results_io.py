"""The result directory, written atomically.

`ResultDir(target, force)` creates ``<parent>/.tmp-<name>-<pid>-<random>`` next to the
target (same filesystem), marked as netns-sim's (``.netns-sim``, see `sim.atomic`), and
everything is written there; `commit()` renames it to the target.  With ``force`` an existing
target is first renamed aside to ``.old-<name>-<pid>-…``, the new one renamed in, then the old
one deleted — so at every instant the target is either the complete old result or the complete
new one.  ``force`` replaces only a directory netns-sim created (marked) or an empty one: a
file, a symlink or a non-empty unmarked directory raises `NotOurs` (a `TargetExists`) and is
left intact.  The renames run in a `sim.signals.critical` section (SIGINT/SIGTERM held), and
`sim.signals.message()` says truthfully whether the result was committed.  `abort()` (also on
an exception inside a ``with`` block) deletes the temporary directory.  Leftovers of killed
runs (``.tmp-*`` and ``.old-*`` whose process is gone, marked or empty) are cleaned when the
next run for the same target starts; an ``.old-*`` left by a crash between the two renames is
restored if the target is missing.

Files (see the README for their columns): packets.parquet, summary.csv, memory.csv,
cores.csv, flows.csv, scenario.resolved.yaml, metadata.json.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim import signals
from sim.atomic import NotOurs, TargetExists, check_replaceable, clean_stale, staging_dir, swap_in

__all__ = ["ResultDir", "TargetExists", "NotOurs", "clean_stale"]


def _arrow_table(df: pd.DataFrame) -> pa.Table:
    """Categoricals as plain strings (cast inside Arrow, no Python objects), so every variant
    and every chunk has the same Parquet schema."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
    return table


class ResultDir:
    """One result directory being written (see the module docstring); a context manager
    that aborts unless `commit()` succeeded."""

    def __init__(self, target: str | Path, force: bool = False) -> None:
        self.target = Path(target)
        self.force = force
        clean_stale(self.target)
        if os.path.lexists(self.target) and not force:
            raise TargetExists(f"{self.target} already exists; use --force to replace it "
                               f"(the old result stays intact until the new one is complete) or --out DIR")
        check_replaceable(self.target)
        self.committed = False
        signals.set_outcome(self.outcome)
        try:                                    # a signal here must not leave the directory behind
            with signals.critical("create the temporary directory"):
                self.tmp = staging_dir(self.target, "run")
        except BaseException:
            if hasattr(self, "tmp"):
                shutil.rmtree(self.tmp, ignore_errors=True)
            raise
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
        if os.path.lexists(self.target) and not self.force:
            raise TargetExists(f"{self.target} appeared while running; the result is left in {self.tmp}")
        with signals.critical("commit"):        # a signal here is raised after both flags are set
            swap_in(self.tmp, self.target)
            self.committed = self.done = True
        return self.target

    def outcome(self) -> str:
        """What is on disk now, for the 'interrupted: ...' line."""
        if self.committed:
            return f"result complete at {self.target}"
        earlier = "; the earlier result there is intact" if os.path.lexists(self.target) else ""
        return f"nothing written to {self.target}{earlier}"

    def abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:
                pass
            self._writer = None
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.done = True
