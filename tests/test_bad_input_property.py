"""Property: a mutated shipped scenario never crashes, hangs or writes on bad input.

Hypothesis takes a file of scenarios/, applies one to three mutations (delete a key or list
item, put another type / a huge, negative or fractional number / a string in its place,
duplicate a list item, rename a name) and runs ``netns-sim validate`` in process: the exit
status is 0 or 2 (an exception fails the test: that would be a traceback), within
`SECONDS_PER_EXAMPLE` (SIGALRM).  One example in eight also runs ``netns-sim run`` with a
tiny duration and checks that exit 2 leaves no output directory.  Deterministic
(``derandomize``) and bounded (`EXAMPLES`), so CI sees the same examples every time.
"""

from __future__ import annotations

import contextlib
import copy
import io
import signal
import tempfile
from pathlib import Path

import yaml
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sim.cli import main
from sim.frontdoor.yamlpos import read

pytestmark = pytest.mark.slow      # 200 mutated scenarios, ~30 s (make test-fast skips)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = {p.name: read(p)[0] for p in sorted((ROOT / "scenarios").glob("*.yaml"))}
EXAMPLES = 200
SECONDS_PER_EXAMPLE = 20
REPLACEMENTS = [True, False, None, "x", "h0:ns99", -1, 0, 1.5, -2.5, 10**30, 1e30, 1e18, 2**63, [], {}, [1, "a"],
                {"k": 1}, "group:nope", "1e3"]


def _paths(node, here=()):
    """Every key path in `node` (mapping keys and list indices), parents before children."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield here + (k,)
            yield from _paths(v, here + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield here + (i,)
            yield from _paths(v, here + (i,))


def _mutate(doc: dict, path: tuple, op: str, value) -> None:
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    key = path[-1]
    if op == "delete":
        del parent[key]
    elif op == "replace":
        parent[key] = copy.deepcopy(value)
    elif op == "duplicate" and isinstance(parent, list):
        parent.insert(key, copy.deepcopy(parent[key]))
    elif op == "rename" and isinstance(parent[key], dict) and "name" in parent[key]:
        parent[key]["name"] = value if isinstance(value, str) else "h0"


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(sorted(SHIPPED)))
    doc = copy.deepcopy(SHIPPED[name])
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        if not paths:
            break
        _mutate(doc, draw(st.sampled_from(paths)), draw(st.sampled_from(["delete", "replace", "duplicate", "rename"])),
                draw(st.sampled_from(REPLACEMENTS)))
    return name, doc, draw(st.integers(0, 7)) == 0


def _alarm(signum, frame):
    raise TimeoutError(f"no answer within {SECONDS_PER_EXAMPLE} s: a hang")


def _cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(SECONDS_PER_EXAMPLE)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return code, err.getvalue()


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_mutated_scenarios_are_validated_or_refused_cleanly(case):
    name, doc, also_run = case
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / name
        scenario.write_text(yaml.safe_dump(doc, sort_keys=False))
        code, err = _cli(["validate", str(scenario)])
        assert code in (0, 2), err
        assert (code == 2) == bool(err.strip()), err
        if also_run:
            out = Path(tmp) / "out"
            code, err = _cli(["run", str(scenario), "-q", "--out", str(out), "--set", "run.duration_ns=1e5"])
            assert code in (0, 2), err
            if code == 2:
                assert not out.exists() and sorted(p.name for p in Path(tmp).iterdir()) == [name]
