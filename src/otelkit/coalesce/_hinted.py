"""The engine as the processors use it: windows found by a cheap component of the key.

Building a key costs more than the rest of the decision for an event that opens a new
window (nearly every event when nothing repeats), so the processors ask first by a
component they read anyway (a log record's body, a root span's name): :meth:`sight`
settles an event whose hint no open window has without the key being built. The window
opens under the hint alone, and ``key_of_first(hint, first)`` builds its key from what
``capture`` kept, only if a later event with that hint arrives. Keys that share a hint with
a different open key get windows of their own, found by the whole key. Internal: not part
of ``otelkit.coalesce``'s API.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from otelkit._validate import check_callable
from otelkit.coalesce._table import UNBUILT
from otelkit.coalesce._window import Coalescer
from otelkit.errors import OptionTypeError

__all__ = ["HintedCoalescer", "Sight", "make_engine"]

P = TypeVar("P")


class HintedCoalescer(Coalescer[P]):
    """A :class:`Coalescer` for tuple keys whose ``hint_index``-th item finds their window;
    ``key_of_first(hint, first)`` rebuilds the key of a window opened by :meth:`sight`."""

    def __init__(
        self,
        *,
        hint_index: int,
        key_of_first: Callable[[Hashable, P], Hashable],
        **options: Any,
    ) -> None:
        if isinstance(hint_index, bool) or not isinstance(hint_index, int) or hint_index < 0:
            raise OptionTypeError(f"hint_index must be an int >= 0, got {hint_index!r}")
        check_callable("HintedCoalescer", "key_of_first", key_of_first)
        super().__init__(**options)
        self._hint = hint_index
        self._key_of_first = key_of_first

    def sight(self, hint: Hashable, payload: Any, time_ns: int | None = None) -> bool:
        """Settle an event by its hint alone, if it can be: ``True`` means ``EMIT`` (no open
        window has ``hint``: a window opened for it, its key to be built by
        ``key_of_first`` only if the hint comes again; or ``max_keys`` windows were open
        and it passes through, counted as overflow).

        ``False`` means: build the key and call :meth:`offer`. Lock-free: dict lookups,
        ``len()`` and ``setdefault()`` are single C calls, atomic under the GIL (the SDK's
        batch processors rely on the same for their queues); so ``max_keys`` may be
        exceeded by one window per thread opening one at the same moment.
        """
        seen = self._seen
        if hint in seen or hint in self._hints:
            return False
        limit = self._limit
        if len(seen) + len(self._keyed) >= limit:  # as _full(), inlined: the hot path
            if limit:
                next(self._overflow_counter)
            return True
        return self._open(hint, UNBUILT, payload, time_ns)


Sight = Callable[[Hashable, Any, "int | None"], bool]


def make_engine(
    hint_index: int | None,
    key_of_first: Callable[[Hashable, P], Hashable],
    **options: Any,
) -> tuple[Coalescer[P], Sight | None]:
    """The processors' engine and its :meth:`~HintedCoalescer.sight` (``None``): a
    :class:`HintedCoalescer` for the default key (``hint_index`` given), else a plain
    :class:`Coalescer` (a custom key function's keys have no known layout)."""
    if hint_index is None:
        return Coalescer(**options), None
    engine: HintedCoalescer[P] = HintedCoalescer(
        hint_index=hint_index, key_of_first=key_of_first, **options
    )
    return engine, engine.sight
