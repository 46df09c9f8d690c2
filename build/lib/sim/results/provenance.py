"""Where a result came from: code version, packages, machine and command.

`provenance()` returns the JSON-able record that every result directory's ``metadata.json``
carries (``netns-sim run`` and ``netns-sim sweep`` alike): the git commit of the checkout
(and whether its tracked files were modified), the netns-sim and package versions, Python,
platform, hostname, the command line and working directory.  Nothing here fails: an unknown
value is ``None``.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata as importlib_metadata
from pathlib import Path

import sim

PACKAGES = ("simpy", "networkx", "numpy", "pandas", "pyarrow", "pydantic", "PyYAML", "rich", "scipy", "dask",
            "distributed")


def git_commit() -> dict:
    """``{"commit": sha or None, "dirty": bool or None}`` of the checkout holding `sim`."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        if head.returncode == 0:
            return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        pass
    return {"commit": None, "dirty": None}


def package_versions() -> dict:
    out: dict = {}
    for p in PACKAGES:
        try:
            out[p] = importlib_metadata.version(p)
        except importlib_metadata.PackageNotFoundError:
            out[p] = None
    return out


def provenance() -> dict:
    return {"sim_version": sim.__version__, "git": git_commit(), "packages": package_versions(),
            "python": sys.version.split()[0], "platform": platform.platform(), "hostname": socket.gethostname(),
            "command": [Path(sys.argv[0]).name] + sys.argv[1:], "cwd": os.getcwd()}
