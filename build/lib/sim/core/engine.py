"""The event engine: a simpy Environment in nanoseconds with a fast callback path.

`Engine` *is* a `simpy.Environment` (processes, events and `run(until=...)` work as usual)
whose calendar also accepts plain callbacks: `Engine.at(delay_ns, fn, arg)` schedules
``fn(arg)`` after `delay_ns` without building a simpy `Event`, because the model's
components never wait on each other's events: queues whose service order is FIFO and whose
service time is known at arrival (cores, links, socket readers) compute start times
analytically.  So a pass through a host is one event and a link hop is one event.  Both
kinds of entry share one heap and one sequence counter, so same-time ordering stays
first-scheduled-first-served.  `events` counts the callbacks scheduled, for benchmarks; it is
derived from the calendar's id counter (ids handed out, less those taken by simpy events and
by reads of `events`), so the hot paths that push entries themselves count for free.
`run(until=T)` with no simpy event pending (the model schedules none) is a plain heap loop
over callback entries; it hands over to simpy's own loop as soon as a callback schedules a
simpy event, so processes keep simpy's semantics.  The loop tests nothing per entry: it ends
when it pops a *control entry*, a callback entry of priority `CONTROL` (ahead of every other
entry of its time) that raises: the stop entry `run` pushes at ``T``, or the hand-over entry
`schedule` pushes at the current time when a callback schedules a simpy event.  Control
entries take calendar ids (not counted in `events`); one left behind by a loop that ended
otherwise is a no-op.  Hot paths of the model read the current time as ``engine._now``
(simpy's ``now`` is a property: a call per read).
"""

from __future__ import annotations

from heapq import heappop, heappush
from typing import Any, Callable

import simpy
from simpy.events import NORMAL

CALLBACK = float(NORMAL)    # a callback entry's priority: orders as NORMAL, told apart by its type
CONTROL = -2.0              # a control entry's priority: before every entry of its time (simpy's: -1, 0, 1)


class _Stop(Exception):
    """The fast loop of `Engine.run` reached its stop entry."""


class _HandOver(Exception):
    """A callback of the fast loop scheduled a simpy event: simpy's loop takes over."""


class Engine(simpy.Environment):
    """A simpy environment with `at()` and an event counter.  Time unit: ns."""

    def __init__(self) -> None:
        super().__init__()
        self._simpy_pending = 0     # simpy events in the calendar (not callbacks)
        self._other_ids = 0         # calendar ids not taken by callbacks (see `events`)
        self._loop: object = None   # the running fast loop's token (see `run`), or None

    @property
    def events(self) -> int:
        """Callback entries scheduled so far."""
        n = next(self._eid) - self._other_ids      # this read takes an id too
        self._other_ids += 1
        return n

    def schedule(self, event: simpy.Event, priority=NORMAL, delay: float = 0) -> None:
        """simpy's schedule, counted (see `run` and `events`); from a callback of the fast
        loop, also the hand-over entry, now (the loop ends there and simpy's takes over)."""
        self._simpy_pending += 1
        self._other_ids += 1
        super().schedule(event, priority, delay)
        if self._loop is not None:
            self._loop = None                   # one hand-over; stale control entries: no-ops
            self._control(self._now, self._hand_over, None)

    def _control(self, t: float, fn: Callable[[Any], None], arg: Any) -> None:
        """Push a control entry ``fn(arg)`` at time `t` (not counted in `events`)."""
        heappush(self._queue, (t, CONTROL, next(self._eid), fn, arg))  # type: ignore[misc]  # a callback entry
        self._other_ids += 1

    @staticmethod
    def _hand_over(_: Any) -> None:
        raise _HandOver

    def _stop(self, token: object) -> None:
        if token is self._loop:                 # else left by a loop that ended otherwise
            raise _Stop

    def at(self, delay_ns: float, fn: Callable[[Any], None], arg: Any = None, _push=heappush, _next=next) -> None:
        """Call ``fn(arg)`` after `delay_ns` (>= 0) of simulated time.  (`_push`, `_next`:
        builtins bound as locals, not arguments.)"""
        # simpy's entries are (time, priority, eid, event); a callback entry is one longer,
        # (time, CALLBACK, eid, fn, arg): eids are unique, so the heap never compares further,
        # and CALLBACK == NORMAL keeps same-time order first-scheduled-first-served.
        _push(self._queue, (self._now + delay_ns, CALLBACK, _next(self._eid), fn, arg))

    def run(self, until: Any = None) -> Any:
        """simpy's `run`.  For a time `until` while no simpy event is pending: pop and call
        callback entries in calendar order up to (not including) `until`, then set the clock
        to `until`, as simpy's URGENT until-event would; if a callback schedules a simpy
        event, simpy's loop goes on from there to `until`."""
        if until is None or isinstance(until, simpy.Event) or self._simpy_pending:
            return super().run(until)
        at = float(until)
        if at <= self._now:
            raise ValueError(f"until ({at}) must be greater than the current simulation time")
        queue = self._queue
        pop = heappop
        token = self._loop = object()
        self._control(at, self._stop, token)    # ahead of the entries at `at`: they wait
        try:
            while True:                         # ends at a control entry, which raises
                self._now, _, _, fn, arg = pop(queue)     # type: ignore[misc]  # callback entries only
                fn(arg)
        except _Stop:                           # the clock is `at`
            return None
        except _HandOver:
            return super().run(at)
        finally:
            self._loop = None

    def step(self) -> None:
        """Process the next calendar entry: a simpy event by simpy; a plain callback here,
        followed by every plain callback behind it up to the next simpy event (one `step`
        call for a run of callbacks: same order, fewer calls)."""
        queue = self._queue
        if queue and queue[0][1].__class__ is float:
            while True:
                self._now, _, _, fn, arg = heappop(queue)
                fn(arg)
                if not queue or queue[0][1].__class__ is not float:
                    return
        if queue:
            self._simpy_pending -= 1
        super().step()
