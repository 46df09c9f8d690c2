"""Per-stage CPU cost from perf sampling during a packet flood (issue 12).

For a setup: a sockperf throughput flood (sender and sink pinned as `Config.rate_cpus`
says); while it runs, ``perf record -e cpu-clock -F FREQ -a -g`` for a bounded time, and the
server namespace's UDP counters (InDatagrams + RcvbufErrors: datagrams that crossed the
whole path) before and after.  ``perf script`` gives every sample's CPU, command, period (ns
of CPU time it stands for) and call chain; `Classifier` charges each to one category with the
table in ``symbols.yaml`` (innermost listed frame wins; netfilter is charged to the hook of its
caller).  ns per packet of a category = sum of its samples' periods / packets.

Only samples of the measuring processes count (command ``sockperf`` and the ``ksoftirqd``
threads, which run deferred softirq work); the idle task and other processes (the machine may
be shared) are counted and reported, never charged to a stage.  Known limit: a sockperf run by
someone else at the same time would be charged too (filtering by the flood's pids was tried:
the pids seen in the namespaces did not match perf's, not resolved yet), so do not run
perf-stages while a calibration runs.  User-space frames of sockperf
are ``user`` (the application).
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
import subprocess
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

from sim.calibrate import sockperf
from sim.calibrate.hostinfo import loadavg
from sim.calibrate.netns import Lab, sh
from sim.calibrate.setups import Endpoints

SYMBOLS = Path(__file__).with_name("symbols.yaml")
OURS = ("sockperf", "ksoftirqd")
IDLE = ("swapper",)
_HEADER = re.compile(r"^\s*(?P<comm>.+?)\s+(?P<pid>\d+)/(?P<tid>\d+)\s+\[(?P<cpu>\d+)\]\s+"
                     r"(?:(?P<time>\d+\.\d+):\s+)?(?P<period>\d+)\s*$")


class Classifier:
    """symbols.yaml as a function from a call chain (leaf first) to a category."""

    def __init__(self, path: Path = SYMBOLS) -> None:
        table = yaml.safe_load(path.read_text())
        self.stages = list(table["stages"])
        self._patterns: list[tuple[str, str]] = []          # (pattern, category), in precedence order
        for cat, pats in table["stages"].items():
            self._patterns += [(p, cat) for p in pats]
        self._nf = list(table["netfilter"]["symbols"])
        self._hooks = dict(table["netfilter"]["hook_of_caller"])
        self._unknown_hook = table["netfilter"]["unknown_hook"]
        for cat, pats in table["other_categories"].items():
            self._patterns += [(p, cat) for p in pats]
        self._cache: dict[str, str | None] = {}

    def _category(self, sym: str) -> str | None:
        if sym not in self._cache:
            if any(fnmatch.fnmatchcase(sym, p) for p in self._nf):
                self._cache[sym] = "netfilter"
            else:
                self._cache[sym] = next((c for p, c in self._patterns if fnmatch.fnmatchcase(sym, p)), None)
        return self._cache[sym]

    def classify(self, chain: list[str]) -> str:
        for i, sym in enumerate(chain):
            cat = self._category(sym)
            if cat == "netfilter":
                return self._hook(chain[i + 1:])
            if cat is not None:
                return cat
        return "other"

    def _hook(self, callers: list[str]) -> str:
        for sym in callers:
            for pat, stage in self._hooks.items():
                if fnmatch.fnmatchcase(sym, pat):
                    return stage
        return self._unknown_hook


@dataclass
class Sample:
    comm: str
    pid: int
    cpu: int
    period_ns: int
    chain: list[str] = field(default_factory=list)       # symbols, leaf first; "[user]" for user space
    time_s: float | None = None                          # perf's timestamp, when the script has it


def parse_script(text: str) -> list[Sample]:
    """``perf script -F comm,pid,tid,cpu[,time],period,ip,sym`` output -> samples."""
    samples: list[Sample] = []
    cur: Sample | None = None
    for line in text.splitlines():
        if not line.strip():
            cur = None
            continue
        if cur is None:
            m = _HEADER.match(line)
            if m:
                cur = Sample(m["comm"], int(m["pid"]), int(m["cpu"]), int(m["period"]),
                             time_s=float(m["time"]) if m["time"] else None)
                samples.append(cur)
            continue
        parts = line.split(None, 1)
        addr, sym = parts[0], (parts[1].strip() if len(parts) > 1 else "[unknown]")
        kernel = addr.startswith("ffff")
        cur.chain.append(re.sub(r"\+0x[0-9a-f]+$", "", sym) if kernel else "[user]")
    return samples


SOFTIRQ_FRAMES = ("net_rx_action", "handle_softirqs", "__do_softirq", "run_ksoftirqd", "process_backlog",
                  "do_softirq*", "__napi_poll")


def in_softirq(chain: list[str]) -> bool:
    """Was the sample taken in NET_RX softirq work (run from local_bh_enable or by ksoftirqd)?"""
    return any(fnmatch.fnmatchcase(sym, pat) for sym in chain for pat in SOFTIRQ_FRAMES)


def xmit_context(chain: list[str]) -> str | None:
    """Who called TCP's data transmit in this sample (None: no ``tcp_write_xmit`` frame): the
    context of the outermost ``tcp_write_xmit``, judged by its callers only, so receive work
    that a process-context transmit runs inline (dev_queue_xmit -> local_bh_enable ->
    do_softirq) still counts as process context.  ``softirq``: an ACK processed in softirq let
    data out (tcp_v4_rcv -> tcp_data_snd_check); ``release_sock``: the owner's release
    processed it (__release_sock -> tcp_v4_do_rcv); ``sendmsg``: the writer's own push."""
    outer = max((i for i, sym in enumerate(chain) if sym == "tcp_write_xmit"), default=None)
    if outer is None:
        return None
    callers = chain[outer + 1:]
    if in_softirq(callers):
        return "softirq"
    return "release_sock" if "__release_sock" in callers else "sendmsg"


