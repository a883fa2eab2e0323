"""The cache seam of the preloader: a three-method protocol and a built-in memory cache.

Any object with ``get(key)``, ``set(key, value, *, ttl)`` and ``delete(key)`` is a
:class:`Cache`; ``get`` returns ``None`` for a miss (so ``None`` itself is never cached).
The methods are called on the reader's thread (and on the preloader's worker threads), so
they should be quick: an in-process structure or a nearby server such as Redis.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
from collections import OrderedDict
from typing import Generic, Protocol, TypeVar, runtime_checkable

from otelkit._clock import REAL_CLOCK, Clock

__all__ = ["Cache", "MemoryCache"]

V = TypeVar("V")


@runtime_checkable
class Cache(Protocol[V]):
    """What the preloader needs from a cache: get, set with a TTL, delete."""

    def get(self, key: str) -> V | None:
        """The live value of ``key``, or ``None`` when absent or expired."""
        ...

    def set(self, key: str, value: V, *, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; harmless when absent."""
        ...


class MemoryCache(Generic[V]):
    """A thread-safe in-memory TTL cache, least recently used first out when full.

    ``max_entries`` bounds the number of entries (``None``: unbounded, expired entries are
    still purged). Time comes from ``clock`` (default: the real clock), so a ``FakeClock``
    makes expiry deterministic in tests.
    """

    def __init__(self, *, max_entries: int | None = 100_000, clock: Clock | None = None) -> None:
        if max_entries is not None and (
            isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1
        ):
            raise ValueError(
                f"MemoryCache: max_entries must be an int >= 1 or None, got {max_entries!r}"
            )
        if clock is not None and not isinstance(clock, Clock):
            raise TypeError(f"MemoryCache: clock must be an otelkit Clock, got {clock!r}")
        self._max_entries = max_entries
        self._clock = clock or REAL_CLOCK
        self._lock = threading.Lock()
        self._data: OrderedDict[str, tuple[V, float]] = OrderedDict()
        # (expires_at, seq, key): purges expired entries that nobody reads again.
        self._expiry: list[tuple[float, int, str]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        with self._lock:
            self._purge(self._clock.monotonic())
            return len(self._data)

    def get(self, key: str) -> V | None:
        """The live value of ``key``, or ``None``."""
        now = self._clock.monotonic()
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            if item[1] <= now:
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return item[0]

    def set(self, key: str, value: V, *, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds (``ttl`` > 0); ``None`` is not stored."""
        if not isinstance(key, str):
            raise TypeError(f"MemoryCache.set: key must be a str, got {type(key).__name__}")
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
            raise ValueError(f"MemoryCache.set: ttl must be a number > 0 seconds, got {ttl!r}")
        if value is None:
            self.delete(key)
            return
        now = self._clock.monotonic()
        expires_at = now + float(ttl) if math.isfinite(ttl) else math.inf
        with self._lock:
            self._data[key] = (value, expires_at)
            self._data.move_to_end(key)
            heapq.heappush(self._expiry, (expires_at, next(self._seq), key))
            self._purge(now)
            if self._max_entries is not None:
                while len(self._data) > self._max_entries:
                    self._data.popitem(last=False)

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        with self._lock:
            self._data.pop(key, None)

    def _purge(self, now: float) -> None:
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            expires_at, _, key = heapq.heappop(expiry)
            item = self._data.get(key)
            if item is not None and item[1] == expires_at:
                del self._data[key]
        if len(expiry) > 2 * len(self._data) + 64:
            live = [(exp, next(self._seq), k) for k, (_, exp) in self._data.items()]
            heapq.heapify(live)
            self._expiry = live
