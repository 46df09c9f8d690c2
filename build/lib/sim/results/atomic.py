"""Crash-safe writing, and deleting only what netns-sim created.

* `atomic_write_bytes` / `atomic_write_json`: a file appears complete or not at all
  (hidden temp name ``.tmp-NAME-PID-RAND``, fsync, rename, fsync of the directory).
* The ownership marker: every directory netns-sim creates to hold results carries a file
  ``.netns-sim`` (JSON: tool, version, kind, created_utc).  `is_ours(path)` is true only for
  a real directory (not a symlink) with that file.  Nothing here deletes a non-empty
  directory without it: `remove_ours` deletes a marked directory, removes an empty one, and
  leaves anything else alone.  `check_replaceable` raises `NotOurs` (a `TargetExists`)
  for what may not be replaced: a file, a symlink, a non-empty directory without the marker.
* Staging beside a target: `staging_dir(target, kind)` creates the marked
  ``.tmp-NAME-PID-RAND`` next to `target` (same filesystem); `swap_in(staged, target)`
  publishes it with renames inside a `sim.signals.critical` section (an earlier target is
  renamed to ``.old-NAME-PID-RAND``, the new one renamed in, the old one removed), so at
  every instant the target is the complete old or the complete new directory.
  `clean_stale(target)` removes such leftovers of dead processes (marked ones only) and
  restores an ``.old-`` whose process died between the two renames.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import sim
from sim import signals

MARKER = ".netns-sim"
TMP_PREFIX, OLD_PREFIX = ".tmp-", ".old-"


class TargetExists(FileExistsError):
    """The output path is taken (exit 2 in the commands)."""


class NotOurs(TargetExists):
    """A path netns-sim will not replace or delete, because it did not create it."""


# -- files --------------------------------------------------------------------------------

def fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def hidden_name(path: Path, prefix: str) -> Path:
    return path.parent / f"{prefix}{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that it is either the old content or all of `data`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = hidden_name(path, TMP_PREFIX)
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=False, default=str) + "\n").encode())


# -- the ownership marker -----------------------------------------------------------------

def write_marker(d: Path, kind: str) -> None:
    """Mark directory `d` as created by netns-sim (`kind`: run, sweep, report, ...)."""
    # a plain write: a marker cut short by a crash still marks the directory as ours
    (d / MARKER).write_text(json.dumps({"tool": "netns-sim", "version": sim.__version__, "kind": kind,
                                        "created_utc": datetime.now(timezone.utc).isoformat()}) + "\n")


def is_ours(path: Path) -> bool:
    """A real directory (not a symlink) carrying the marker."""
    return path.is_dir() and not path.is_symlink() and (path / MARKER).is_file()


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def check_replaceable(path: Path, what: str = "--out") -> None:
    """Raise `NotOurs` unless `path` is absent, an empty directory or a marked one."""
    if not os.path.lexists(path) or _is_empty_dir(path) or is_ours(path):
        return
    if path.is_symlink():
        kind = f"a symbolic link (to {os.readlink(path)})"
    elif path.is_dir():
        kind = f"a non-empty directory without the {MARKER} marker netns-sim writes into what it creates"
    else:
        kind = "not a directory"
    raise NotOurs(f"{path} is {kind}; netns-sim writes into, replaces or deletes only directories it created "
                  f"(or empty ones), so it left {path} untouched (fix: choose another {what}, or, if it is an "
                  f"old netns-sim result written before the marker existed, remove it yourself)")


def remove_ours(path: Path) -> bool:
    """Delete `path` if netns-sim created it (marked), or remove it if it is an empty
    directory; leave anything else.  Returns whether it is gone."""
    if is_ours(path):
        shutil.rmtree(path, ignore_errors=True)
    elif _is_empty_dir(path):
        try:
            path.rmdir()
        except OSError:
            pass
    return not os.path.lexists(path)


# -- staging beside a target --------------------------------------------------------------

def staging_dir(target: Path, kind: str) -> Path:
    """Create and mark ``.tmp-NAME-PID-RAND`` beside `target` (its parent is created)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = hidden_name(target, TMP_PREFIX)
    tmp.mkdir()
    write_marker(tmp, kind)
    return tmp


def swap_in(staged: Path, target: Path) -> None:
    """Replace `target` (absent, empty or ours: else `NotOurs`, nothing changed) by the
    directory `staged`, within a critical section."""
    with signals.critical(f"swap {target}"):
        check_replaceable(target)
        if os.path.lexists(target):
            old = hidden_name(target, OLD_PREFIX)
            os.replace(target, old)
            os.replace(staged, target)
            remove_ours(old)
        else:
            os.replace(staged, target)
        fsync_dir(target.parent)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (a zombie counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(target: Path) -> list[Path]:
    """Remove leftovers of dead processes writing `target` (``.tmp-``/``.old-`` directories
    that carry the marker, or are empty); restore an ``.old-`` if `target` is missing.
    Returns what was removed or restored."""
    touched: list[Path] = []
    parent = target.parent
    if not parent.is_dir():
        return touched
    for kind in (OLD_PREFIX, TMP_PREFIX):
        for p in sorted(parent.glob(f"{kind}{target.name}-*")):
            try:
                pid = int(p.name[len(kind) + len(target.name) + 1:].split("-")[0])
            except ValueError:
                continue
            if pid_alive(pid) and pid != os.getpid():
                continue
            if kind == OLD_PREFIX and not os.path.lexists(target):
                os.replace(p, target)          # crash between the two renames: restore
                touched.append(p)
            elif remove_ours(p):
                touched.append(p)
    return touched
