"""The coalescing engine: fixed time windows per key, no OpenTelemetry types inside.

``offer(key, payload)`` answers :data:`EMIT` for the first occurrence of a key (the caller
forwards it at once) and :data:`SUPPRESS` for repeats inside that key's window (the caller
drops them; they are counted). When a window ends with more than one occurrence, the
consumer receives one :class:`Summary`. With a fixed window, keys expire in the order they
were opened, so a dict (for lookup; its insertion order is the expiry order) and one
timer serve every key.

Bounded: at most ``max_keys`` windows are open; beyond that a new key passes through
uncoalesced (``EMIT``) and is counted as overflow. Thread-safe: one lock guards the state,
and the consumer runs outside it. Fork-safe: a forked child starts empty (the parent owns
the windows it opened and will summarise them).
"""

from __future__ import annotations

import bisect
import enum
import functools
import itertools
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from otelkit._clock import REAL_CLOCK, Clock, TimerHandle
from otelkit._errors import report_internal_error
from otelkit._fork import after_fork_in_child
from otelkit._validate import check_callable, check_positive, check_positive_int
from otelkit.errors import OptionTypeError

__all__ = [
    "EMIT",
    "SUPPRESS",
    "Coalescer",
    "Decision",
    "Summary",
]

P = TypeVar("P")
T = TypeVar("T")

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


@dataclass(slots=True, eq=False)
class _Window:
    """An open window whose key has been seen more than once, or one kept by key (see
    :class:`Coalescer`): updated in place under the lock."""

    deadline: float
    first_ns: int
    key: Hashable
    first: Any
    count: int
    last_ns: int


class _Table(dict[Hashable, Any]):
    """The windows by hint: a dict the garbage collector never stops tracking.

    The collector untracks an exact dict whose keys and values it does not track (a full
    collection checks), and the next insertion tracks it again as a young object: every
    young collection after each full one would then walk all open windows, whose tuples
    the collector does not track. A subclass is never untracked, so the table stays in
    the oldest generation.
    """

    __slots__ = ()


