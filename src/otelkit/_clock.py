"""Injected time: the clock and the one timer thread that windows, leases, decay and
backoff use.

Windows, leases, decay and backoff read a :class:`Clock`; otelkit's own deadlines for
real waits (a worker's run timeout, poll and schedule ticks in ``jobs/_worker.py``, the
relay child's bounded waits in ``relay/_child.py``) read ``time.monotonic`` directly, since
they bound real blocking calls. Production code uses :data:`REAL_CLOCK`; tests pass a :class:`FakeClock` and move time with ``advance()``
instead of sleeping. ``call_later`` gives every component one shared timer seam: the real
clock runs callbacks on one daemon thread, the fake clock runs them inside ``advance()``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from otelkit._fork import after_fork_in_child
from otelkit._threads import start_daemon

__all__ = ["REAL_CLOCK", "Clock", "FakeClock", "RealClock", "TimerHandle"]

_log = logging.getLogger("otelkit")


class TimerHandle:
    """A scheduled callback; ``cancel()`` makes sure it never runs (if it has not yet)."""

    __slots__ = ("_callback", "cancelled", "due")

    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due = due
        self._callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Stop the callback from running; harmless after it ran."""
        self.cancelled = True

    def _run(self) -> None:
        if self.cancelled:
            return
        self.cancelled = True  # a handle runs at most once
        try:
            self._callback()
        except Exception:  # noqa: BLE001 - a timer callback must never kill the timer thread
            _log.exception("otelkit timer callback failed")


@runtime_checkable
class Clock(Protocol):
    """What otelkit needs from time: wall time, monotonic time and one-shot timers."""

    def time(self) -> float:
        """Seconds since the Unix epoch (for timestamps)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for windows, leases, decay)."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` once, ``delay`` seconds from now on this clock."""
        ...


class _Heap:
    """Due-ordered timer handles; ties keep insertion order."""

    def __init__(self) -> None:
        self._items: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()

    def push(self, handle: TimerHandle) -> None:
        heapq.heappush(self._items, (handle.due, next(self._seq), handle))

    def next_due(self) -> float | None:
        while self._items and self._items[0][2].cancelled:
            heapq.heappop(self._items)
        return self._items[0][0] if self._items else None

    def pop_due(self, now: float) -> TimerHandle | None:
        due = self.next_due()
        if due is None or due > now:
            return None
        return heapq.heappop(self._items)[2]

    def clear(self) -> None:
        self._items.clear()


class RealClock:
    """The system clock; timers run on one lazily started daemon thread per process."""

    def __init__(self) -> None:
        self._reset()
        after_fork_in_child(self, RealClock._reset)

    def _reset(self) -> None:
        # After fork the parent's timer thread does not exist in the child: start afresh.
        self._cond = threading.Condition(threading.Lock())
        self._heap = _Heap()
        self._thread: threading.Thread | None = None

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(time.monotonic() + max(0.0, delay), callback)
        with self._cond:
            self._heap.push(handle)
            if self._thread is None:
                self._thread = start_daemon(self._run, name="otelkit-timer")
            self._cond.notify()
        return handle

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                handle = self._heap.pop_due(time.monotonic())
                if handle is None:
                    due = self._heap.next_due()
                    cond.wait(None if due is None else max(0.0, due - time.monotonic()))
                    continue
            handle._run()


REAL_CLOCK = RealClock()
"""The process-wide real clock; the default wherever a ``clock`` option exists."""


class FakeClock:
    """A clock that moves only when the test calls :meth:`advance`.

    Timers scheduled with :meth:`call_later` run inside ``advance()``, in due order,
    with the clock set to each timer's due time while it runs.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._wall_offset = start
        self._now = 0.0
        self._heap = _Heap()
        self._lock = threading.RLock()

    def time(self) -> float:
        return self._wall_offset + self._now

    def monotonic(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        with self._lock:
            handle = TimerHandle(self._now + max(0.0, delay), callback)
            self._heap.push(handle)
            return handle

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running every timer that falls due."""
        if seconds < 0:
            raise ValueError(f"FakeClock.advance: seconds must be >= 0, got {seconds!r}")
        with self._lock:
            target = self._now + seconds
            while (handle := self._heap.pop_due(target)) is not None:
                self._now = max(self._now, handle.due)
                handle._run()
            self._now = target

    def pending_timers(self) -> int:
        """How many timers are scheduled and not cancelled (for assertions)."""
        with self._lock:
            return sum(1 for _, _, h in self._heap._items if not h.cancelled)
