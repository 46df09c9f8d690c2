"""The result directory, written atomically.

`ResultDir(target, force)` creates ``<parent>/.tmp-<name>-<pid>-<random>`` next to the
target (same filesystem), marked as netns-sim's (``.netns-sim``, see `sim.results.atomic`), and
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

What goes inside is the study layout of `sim.sweep.runner` (the same as a sweep
directory); each file there is itself written and fsynced before the rename.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sim import signals
from sim.results.atomic import NotOurs, TargetExists, check_replaceable, clean_stale, staging_dir, swap_in

__all__ = ["ResultDir", "TargetExists", "NotOurs", "clean_stale"]


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
        self.done = False

    def __enter__(self) -> "ResultDir":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.done:
            self.abort()

    # -- ending -------------------------------------------------------------------------
    def commit(self) -> Path:
        """Swap the complete temporary directory into place (its files were fsynced as written)."""
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
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.done = True
