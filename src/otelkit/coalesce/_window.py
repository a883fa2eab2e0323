"""The coalescing engine: fixed time windows per key, no OpenTelemetry types inside.

``offer(key, payload)`` answers :data:`EMIT` for the first occurrence of a key (the caller
forwards it at once) and :data:`SUPPRESS` for repeats inside that key's window (the caller
drops them; they are counted). When a window ends with more than one occurrence, the
consumer receives one :class:`Summary`. With a fixed window, keys expire in the order they
were opened, so a dict (for lookup; its insertion order is the expiry order) and one
timer serve every key (storage: ``_table``).

Bounded: at most ``max_keys`` windows are open; beyond that a new key passes through
uncoalesced (``EMIT``) and is counted as overflow. Thread-safe: one lock guards the state,
and the consumer runs outside it. Fork-safe: a forked child starts empty (the parent owns
the windows it opened and will summarise them).

The processors use :class:`~otelkit.coalesce._hinted.HintedCoalescer`, which adds lookup by
a cheap component of the key (the *hint*); this class holds the windows by hint already
(the hint of a plain ``Coalescer`` is the whole key).
"""

from __future__ import annotations

import enum
import itertools
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from otelkit._clock import REAL_CLOCK, Clock, TimerHandle
from otelkit._errors import report_internal_error
from otelkit._fork import after_fork_in_child
from otelkit._validate import check_callable, check_positive, check_positive_int
from otelkit.coalesce._table import (
    DEADLINE,
    FIRST,
    FIRST_NS,
    KEY,
    UNBUILT,
    Window,
    WindowTable,
    by_deadline,
    copied,
    expired,
)

