"""Where points run: in this process (``netns-sim run``), a local process pool (the default
of ``netns-sim sweep``) or a Dask distributed cluster.

An executor has ``submit(fn, *args) -> handle``, ``as_completed(handles)`` yielding
finished handles, ``result(handle)``, ``workers`` (how many points run at once) and
``close(cancel=False)``.  All run the same picklable `sim.sweep.worker.run_point`; which
executor ran a point changes nothing in its records.

``close(cancel=True)`` (Ctrl-C, SIGTERM) stops at once: pending points are cancelled and the
local pool's running workers are killed (a point cut short leaves only a temporary file or an
unmarked partition, which `Store.prepare` removes on resume).  Local pool workers also die
with the command: even after ``kill -9`` of ``netns-sim sweep`` they exit within a second
(`_die_with_parent`), and so does the forkserver (it exits when the command's end of its
pipe closes).  The workers of a Dask LocalCluster started here are Dask's own processes,
which exit when their parent closes the pipe Dask keeps to them.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from concurrent import futures
from typing import Iterable, Iterator, Optional

from sim import longlived, signals
from sim.results.atomic import pid_alive

PR_SET_PDEATHSIG = 1
WATCH_INTERVAL_S = 0.5


def _watch_parent(ppid: int, command_pid: int) -> None:
    while True:
        time.sleep(WATCH_INTERVAL_S)
        if os.getppid() != ppid or not pid_alive(command_pid):
            os._exit(1)


def _started(_: int) -> int:
    """Warm-up task: long enough that every worker of the pool is started to run one."""
    time.sleep(0.05)
    return os.getpid()


def _die_with_parent(command_pid: int) -> None:
    """Pool initializer: ignore SIGINT (the command decides and kills us), get SIGKILL when
    the parent (the forkserver, or the command itself) dies (Linux prctl), and, as a
    fallback elsewhere, a daemon thread that exits as soon as the parent changes or the
    command `command_pid` is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})   # held while the pool started
    ppid = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != ppid or not pid_alive(command_pid):      # died before prctl took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(ppid, command_pid), daemon=True, name="die-with-parent").start()


def _init_worker(command_pid: int) -> None:
    """Pool initializer: `_die_with_parent`, then `sim.sweep.worker.warm_up` (a worker's
    one-time imports and parses, paid while the pool starts rather than by its first point;
    a failure there is left for that point to meet and report), then `sim.longlived.freeze`
    (the worker process is ours)."""
    _die_with_parent(command_pid)
    longlived.own_process()
    try:
        from sim.sweep.worker import warm_up
        warm_up()
    except Exception:  # noqa: BLE001 - an optimisation only
        pass
    longlived.freeze()


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
    or open files of the parent are inherited), `jobs` processes, each initialised by
    `_init_worker` (`_die_with_parent`, then the worker's warm-up)."""

    name = "local"

    def __init__(self, jobs: Optional[int] = None) -> None:
        self.workers = max(1, jobs or os.cpu_count() or 1)
        ctx = mp.get_context("forkserver") if "forkserver" in mp.get_all_start_methods() else None
        if ctx is not None:
            ctx.set_forkserver_preload(["sim.sweep.worker", "sim.core.simulate", "sim.core.summary"])
        self.pool = futures.ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                                initializer=_init_worker, initargs=(os.getpid(),))
        # Warm pool: every worker is started now, with SIGINT/SIGTERM held, so an interruption
        # never finds a worker half-started (it would print the forkserver's EOFError traceback)
        # and the first points do not pay the start-up.  A signal held meanwhile raises
        # Interrupted as the section ends, before the caller holds this executor: close the
        # pool here, or nothing would (its manager thread would then race the interpreter's
        # exit hook, see `close`).
        try:
            with signals.critical("start the worker pool"):
                list(self.pool.map(_started, range(self.workers)))
        except BaseException:
            self.close(cancel=True)
            raise

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args)

    def as_completed(self, handles: Iterable) -> Iterator:
        return futures.as_completed(list(handles))

    def result(self, handle):
        return handle.result()

    def close(self, cancel: bool = False) -> None:
        """Wait for the submitted points; with `cancel`, drop pending ones and kill the
        running workers (returns once they are gone)."""
        if not cancel:
            self.pool.shutdown(wait=True)
            return
        procs = list((getattr(self.pool, "_processes", None) or {}).values())
        # shutdown(wait=False) forgets the manager thread, so take it first.  It notices the
        # killed workers and closes its wake-up pipe; until it has, the interpreter's exit
        # hook (concurrent.futures.process._python_exit) may write to that pipe as it is
        # being closed and print an EBADF traceback (CPython 3.11 takes no lock there).
        manager = getattr(self.pool, "_executor_manager_thread", None)
        self.pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            p.kill()
        for p in procs:
            p.join(timeout=10)
        if manager is not None:
            manager.join(timeout=10)


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
        self._submitted: list = []
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
        fut = self.client.submit(fn, *args, pure=False)
        self._submitted.append(fut)
        return fut

    def as_completed(self, handles: Iterable) -> Iterator:
        from distributed import as_completed
        return iter(as_completed(list(handles)))

    def result(self, handle):
        return handle.result()

    def close(self, cancel: bool = False) -> None:
        """With `cancel`, the points submitted here are cancelled first (a scheduler shared
        with others keeps running; a LocalCluster started here is closed with its workers)."""
        if cancel and self._submitted:
            try:
                self.client.cancel(self._submitted, force=True)
            except Exception:  # noqa: BLE001 - best effort while shutting down
                pass
        if self._own_client:
            self.client.close()
        if self._own_cluster is not None:
            self._own_cluster.close()


def _local(jobs: Optional[int], scheduler: Optional[str]) -> LocalExecutor:
    if scheduler:
        raise ValueError("--scheduler needs --executor dask")
    return LocalExecutor(jobs)


EXECUTORS = {                 # --executor NAME -> factory(jobs, scheduler)
    "local": _local,
    "dask": lambda jobs, scheduler: DaskExecutor(scheduler=scheduler, jobs=jobs),
}


def make_executor(kind: str = "local", jobs: Optional[int] = None, scheduler: Optional[str] = None):
    """The executor registered as `kind` in `EXECUTORS` (ValueError for an unknown name)."""
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r}; use {' or '.join(EXECUTORS)}")
    return EXECUTORS[kind](jobs, scheduler)
