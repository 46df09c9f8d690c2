"""What machine a calibration ran on: kernel version, CPU model, CPU count, tool versions."""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg() -> str:
    """The 1/5/15-minute load averages (/proc/loadavg), recorded with every measurement:
    the machine may be shared."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def host_info() -> dict:
    ipt = shutil.which("iptables")
    version = ""
    if ipt:
        version = subprocess.run([ipt, "-V"], capture_output=True, text=True).stdout.strip()
    return {"kernel": platform.release(), "cpu_model": cpu_model(), "cpus": os.cpu_count(),
            "machine": platform.machine(), "python": platform.python_version(), "iptables": version,
            "loadavg": loadavg(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