__all__ = [
    "EMIT",
    "SUPPRESS",
    "Coalescer",
    "Decision",
    "Summary",
]

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

    # Set by HintedCoalescer: the key's component that finds its window (None: the key),
    # and how a window opened by its hint alone gets its key.
    _hint: int | None = None
    _key_of_first: Callable[[Hashable, Any], Hashable] | None = None

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
        # Overflow is counted without the lock (see HintedCoalescer.sight): next() on an
        # itertools.count is one C call, atomic under the GIL. Reading it consumes a value:
        # _overflow_reads counts those.
        self._overflow_counter = itertools.count()
        self._overflow_reads = 0
        self._taken = (0, 0)
        self._consumer_errors = 0
        self._reset()
        after_fork_in_child(self, Coalescer._reset)

    def _reset(self) -> None:
        # Also the fork hook: the child must not summarise windows its parent opened
        # (the parent does), and the parent's lock may have been held at fork time.
        self._lock = threading.Lock()
        # By hint: a window seen once (a tuple, see _table) or a repeated one (Window).
        # Both dicts are in opening order, so in expiry order: only the timer and flush()
        # remove windows, and a window that gets an object of its own keeps its place.
        self._seen: dict[Hashable, Any] = WindowTable()
        # By key: windows whose hint another key's window in _seen holds.
        self._keyed: dict[Hashable, Window] = {}
        self._hints: dict[Hashable, int] = {}  # hint -> windows in _keyed with it
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
        return len(self._seen) + len(self._keyed)

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

    def offer(self, key: Hashable, payload: Any, time_ns: int | None = None) -> Decision:
        """Register one occurrence of ``key``; ``time_ns`` defaults to the clock's time.

        Returns :data:`EMIT` when the caller must forward the event now, :data:`SUPPRESS`
        when it is counted in an open window and must be dropped.
        """
        hint = key if self._hint is None else key[self._hint]  # type: ignore[index]
        while True:
            with self._lock:
                decision = self._offer_locked(key, hint, payload, time_ns)
            if decision is not None:
                return decision
            if self._open(hint, key, payload, time_ns):
                return EMIT
            # Another thread opened a window for the hint meanwhile: look again.

    def _offer_locked(
        self, key: Hashable, hint: Hashable, payload: Any, time_ns: int | None
    ) -> Decision | None:
        # Under the lock: the decision when a window has the key or its hint (or once
        # closed); None when neither has one, so a window is to open under the hint.
        if not self._limit:  # closed
            return EMIT
        entry = self._seen.get(hint)
        if entry is None:
            window = self._keyed.get(key) if self._hints else None
            if window is not None:
                return self._count(window, time_ns)
            return EMIT if self._full() else None
        if type(entry) is not tuple:
            if entry.key == key:
                return self._count(entry, time_ns)
        else:
            first_key = entry[KEY]
            if first_key is UNBUILT:
                first_key = self._key_of_first(hint, entry[FIRST])  # type: ignore[misc]
            if first_key == key:  # seen once so far: the window gets an object of its own
                first_ns = entry[FIRST_NS]
                window = Window(entry[DEADLINE], first_ns, key, entry[FIRST], 1, first_ns)
                self._seen[hint] = window
                return self._count(window, time_ns)
        return self._offer_keyed(key, hint, payload, time_ns)

    def _open(self, hint: Hashable, key: Hashable, payload: Any, time_ns: int | None) -> bool:
        # Lock-free (see HintedCoalescer.sight): open a window under ``hint`` (``key``
        # UNBUILT: built by key_of_first if needed). False when another thread opened one
        # under it first.
        deadline = self._monotonic() + self._window
        if time_ns is None:
            time_ns = self._now_ns()
        entry = (deadline, time_ns, key, self._capture(payload))
        if self._seen.setdefault(hint, entry) is not entry:
            return False
        if self._timer is None:
            self._arm()
        return True

    def _full(self) -> bool:
        # Whether max_keys windows are open (always once closed); a new key then passes
        # through, counted as overflow (events after close() are not).
        limit = self._limit
        if len(self._seen) + len(self._keyed) < limit:
            return False
        if limit:
            next(self._overflow_counter)
        return True

    def _now_ns(self) -> int:
        return int(self._clock.time() * 1e9)

    def _count(self, window: Window, time_ns: int | None) -> Decision:
        # Under the lock.
        window.count += 1
        window.last_ns = time_ns if time_ns is not None else self._now_ns()
        self._suppressed += 1
        return SUPPRESS

    def _offer_keyed(
        self, key: Hashable, hint: Hashable, payload: Any, time_ns: int | None
    ) -> Decision:
        # Under the lock: ``key`` shares its hint with another key's window in _seen.
        keyed = self._keyed
        window = keyed.get(key)
        if window is not None:
            return self._count(window, time_ns)
        if self._full():
            return EMIT
        if time_ns is None:
            time_ns = self._now_ns()
        deadline = self._monotonic() + self._window
        keyed[key] = Window(deadline, time_ns, key, self._capture(payload), 1, time_ns)
        self._hints[hint] = self._hints.get(hint, 0) + 1
        return EMIT

    def _arm(self) -> None:
        with self._lock:
            if self._timer is None and self._limit:
                self._timer = self._clock.call_later(self._window, self._on_timer)

    def flush(self) -> int:
        """Close every open window now; return how many summaries were delivered."""
        with self._lock:
            seen = self._seen
            closing = [w for w in copied(seen.values) if type(w) is Window]
            closing.extend(w for w in self._keyed.values() if w.count > 1)
            seen.clear()
            self._keyed.clear()
            self._hints.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        closing.sort(key=by_deadline)  # oldest first
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
                limit = self._monotonic() + _EPSILON
                closing, next_deadline = self._close_expired(limit)
                if next_deadline is not None:
                    # Not sooner than _slack: with windows opening all the time, waking for
                    # each deadline would cost a timer run (and GIL hand-offs) per window.
                    delay = max(self._slack, next_deadline - limit)
                    self._timer = self._clock.call_later(delay, self._on_timer)
            closing.sort(key=by_deadline)
            self._deliver(closing)
            if self._on_tick is not None:
                self._on_tick()
        except Exception as exc:  # noqa: BLE001 - runs on the timer thread: contain
            report_internal_error(self._label, exc)

    def _close_expired(self, limit: float) -> tuple[list[Window], float | None]:
        # Under the lock: remove the windows that end by ``limit``; the repeated ones (to
        # summarise) and the next deadline.
        closing: list[Window] = []
        seen = self._seen
        ended, next_seen = expired(seen, limit)
        for hint, entry in ended:
            del seen[hint]
            if type(entry) is Window:
                closing.append(entry)
        keyed, hints = self._keyed, self._hints
        ended, next_keyed = expired(keyed, limit)
        for key, window in ended:
            del keyed[key]
            hint = key[self._hint]  # type: ignore[index]
            left = hints[hint] - 1
            if left:
                hints[hint] = left
            else:
                del hints[hint]
            if window.count > 1:
                closing.append(window)
        deadlines = [d for d in (next_seen, next_keyed) if d is not None]
        return closing, min(deadlines) if deadlines else None

    def _deliver(self, closing: list[Window]) -> int:
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
