"""The coalescing engine: fixed time windows per key, no OpenTelemetry types inside.

``offer(key, payload)`` answers :data:`EMIT` for the first occurrence of a key (the caller
forwards it at once) and :data:`SUPPRESS` for repeats inside that key's window (the caller
drops them; they are counted). When a window ends with more than one occurrence, the
consumer receives one :class:`Summary`.

The whole state is one dict of open windows, guarded by one lock, and one timer. Every
window lasts the same time, so windows end in the order they opened: the dict's insertion
order is the expiry order, and the timer only looks at its front.

Most keys are seen once, so a window that has seen one occurrence is a plain tuple of
plain values: its deadline, the first timestamp and what ``remember`` kept of the first
payload (say, its trace and span ids). Such a tuple is nothing the garbage collector walks
once it has looked at it, however many windows are open. On the first repeat the window
becomes a :class:`_Window` that also keeps ``capture(payload)`` of that repeat, which is
what its summary will look like.

Bounded: at most ``max_keys`` windows are open; beyond that a new key passes through
uncoalesced (``EMIT``) and is counted as overflow. Fork-safe: a forked child starts empty
(the parent owns the windows it opened and will summarise them).
"""

from __future__ import annotations

import enum
import threading
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
# Windows close at most this late (or window/20 when shorter): with windows opening all the
# time, one timer run closes those whose deadlines fall that close together instead of one
# run per window.
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
    first: Any
    """What ``remember`` kept of the first occurrence's payload (``None`` without one)."""
    sample: P
    """What ``capture`` kept of the first repeat's payload (or that payload)."""
    first_time_ns: int
    """Timestamp (ns since the epoch) of the first occurrence."""
    last_time_ns: int
    """Timestamp (ns since the epoch) of the last occurrence."""
    window: float
    """The window length in seconds."""


# A window that has seen one occurrence: (deadline, first_ns, first), plain values only.
_Once = tuple[float, int, Any]


@dataclass(slots=True)
class _Window:
    """An open window with repeats: its :data:`_Once` values, what it keeps of the first
    repeat, and the occurrences counted so far (``count`` and ``last_ns`` change under the
    engine's lock, nothing else does)."""

    deadline: float
    """When the window ends, on the clock's ``monotonic()`` scale."""
    first_ns: int
    first: Any
    sample: Any
    count: int
    last_ns: int


