"""`sim.longlived`: the garbage-collector settings of a command's own process, and nothing elsewhere."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str) -> str:
    """Run `code` in a fresh interpreter (gc.freeze is process-wide) and return its output."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_a_frozen_process_pauses_collection_in_the_block_and_collects_its_garbage_at_the_end():
    out = _run("""
        import gc, weakref
        from sim import longlived
        class Node: pass
        longlived.own_process()
        longlived.freeze()
        assert gc.get_freeze_count() > 0
        with longlived.collected_once():
            inside = gc.isenabled()
            a, b = Node(), Node(); a.other, b.other = b, a      # a cycle: only the collector frees it
            dead = weakref.ref(a)
            del a, b
            alive_inside = dead() is not None
        print(inside, alive_inside, gc.isenabled(), dead() is None)
    """)
    assert out == "False True True True"


def test_a_process_not_declared_ours_is_left_alone():
    """The Python API, or `sim.cli.main` called from a test or script: freeze and pause do nothing."""
    out = _run("""
        import gc
        from sim import longlived
        longlived.freeze()
        with longlived.collected_once():
            inside = gc.isenabled()
        print(inside, gc.get_freeze_count())
    """)
    assert out == "True 0"


def test_the_command_runs_in_a_process_of_its_own(tmp_path):
    """``python -m sim`` declares its process its own before `run` freezes it."""
    out = _run(f"""
        import gc, sys
        from sim import signals
        sys.argv = ["netns-sim", "run", "scenarios/endpoints.yaml", "--set", "run.duration_ns=2e5", "--set", "run.warmup_ns=0",
                    "--out", {str(tmp_path / "r")!r}, "--quiet"]
        code = signals.entry()
        print(code, gc.get_freeze_count() > 0)
    """)
    assert out == "0 True"
