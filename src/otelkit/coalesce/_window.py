"""The coalescing engine: fixed time windows per key, no OpenTelemetry types inside.

``offer(key, payload)`` answers :data:`EMIT` for the first occurrence of a key (the caller
forwards it at once) and :data:`SUPPRESS` for repeats inside that key's window (the caller
drops them; they are counted). When a window ends with more than one occurrence, the
consumer receives one :class:`Summary`. With a fixed window, keys expire in the order they
were opened, so one dict (for lookup; its insertion order is the expiry order) and one
timer serve every key.

Bounded: at most ``max_keys`` windows are open; beyond that a new key passes through
uncoalesced (``EMIT``) and is counted as overflow. Thread-safe: one lock guards the state,
and the consumer runs outside it. Fork-safe: a forked child starts empty (the parent owns
the windows it opened and will summarise them).
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from otelkit._clock import REAL_CLOCK, Clock, TimerHandle
from otelkit._errors import report_internal_error
from otelkit._fork import after_fork_in_child
from otelkit._validate import check_callable, check_positive, check_positive_int

__all__ = ["EMIT", "SUPPRESS", "Coalescer", "Decision", "Summary"]

P = TypeVar("P")

# Windows end when the clock reaches their deadline; this absorbs float rounding of
# ``now + (deadline - now)`` in timer arithmetic.
_EPSILON = 1e-9

# Windows close at most this late (or window/20 when shorter): the timer batches the
# windows whose deadlines fall that close together.
_MAX_SLACK = 0.1


class Decision(enum.Enum):
    """What the caller of :meth:`Coalescer.offer` does with the event it offered."""

    EMIT = "emit"
    """Forward the event now (first of its window, or passed through uncoalesced)."""
    SUPPRESS = "suppress"
    """Drop the event: it is counted in its window's summary."""


EMIT = Decision.EMIT
SUPPRESS = Decision.SUPPRESS


@dataclass(frozen=True)
class Summary(Generic[P]):
    """One closed window that saw more than one occurrence of its key."""

    key: Hashable
    """The key the events shared."""
    count: int
    """Occurrences in the window, the emitted first one included (always >= 2)."""
    first: P
    """What was kept of the first occurrence's payload (``capture(payload)``, or the payload)."""
    first_time_ns: int
    """Timestamp (ns since the epoch) of the first occurrence."""
    last_time_ns: int
    """Timestamp (ns since the epoch) of the last occurrence."""
    window: float
    """The window length in seconds."""


@dataclass(slots=True, eq=False)
class _Window:
    """One open window, updated in place under the engine's lock."""

    key: Hashable
    deadline: float
    """When the window closes (the clock's ``monotonic()``)."""
    first: Any
    """What ``capture`` kept of the first payload."""
    first_ns: int
    last_ns: int
    count: int = 1


