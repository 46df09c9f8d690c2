"""Safe creation and removal of real network setups (``ip netns``, veth, bridge, macvlan).

Contract:
- Everything is created *inside* namespaces this module creates, named
  ``nsim-<run id>-<tag>`` (`PREFIX` marks them as netns-sim's).  Links are created inside
  those namespaces (``ip -n NS link add ... peer ... netns OTHER``), so the root namespace's
  interfaces, addresses and routes are never touched; link names also start with ``nsim``
  and are at most 15 characters.
- Addresses come only from `SUBNET` (10.251.0.0/16) and are assigned only to links in our
  namespaces.
- `Lab` is a context manager: on normal exit, on any exception and on KeyboardInterrupt it
  stops the processes it started (by pid) and deletes its namespaces (which destroys every
  link in them).  A `Lab` holds its run id's lock (`sim.calibrate.runlock`) while it lives,
  so two runs at once never share a name.  `cleanup_leftovers()` removes the namespaces of
  runs whose process is gone (a run killed before it could clean up, ``--cleanup``), and their
  private bpf filesystems (`sim.calibrate.tcbpf`); those of live runs (another calibration or
  test going on) are left alone.
- `check_environment()` raises `Unavailable` (a plain message, no traceback wanted) when
  not root or when ``ip`` is missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time

from sim.calibrate import runlock

PREFIX = "nsim-"
SUBNET = "10.251.0.0/16"
IFNAMSIZ = 15


class Unavailable(RuntimeError):
    """The machine cannot run real setups (not root, no iproute2, ...)."""


def check_environment() -> None:
    if os.geteuid() != 0:
        raise Unavailable("needs root: real network namespaces are created with `ip netns` (run with sudo)")
    if shutil.which("ip") is None:
        raise Unavailable("needs iproute2: the `ip` command was not found on PATH")
    if shutil.which("taskset") is None:
        raise Unavailable("needs `taskset` (util-linux) to pin the measuring processes")


def sh(argv: list[str], check: bool = True, timeout: float = 60.0,
       input: str | None = None) -> subprocess.CompletedProcess:
    """Run a command, capture output; a failure raises with the command and its stderr."""
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    if check and cp.returncode != 0:
        raise RuntimeError(f"command failed ({cp.returncode}): {' '.join(argv)}\n{cp.stderr.strip()}")
    return cp


def list_namespaces(prefix: str = PREFIX) -> list[str]:
    out = sh(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.split() and line.split()[0].startswith(prefix)]


def root_links(prefix: str = "nsim") -> list[str]:
    """Links in the root namespace whose name starts with `prefix` (there should be none)."""
    out = sh(["ip", "-o", "link", "show"], check=False).stdout
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) > 1:
            name = parts[1].strip().split("@")[0]
            if name.startswith(prefix):
                names.append(name)
    return names


def _kill_pids_in(ns: str) -> None:
    pids = sh(["ip", "netns", "pids", ns], check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def delete_namespaces(names: list[str]) -> list[str]:
    """Kill what runs inside each namespace (only ours: the names carry our prefix) and delete
    it; returns the names that could not be deleted."""
    failed = []
    for ns in names:
        if not ns.startswith(PREFIX):
            raise ValueError(f"refusing to delete {ns!r}: not a netns-sim namespace")
        _kill_pids_in(ns)
    if names:
        batch = "".join(f"netns del {ns}\n" for ns in names)
        sh(["ip", "-force", "-batch", "-"], check=False, input=batch, timeout=300)
    left = set(list_namespaces())
    failed = [ns for ns in names if ns in left]
    return failed


def run_id_of(ns: str) -> str:
    """``nsim-<run id>-<tag>`` -> run id."""
    return ns[len(PREFIX):].split("-", 1)[0]


def cleanup_leftovers() -> dict:
    """Remove the ``nsim-`` namespaces (and any root-namespace ``nsim<id>`` link) of every run
    whose process is gone; live runs are skipped and listed under ``live``."""
    by_run: dict[str, list[str]] = {}
    for ns in list_namespaces():
        by_run.setdefault(run_id_of(ns), []).append(ns)
    dead = {rid: names for rid, names in by_run.items() if not runlock.is_alive(rid)}
    names = [ns for group in dead.values() for ns in group]
    failed = delete_namespaces(names)
    links = [link for link in root_links() if any(link.startswith(f"nsim{rid}") for rid in dead)]
    for link in links:
        sh(["ip", "link", "del", link], check=False)
    bpffs = _dead_bpf_mounts()
    for rid in dead:
        if not any(run_id_of(ns) == rid for ns in failed):
            runlock.forget(rid)
    return {"namespaces": names, "failed": failed, "root_links": links, "bpf_mounts": bpffs,
            "live": sorted(set(by_run) - set(dead))}


def _dead_bpf_mounts() -> list[str]:
    """Unmount and remove the private bpf filesystems (`sim.calibrate.tcbpf.bpf_mount`,
    ``<tmp>/nsim-<run id>-bpffs-*``) of runs whose process is gone: a run killed between
    mounting one and removing it.  Returns the directories removed."""
    removed = []
    for where in sorted(glob.glob(os.path.join(tempfile.gettempdir(), f"{PREFIX}*-bpffs-*"))):
        rid = os.path.basename(where)[len(PREFIX):].split("-", 1)[0]
        if runlock.is_alive(rid):
            continue
        if os.path.ismount(where):
            sh(["umount", where], check=False)
        try:
            os.rmdir(where)
            removed.append(where)
        except OSError:
            pass                # not empty or still mounted: not ours to force
    return removed


class Lab:
    """One run's real setups; see the module docstring.  Use as ``with Lab() as lab:``."""

    def __init__(self, run_id: str | None = None) -> None:
        check_environment()
        self._lock = runlock.RunLock.claim(run_id)
        self.run_id = self._lock.run_id
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self._subnet = 0

    # -- names and addresses --------------------------------------------------------------
    def ns_name(self, tag: str) -> str:
        return f"{PREFIX}{self.run_id}-{tag}"

    def link_name(self, tag: str) -> str:
        name = f"nsim{self.run_id}{tag}"
        if len(name) > IFNAMSIZ:
            raise ValueError(f"link name {name!r} is longer than {IFNAMSIZ} characters")
        return name

    def next_subnet(self) -> str:
        """A fresh /24 of 10.251.0.0/16 as '10.251.N' (N = 1..254)."""
        self._subnet += 1
        if self._subnet > 254:
            raise RuntimeError("out of 10.251.x.0/24 subnets")
        return f"10.251.{self._subnet}"

    # -- building -------------------------------------------------------------------------
    def add_ns(self, tag: str) -> str:
        ns = self.ns_name(tag)
        sh(["ip", "netns", "add", ns])
        self.namespaces.append(ns)
        self.ip(ns, "link", "set", "lo", "up")
        return ns

    def add_idle(self, tags: list[str]) -> tuple[list[str], float]:
        """Create many empty namespaces in one ``ip -batch``; returns (names, wall seconds)."""
        names = [self.ns_name(t) for t in tags]
        self.namespaces.extend(names)
        t0 = time.perf_counter()
        sh(["ip", "-batch", "-"], input="".join(f"netns add {n}\n" for n in names), timeout=600)
        return names, time.perf_counter() - t0

    def del_idle(self, names: list[str]) -> float:
        t0 = time.perf_counter()
        sh(["ip", "-batch", "-"], input="".join(f"netns del {n}\n" for n in names), timeout=600)
        dt = time.perf_counter() - t0
        gone = set(names)
        self.namespaces = [n for n in self.namespaces if n not in gone]
        return dt

    def ip(self, ns: str, *args: str) -> str:
        self._own(ns)
        return sh(["ip", "-n", ns, *args]).stdout

    def exec(self, ns: str, *argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        self._own(ns)
        return sh(["ip", "netns", "exec", ns, *argv], check=check, input=input)

    def ip_netns_pids(self, ns: str) -> list[str]:
        """Pids of the processes inside one of our namespaces."""
        self._own(ns)
        return sh(["ip", "netns", "pids", ns], check=False).stdout.split()

    def sysctl(self, ns: str, key: str, value: str) -> None:
        self.exec(ns, "sysctl", "-q", "-w", f"{key}={value}")

    def veth(self, ns_a: str, tag_a: str, ns_b: str, tag_b: str) -> tuple[str, str]:
        """A veth pair created inside `ns_a` with its peer in `ns_b`; both ends up."""
        a, b = self.link_name(tag_a), self.link_name(tag_b)
        self.ip(ns_a, "link", "add", a, "type", "veth", "peer", "name", b, "netns", ns_b)
        self.ip(ns_a, "link", "set", a, "up")
        self.ip(ns_b, "link", "set", b, "up")
        return a, b

    def addr(self, ns: str, link: str, cidr: str) -> None:
        if not cidr.startswith("10.251."):
            raise ValueError(f"address {cidr} is outside {SUBNET}")
        self.ip(ns, "addr", "add", cidr, "dev", link)

    def _own(self, ns: str) -> None:
        if ns not in self.namespaces:
            raise ValueError(f"{ns!r} is not a namespace of this run; refusing to touch it")

    # -- processes ------------------------------------------------------------------------
    def popen(self, ns: str, argv: list[str], cpu: int | None = None) -> subprocess.Popen:
        self._own(ns)
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        p = subprocess.Popen(pin + ["ip", "netns", "exec", ns, *argv], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p

    def run(self, ns: str, argv: list[str], cpu: int | None = None,
            timeout: float = 60.0) -> subprocess.CompletedProcess:
        self._own(ns)
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        return sh(pin + ["ip", "netns", "exec", ns, *argv], timeout=timeout)

    def reap(self, p: subprocess.Popen) -> None:
        if p.poll() is None:
            p.kill()
        p.wait()
        if p in self.procs:
            self.procs.remove(p)

    # -- cleanup --------------------------------------------------------------------------
    def cleanup(self) -> list[str]:
        for p in list(self.procs):
            try:
                self.reap(p)
            except Exception:       # noqa: BLE001 - cleanup must go on
                pass
        failed = delete_namespaces(list(self.namespaces))
        self.namespaces = []
        if not failed:
            self._lock.release()
        return failed

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        # A Ctrl-C or a kill during cleanup would leave things behind: hold them until we are
        # done.  A second SIGTERM is common: `timeout` and `pkill -f` both reach the process
        # when it runs under `timeout`, and the first one started this cleanup.
        held: list[int] = []
        old = ({s: signal.signal(s, lambda signo, _frame: held.append(signo))
                for s in (signal.SIGINT, signal.SIGTERM)} if _main_thread() else {})
        try:
            failed = self.cleanup()
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
        if failed and exc[0] is None:
            raise RuntimeError(f"could not delete namespaces {failed}; run with --cleanup")
        if held and exc[0] is None:      # a signal that arrived during cleanup still ends the run
            raise KeyboardInterrupt if held[0] == signal.SIGINT else SystemExit(128 + held[0])


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()
