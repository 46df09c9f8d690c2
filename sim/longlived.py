"""Tell the cyclic garbage collector that what a command has loaded lives as long as its process.

Contract: `own_process()` declares that this process is netns-sim's: the ``netns-sim`` command
(`sim.signals.entry`, also ``python -m sim``) and each local pool worker (`sim.sweep.executors`)
call it first.  In such a process, `freeze()` moves every object the collector tracks now into
its permanent generation (`gc.freeze`): no later collection examines them again, and none of
them is ever freed by the collector (an object that is cyclic garbage already, or becomes so
later, stays in memory until the process ends).  Objects made afterwards are collected as
usual.  The commands call it once their imports and one-time parses are done: ``run``,
``sweep`` and ``report`` (`sim.cli`, `sim.sweep.cli`), and each pool worker after its warm-up.
In any other process -- the Python API in a notebook, `sim.cli.main` called from a test or a
script -- both `freeze` and `collected_once` do nothing: those objects are not ours to freeze.

Why: each variant a run simulates leaves its finished model behind as cyclic garbage (hosts,
cores and apps hold each other's bound methods), which only a full collection frees, and
every full collection also walked the ~100,000 objects of the imports (pandas, pyarrow,
pydantic, the built-in schemes).  `netns-sim run` of the default scenario (120 variants)
spent 2.4 s of its 10.4 s of CPU in the collector, 1.2 s with them frozen (docs/performance.md).
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator

_owned = False          # own_process() was called: the process is netns-sim's
_frozen = False         # freeze() took effect


def own_process() -> None:
    """Declare this process netns-sim's own (see the module docstring)."""
    global _owned
    _owned = True


def freeze() -> None:
    """In a process of our own, exclude every object alive now from the collector's future
    passes; elsewhere nothing (see the module docstring)."""
    global _frozen
    if _owned:
        gc.freeze()
        _frozen = True


@contextmanager
def collected_once() -> Iterator[None]:
    """In a process `freeze` took effect in: no automatic collection inside the block and one
    full collection at its end, which walks only what was made since the freeze.  Elsewhere
    (the Python API in someone's notebook), and when collection is off already: nothing.
    For blocks whose objects live to their end and then die together: a variant
    (`sim.sweep.worker.run_point`; its model makes next to no cyclic garbage while it runs:
    the 100,000-packet chain leaves 1,453 collectable objects, a 20,000-packet one 533) and
    the report's figures (`analysis.report`; all of them are alive until saved).  Memory
    stays what it was (the report's peak fell, 328 -> 318 MB); the collector's passes inside
    the block, which promoted those objects through every generation before the one that
    frees them, are saved."""
    if not _frozen or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()