class Coalescer(Generic[P]):
    """Merge repeats of a key inside a fixed window into a counted :class:`Summary`.

    ``on_summary`` is called (outside the lock, from the timer or from ``flush()``) for
    every window that closes with ``count > 1``; its exceptions are contained, counted in
    :attr:`consumer_errors` and reported through otelkit's rate-limited error log.
    ``label`` names this coalescer in error reports. ``on_tick`` (optional) runs on the
    timer after each batch of windows closed, e.g. to publish :meth:`take_counts`.
    ``capture`` (optional) turns the first payload of a window into what is kept until the
    window ends (called only when a window opens) and handed back as
    :attr:`Summary.first`: keep it small, since a window is open for every distinct key.
    """

    def __init__(
        self,
        *,
        window: float,
        on_summary: Callable[[Summary[P]], None],
        max_keys: int = 10_000,
        clock: Clock | None = None,
        label: str = "coalesce",
        on_tick: Callable[[], None] | None = None,
        capture: Callable[[Any], P] | None = None,
    ) -> None:
        self._window = check_positive("Coalescer", "window", window)
        self._max_keys = check_positive_int("Coalescer", "max_keys", max_keys)
        self._on_summary = check_callable("Coalescer", "on_summary", on_summary)
        self._capture: Callable[[Any], Any] = (
            _same if capture is None else check_callable("Coalescer", "capture", capture)
        )
        self._slack = min(self._window / 20, _MAX_SLACK)
        self._clock = clock if clock is not None else REAL_CLOCK
        # The real clock's monotonic() is time.monotonic: call the C function directly.
        self._monotonic = time.monotonic if self._clock is REAL_CLOCK else self._clock.monotonic
        self._label = label
        self._on_tick = on_tick
        self._limit = self._max_keys  # 0 once closed: one comparison on the hot path
        self._suppressed = 0
        self._overflow = 0
        self._taken = (0, 0)
        self._consumer_errors = 0
        self._reset()
        after_fork_in_child(self, Coalescer._reset)

    def _reset(self) -> None:
        # Also the fork hook: the child must not summarise windows its parent opened
        # (the parent does), and the parent's lock may have been held at fork time.
        self._lock = threading.Lock()
        self._windows: dict[Hashable, _Window] = {}  # in opening order: expiry order
        self._timer: TimerHandle | None = None

    @property
    def window(self) -> float:
        """Window length in seconds."""
        return self._window

    @property
    def max_keys(self) -> int:
        """Most windows open at once."""
        return self._max_keys

    @property
    def open_keys(self) -> int:
        """Windows open now."""
        return len(self._windows)

    @property
    def suppressed(self) -> int:
        """Events answered ``SUPPRESS`` so far."""
        return self._suppressed

    @property
    def overflow(self) -> int:
        """New keys passed through uncoalesced because ``max_keys`` windows were open."""
        return self._overflow

    @property
    def consumer_errors(self) -> int:
        """Exceptions raised by ``on_summary`` (contained)."""
        return self._consumer_errors

    def take_counts(self) -> tuple[int, int]:
        """``(suppressed, overflow)`` counted since the previous call (for metrics)."""
        with self._lock:
            suppressed, overflow = self._suppressed, self._overflow
            taken_suppressed, taken_overflow = self._taken
            self._taken = (suppressed, overflow)
        return suppressed - taken_suppressed, overflow - taken_overflow

    def offer(self, key: Hashable, payload: Any, time_ns: int | None = None) -> Decision:
        """Register one occurrence of ``key``; ``time_ns`` defaults to the clock's time.

        Returns :data:`EMIT` when the caller must forward the event now, :data:`SUPPRESS`
        when it is counted in an open window and must be dropped.
        """
        with self._lock:
            window = self._windows.get(key)
            if window is not None:
                window.count += 1
                window.last_ns = time_ns if time_ns is not None else self._now_ns()
                self._suppressed += 1
                return SUPPRESS
            if len(self._windows) >= self._limit:
                if self._limit:  # full; events after close() are not overflow
                    self._overflow += 1
                return EMIT
            if time_ns is None:
                time_ns = self._now_ns()
            deadline = self._monotonic() + self._window
            self._windows[key] = _Window(key, deadline, self._capture(payload), time_ns, time_ns)
            if self._timer is None:
                self._timer = self._clock.call_later(self._window, self._on_timer)
            return EMIT

    def _now_ns(self) -> int:
        return int(self._clock.time() * 1e9)

    def flush(self) -> int:
        """Close every open window now; return how many summaries were delivered."""
        with self._lock:
            closing = [window for window in self._windows.values() if window.count > 1]
            self._windows.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        return self._deliver(closing)

    def close(self) -> int:
        """Flush, then pass every later event through (``EMIT``) without opening windows."""
        with self._lock:
            self._limit = 0
        return self.flush()

    def _on_timer(self) -> None:
        try:
            with self._lock:
                self._timer = None
                limit = self._clock.monotonic() + _EPSILON
                windows = self._windows
                ended: list[_Window] = []
                for window in windows.values():  # oldest first: deadlines rise along it
                    if window.deadline > limit:
                        # Not sooner than _slack: with windows opening all the time, waking
                        # for each deadline would cost a timer run per window.
                        delay = max(self._slack, window.deadline - limit)
                        self._timer = self._clock.call_later(delay, self._on_timer)
                        break
                    ended.append(window)
                for window in ended:
                    del windows[window.key]
            self._deliver([window for window in ended if window.count > 1])
            if self._on_tick is not None:
                self._on_tick()
        except Exception as exc:  # noqa: BLE001 - runs on the timer thread: contain
            report_internal_error(self._label, exc)

    def _deliver(self, closing: list[_Window]) -> int:
        delivered = 0
        for window in closing:
            summary: Summary[P] = Summary(
                key=window.key,
                count=window.count,
                first=window.first,
                first_time_ns=window.first_ns,
                last_time_ns=window.last_ns,
                window=self._window,
            )
            try:
                self._on_summary(summary)
                delivered += 1
            except Exception as exc:  # noqa: BLE001 - a consumer never reaches the producer
                with self._lock:
                    self._consumer_errors += 1
                report_internal_error(self._label, exc)
        return delivered


def _same(payload: Any) -> Any:
    return payload
