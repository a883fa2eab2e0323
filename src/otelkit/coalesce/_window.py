"""The coalescing engine: fixed time windows per key, no OpenTelemetry types inside.

``offer(key, payload)`` answers :data:`EMIT` for the first occurrence of a key (the caller
forwards it at once) and :data:`SUPPRESS` for repeats inside that key's window (the caller
drops them; they are counted). When a window ends with more than one occurrence, the
consumer receives one :class:`Summary`. With a fixed window, keys expire in the order they
were opened, so one ordered structure (a dict for lookup, a deque for expiry order) and one
timer serve every key.

Bounded: at most ``max_keys`` windows are open; beyond that a new key passes through
uncoalesced (``EMIT``) and is counted as overflow. Thread-safe: one lock guards the state,
and the consumer runs outside it. Fork-safe: a forked child starts empty (the parent owns
the windows it opened and will summarise them).
"""

from __future__ import annotations

import enum
import itertools
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from otelkit._clock import REAL_CLOCK, Clock, TimerHandle
from otelkit._errors import report_internal_error

__all__ = [
    "EMIT",
    "SUPPRESS",
    "Coalescer",
    "Decision",
    "Summary",
    "reset_after_fork",
    "validate_positive_int",
    "validate_seconds",
]

P = TypeVar("P")

# Windows end when the clock reaches their deadline; this absorbs float rounding of
# ``now + (deadline - now)`` in timer arithmetic.
_EPSILON = 1e-9


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


class _Repeated:
    """An open window whose key has been seen more than once (updated in place)."""

    __slots__ = ("count", "last_ns")

    def __init__(self, last_ns: int) -> None:
        self.count = 2
        self.last_ns = last_ns


_ONCE = "once"
"""The value in ``_open`` of a window whose key has been seen once."""

# Per open window the hot path keeps as few garbage-collected objects as it can: every
# container allocated per record that survives (even one the collector later untracks)
# counts towards the next collection, and with many distinct keys those collections cost
# more than the bookkeeping itself. So a window seen once is its key mapped to _ONCE in
# ``_open``, and flat items in the ``_order`` deque (which stores them without a container
# per window): key, deadline, first timestamp, then the ``capture_width`` items of the
# snapshot (or the one first payload). Only a repeated key gets a :class:`_Repeated`.
_HEAD = 3  # key, deadline, first_ns

# Windows close at most this late (or window/20 when shorter): the timer batches the
# windows whose deadlines fall that close together.
_MAX_SLACK = 0.1


