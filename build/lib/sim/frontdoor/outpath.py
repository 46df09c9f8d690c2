"""Can results be written at ``--out PATH``?  Checked before a run starts, so a bad path
costs nothing and leaves nothing behind.

`problem(out)` returns ``--out PATH: message (fix: ...)`` or None: PATH must not be a
regular file, its nearest existing ancestor must be a directory (not a file: ``--out
afile/sub``), and a directory can really be created there (a probe directory is made and
removed at once, so a read-only filesystem or missing permission shows even for root).
`write_failed(out, err)` is the message for an error while writing (disk full): the result
directory is written in a temporary directory that is removed, so nothing is half-written.
"""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path
from typing import Optional

FULL_DISK = (errno.ENOSPC, errno.EDQUOT)      # write errors reported by `write_failed`, not as a bug


def _line(out: Path, message: str, fix: str) -> str:
    return f"--out {out}: {message} (fix: {fix})"


def problem(out: str | Path) -> Optional[str]:
    """Why results cannot be written at `out`, as one line; None when they can."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        return _line(out, "exists and is not a directory", "give a directory path, or remove that file")
    ancestor = out.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return _line(out, f"{ancestor} is a file, so no directory can be made under it",
                     "give a path whose parents are directories")
    probe = ancestor / f".probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError as e:
        reasons: dict[int | None, str] = {errno.EROFS: "is on a read-only filesystem", errno.EACCES: "is not writable",
                                          errno.EPERM: "is not writable", errno.ENOSPC: "is on a full disk"}
        reason = reasons.get(e.errno, f"cannot be written ({e.strerror or e})")
        return _line(out, f"{ancestor} {reason}", "give a directory you can write to, with --out DIR")
    return None


def write_failed(out: str | Path, err: OSError) -> str:
    """The message for `err` raised while writing the result directory `out`."""
    what = "the disk is full" if err.errno == errno.ENOSPC else (err.strerror or str(err))
    return _line(Path(out), f"writing the results failed: {what}; nothing was written",
                 "free some space or give another directory with --out DIR" if err.errno == errno.ENOSPC
                 else "give a directory you can write to, with --out DIR")
