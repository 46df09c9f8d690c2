"""The result directory, written atomically.

`ResultDir(target, force)` creates ``<parent>/.tmp-<name>-<pid>-<random>`` next to the
target (same filesystem) and everything is written there; `commit()` renames it to the
target.  With ``force`` an existing target is first renamed aside to ``.old-<name>-<pid>-…``,
the new one renamed in, then the old one deleted — so at every instant the target is either
the complete old result or the complete new one.  `abort()` (also on an exception inside a
``with`` block) deletes the temporary directory.  Leftovers of killed runs (``.tmp-*`` and
``.old-*`` whose process is gone) are cleaned when the next run for the same target starts;
an ``.old-*`` left by a crash between the two renames is restored if the target is missing.

What goes inside is the study layout of `sim.sweep.runner` (the same as a sweep
directory); each file there is itself written and fsynced before the rename.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


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
        self.done = False

    def __enter__(self) -> "ResultDir":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.done:
            self.abort()

    # -- ending -------------------------------------------------------------------------
    def commit(self) -> Path:
        """Rename the complete temporary directory into place (swapping out an old one)."""
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
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.done = True
