"""Progress across points: done, running, failed, skipped, time left (rich, on a terminal only)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import TaskID


class NoProgress:
    def start(self, total: int, skipped: int) -> None: ...
    def update(self, done: int, running: int, failed: int) -> None: ...
    def stop(self) -> None: ...


class Progress(NoProgress):
    def __init__(self) -> None:
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress
        self.bar = RichProgress(TextColumn("points"), BarColumn(), TextColumn("{task.fields[what]}"),
                                TimeElapsedColumn(), transient=False)
        self.task: TaskID | None = None

    def start(self, total: int, skipped: int) -> None:
        self.total, self.skipped, self.t0 = total, skipped, time.monotonic()
        self.bar.start()
        self.task = self.bar.add_task("points", total=max(total, 1), completed=skipped, what="")
        self.update(0, 0, 0)

    def update(self, done: int, running: int, failed: int) -> None:
        finished = self.skipped + done + failed
        left = self.total - finished
        rate = (done + failed) / max(time.monotonic() - self.t0, 1e-9)
        eta = f"{left / rate:,.0f} s left" if rate > 0 and left else ("-" if left else "0 s left")
        what = (f"{self.skipped + done}/{self.total} done ({self.skipped} skipped), {running} running, "
                f"{failed} failed, {eta}")
        assert self.task is not None, "update() before start()"
        self.bar.update(self.task, completed=finished, what=what)

    def stop(self) -> None:
        self.bar.stop()


def make_progress(quiet: bool = False):
    return Progress() if not quiet and sys.stderr.isatty() else NoProgress()
