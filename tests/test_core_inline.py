"""`sim.core.cpu.Core.run_inline`: work done inside a softirq that is ending (or a timer's),
on a core given by a stand-in host (no scheme, no model)."""

from __future__ import annotations

from sim.core.cpu import Core, Napi, SoftirqLimits, Thread
from sim.core.engine import Engine


class Host:
    """What a Core needs of its host: the engine, the window, a pass's begin and end, and the
    NAPI poll's own cost (none here)."""

    napi_poll_ns = 0.0

    def __init__(self) -> None:
        self.engine = Engine()
        self.warmup_ns, self.until_ns = 0.0, 1e12
        self.log: list[tuple[str, str, float]] = []

    def open_poll(self, pkt) -> float:
        return 0.0

    def begin_pass(self, pkt, core, start_ns: float) -> float:
        self.log.append(("start", pkt, start_ns))
        return 10.0

    def end_pass(self, pkt) -> None:
        self.log.append(("end", pkt, self.engine._now))


def core_with_host() -> tuple[Core, Host]:
    host = Host()
    return Core(0, host, SoftirqLimits(64, 300, 2e6, 10, 2e6), 1000), host


def test_inline_work_follows_the_running_job_and_precedes_queued_softirq_work():
    """A thread job runs 0-100 ns; at 30 ns a backlog packet arrives (its pass: 10 ns) and a
    20 ns job is run inline: it starts when the thread job ends, before the queued packet."""
    core, host = core_with_host()
    th = Thread("app", core, 0)
    th.jobs.append((lambda arg, c, t: 100.0, lambda arg: host.log.append(("end", "thread", host.engine._now)), None))
    core.ready(th)
    backlog = Napi("backlog", 100)

    def at_30(_):
        core.napi_add(backlog, "packet")
        core.run_inline(lambda arg, c, t: host.log.append(("start", "inline", t)) or 20.0,
                        lambda arg: host.log.append(("end", "inline", host.engine._now)), None)
    host.engine.at(30.0, at_30)
    host.engine.run(until=1000.0)
    # (a job's begin is called when it is placed, with the start time it will have)
    assert sorted(host.log, key=lambda e: (e[2], e[0] == "start")) == [
        ("end", "thread", 100.0), ("start", "inline", 100.0), ("end", "inline", 120.0),
        ("start", "packet", 120.0), ("end", "packet", 130.0)]
    assert core.busy_ns == 130.0


def test_inline_work_on_an_idle_core_starts_at_once_and_counts_as_busy():
    core, host = core_with_host()
    host.engine.at(50.0, lambda _: core.run_inline(lambda a, c, t: host.log.append(("start", "inline", t)) or 5.0,
                                                    lambda a: host.log.append(("end", "inline", host.engine._now)),
                                                    None))
    host.engine.run(until=1000.0)
    assert host.log == [("start", "inline", 50.0), ("end", "inline", 55.0)]
    assert core.busy_ns == 5.0 and not core.pending
