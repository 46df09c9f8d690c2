"""The event engine: callbacks and simpy events share one calendar with simpy's semantics."""

from __future__ import annotations

import pytest

from sim.core.engine import Engine


def trace_run(with_process: bool, until: float) -> tuple[list, float]:
    """Callbacks at t = 0, 5, 10, ... (each scheduling the next) and, optionally, a simpy
    process that wakes at t = 7 and 12 and schedules a callback at +0; the log of (time,
    what) and the clock after `run(until)`."""
    eng = Engine()
    log: list = []

    def tick(k: int) -> None:
        log.append((eng.now, f"tick{k}"))
        eng.at(5, tick, k + 1)

    def proc(env):
        yield env.timeout(7)
        log.append((env.now, "proc"))
        eng.at(0, lambda _: log.append((eng.now, "cb-from-proc")))
        yield env.timeout(5)
        log.append((env.now, "proc2"))

    eng.at(0, tick, 0)
    if with_process:
        eng.process(proc(eng))
    eng.run(until=until)
    return log, eng.now


def test_plain_loop_stops_before_until_and_sets_the_clock():
    log, now = trace_run(False, 20)
    assert [t for t, _ in log] == [0, 5, 10, 15]       # the tick at t = 20 is not run (simpy's until is URGENT)
    assert now == 20


def test_callbacks_then_simpy_process_keep_calendar_order():
    log, now = trace_run(True, 20)
    assert log == [(0, "tick0"), (5, "tick1"), (7, "proc"), (7, "cb-from-proc"), (10, "tick2"),
                   (12, "proc2"), (15, "tick3")]
    assert now == 20


def test_run_resumes_where_it_stopped():
    eng = Engine()
    seen: list = []
    for t in (1, 2, 3, 4):
        eng.at(t, seen.append, t)
    eng.run(until=2.5)
    assert seen == [1, 2] and eng.now == 2.5
    eng.run(until=10)
    assert seen == [1, 2, 3, 4] and eng.now == 10


def test_a_callback_that_starts_a_process_hands_over_to_simpy():
    eng = Engine()
    log: list = []

    def proc(env):
        yield env.timeout(3)
        log.append(("proc", env.now))

    eng.at(1, lambda _: eng.process(proc(eng)))
    eng.at(2, lambda _: log.append(("cb", eng.now)))
    eng.at(5, lambda _: log.append(("cb", eng.now)))
    eng.run(until=6)
    assert log == [("cb", 2), ("proc", 4), ("cb", 5)] and eng.now == 6


def test_until_in_the_past_is_refused():
    eng = Engine()
    eng.run(until=5)
    with pytest.raises(ValueError, match="greater than the current simulation time"):
        eng.run(until=5)


def test_events_count_callbacks_only():
    """`events` counts callback entries, whether scheduled by `at` or pushed by a hot path,
    and not simpy events nor its own reads."""
    def idle(env):
        yield env.timeout(5)

    eng = Engine()
    assert eng.events == 0
    eng.at(1, lambda _: None)
    eng.process(idle(eng))           # a simpy process: an Initialize event, then a Timeout
    eng.timeout(3)
    assert eng.events == 1 and eng.events == 1
    eng.at(2, lambda _: eng.at(1, lambda _: None))
    eng.run(until=10)
    assert eng.events == 3



def test_control_entries_are_not_events_and_a_stale_one_does_nothing():
    """The fast loop ends at its stop entry (consumed) or at a hand-over (its stop entry is
    left behind, then popped by simpy's loop as a no-op); neither counts in `events`."""
    eng = Engine()
    log: list = []
    eng.at(1, lambda _: log.append(("cb", eng.now)))
    eng.at(5, lambda _: log.append(("at-until", eng.now)))
    eng.run(until=5)
    assert log == [("cb", 1)] and eng.now == 5 and len(eng._queue) == 1 and eng._loop is None

    def proc(env):
        yield env.timeout(1)
        log.append(("proc", env.now))

    eng.at(1, lambda _: eng.process(proc(eng)))        # t = 6: hands over; the stop entry at 10 stays
    eng.at(3, lambda _: log.append(("cb", eng.now)))
    eng.run(until=10)
    assert log[1:] == [("at-until", 5), ("proc", 7), ("cb", 8)] and eng.now == 10
    eng.at(1, lambda _: log.append(("cb", eng.now)))
    eng.run(until=12)
    assert log[4:] == [("cb", 11)] and eng.now == 12
    assert eng.events == 5                 # the five `at` calls
