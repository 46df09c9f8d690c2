"""Start-up: what the command imports for ``--version``, ``--help`` and ``validate``.

Behaviour, not timing: each case runs ``python -m sim ...`` in a fresh interpreter and
lists the heavy packages found in ``sys.modules`` when the command has finished.  What the
lazy imports buy in time is measured, not asserted (docs/performance.md, bench/startup.py).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pandas", "networkx", "matplotlib", "pyarrow", "scipy", "numpy", "simpy", "pydantic")

PROBE = """\
import sys
from sim.signals import entry
sys.argv = ["netns-sim", *sys.argv[1:]]
try:
    code = entry()
except SystemExit as e:            # argparse's --version and --help
    code = e.code
print("LOADED", ",".join(m for m in {heavy!r} if m in sys.modules))
sys.exit(code)
"""


def loaded(*argv: str) -> set[str]:
    res = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert res.returncode == 0, res.stderr
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("LOADED")][-1]
    return {m for m in line.split(" ", 1)[1].split(",") if m}


@pytest.mark.parametrize("argv", [("--version",), ("--help",), ("run", "--help"), ("sweep", "--help")])
def test_version_and_help_import_nothing_heavy(argv):
    assert loaded(*argv) == set()


def test_validate_imports_no_frames_or_plots():
    """Validation builds the model (networkx, numpy, pydantic) but writes no result: no
    pandas, pyarrow, matplotlib or scipy."""
    got = loaded("validate", "scenarios/rfc2006-schemes.yaml")
    assert not got & {"pandas", "pyarrow", "matplotlib", "scipy"}, got


TINY = """\
name: tiny
hosts: [{name: h0, namespaces: 2}]
flows: [{src: h0:wire, dst: h0:ns1, rate_pps: 10000}]
run: {duration_ns: 1.0e6}
"""


def test_run_of_one_replication_imports_no_scipy(tmp_path):
    """scipy.stats (about a second to import) is only for confidence intervals, which one
    replication does not have: `run` leaves it out; the result still has its summary."""
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY)
    got = loaded("run", str(scenario), "--out", str(tmp_path / "out"), "--quiet")
    assert "scipy" not in got and "matplotlib" not in got, got
    assert (tmp_path / "out" / "summary.csv").stat().st_size > 0
