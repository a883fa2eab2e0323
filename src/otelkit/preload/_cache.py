"""The cache seam of the preloader: two small protocols and a built-in memory cache.

Any object with ``get(key)``, ``set(key, value, *, ttl)`` and ``delete(key)`` is a
:class:`Cache`; an object whose three methods are ``async def`` is an :class:`AsyncCache`
(``AsyncRedisCache``, or a wrapper of any asyncio client). ``get`` returns ``None`` for a
miss (so ``None`` itself is never cached). A sync cache's methods are called on the reader's
thread (and on the preloader's worker threads), so they should be quick: an in-process
structure or a nearby server such as Redis.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
from collections import OrderedDict
from typing import Generic, Protocol, TypeVar, runtime_checkable

from opentelemetry.metrics import MeterProvider, get_meter_provider

from otelkit._clock import REAL_CLOCK, Clock
from otelkit._version import __version__
from otelkit.errors import InvalidOptionError, OptionTypeError

__all__ = ["AsyncCache", "Cache", "MemoryCache"]

V = TypeVar("V")

_SIZE = {"reason": "size"}
_EXPIRED = {"reason": "expired"}


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


@runtime_checkable
class AsyncCache(Protocol[V]):
    """:class:`Cache` for asyncio clients: the same three methods, as coroutines."""

    async def get(self, key: str) -> V | None:
        """The live value of ``key``, or ``None`` when absent or expired."""
        ...

    async def set(self, key: str, value: V, *, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; harmless when absent."""
        ...


class MemoryCache(Generic[V]):
    """A thread-safe in-memory TTL cache, least recently used first out when full.

    ``max_entries`` bounds the number of entries (``None``: unbounded, expired entries are
    still purged). Time comes from ``clock`` (default: the real clock), so a ``FakeClock``
    makes expiry deterministic in tests. Entries that leave without being deleted are
    counted in ``otelkit.cache.evictions`` (``reason`` = ``size`` for the least recently
    used entry of a full cache, ``expired`` for an expired one) on ``meter_provider``
    (default: the global one).
    """

    def __init__(
        self,
        *,
        max_entries: int | None = 100_000,
        clock: Clock | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        if max_entries is not None and (
            isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1
        ):
            raise InvalidOptionError(
                f"MemoryCache: max_entries must be an int >= 1 or None, got {max_entries!r}"
            )
        if clock is not None and not isinstance(clock, Clock):
            raise OptionTypeError(f"MemoryCache: clock must be an otelkit Clock, got {clock!r}")
        self._max_entries = max_entries
        self._clock = clock or REAL_CLOCK
        self._lock = threading.Lock()
        self._data: OrderedDict[str, tuple[V, float]] = OrderedDict()
        # (expires_at, seq, key): purges expired entries that nobody reads again.
        self._expiry: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        meter = (meter_provider or get_meter_provider()).get_meter("otelkit.cache", __version__)
        self._evictions = meter.create_counter(
            "otelkit.cache.evictions",
            unit="{entry}",
            description="Entries a MemoryCache dropped, by reason (size: full; expired).",
        )

    def __len__(self) -> int:
        with self._lock:
            expired = self._purge(self._clock.monotonic())
            size = len(self._data)
        self._count(0, expired)
        return size

    def get(self, key: str) -> V | None:
        """The live value of ``key``, or ``None``."""
        now = self._clock.monotonic()
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            if item[1] > now:
                self._data.move_to_end(key)
                return item[0]
            del self._data[key]
        self._count(0, 1)
        return None

    def set(self, key: str, value: V, *, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds (``ttl`` > 0); ``None`` is not stored."""
        if not isinstance(key, str):
            raise OptionTypeError(f"MemoryCache.set: key must be a str, got {type(key).__name__}")
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
            raise InvalidOptionError(
                f"MemoryCache.set: ttl must be a number > 0 seconds, got {ttl!r}"
            )
        if value is None:
            self.delete(key)
            return
        now = self._clock.monotonic()
        expires_at = now + float(ttl) if math.isfinite(ttl) else math.inf
        dropped = 0
        with self._lock:
            self._data[key] = (value, expires_at)
            self._data.move_to_end(key)
            heapq.heappush(self._expiry, (expires_at, next(self._seq), key))
            expired = self._purge(now)
            if self._max_entries is not None:
                while len(self._data) > self._max_entries:
                    self._data.popitem(last=False)
                    dropped += 1
        self._count(dropped, expired)

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        with self._lock:
            self._data.pop(key, None)

    def _count(self, size: int, expired: int) -> None:
        if size:
            self._evictions.add(size, _SIZE)
        if expired:
            self._evictions.add(expired, _EXPIRED)

    def _purge(self, now: float) -> int:
        """Drop expired entries (under the lock); how many were dropped."""
        expired = 0
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            expires_at, _, key = heapq.heappop(expiry)
            item = self._data.get(key)
            if item is not None and item[1] == expires_at:
                del self._data[key]
                expired += 1
        if len(expiry) > 2 * len(self._data) + 64:
            live = [(exp, next(self._seq), k) for k, (_, exp) in self._data.items()]
            heapq.heapify(live)
            self._expiry = live
        return expired