WAKE_FRAMES = ("__wake_up*", "try_to_wake_up")
WAKE_CALLERS = ("sock_def_readable", "sk_stream_write_space", "sock_def_write_space")


def in_wakeup(chain: list[str]) -> bool:
    """Was the sample taken while waking a task, on the waker's CPU?  sock_def_readable (and
    sk_stream_write_space) call ``__wake_up_sync_key`` only when ``skwq_has_sleeper`` finds a
    task on the socket's wait queue (include/net/sock.h, net/core/sock.c); everything under
    that call, down to ``try_to_wake_up`` and its IPI or local enqueue (kernel/sched/core.c),
    is the wake-up's cost, paid per wake and not per packet.  The wait queue's lock is taken
    with interrupts off (``__wake_up_common_lock``), so a cpu-clock sample that falls inside
    is taken when ``_raw_spin_unlock_irqrestore`` turns them back on, and its chain then shows
    that leaf straight under the caller (the wake frames are gone): counted too.  The samples
    keep their stage; this is a view."""
    if any(fnmatch.fnmatchcase(sym, pat) for sym in chain for pat in WAKE_FRAMES):
        return True
    return len(chain) > 1 and chain[0] == "_raw_spin_unlock_irqrestore" and chain[1] in WAKE_CALLERS


ACK_FRAME = "tcp_ack"


def in_tcp_ack(chain: list[str]) -> bool:
    """Was the sample taken inside ``tcp_ack`` (net/ipv4/tcp_input.c): the processing of an
    incoming ACK that acknowledges new data (tcp_clean_rtx_queue freeing the acknowledged skbs,
    the RTT sample, congestion control, the RTO re-armed)?  A pure ACK runs it always; a data
    segment runs it only when its ACK acknowledges new data (tcp_rcv_established's fast path:
    ``if (TCP_SKB_CB(skb)->ack_seq != tp->snd_una) tcp_ack(sk, skb, FLAG_DATA)``), so in a
    ping-pong (every message acknowledges the one before) it is the piggybacked ACK's work.
    The samples keep their stage (``tcp_rcv``); this is a view."""
    return ACK_FRAME in chain


