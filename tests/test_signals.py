"""--force only replaces what netns-sim created; SIGINT/SIGTERM/SIGKILL on run, sweep, report.

Every test drives the real command as a subprocess with timeouts and polls for what it waits
for (a temporary directory, a line on stderr, worker processes); the only timing asserted is
a generous upper bound.
"""

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from test_cli_e2e import GOOD
from test_report import _small_scenario
from test_sweep import SMALL

pytestmark = pytest.mark.slow      # processes, signals and timeouts: seconds each (make test-fast skips)

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
BOUND_S = 20                                   # "promptly": generous on a loaded 2-core machine

SWEEP = (SMALL.replace("replications: 2", "replications: 4").replace("duration_ns: 1.0e6", "duration_ns: 3.0e8")
         .replace("[50000, 300000]", "[50000, 100000]"))          # 16 points of about a second each


def sim(*args, cwd, timeout=180, env=ENV):
    return subprocess.run([sys.executable, "-m", "sim", *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def start(*args, cwd, env=ENV):
    return subprocess.Popen([sys.executable, "-m", "sim", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def finish(proc, timeout=BOUND_S):
    """Wait at most `timeout` s; returns (returncode, stderr text)."""
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err.decode()


def poll(cond, what, proc=None, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        got = cond()
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"exited ({proc.returncode}) before {what}: {proc.communicate()}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def wait_for_line(proc, text, timeout=120):
    """Read stderr until a line containing `text`; returns what was read."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    buf = b""
    t0 = time.time()
    while text.encode() not in buf:
        assert time.time() - t0 < timeout, f"no {text!r} on stderr: {buf!r}"
        if sel.select(timeout=0.5):
            chunk = os.read(proc.stderr.fileno(), 65536)
            assert chunk, f"stderr closed before {text!r}: {buf!r}"
            buf += chunk
    return buf.decode()


def snapshot(d: Path) -> dict:
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None) for p in sorted(d.rglob("*"))}


def leftovers(d: Path) -> list:
    return [p.name for p in d.iterdir() if p.name.startswith((".tmp-", ".old-"))]


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "tiny.yaml").write_text(GOOD)
    return tmp_path


# -- --force and the marker -------------------------------------------------------------------

def _user_dir(tmp_path):
    d = tmp_path / "mine"
    (d / "sub").mkdir(parents=True)
    (d / "notes.txt").write_text("my own notes\n")
    (d / "sub" / "data.bin").write_bytes(os.urandom(1000))
    return d


@pytest.mark.parametrize("kind", ["user dir", "file", "symlink", "old result without marker"])
def test_force_refuses_what_netns_sim_did_not_create_and_leaves_it_intact(tiny, kind):
    mine = _user_dir(tiny)
    if kind == "user dir":
        target = mine
    elif kind == "file":
        target = mine / "notes.txt"
    elif kind == "symlink":
        target = tiny / "link"
        target.symlink_to(mine)
    else:
        target = tiny / "old"
        assert sim("run", "tiny.yaml", "--out", target, "-q", cwd=tiny).returncode == 0
        (target / ".netns-sim").unlink()                 # as written before the marker existed
    before, before_target = snapshot(mine), snapshot(target) if target.is_dir() else None
    r = sim("run", "tiny.yaml", "--out", target, "--force", "-q", cwd=tiny)
    assert r.returncode == 2, r.stderr
    assert str(target) in r.stderr and "Traceback" not in r.stderr
    if kind == "file":                                 # refused up front, before any run (sim.frontdoor.outpath)
        assert "exists and is not a directory (fix: give a directory path" in r.stderr
    else:
        assert "choose another --out" in r.stderr and "remove it yourself" in r.stderr
    assert snapshot(mine) == before
    if before_target is not None:
        assert snapshot(target) == before_target
    assert target.is_symlink() == (kind == "symlink")
    assert not leftovers(target.parent)


def test_force_replaces_a_directory_netns_sim_wrote(tiny):
    assert sim("run", "tiny.yaml", "--out", "res", "--seed", "1", "-q", cwd=tiny).returncode == 0
    assert json.loads((tiny / "res" / ".netns-sim").read_text())["tool"] == "netns-sim"
    r = sim("run", "tiny.yaml", "--out", "res", "--seed", "2", "--force", "-q", cwd=tiny)
    assert r.returncode == 0, r.stderr
    assert json.loads((tiny / "res" / "metadata.json").read_text())["seed"] == 2
    assert (tiny / "res" / ".netns-sim").is_file() and not leftovers(tiny)


def test_stale_leftovers_are_removed_only_when_marked(tiny):
    """clean_stale: a dead run's marked .tmp- goes; an unmarked one with files stays."""
    from sim.results.results_io import clean_stale
    ours, theirs = tiny / ".tmp-res-999999999-aaaa", tiny / ".tmp-res-999999999-bbbb"
    for d in (ours, theirs):
        d.mkdir()
        (d / "f").write_text("x")
    (ours / ".netns-sim").write_text("{}")
    clean_stale(tiny / "res")
    assert not ours.exists() and (theirs / "f").read_text() == "x"


def test_sweep_refuses_a_non_empty_directory_it_did_not_create(tmp_path):
    (tmp_path / "sw.yaml").write_text(SWEEP)
    mine = _user_dir(tmp_path)
    before = snapshot(mine)
    r = sim("sweep", "sw.yaml", "--out", mine, "-q", "--jobs", "1", cwd=tmp_path)
    assert r.returncode == 2 and str(mine) in r.stderr and "choose another --out" in r.stderr, r.stderr
    assert snapshot(mine) == before


# -- run ------------------------------------------------------------------------------------------

# The console script's two lines (see .venv/bin/netns-sim), with an import hook that announces
# the import of pandas (sim.cli's first heavy import) and stalls it, so the signal is sure to
# arrive while the command is still starting up.
STALLED_ENTRY = """\
import sys, time
class Stall:
    def find_spec(self, name, path=None, target=None):
        if name == "pandas":
            print("importing pandas", file=sys.stderr, flush=True)
            time.sleep(60)
        return None
sys.meta_path.insert(0, Stall())
sys.argv = ["netns-sim", *sys.argv[1:]]
from sim.signals import entry
sys.exit(entry())
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_start_up_exits_130_without_traceback(tiny, sig):
    proc = subprocess.Popen([sys.executable, "-c", STALLED_ENTRY, "run", "tiny.yaml", "--out", "res", "-q"],
                            cwd=tiny, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_line(proc, "importing pandas")
    proc.send_signal(sig)
    rc, err = finish(proc)
    assert rc == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not (tiny / "res").exists() and not leftovers(tiny)


def _long_run(tiny, *extra, env=ENV):
    return start("run", "tiny.yaml", "--out", "res", "--force", "-q", *extra, cwd=tiny, env=env)


def test_sigterm_mid_run_writes_nothing_and_keeps_the_earlier_result(tiny):
    assert sim("run", "tiny.yaml", "--out", "res", "-q", cwd=tiny).returncode == 0
    before = snapshot(tiny / "res")
    proc = _long_run(tiny, "--set", "run.duration_ns=5e9")
    poll(lambda: [p for p in tiny.iterdir() if p.name.startswith(".tmp-res-")], "the temporary directory", proc)
    proc.send_signal(signal.SIGTERM)
    rc, err = finish(proc)
    assert rc == 130, err
    assert "nothing written to res; the earlier result there is intact" in err and "Traceback" not in err
    assert snapshot(tiny / "res") == before and not leftovers(tiny)


def test_sigterm_inside_the_commit_is_held_and_the_message_says_the_result_was_written(tiny):
    assert sim("run", "tiny.yaml", "--out", "res", "--seed", "1", "-q", cwd=tiny).returncode == 0
    proc = _long_run(tiny, "--seed", "2", env={**ENV, "NETNS_SIM_TEST_CRITICAL_PAUSE": "2"})
    wait_for_line(proc, "in critical section commit")
    proc.send_signal(signal.SIGTERM)         # blocked until both renames are done
    rc, err = finish(proc)
    assert rc == 130, err
    assert "interrupted: result complete at res" in err and "Traceback" not in err
    assert json.loads((tiny / "res" / "metadata.json").read_text())["seed"] == 2      # the new result, whole
    assert (tiny / "res" / "points.csv").is_file() and not leftovers(tiny)


# -- sweep ----------------------------------------------------------------------------------------

def _workers(proc, jobs):
    """The command's descendants once `jobs` pool workers (children of the forkserver) run."""
    def found():
        try:
            kids = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return None
        return kids if len([k for k in kids if k.ppid() != proc.pid]) >= jobs else None
    return poll(found, f"{jobs} pool workers", proc)


def _gone(procs) -> bool:
    def dead(p):
        try:
            return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    return all(dead(p) for p in procs)


def _sweep(tmp_path, *extra):
    return start("sweep", "sw.yaml", "--out", "out", "--jobs", "2", "-q", *extra, cwd=tmp_path)


def _markers(out: Path) -> int:
    return len(list((out / "points").glob("*.json"))) if (out / "points").is_dir() else 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_sweep_stops_at_once_and_resumes_each_point_once(tmp_path, sig):
    (tmp_path / "sw.yaml").write_text(SWEEP)
    out = tmp_path / "out"
    proc = _sweep(tmp_path)
    try:
        kids = _workers(proc, 2)
        done_before = _markers(out)
        t0 = time.time()
        proc.send_signal(sig)
        rc, err = finish(proc)
        assert time.time() - t0 < BOUND_S
        assert rc == 130, err
        assert "finished points are kept in out; run the same command again to resume" in err
        assert "Traceback" not in err, err
        poll(lambda: _gone(kids), "every worker to exit", timeout=BOUND_S)
        assert _markers(out) <= done_before + 2, "only points already running may finish"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    r = sim("sweep", "sw.yaml", "--out", "out", "--jobs", "2", "-q", cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    from sim.sweep.spec import expand
    from sim.sweep.store import Store
    keys = {p.key for p in expand(tmp_path / "sw.yaml").points}
    store = Store(out)
    assert store.done_keys() == keys and len(keys) == 16
    assert len(list((out / "packets").rglob("part-*.parquet"))) == 16 and not list(out.rglob(".tmp-*"))
    t = store.dataset().to_table(columns=["run_id", "packet_id"]).to_pandas()
    assert set(t.run_id) == keys and not t.duplicated(["run_id", "packet_id"]).any()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_while_the_worker_pool_starts_closes_it_without_traceback(tmp_path, sig):
    """The signal is held through the pool's start and raised as it ends, before the sweep
    holds the executor: the executor closes its own pool (else the pool's manager thread
    races the interpreter's exit hook and prints an EBADF traceback now and then)."""
    (tmp_path / "sw.yaml").write_text(SWEEP)
    proc = start("sweep", "sw.yaml", "--out", "out", "--jobs", "2", "-q", cwd=tmp_path,
                 env={**ENV, "NETNS_SIM_TEST_CRITICAL_PAUSE": "1"})
    try:
        wait_for_line(proc, "in critical section start the worker pool")
        kids = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(sig)
        rc, err = finish(proc)
        assert rc == 130, err
        assert "finished points are kept in out" in err and "Traceback" not in err, err
        poll(lambda: _gone(kids), "every worker to exit", timeout=BOUND_S)
        assert _markers(tmp_path / "out") == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_executor_interrupted_while_starting_shuts_its_pool_down(monkeypatch):
    """In process: the held signal raised at the end of the start-up section leaves no live
    pool behind (shut down, its manager thread gone), whatever the timing."""
    from concurrent.futures import ProcessPoolExecutor
    from contextlib import contextmanager

    from sim import signals
    from sim.sweep import executors
    pools = []

    def spy(*args, **kwargs):
        pools.append(ProcessPoolExecutor(*args, **kwargs))
        return pools[-1]

    @contextmanager
    def interrupted_at_end(name=""):
        yield
        raise signals.Interrupted(signal.SIGINT)

    monkeypatch.setattr(executors.futures, "ProcessPoolExecutor", spy)
    monkeypatch.setattr(executors.signals, "critical", interrupted_at_end)
    with pytest.raises(signals.Interrupted):
        executors.LocalExecutor(2)
    assert pools and pools[0]._shutdown_thread
    assert not [t for t in threading.enumerate() if type(t).__name__ == "_ExecutorManagerThread"]


def test_kill_9_of_sweep_takes_its_workers_and_forkserver_with_it(tmp_path):
    (tmp_path / "sw.yaml").write_text(SWEEP)
    proc = _sweep(tmp_path)
    try:
        kids = _workers(proc, 2)
        assert len(kids) >= 3                      # the forkserver and its two workers (and a resource tracker)
        proc.kill()
        proc.wait(timeout=BOUND_S)
        poll(lambda: _gone(kids), "the workers and the forkserver to exit", timeout=BOUND_S)
        n = _markers(tmp_path / "out")
        time.sleep(1)                               # nothing may write any more
        assert _markers(tmp_path / "out") == n
    finally:
        os.killpg(proc.pid, signal.SIGKILL) if proc.poll() is None else None
        for k in psutil.Process().children(recursive=True):
            if k.pid != proc.pid and not _gone([k]):
                k.kill()


# -- report ---------------------------------------------------------------------------------------

def test_interrupted_report_leaves_the_old_report_and_figures_untouched(tmp_path):
    scen = _small_scenario(tmp_path / "small.yaml")
    res = tmp_path / "res"
    assert sim("run", scen, "--out", res, "-q", cwd=ROOT).returncode == 0
    r = sim("report", res, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    figs = res / "report_figures"
    assert (figs / "latency_cdf.png").is_file() and (figs / ".netns-sim").is_file()
    before = snapshot(res)
    proc = start("report", res, cwd=ROOT)
    poll(lambda: [p for p in res.glob(".tmp-report_figures-*/*.png")], "the first new figure", proc, timeout=300)
    proc.send_signal(signal.SIGTERM)
    rc, err = finish(proc)
    assert rc == 130, err
    assert "the earlier report at" in err and "unchanged" in err and "Traceback" not in err
    assert snapshot(res) == before and not leftovers(res)


def test_report_refuses_a_figures_directory_of_other_files(tmp_path):
    res = tmp_path / "res"
    res.mkdir()
    mine = res / "report_figures"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"jpeg")
    r = sim("report", res, cwd=ROOT)
    assert r.returncode == 2 and str(mine) in r.stderr, r.stderr
    assert (mine / "holiday.jpg").read_bytes() == b"jpeg" and not leftovers(res)