class Coalescer(Generic[P]):
    """Merge repeats of a key inside a fixed window into a counted :class:`Summary`.

    ``on_summary`` is called (outside the lock, from the timer or from ``flush()``) for
    every window that closes with ``count > 1``; its exceptions are contained, counted in
    :attr:`consumer_errors` and reported through otelkit's rate-limited error log.
    ``label`` names this coalescer in error reports. ``on_tick`` (optional) runs on the
    timer after each batch of windows closed, e.g. to publish :meth:`take_counts`.
    ``capture`` (optional) turns the first payload of a window into what is kept until the
    window ends (called only when a window opens): a tuple of exactly ``capture_width``
    atomic values, kept flat (no container per window) and handed back as
    :attr:`Summary.first`. A small, flat snapshot instead of a large object graph keeps
    memory and garbage-collection work low.

    ``hint_index`` (optional; keys are then tuples) names one component of the key that
    the caller can read more cheaply than the whole key, e.g. a log record's body. The
    engine keeps a count of the open windows per such component, so
    :meth:`overflow_if_new` can settle the commonest case at high volume (a key never seen
    while ``max_keys`` windows are open) without the caller building the key.
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
        capture_width: int | None = None,
        hint_index: int | None = None,
    ) -> None:
        window = validate_seconds("window", window)
        max_keys = validate_positive_int("max_keys", max_keys)
        if not callable(on_summary):
            raise TypeError(f"on_summary must be callable, got {type(on_summary).__name__}")
        self._window = window
        self._slack = min(window / 20, _MAX_SLACK)
        self._on_summary = on_summary
        self._max_keys = max_keys
        self._clock = clock if clock is not None else REAL_CLOCK
        # The real clock's monotonic() is time.monotonic: call the C function directly.
        self._monotonic = time.monotonic if self._clock is REAL_CLOCK else self._clock.monotonic
        self._label = label
        self._on_tick = on_tick
        if capture is not None and not callable(capture):
            raise TypeError(f"capture must be callable or None, got {type(capture).__name__}")
        if (capture is None) != (capture_width is None):
            raise TypeError("capture and capture_width go together (both or neither)")
        self._capture = capture
        self._width = (
            1 if capture_width is None else validate_positive_int("capture_width", capture_width)
        )
        if hint_index is not None and (
            isinstance(hint_index, bool) or not isinstance(hint_index, int) or hint_index < 0
        ):
            raise TypeError(f"hint_index must be an int >= 0 or None, got {hint_index!r}")
        self._hint = hint_index
        self._closed = False
        self._limit = max_keys  # 0 once closed: one comparison on the hot path
        self._suppressed = 0
        # Overflow is counted without the lock (see offer): next() on an itertools.count
        # is one C call, atomic under the GIL. Reading it consumes a value: _overflow_reads
        # counts those.
        self._overflow_counter = itertools.count()
        self._overflow_reads = 0
        self._taken = (0, 0)
        self._consumer_errors = 0
        self._reset()
        reset_after_fork(self._reset)

    def _reset(self) -> None:
        # Also the fork hook: the child must not summarise windows its parent opened
        # (the parent does), and the parent's lock may have been held at fork time.
        self._lock = threading.Lock()
        self._open: dict[Hashable, Any] = {}  # key -> _ONCE or a _Repeated
        self._order: deque[Any] = deque()  # flat items per window (see _HEAD), oldest first
        self._hints: dict[Hashable, int] = {}  # key[hint_index] -> open windows with it
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
        return len(self._open)

    @property
    def suppressed(self) -> int:
        """Events answered ``SUPPRESS`` so far."""
        return self._suppressed

    @property
    def overflow(self) -> int:
        """New keys passed through uncoalesced because ``max_keys`` windows were open."""
        with self._lock:
            return self._read_overflow()

    def _read_overflow(self) -> int:
        # Under the lock (readers only race with the lock-free increments, which is fine).
        value = next(self._overflow_counter) - self._overflow_reads
        self._overflow_reads += 1
        return value

    @property
    def consumer_errors(self) -> int:
        """Exceptions raised by ``on_summary`` (contained)."""
        return self._consumer_errors

    def take_counts(self) -> tuple[int, int]:
        """``(suppressed, overflow)`` counted since the previous call (for metrics)."""
        with self._lock:
            suppressed, overflow = self._suppressed, self._read_overflow()
            taken_suppressed, taken_overflow = self._taken
            self._taken = (suppressed, overflow)
        return suppressed - taken_suppressed, overflow - taken_overflow

    def overflow_if_new(self, hint: Hashable) -> bool:
        """Whether an event whose key has component ``hint`` (at ``hint_index``) is settled
        without its key: no open window's key has that component and ``max_keys`` windows
        are open, so it passes through uncoalesced (``EMIT``, counted as overflow).

        ``False`` means: build the key and call :meth:`offer`. Always ``False`` without
        ``hint_index``. Lock-free, like the first step of :meth:`offer`.
        """
        if len(self._open) < self._limit or hint in self._hints or self._hint is None:
            return False
        if self._limit:  # 0 once closed: events after close() are not overflow
            next(self._overflow_counter)
        return True

    def offer(self, key: Hashable, payload: Any, time_ns: int | None = None) -> Decision:
        """Register one occurrence of ``key``; ``time_ns`` defaults to the clock's time.

        Returns :data:`EMIT` when the caller must forward the event now, :data:`SUPPRESS`
        when it is counted in an open window and must be dropped.
        """
        # Lock-free prefix for a new key when max_keys windows are open (or once closed):
        # a dict lookup, len() and next() are single C calls, atomic under the GIL (the
        # SDK's batch processors rely on the same for their queues). Everything that
        # changes a window takes the lock and looks again.
        opened = self._open
        if key not in opened and len(opened) >= self._limit:
            if self._limit:  # 0 once closed: events after close() are not overflow
                next(self._overflow_counter)
            return EMIT
        return self._offer_locked(key, payload, time_ns)

    def _offer_locked(self, key: Hashable, payload: Any, time_ns: int | None) -> Decision:
        lock = self._lock
        lock.acquire()  # cheaper than ``with``; try/finally costs nothing in 3.11
        try:
            opened = self._open
            window = opened.get(key)
            if window is None:
                if len(opened) >= self._limit:  # max_keys, or 0 once closed
                    if self._limit:
                        next(self._overflow_counter)
                    return EMIT
                if time_ns is None:
                    time_ns = int(self._clock.time() * 1e9)
                capture = self._capture
                if capture is None:
                    first: Any = (payload,)
                else:
                    first = capture(payload)
                    if len(first) != self._width:
                        raise ValueError(
                            f"capture returned {len(first)} items, expected {self._width}"
                        )
                order = self._order
                order.extend((key, self._monotonic() + self._window, time_ns))
                order.extend(first)
                opened[key] = _ONCE
                if self._hint is not None:
                    hints = self._hints
                    hint = key[self._hint]  # type: ignore[index]
                    hints[hint] = hints.get(hint, 0) + 1
                if self._timer is None:
                    self._timer = self._clock.call_later(self._window, self._on_timer)
                return EMIT
            if time_ns is None:
                time_ns = int(self._clock.time() * 1e9)
            if window is _ONCE:
                opened[key] = _Repeated(time_ns)
            else:
                window.count += 1
                window.last_ns = time_ns
            self._suppressed += 1
            return SUPPRESS
        finally:
            lock.release()

    def flush(self) -> int:
        """Close every open window now; return how many summaries were delivered."""
        with self._lock:
            opened = self._open
            items = list(self._order)
            stride = _HEAD + self._width
            closing = [
                (key, opened[key], items[i + 2], items[i + _HEAD : i + stride])
                for i in range(0, len(items), stride)
                if opened[key := items[i]] is not _ONCE
            ]  # oldest first
            order = self._order
            opened.clear()
            order.clear()
            self._hints.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        return self._deliver(closing)

    def close(self) -> int:
        """Flush, then pass every later event through (``EMIT``) without opening windows."""
        with self._lock:
            self._closed = True
            self._limit = 0
        return self.flush()

    def _on_timer(self) -> None:
        try:
            with self._lock:
                self._timer = None
                now = self._clock.monotonic()
                closing: list[tuple[Hashable, Any, int, list[Any]]] = []
                order = self._order
                opened = self._open
                popleft = order.popleft
                width = range(self._width)
                hints, hint_index = self._hints, self._hint
                while order and order[1] <= now + _EPSILON:
                    key = popleft()
                    popleft()  # deadline
                    first_ns = popleft()
                    first = [popleft() for _ in width]
                    window = opened.pop(key)
                    if hint_index is not None:
                        hint = key[hint_index]
                        left = hints[hint] - 1
                        if left:
                            hints[hint] = left
                        else:
                            del hints[hint]
                    if window is not _ONCE:
                        closing.append((key, window, first_ns, first))
                if order:
                    # Not sooner than _slack: with windows opening all the time, waking for
                    # each deadline would cost a timer run (and GIL hand-offs) per window.
                    delay = max(self._slack, order[1] - now)
                    self._timer = self._clock.call_later(delay, self._on_timer)
            self._deliver(closing)
            if self._on_tick is not None:
                self._on_tick()
        except Exception as exc:  # noqa: BLE001 - runs on the timer thread: contain
            report_internal_error(self._label, exc)

    def _deliver(self, closing: list[tuple[Hashable, Any, int, list[Any]]]) -> int:
        delivered = 0
        for key, window, first_ns, first in closing:
            kept: Any = tuple(first) if self._capture is not None else first[0]
            summary: Summary[P] = Summary(
                key=key,
                count=window.count,
                first=kept,
                first_time_ns=first_ns,
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


def reset_after_fork(method: Callable[[], None]) -> None:
    """Call the bound ``method`` in every forked child, without keeping its object alive."""
    weak = weakref.WeakMethod(method)

    def _after_fork_in_child() -> None:
        bound = weak()
        if bound is not None:
            bound()

    os.register_at_fork(after_in_child=_after_fork_in_child)


def validate_seconds(name: str, value: object) -> float:
    """``value`` as a float > 0, or a ``ValueError``/``TypeError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


def validate_bool(name: str, value: object) -> bool:
    """``value`` if it is a bool, else ``TypeError`` naming the option."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def validate_positive_int(name: str, value: object) -> int:
    """``value`` as an int >= 1, or a ``ValueError``/``TypeError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 1, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value