def attribute(samples: list[Sample], packets: int, pids: set[int], classifier: Classifier | None = None,
              sent: int | None = None) -> dict:
    """ns per packet per category, per CPU, and what was not charged.

    With `sent` (datagrams the sender sent in the window, which may exceed `packets` when a
    flood overruns the per-CPU backlog), work done in the sender's own context (system call,
    no softirq frame) is divided by `sent` and softirq work by `packets` (the datagrams that
    crossed the whole path): each stage is priced per datagram that actually passed it."""
    classifier = classifier or Classifier()
    per_sent = max(sent, 1) / max(packets, 1) if sent else 1.0
    by_cat: defaultdict[str, float] = defaultdict(float)
    by_cpu: Counter = Counter()
    contexts: defaultdict[int, Counter] = defaultdict(Counter)
    cpu_cats: defaultdict[int, Counter] = defaultdict(Counter)     # category per context, per CPU
    cpu_leaves: defaultdict[int, Counter] = defaultdict(Counter)   # kernel leaf symbols, per CPU
    xmit: defaultdict[int, Counter] = defaultdict(Counter)         # tcp_write_xmit's callers, per CPU
    wake: defaultdict[int, Counter] = defaultdict(Counter)         # waking a task, by category, per CPU
    acks: defaultdict[int, Counter] = defaultdict(Counter)         # inside tcp_ack, by category, per CPU
    other_leaf: Counter = Counter()
    skipped: Counter = Counter()
    others: Counter = Counter()
    for s in samples:
        if s.comm.startswith(IDLE):
            skipped["idle"] += s.period_ns
            if in_softirq(s.chain):             # softirq run on an idle CPU's interrupt exit
                contexts[s.cpu]["softirq_in_idle"] += s.period_ns
            continue
        if not s.comm.startswith(OURS):
            skipped["other processes"] += s.period_ns
            others[s.comm] += s.period_ns
            continue
        by_cpu[s.cpu] += s.period_ns
        if not s.chain or s.chain[0] == "[user]":
            by_cat["user"] += s.period_ns
            contexts[s.cpu]["user"] += s.period_ns
            continue
        softirq = in_softirq(s.chain)
        contexts[s.cpu]["softirq" if softirq else "kernel"] += s.period_ns
        cat = classifier.classify(s.chain)
        cpu_cats[s.cpu][f"{cat} ({'softirq' if softirq else 'kernel'})"] += s.period_ns
        cpu_leaves[s.cpu][s.chain[0]] += s.period_ns
        who = xmit_context(s.chain)
        if who is not None:
            xmit[s.cpu][who] += s.period_ns
        if in_wakeup(s.chain):
            wake[s.cpu][cat] += s.period_ns
        if in_tcp_ack(s.chain):
            acks[s.cpu][cat] += s.period_ns
        by_cat[cat] += s.period_ns if softirq else s.period_ns / per_sent
        if cat == "other":
            other_leaf[s.chain[0]] += s.period_ns
    per = max(packets, 1)
    return {"packets": packets, "sent": sent, "samples": len(samples),
            "ns_per_packet": {k: v / per for k, v in sorted(by_cat.items(), key=lambda kv: -kv[1])},
            "cpu_ns_per_packet": {str(c): v / per for c, v in sorted(by_cpu.items())},
            # per CPU, our processes' samples by context: NET_RX softirq (run from
            # local_bh_enable, by ksoftirqd, or on an idle CPU), other kernel work, user space
            "cpu_context_ns_per_packet": {str(c): {k: v / per for k, v in sorted(cnt.items())}
                                          for c, cnt in sorted(contexts.items())},
            # per CPU, our processes' kernel samples by category and context ("tcp_rcv (softirq)"),
            # and the leaf functions that took most (e.g. the read's copy, rep_movs_alternative)
            "cpu_category_ns_per_packet": {str(c): {k: v / per for k, v in cnt.most_common()}
                                           for c, cnt in sorted(cpu_cats.items())},
            "cpu_leaf_top": {str(c): {k: v / per for k, v in cnt.most_common(15)}
                             for c, cnt in sorted(cpu_leaves.items())},
            # per CPU, the samples under tcp_write_xmit by who called it (`xmit_context`): where
            # a TCP sender's data leaves from
            "cpu_write_xmit_ns_per_packet": {str(c): {k: v / per for k, v in sorted(cnt.items())}
                                             for c, cnt in sorted(xmit.items())},
            # per CPU, the samples taken while waking a task (`in_wakeup`), by the category they
            # are charged to (socket_enqueue, scheduler, tcp_rcv, ...): what a wake-up costs its waker
            "cpu_wakeup_ns_per_packet": {str(c): {k: v / per for k, v in cnt.most_common()}
                                         for c, cnt in sorted(wake.items())},
            # per CPU, the samples inside tcp_ack (`in_tcp_ack`), by the category they are
            # charged to: what processing an ACK of new data costs, per packet
            "cpu_tcp_ack_ns_per_packet": {str(c): {k: v / per for k, v in cnt.most_common()}
                                          for c, cnt in sorted(acks.items())},
            "not_charged_ns_per_packet": {k: v / per for k, v in skipped.items()},
            "other_top": {k: v / per for k, v in other_leaf.most_common(12)},
            "other_processes_top": {k: v / per for k, v in others.most_common(6)}}


