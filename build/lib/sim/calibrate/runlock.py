"""Which calibration runs are alive: one lock file per run id, held for the run's lifetime.

Contract:
- `RunLock.claim(run_id)` creates ``LOCK_DIR/<run id>.lock`` (``/run/netns-sim`` unless
  ``NETNS_SIM_LOCK_DIR`` is set) and holds an exclusive `flock` on it until `release()` or
  until the process dies (the kernel drops the lock with the last file descriptor, even on
  SIGKILL).  Without a run id a fresh random one is drawn; an id whose lock file already
  exists is never reused, so two runs at once always get different namespace names.
- `is_alive(run_id)` is true while some process holds that run's lock.  A run with no lock
  file (made by a version without locks, or whose file was removed) counts as dead.
- `forget(run_id)` removes a dead run's lock file.

/run is a tmpfs: lock files, like network namespaces, disappear at reboot.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from pathlib import Path

RUN_ID_HEX_BYTES = 2          # 4 hex digits: link names are nsim<id><tag>, at most 15 characters


def lock_dir() -> Path:
    return Path(os.environ.get("NETNS_SIM_LOCK_DIR", "/run/netns-sim"))


def _path(run_id: str) -> Path:
    return lock_dir() / f"{run_id}.lock"


class RunLock:
    """An exclusive claim on a run id (see the module docstring)."""

    def __init__(self, run_id: str, fd: int) -> None:
        self.run_id = run_id
        self._fd: int | None = fd

    @classmethod
    def claim(cls, run_id: str | None = None, attempts: int = 64) -> "RunLock":
        """Claim `run_id`, or a fresh random id.  An explicit id that a live run holds raises
        `RuntimeError`; an explicit id of a dead run is taken over (its leftovers become ours)."""
        lock_dir().mkdir(parents=True, exist_ok=True)
        for _ in range(1 if run_id else attempts):
            rid = run_id or secrets.token_hex(RUN_ID_HEX_BYTES)
            flags = os.O_RDWR | os.O_CREAT | (0 if run_id else os.O_EXCL)
            try:
                fd = os.open(_path(rid), flags, 0o644)
            except FileExistsError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RuntimeError(f"run id {rid!r} is in use by a live calibration run") from None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return cls(rid, fd)
        raise RuntimeError(f"no free run id after {attempts} attempts in {lock_dir()}")

    def release(self, remove: bool = True) -> None:
        """Drop the claim (and remove the lock file unless `remove` is false)."""
        if self._fd is None:
            return
        if remove:
            _path(self.run_id).unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def is_alive(run_id: str) -> bool:
    """True while a process holds `run_id`'s lock."""
    try:
        fd = os.open(_path(run_id), os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)           # closing also drops a lock we just took
    return False


def forget(run_id: str) -> None:
    """Remove the lock file of a dead run (no-op when absent or alive)."""
    if not is_alive(run_id):
        _path(run_id).unlink(missing_ok=True)