class Coalescer(Generic[P]):
    """Merge repeats of a key inside a fixed window into a counted :class:`Summary`.

    ``on_summary`` is called (outside the lock, from the timer or from ``flush()``) for
    every window that closes with ``count > 1``; its exceptions are contained, counted in
    :attr:`consumer_errors` and reported through otelkit's rate-limited error log.
    ``label`` names this coalescer in error reports. ``on_tick`` (optional) runs on the
    timer after each batch of windows closed, e.g. to publish :meth:`take_counts`.
    ``remember`` (optional) turns the first payload of a window into what the window keeps
    of it, handed back as :attr:`Summary.first`: it must return plain immutable values (an
    int, a str, a tuple of them), since a window is open for every distinct key.
    ``capture`` (optional) turns the first repeat's payload into what is kept until the
    window ends (called only on a window's first repeat), handed back as
    :attr:`Summary.sample`.
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
        remember: Callable[[Any], Any] | None = None,
        capture: Callable[[Any], P] | None = None,
    ) -> None:
        self._window = check_positive("Coalescer", "window", window)
        self._max_keys = check_positive_int("Coalescer", "max_keys", max_keys)
        self._on_summary = check_callable("Coalescer", "on_summary", on_summary)
        self._remember: Callable[[Any], Any] | None = (
            None if remember is None else check_callable("Coalescer", "remember", remember)
        )
        self._capture: Callable[[Any], Any] | None = (
            None if capture is None else check_callable("Coalescer", "capture", capture)
        )
        self._slack = min(self._window / 20, _MAX_SLACK)
        self._clock = clock if clock is not None else REAL_CLOCK
        self._label = label
        self._on_tick = on_tick
        self._closed = False
        self._suppressed = 0
        self._overflow = 0
        self._taken = (0, 0)
        self._consumer_errors = 0
        self._reset()
        after_fork_in_child(self, Coalescer._reset)

    def _reset(self) -> None:
        # Also the fork hook: the child must not summarise windows its parent opened (the
        # parent does), and the parent's lock may have been held at fork time.
        self._lock = threading.Lock()
        self._windows: dict[Hashable, _Once | _Window] = {}  # in opening order = expiry order
        self._timer: TimerHandle | None = None

    @property
    def max_keys(self) -> int:
        """Most windows open at once."""
        return self._max_keys

    @property
    def open_keys(self) -> int:
        """Windows open now."""
        with self._lock:
            return len(self._windows)

    @property
    def suppressed(self) -> int:
        """Events answered ``SUPPRESS`` so far."""
        with self._lock:
            return self._suppressed

    @property
    def overflow(self) -> int:
        """New keys passed through uncoalesced because ``max_keys`` windows were open."""
        with self._lock:
            return self._overflow

    @property
    def consumer_errors(self) -> int:
        """Exceptions raised by ``on_summary`` (contained)."""
        with self._lock:
            return self._consumer_errors

    def take_counts(self) -> tuple[int, int]:
        """``(suppressed, overflow)`` counted since the previous call (for metrics)."""
        with self._lock:
            counts = (self._suppressed, self._overflow)
            taken, self._taken = self._taken, counts
        return counts[0] - taken[0], counts[1] - taken[1]

    def offer(self, key: Hashable, payload: Any, time_ns: int | None = None) -> Decision:
        """Register one occurrence of ``key``; ``time_ns`` defaults to the clock's time.

        Returns :data:`EMIT` when the caller must forward the event now, :data:`SUPPRESS`
        when it is counted in an open window and must be dropped.
        """
        if time_ns is None:
            time_ns = int(self._clock.time() * 1e9)
        with self._lock:
            if self._closed:
                return EMIT
            window = self._windows.get(key)
            if window is not None:
                if isinstance(window, tuple):  # the first repeat: keep what the summary shows
                    sample = payload if self._capture is None else self._capture(payload)
                    self._windows[key] = _Window(*window, sample, 2, time_ns)
                else:
                    window.count += 1
                    window.last_ns = time_ns
                self._suppressed += 1
                return SUPPRESS
            if len(self._windows) >= self._max_keys:
                self._overflow += 1
                return EMIT
            first = None if self._remember is None else self._remember(payload)
            deadline = self._clock.monotonic() + self._window
            self._windows[key] = (deadline, time_ns, first)
            if self._timer is None:
                self._timer = self._clock.call_later(self._window, self._on_timer)
            return EMIT

    def flush(self) -> int:
        """Close every open window now; return how many summaries were delivered."""
        with self._lock:
            closing = list(self._windows.items())
            self._windows.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        return self._deliver(closing)

    def close(self) -> int:
        """Flush, then pass every later event through (``EMIT``) without opening windows."""
        with self._lock:
            self._closed = True
        return self.flush()

    def _on_timer(self) -> None:
        try:
            with self._lock:
                self._timer = None
                now = self._clock.monotonic() + _EPSILON
                closing = []
                for key, window in self._windows.items():
                    deadline = window[0] if isinstance(window, tuple) else window.deadline
                    if deadline > now:
                        # The oldest window still open: wake for it, but not sooner than
                        # the slack allows.
                        delay = max(self._slack, deadline - now)
                        self._timer = self._clock.call_later(delay, self._on_timer)
                        break
                    closing.append((key, window))
                for key, _ in closing:
                    del self._windows[key]
            self._deliver(closing)
            if self._on_tick is not None:
                self._on_tick()
        except Exception as exc:  # noqa: BLE001 - runs on the timer thread: contain
            report_internal_error(self._label, exc)

    def _deliver(self, closing: list[tuple[Hashable, _Once | _Window]]) -> int:
        # Outside the lock: the consumer may take its own locks and call downstream.
        delivered = 0
        for key, window in closing:
            if isinstance(window, tuple):
                continue  # no repeat: the exported first occurrence already says everything
            summary: Summary[P] = Summary(
                key=key,
                count=window.count,
                first=window.first,
                sample=window.sample,
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
