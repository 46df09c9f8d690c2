"""Where points run: in this process (``netns-sim run``), a local process pool (the default
of ``netns-sim sweep``) or a Dask distributed cluster.

An executor has ``submit(fn, *args) -> handle``, ``as_completed(handles)`` yielding
finished handles, ``result(handle)``, ``workers`` (how many points run at once) and
``close()``.  All run the same picklable `sim.sweep.worker.run_point`; which executor ran a
point changes nothing in its records.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent import futures
from typing import Iterable, Iterator, Optional


class InlineExecutor:
    """Runs each point in this process, one after another, when `as_completed` reaches it
    (``netns-sim run``).  `on_progress(point_index, now_ns, until_ns, packets)` is passed to
    the point as it runs, for a progress bar within a point."""

    name = "inline"
    workers = 1

    def __init__(self, on_progress=None) -> None:
        self.on_progress = on_progress
        self._pending: dict[int, tuple] = {}
        self._results: dict[int, dict] = {}

    def submit(self, fn, *args):
        handle = len(self._pending)
        self._pending[handle] = (fn, args)
        return handle

    def as_completed(self, handles: Iterable) -> Iterator:
        for h in handles:
            fn, args = self._pending.pop(h)
            cb = None if self.on_progress is None else (lambda now, until, n, h=h: self.on_progress(h, now, until, n))
            self._results[h] = fn(*args, on_progress=cb)
            yield h

    def result(self, handle):
        return self._results.pop(handle)

    def close(self, cancel: bool = False) -> None:
        self._pending.clear()


class LocalExecutor:
    """`concurrent.futures.ProcessPoolExecutor` on a forkserver (clean children: no threads
    or open files of the parent are inherited), `jobs` processes."""

    name = "local"

    def __init__(self, jobs: Optional[int] = None) -> None:
        self.workers = max(1, jobs or os.cpu_count() or 1)
        ctx = mp.get_context("forkserver") if "forkserver" in mp.get_all_start_methods() else None
        if ctx is not None:
            ctx.set_forkserver_preload(["sim.sweep.worker", "sim.run", "sim.summary"])
        self.pool = futures.ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args)

    def as_completed(self, handles: Iterable) -> Iterator:
        return futures.as_completed(list(handles))

    def result(self, handle):
        return handle.result()

    def close(self, cancel: bool = False) -> None:
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


class DaskExecutor:
    """A Dask distributed client: to `scheduler` (``tcp://HOST:PORT`` or a scheduler file),
    to an existing `client`, or to a LocalCluster of `jobs` single-threaded worker processes
    started here.  Workers must be able to ``import sim`` (same checkout on PYTHONPATH or
    netns-sim installed)."""

    name = "dask"

    def __init__(self, scheduler: Optional[str] = None, jobs: Optional[int] = None, client=None,
                 processes: bool = True) -> None:
        from distributed import Client, LocalCluster
        self._own_cluster = None
        self._own_client = client is None
        if client is not None:
            self.client = client
        elif scheduler:
            if os.path.isfile(scheduler):
                self.client = Client(scheduler_file=scheduler)
            else:
                self.client = Client(scheduler)
        else:
            n = max(1, jobs or os.cpu_count() or 1)
            self._own_cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes,
                                             dashboard_address=None)
            self.client = Client(self._own_cluster)
        info = self.client.scheduler_info()
        self.workers = max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))

    def submit(self, fn, *args):
        return self.client.submit(fn, *args, pure=False)

    def as_completed(self, handles: Iterable) -> Iterator:
        from distributed import as_completed
        return iter(as_completed(list(handles)))

    def result(self, handle):
        return handle.result()

    def close(self, cancel: bool = False) -> None:
        if self._own_client:
            self.client.close()
        if self._own_cluster is not None:
            self._own_cluster.close()


def make_executor(kind: str = "local", jobs: Optional[int] = None, scheduler: Optional[str] = None):
    if kind == "local":
        if scheduler:
            raise ValueError("--scheduler needs --executor dask")
        return LocalExecutor(jobs)
    if kind == "dask":
        return DaskExecutor(scheduler=scheduler, jobs=jobs)
    raise ValueError(f"unknown executor {kind!r}; use local or dask")