def _view_ns(run: dict, key: str) -> float:
    """A per-CPU, per-category view of `attribute` (e.g. ``cpu_wakeup_ns_per_packet``) summed
    over every CPU and category: ns per packet, of one run or of a `merge` (there, the sum of
    per-CPU medians)."""
    return sum(v for cats in run.get(key, {}).values() for v in cats.values())


def tcp_ack_ns(run: dict) -> float:
    """CPU ns per packet inside ``tcp_ack`` (`in_tcp_ack`)."""
    return _view_ns(run, "cpu_tcp_ack_ns_per_packet")


def wakeup_ns(run: dict) -> float:
    """CPU ns per packet spent waking a task (`in_wakeup`)."""
    return _view_ns(run, "cpu_wakeup_ns_per_packet")


def tcp_table(rec: dict) -> str:
    """Markdown: a TCP record's (``perf-stages --tcp``) receive per segment, the CPU inside
    tcp_ack apart (medians over rounds, [the rounds' range]), the rest of the receive
    (``tcp_rcv`` + ``socket_enqueue``, where sock_def_readable is charged, less tcp_ack and the
    wake-ups: what the model's ``tcp_rcv`` prices), wake-ups, and the round trip."""
    lines = ["| setup | tcp_rcv + socket_enqueue (ns/segment) | inside tcp_ack [rounds] | the rest, less "
             "wake-ups | tcp_send | wake-ups per segment | waker's CPU per segment | RTT median (us) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in rec["setups"].items():
        runs = rec.get("raw", {}).get(name, [])
        acks = sorted(tcp_ack_ns(r) for r in runs)
        spread = f" [{acks[0]:.0f}-{acks[-1]:.0f}]" if acks else ""
        ack_med = float(np.median(acks)) if acks else tcp_ack_ns(m)
        receive = ("tcp_rcv", "socket_enqueue")
        rcv = sum(m["ns_per_packet"].get(k, 0.0) for k in receive)
        woke = sum(c.get(k, 0.0) for c in m.get("cpu_wakeup_ns_per_packet", {}).values() for k in receive)
        rtts = [r["rtt_median_ns"] for r in runs if "rtt_median_ns" in r]
        rtt = f"{np.median(rtts) / 1000:.2f}" if rtts else ""
        lines.append(f"| {name} | {rcv:.0f} | {ack_med:.0f}{spread} | {rcv - ack_med - woke:.0f} | "
                     f"{m['ns_per_packet'].get('tcp_send', 0.0):.0f} | "
                     f"{m.get('wakeups_per_packet', float('nan')):.2f} | {wakeup_ns(m):.0f} | {rtt} |")
    return "\n".join(lines)


def stage_sum(ns_per_packet: dict, classifier: Classifier | None = None) -> float:
    """CPU ns per packet charged to model stages (netfilter hooks included)."""
    classifier = classifier or Classifier()
    names = set(classifier.stages) | {"nf_prerouting", "nf_local_in", "nf_forward", "nf_local_out", "nf_postrouting"}
    return sum(v for k, v in ns_per_packet.items() if k in names)


def snmp_reader(pid: int, proto: str, fields: tuple[str, ...]) -> Callable[[], int]:
    """A reader of the sum of `fields` of the `proto` line (``Udp``, ``Tcp``) of the
    namespace of process `pid` (``/proc/PID/net/snmp``: no fork)."""
    path = f"/proc/{pid}/net/snmp"

    def read() -> int:
        with open(path) as f:
            rows = [ln.split() for ln in f if ln.startswith(f"{proto}:")]
        c = dict(zip(rows[0][1:], map(int, rows[1][1:])))
        return sum(c[k] for k in fields)
    return read


NETDEV_COLUMNS = {"rx_bytes": 0, "rx_packets": 1, "tx_bytes": 8, "tx_packets": 9}
TCP_FRAME_HEADER_BYTES = 66          # Ethernet 14 + IPv4 20 + TCP 20 + timestamps option 12


def netdev_reader(pid: int, column: str, minus_per_packet: tuple[str, int] | None = None) -> Callable[[], int]:
    """A reader of one column (``rx_packets``, ``rx_bytes``) of ``/proc/PID/net/dev`` summed
    over the namespace's devices other than ``lo``: what its veth received, in skbs as the
    device saw them (a GSO/GRO skb counts once) and in bytes (Ethernet frames).
    ``minus_per_packet=("rx_packets", 66)`` subtracts 66 bytes per packet of that column from
    the same read (payload bytes: two counters logged apart would skew by their reads'
    distance, and a difference of large numbers multiplies that skew)."""
    path = f"/proc/{pid}/net/dev"
    idx = NETDEV_COLUMNS[column]
    sub_idx, per = (NETDEV_COLUMNS[minus_per_packet[0]], minus_per_packet[1]) if minus_per_packet else (idx, 0)

    def read() -> int:
        with open(path) as f:
            rows = [ln.split(":", 1)[1].split() for ln in f if ":" in ln and ln.split(":", 1)[0].strip() != "lo"]
        return sum(int(v[idx]) - per * int(v[sub_idx]) for v in rows)
    return read


class CounterLog:
    """A kernel counter (by default the server namespace's UDP InDatagrams + RcvbufErrors:
    datagrams that crossed the whole path; any `read` function, e.g. `snmp_reader`,
    `netdev_reader`) logged against CLOCK_MONOTONIC every `every_s` by a background thread,
    so the count over perf's exact sampling window can be interpolated (perf's
    ``-k CLOCK_MONOTONIC`` timestamps)."""

    def __init__(self, pid: int, fields: tuple[str, ...] = ("InDatagrams", "RcvbufErrors"),
                 every_s: float = 0.05, read: Callable[[], int] | None = None) -> None:
        self._read = read or snmp_reader(pid, "Udp", fields)
        self.every_s = every_s
        self.log: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.log.append((time.monotonic(), self._read()))
            self._stop.wait(self.every_s)

    def __enter__(self) -> "CounterLog":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.log.append((time.monotonic(), self._read()))

    def wait_for_traffic(self, timeout_s: float, more_than: int = 0) -> None:
        """Return once the count has grown by more than `more_than` (sockperf's start-up and
        warm-up take over a second; over TCP the handshake's segments come well before the
        flood, hence a threshold)."""
        deadline = time.monotonic() + timeout_s
        first = self._read()
        while self._read() - first <= more_than:
            if time.monotonic() > deadline:
                raise RuntimeError("the flood did not start: no datagram arrived")
            time.sleep(0.02)

    def between(self, t0: float, t1: float) -> float:
        """Datagrams counted between monotonic times t0 and t1 (linear interpolation)."""
        ts, cs = zip(*self.log)
        return float(np.interp(t1, ts, cs) - np.interp(t0, ts, cs))


def sampled_window(samples: list[Sample]) -> tuple[float, float] | None:
    """(first, last) timestamp of the samples: the window perf actually sampled.  (Not the
    ``perf record`` command's duration, which includes its start-up, and not the sum of
    periods, which misses tickless-idle CPUs.)"""
    times = [s.time_s for s in samples if s.time_s is not None]
    return (min(times), max(times)) if len(times) > 1 else None


def _logs(ep: Endpoints, server: int, client: int) -> dict[str, CounterLog]:
    """The counters logged during a flood of `ep`.  UDP: ``received`` (server InDatagrams +
    RcvbufErrors) and ``sent`` (client OutDatagrams).  TCP: ``received`` = the server's InSegs
    (data segments; the handshake is over before the window), ``sent`` = the client's OutSegs,
    ``acks`` = the server's OutSegs (the pure ACKs it returns), and the server's veth
    ``rx_skbs`` / ``rx_bytes`` (equal to the segments when TSO/GSO/GRO are off) and
    ``rx_payload``, its bytes less one TCP frame header per skb (one read)."""
    if not ep.tcp:
        return {"received": CounterLog(server), "sent": CounterLog(client, ("OutDatagrams",))}
    return {"received": CounterLog(server, read=snmp_reader(server, "Tcp", ("InSegs",))),
            "sent": CounterLog(client, read=snmp_reader(client, "Tcp", ("OutSegs",))),
            "acks": CounterLog(server, read=snmp_reader(server, "Tcp", ("OutSegs",))),
            "rx_skbs": CounterLog(server, read=netdev_reader(server, "rx_packets")),
            "rx_bytes": CounterLog(server, read=netdev_reader(server, "rx_bytes")),
            "rx_payload": CounterLog(server, read=netdev_reader(server, "rx_bytes",
                                                               ("rx_packets", TCP_FRAME_HEADER_BYTES)))}


def _sampler(lab: Lab, ep: Endpoints, data: str, perf_s: float, freq: int, warmup_s: float,
             logs_of: Callable[[Endpoints, int, int], dict[str, CounterLog]]) -> Callable[[set[int]], dict]:
    """The `during` hook of a sockperf run: log the counters `logs_of` names, wait for traffic
    and the warm-up, then ``perf record`` every CPU for `perf_s` into `data`."""
    def sample(pids: set[int]) -> dict:
        server = int(lab.ip_netns_pids(ep.server_ns)[0])
        client = int(lab.ip_netns_pids(ep.client_ns)[0])
        logs = logs_of(ep, server, client)
        with contextlib.ExitStack() as stack:
            for log in logs.values():
                stack.enter_context(log)
            logs["received"].wait_for_traffic(timeout_s=10.0, more_than=1000 if ep.tcp else 0)
            time.sleep(warmup_s)
            wakes = subprocess.Popen(WAKE_COUNT + ["--", "sleep", f"{perf_s:g}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
            try:
                sh(["perf", "record", "-q", "-e", "cpu-clock", "-F", str(freq), "-a", "-g", "-k", "CLOCK_MONOTONIC",
                    "-o", data, "--", "sleep", f"{perf_s:g}"], timeout=perf_s + 30)
            finally:
                _, err = wakes.communicate(timeout=perf_s + 30)
        return {**logs, "loadavg": loadavg(), "pids": pids, "wakeups_per_s": wake_count(err) / perf_s}
    return sample


# Wake-ups of the measuring programs, counted beside the sampling: every try_to_wake_up that
# finds a sockperf thread asleep (kernel/sched/core.c trace_sched_waking; the filter is on the
# woken task's name).  Tracepoints count in a VM where hardware counters do not.
WAKE_COUNT = ["perf", "stat", "-x", ",", "-a", "-e", "sched:sched_waking", "--filter", 'comm == "sockperf"']


def wake_count(stat_stderr: str) -> float:
    """The count in ``perf stat -x ,`` output (`WAKE_COUNT`); a missing count raises."""
    for line in stat_stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("sched:sched_waking"):
            return float(fields[0])
    raise RuntimeError(f"perf stat printed no sched:sched_waking count: {stat_stderr.strip()[:300]}")


def _script(data: str) -> tuple[list[Sample], tuple[float, float]]:
    """The samples of a perf.data file and the window perf actually sampled."""
    text = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,tid,cpu,time,period,ip,sym"],
                          capture_output=True, text=True, timeout=300).stdout
    samples = parse_script(text)
    window = sampled_window(samples)
    if window is None:
        raise RuntimeError("perf recorded no timestamped samples")
    return samples, window


def record(lab: Lab, ep: Endpoints, perf_s: float = 2.0, freq: int = 2999, cpus: tuple = (0, 1),
           warmup_s: float = 0.6, mps: int | None = None) -> dict:
    """Flood `ep` with sockperf (at `mps` datagrams/s, or back to back) and sample every CPU
    with perf for `perf_s` seconds inside it; packets = datagrams (TCP: data segments) that
    crossed the whole path within perf's sampling window (TCP adds the window's ``acks``,
    ``rx_skbs`` and ``rx_bytes``, see `_logs`)."""
    with tempfile.TemporaryDirectory(prefix="nsim-perf-") as tmp:
        data = str(Path(tmp) / "perf.data")
        flood = sockperf.throughput(lab, ep, perf_s + warmup_s + 4.0, cpus,
                                    during=_sampler(lab, ep, data, perf_s, freq, warmup_s, _logs), mps=mps)
        samples, window = _script(data)
    during = flood["during"]
    packets = during["received"].between(*window)
    sent = during["sent"].between(*window)
    out = attribute(samples, round(packets), during["pids"], sent=round(sent))
    seconds = window[1] - window[0]
    out["wakeups_per_packet"] = during["wakeups_per_s"] * seconds / max(packets, 1.0)
    out.update({"perf_s": perf_s, "sampled_s": seconds, "freq_hz": freq, "loadavg": during["loadavg"],
                "mps": mps, "flood_sent": flood["sent"], "flood_send_pps": flood["send_pps"],
                "flood_path_pps": flood["path_pps"], "flood_pps": flood["pps"],
                "lost_before_udp": flood["lost_before_udp"], "pps_in_window": packets / seconds,
                "sent_pps_in_window": sent / seconds})
    if ep.tcp:
        out["counts_in_window"] = {k: round(during[k].between(*window)) for k in ("received", "sent", "acks",
                                                                                 "rx_skbs", "rx_bytes",
                                                                                 "rx_payload")}
    return out


def _pingpong_logs(ep: Endpoints, server: int, client: int) -> dict[str, CounterLog]:
    """A ping-pong's messages: ``received`` (the server's InDatagrams, over TCP its InSegs:
    requests) and ``returned`` (the client's: replies).  Over TCP every message is one segment
    that carries the ACK of the one before (pingpong mode: the delayed ACK rides on the reply),
    so segments are messages, give or take the odd pure ACK.  When both ends share a namespace
    (loopback), its one counter already counts both: ``received`` alone."""
    def log(pid: int) -> CounterLog:
        if ep.tcp:
            return CounterLog(pid, read=snmp_reader(pid, "Tcp", ("InSegs",)))
        return CounterLog(pid, ("InDatagrams",))
    received = log(server)
    if ep.client_ns == ep.server_ns:
        return {"received": received}
    return {"received": received, "returned": log(client)}


def record_pingpong(lab: Lab, ep: Endpoints, perf_s: float = 2.0, freq: int = 2999, cpus: tuple = (0, 0),
                    warmup_s: float = 0.6, spin: bool = False) -> dict:
    """The latency regime: a sockperf ping-pong (one message in flight) with client and server
    on the same `cpu`, as `calibrate` measures round trips, sampled by perf for `perf_s`.
    Packets = messages (requests + replies) in perf's window, so a category's ns per packet is
    its CPU per message one way.  With both ends on one CPU, that CPU never idles while a
    message is in flight: the CPU per round trip is the round trip (``rtt_from_window_ns``,
    a check against sockperf's own median ``rtt_median_ns``), and a stage's CPU here is the
    latency it adds.  In a flood (`record`) the same stage runs with other caches, batches
    and cross-CPU wake-ups: that is the rate regime.

    With ``spin`` (the busy-poll regime: `sockperf.SPIN`, client and server on two `cpus`)
    neither end sleeps: a stage's CPU is still the latency it adds, no wake-up is in it, and
    the spinning ``recvfrom()`` calls that find nothing are charged outside the model's stages
    (the system-call categories and the programs' own code)."""
    with tempfile.TemporaryDirectory(prefix="nsim-perf-") as tmp:
        data = str(Path(tmp) / "perf.data")
        pp = sockperf.pingpong(lab, ep, perf_s + warmup_s + 4.0, cpus, spin=spin,
                               during=_sampler(lab, ep, data, perf_s, freq, warmup_s, _pingpong_logs))
        samples, window = _script(data)
    during = pp["during"]
    counts = {k: during[k].between(*window) for k in ("received", "returned") if k in during}
    messages = sum(counts.values())
    out = attribute(samples, round(messages), during["pids"])
    out["counts_in_window"] = {k: round(v) for k, v in counts.items()}
    seconds = window[1] - window[0]
    out["wakeups_per_packet"] = during["wakeups_per_s"] * seconds / max(messages, 1.0)
    out.update({"perf_s": perf_s, "sampled_s": seconds, "freq_hz": freq, "loadavg": during["loadavg"],
                "pps_in_window": messages / seconds, "rtt_median_ns": pp["median_ns"], "rtt_mean_ns": pp["mean_ns"],
                "rtt_from_window_ns": 2e9 * seconds / max(messages, 1.0)})
    return out


def merge(runs: list[dict]) -> dict:
    """Median over repeated runs of every ns-per-packet figure."""
    import statistics
    out: dict = {"runs": len(runs), "loadavg": [r["loadavg"] for r in runs],
                 "pps_in_window": statistics.median(r["pps_in_window"] for r in runs)}
    if all("wakeups_per_packet" in r for r in runs):
        out["wakeups_per_packet"] = statistics.median(r["wakeups_per_packet"] for r in runs)
    for key in ("ns_per_packet", "cpu_ns_per_packet", "not_charged_ns_per_packet", "other_top",
                "other_processes_top"):
        names = dict.fromkeys(k for r in runs for k in r[key])
        out[key] = {k: statistics.median(r[key].get(k, 0.0) for r in runs) for k in names}
    for key in ("cpu_context_ns_per_packet", "cpu_category_ns_per_packet", "cpu_leaf_top",
                "cpu_write_xmit_ns_per_packet", "cpu_wakeup_ns_per_packet", "cpu_tcp_ack_ns_per_packet"):
        cpus = dict.fromkeys(c for r in runs for c in r.get(key, {}))
        out[key] = {c: {k: statistics.median(r.get(key, {}).get(c, {}).get(k, 0.0) for r in runs)
                        for k in dict.fromkeys(k for r in runs for k in r.get(key, {}).get(c, {}))}
                    for c in cpus}
    out["spread_ns_per_packet"] = {k: max(r["ns_per_packet"].get(k, 0.0) for r in runs)
                                   - min(r["ns_per_packet"].get(k, 0.0) for r in runs)
                                   for k in out["ns_per_packet"]}
    return out


def by_setup_table(results: dict[str, dict], columns: list[str]) -> str:
    """Markdown: one row per category, one column per setup, ns per packet (median over runs)."""
    cats = list(dict.fromkeys(c for r in results.values() for c in r["ns_per_packet"]))
    order = [c for c in Classifier().stages if c in cats]
    order += sorted(c for c in cats if c.startswith("nf_") and c not in order)
    order += [c for c in cats if c not in order]
    lines = ["| stage | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for c in order:
        cells = [f"{results[s]['ns_per_packet'].get(c, 0.0):.0f}" if s in results else "" for s in columns]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    for label, fn in (("**sum of model stages**", lambda r: stage_sum(r["ns_per_packet"])),
                      ("**all charged (ours)**", lambda r: sum(r["ns_per_packet"].values())),
                      ("busiest CPU ns/packet", lambda r: max(r["cpu_ns_per_packet"].values(), default=0.0)),
                      ("kpps (path, in the perf window)", lambda r: r["pps_in_window"] / 1000)):
        lines.append(f"| {label} | " + " | ".join(f"{fn(results[s]):.0f}" if s in results else ""
                                                  for s in columns) + " |")
    return "\n".join(lines)
