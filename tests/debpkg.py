"""Debian packages some tests need (chromium, sockperf, iptables): found on PATH, or installed
with apt-get when running as root under CI (``CI=true``) or with ``NETNS_SIM_INSTALL=1``, so
a fresh CI machine runs those tests instead of skipping them.  Elsewhere nothing is installed
and the caller skips with the returned reason."""

import os
import shutil
import subprocess


def ensure(command: str, package: str) -> str | None:
    """Path of `command`, installing Debian `package` first where allowed; None if absent."""
    if shutil.which(command):
        return shutil.which(command)
    allowed = os.geteuid() == 0 and (os.environ.get("CI") == "true" or os.environ.get("NETNS_SIM_INSTALL") == "1")
    if not allowed or not shutil.which("apt-get"):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], env=env, capture_output=True, timeout=900)
    return shutil.which(command)