# A window seen once is a tuple in ``_seen`` (no object of its own: with all keys distinct
# that is nearly every window, and every container that survives per record drives the
# garbage collector): deadline, first timestamp, key (_UNBUILT when opened by sight()),
# then what was kept of the first payload.
_DEADLINE, _FIRST_NS, _KEY, _FIRST = 0, 1, 2, 3
_UNBUILT: Any = object()

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
    window ends (called only when a window opens) and handed back as
    :attr:`Summary.first`: keep it small, since a window is open for every distinct key.

    Windows are found by a *hint*: the key itself, or with ``hint_index`` (keys are then
    tuples) one component of it that the caller can read more cheaply than the whole key,
    e.g. a log record's body. With ``key_of_first`` as well, :meth:`sight` settles the
    commonest case at high volume (an event whose hint no open window has) without the
    caller building the key: the window opens under the hint alone, and
    ``key_of_first(hint, first)`` builds its key from what ``capture`` kept, only if a later
    event with that hint arrives. Keys that share a hint with a different open key get
    windows of their own, found by the whole key.
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
        hint_index: int | None = None,
        key_of_first: Callable[[Hashable, P], Hashable] | None = None,
    ) -> None:
        window = check_positive("Coalescer", "window", window)
        max_keys = check_positive_int("Coalescer", "max_keys", max_keys)
        check_callable("Coalescer", "on_summary", on_summary)
        self._window = window
        self._slack = min(window / 20, _MAX_SLACK)
        self._on_summary = on_summary
        self._max_keys = max_keys
        self._clock = clock if clock is not None else REAL_CLOCK
        # The real clock's monotonic() is time.monotonic: call the C function directly.
        self._monotonic = time.monotonic if self._clock is REAL_CLOCK else self._clock.monotonic
        self._label = label
        self._on_tick = on_tick
        if capture is not None:
            check_callable("Coalescer", "capture", capture)
        self._capture: Callable[[Any], Any] = capture if capture is not None else _same
        if hint_index is not None and (
            isinstance(hint_index, bool) or not isinstance(hint_index, int) or hint_index < 0
        ):
            raise OptionTypeError(f"hint_index must be an int >= 0 or None, got {hint_index!r}")
        if key_of_first is not None and (not callable(key_of_first) or hint_index is None):
            raise OptionTypeError("key_of_first must be a callable(hint, first), with hint_index")
        self._hint = hint_index
        self._key_of_first = key_of_first
        self._closed = False
        self._limit = max_keys  # 0 once closed: one comparison on the hot path
        self._suppressed = 0
        # Overflow is counted without the lock (see sight): next() on an itertools.count
        # is one C call, atomic under the GIL. Reading it consumes a value: _overflow_reads
        # counts those.
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
        # By hint: a window seen once (a tuple, see _DEADLINE) or a repeated one (_Window).
        # Both dicts are in opening order, so in expiry order: only the timer and flush()
        # remove windows, and a window that gets an object of its own keeps its place.
        self._seen: dict[Hashable, Any] = _Table()
        # By key: windows whose hint another key's window in _seen holds.
        self._keyed: dict[Hashable, _Window] = {}
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

    def sight(self, hint: Hashable, payload: Any, time_ns: int | None = None) -> bool:
        """Settle an event by its hint alone, if it can be: ``True`` means :data:`EMIT`
        (no open window has ``hint``: a window opened for it, its key to be built by
        ``key_of_first`` only if the hint comes again; or ``max_keys`` windows were open
        and it passes through, counted as overflow).

        ``False`` means: build the key and call :meth:`offer`. Always ``False`` without
        ``key_of_first``. Lock-free: dict lookups, ``len()`` and ``setdefault()`` are single
        C calls, atomic under the GIL (the SDK's batch processors rely on the same for
        their queues); so ``max_keys`` may be exceeded by one window per thread opening one
        at the same moment.
        """
        seen = self._seen
        if hint in seen or hint in self._hints or self._key_of_first is None:
            return False
        limit = self._limit
        if len(seen) + len(self._keyed) >= limit:  # as _full(), inlined: the hot path
            if limit:
                next(self._overflow_counter)
            return True
        return self._open(hint, _UNBUILT, payload, time_ns)

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
            first_key = entry[_KEY]
            if first_key is _UNBUILT:
                first_key = self._key_of_first(hint, entry[_FIRST])  # type: ignore[misc]
            if first_key == key:  # seen once so far: the window gets an object of its own
                window = _Window(
                    entry[_DEADLINE], entry[_FIRST_NS], key, entry[_FIRST], 1, entry[_FIRST_NS]
                )
                self._seen[hint] = window
                return self._count(window, time_ns)
        return self._offer_keyed(key, hint, payload, time_ns)

    def _open(self, hint: Hashable, key: Hashable, payload: Any, time_ns: int | None) -> bool:
        # Lock-free (see sight): open a window under ``hint`` (``key`` _UNBUILT: built by
        # key_of_first if needed). False when another thread opened one under it first.
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

    def _count(self, window: _Window, time_ns: int | None) -> Decision:
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
        window = _Window(deadline, time_ns, key, self._capture(payload), 1, time_ns)
        keyed[key] = window
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
            closing = [w for w in _copied(seen.values) if type(w) is _Window]
            closing.extend(w for w in self._keyed.values() if w.count > 1)
            seen.clear()
            self._keyed.clear()
            self._hints.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        closing.sort(key=_by_deadline)  # oldest first
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
                limit = self._monotonic() + _EPSILON
                closing: list[_Window] = []
                seen = self._seen
                ended, next_seen = _expired(seen, limit)
                for hint, entry in ended:
                    del seen[hint]
                    if type(entry) is _Window:
                        closing.append(entry)
                keyed, hints = self._keyed, self._hints
                ended, next_keyed = _expired(keyed, limit)
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
                if deadlines:
                    # Not sooner than _slack: with windows opening all the time, waking for
                    # each deadline would cost a timer run (and GIL hand-offs) per window.
                    delay = max(self._slack, min(deadlines) - limit)
                    self._timer = self._clock.call_later(delay, self._on_timer)
            closing.sort(key=_by_deadline)
            self._deliver(closing)
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


def _by_deadline(window: _Window) -> float:
    return window.deadline


def _deadline(entry: Any) -> float:
    # A window seen once (a tuple) or one with an object of its own.
    return entry[_DEADLINE] if type(entry) is tuple else entry.deadline  # type: ignore[no-any-return]


def _copied(items: Callable[[], Iterable[T]]) -> list[T]:
    # list() copies in one C call, but a garbage collection inside it may run Python code
    # (finalizers) and let a lock-free sight() insert meanwhile: then copy again.
    while True:
        try:
            return list(items())
        except RuntimeError:  # dictionary changed size during iteration
            continue


def _expired(
    mapping: dict[Hashable, Any], limit: float
) -> tuple[list[tuple[Hashable, Any]], float | None]:
    """The items at the front of ``mapping`` whose windows end by ``limit``, and the
    deadline of the next window (``None`` if none is left)."""
    count = 64
    while True:
        # Copied in one C call: sight() may add windows meanwhile (at the end; windows leave
        # only under the lock, which the caller holds). One pass from the front, which also
        # skips the slots of windows removed since the dict was last resized. Deadlines rise
        # along the dict, up to threads racing to open windows in the same microseconds.
        front = _copied(functools.partial(itertools.islice, mapping.items(), count))
        ended = bisect.bisect_right(front, limit, key=_item_deadline)
        if ended < len(front):
            return front[:ended], _item_deadline(front[ended])
        if len(front) < count:
            return front, None
        count *= 4  # few rounds, however many windows end at once


def _item_deadline(item: tuple[Hashable, Any]) -> float:
    return _deadline(item[1])
