"""Window storage for the engine: the two window shapes, the table, and expiry scans.

A window seen once is a tuple (no object of its own: with all keys distinct that is nearly
every window, and every container that survives per record drives the garbage collector);
its fields sit at :data:`DEADLINE`, :data:`FIRST_NS`, :data:`KEY` and :data:`FIRST`. A window
seen again gets a :class:`Window`, updated in place under the engine's lock.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "DEADLINE",
    "FIRST",
    "FIRST_NS",
    "KEY",
    "UNBUILT",
    "Window",
    "WindowTable",
    "by_deadline",
    "copied",
    "expired",
]

T = TypeVar("T")

DEADLINE, FIRST_NS, KEY, FIRST = 0, 1, 2, 3
"""Positions in a window seen once: ``(deadline, first_ns, key, first)``."""
UNBUILT: Any = object()
"""The key of a window seen once that was opened by its hint alone (built when needed)."""


@dataclass(slots=True, eq=False)
class Window:
    """An open window whose key has been seen more than once, or one kept by key."""

    deadline: float
    first_ns: int
    key: Hashable
    first: Any
    count: int
    last_ns: int


class WindowTable(dict[Hashable, Any]):
    """The windows by hint: a dict the garbage collector never stops tracking.

    The collector untracks an exact dict whose keys and values it does not track (a full
    collection checks), and the next insertion tracks it again as a young object: every
    young collection after each full one would then walk all open windows, whose tuples
    the collector does not track. A subclass is never untracked, so the table stays in
    the oldest generation.
    """

    __slots__ = ()


def by_deadline(window: Window) -> float:
    """Sort key: oldest window first."""
    return window.deadline


def _deadline(entry: Any) -> float:
    # A window seen once (a tuple) or one with an object of its own.
    return entry[DEADLINE] if type(entry) is tuple else entry.deadline  # type: ignore[no-any-return]


def _item_deadline(item: tuple[Hashable, Any]) -> float:
    return _deadline(item[1])


def copied(items: Callable[[], Iterable[T]]) -> list[T]:
    """``list(items())``, again if the dict changed meanwhile.

    list() copies in one C call, but a garbage collection inside it may run Python code
    (finalizers) and let a lock-free ``sight()`` insert meanwhile."""
    while True:
        try:
            return list(items())
        except RuntimeError:  # dictionary changed size during iteration
            continue


def expired(
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
        front = copied(functools.partial(itertools.islice, mapping.items(), count))
        ended = bisect.bisect_right(front, limit, key=_item_deadline)
        if ended < len(front):
            return front[:ended], _item_deadline(front[ended])
        if len(front) < count:
            return front, None
        count *= 4  # few rounds, however many windows end at once
