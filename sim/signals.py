"""SIGINT and SIGTERM for every command: one exception, critical sections, a truthful message.

* `handled()` installs handlers that raise `Interrupted` (a BaseException, so ``except
  Exception`` does not swallow it) for SIGINT and SIGTERM, restoring the previous handlers
  on exit.  `entry()` (the ``netns-sim`` console script and ``python -m sim``) installs them
  before the slow imports of `sim.cli`, so a signal during start-up is a clean exit 130.
* `critical(name)` is a section no signal may cut in half (the renames that publish a
  result): SIGINT/SIGTERM are blocked with ``pthread_sigmask`` in this thread, and a signal
  that still reaches the Python handler meanwhile (delivered to another thread) is held; on
  leaving, a held signal raises `Interrupted` -- after the section has completed.
* `set_outcome(fn)` registers what the running command has on disk right now; `message()`
  is the line to print when interrupted (``interrupted: <fn()>``), so the message is true
  whether the signal came before or after the commit.

Test hook: with ``NETNS_SIM_TEST_CRITICAL_PAUSE=SECONDS`` every critical section prints
``netns-sim: in critical section NAME`` to stderr and sleeps that long with the signals
blocked (tests send a signal then and check that message and disk agree).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_INTERRUPTED = 130
PAUSE_ENV = "NETNS_SIM_TEST_CRITICAL_PAUSE"


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived (`signum`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


_depth = 0                       # nesting of critical sections in progress
_held: list[int] = []            # signals that arrived inside one
_outcome: Optional[Callable[[], str]] = None


def _handler(signum, frame) -> None:
    if _depth:
        _held.append(signum)
        return
    raise Interrupted(signum)


@contextmanager
def handled() -> Iterator[None]:
    """SIGINT and SIGTERM raise `Interrupted` inside the block (no-op outside the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def critical(name: str = "") -> Iterator[None]:
    """Run the block with SIGINT/SIGTERM held; a held signal raises `Interrupted` once the
    block has finished (never in the middle of it).  An exception from the block wins."""
    global _depth
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    _depth += 1
    try:
        pause = os.environ.get(PAUSE_ENV) if _depth == 1 else None
        if pause:
            print(f"netns-sim: in critical section {name}", file=sys.stderr, flush=True)
            time.sleep(float(pause))
        yield
    finally:
        _depth -= 1
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)      # a blocked signal is delivered here
    if not _depth and _held:
        signum = _held[0]
        _held.clear()
        raise Interrupted(signum)


def set_outcome(fn: Optional[Callable[[], str]]) -> None:
    """`fn()` says what is on disk if the command is interrupted now (None: nothing to say)."""
    global _outcome
    _outcome = fn


def message() -> str:
    """The line to print on interruption: ``interrupted: <what is on disk>``."""
    return f"interrupted: {_outcome()}" if _outcome is not None else "interrupted"


def entry() -> int:
    """The ``netns-sim`` command: handlers first, then import and run `sim.cli.main` (in a
    process declared its own, `sim.longlived.own_process`).

    pyarrow's allocator is jemalloc unless the environment names one (``ARROW_DEFAULT_MEMORY_POOL``,
    read when pyarrow is first imported, so set before `sim.cli` imports it): its usual default,
    mimalloc, keeps the pages of freed record batches, so a streaming scan of packets/ (``report``)
    grew with the packets read (bench/report.py)."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    from sim import longlived
    longlived.own_process()                 # the process is the command's: sim.longlived
    with handled():
        try:
            from sim.cli import main
            return main()
        except Interrupted:
            print(message(), file=sys.stderr)
            return EXIT_INTERRUPTED
