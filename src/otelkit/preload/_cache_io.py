"""How the preloader calls its cache: one adapter for sync and async caches alike.

The preloader's logic (:class:`~otelkit.preload._core.PreloadCore`) never touches the cache;
``Preloader.get`` and ``Preloader.aget`` read and write it through :class:`CacheAccess`,
which calls a sync cache directly and awaits an async one. A sync ``get`` over an async
cache runs the call on the loop async readers use (see :func:`run_awaitable`). A failing
cache read counts as a miss and a failing write leaves the value uncached: both are
contained and reported as otelkit internal errors, never raised into the reader.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from otelkit._errors import report_internal_error
from otelkit.errors import OptionTypeError
from otelkit.preload._loading import is_async_callable, run_awaitable

__all__ = ["CacheAccess", "check_cache"]

V = TypeVar("V")

_METHODS = ("get", "set", "delete")


def check_cache(owner: str, cache: object) -> bool:
    """Refuse what is not a cache; True when its methods are coroutines (an AsyncCache)."""
    methods = [getattr(cache, name, None) for name in _METHODS]
    for name, method in zip(_METHODS, methods, strict=True):
        if not callable(method):
            raise OptionTypeError(
                f"{owner}: cache must have get(key), set(key, value, *, ttl) and delete(key) "
                f"methods (an otelkit.preload.Cache or AsyncCache); {cache!r} lacks {name}()"
            )
    kinds = {is_async_callable(method) for method in methods}
    if len(kinds) > 1:
        raise OptionTypeError(
            f"{owner}: cache {cache!r} mixes sync and async methods: get, set and delete "
            "must all be plain methods (a Cache) or all be 'async def' (an AsyncCache)"
        )
    return kinds == {True}


class CacheAccess(Generic[V]):
    """Reads, writes and deletes of one cache from sync and async code."""

    def __init__(self, cache: Any, is_async: bool, home: Callable[[], Any]) -> None:
        self.cache = cache
        self.is_async = is_async
        self._home = home  # the event loop async readers use (or None)

    def _sync(self, result: Any, key: str) -> Any:
        if self.is_async:
            return run_awaitable(result, self._home(), key)
        return result

    def get(self, key: str) -> V | None:
        """The cached value (``None`` on a miss or a failing cache), from sync code."""
        try:
            value: V | None = self._sync(self.cache.get(key), key)
            return value
        except Exception as exc:  # noqa: BLE001 - a broken cache degrades to a miss
            report_internal_error("preload.cache", exc)
            return None

    async def aget(self, key: str) -> V | None:
        """The cached value (``None`` on a miss or a failing cache), from async code."""
        try:
            if self.is_async:
                value: V | None = await self.cache.get(key)
            else:
                value = self.cache.get(key)
            return value
        except Exception as exc:  # noqa: BLE001 - a broken cache degrades to a miss
            report_internal_error("preload.cache", exc)
            return None

    def set(self, key: str, value: V, ttl: float) -> bool:
        """Store ``value``; False (reported) when the cache failed."""
        try:
            self._sync(self.cache.set(key, value, ttl=ttl), key)
            return True
        except Exception as exc:  # noqa: BLE001 - the reader still gets its value
            report_internal_error("preload.cache", exc)
            return False

    async def aset(self, key: str, value: V, ttl: float) -> bool:
        """:meth:`set` from async code."""
        try:
            if self.is_async:
                await self.cache.set(key, value, ttl=ttl)
            else:
                self.cache.set(key, value, ttl=ttl)
            return True
        except Exception as exc:  # noqa: BLE001 - the reader still gets its value
            report_internal_error("preload.cache", exc)
            return False

    def delete(self, key: str) -> None:
        """Delete ``key``; the cache's error propagates (an invalidation must not be lost)."""
        self._sync(self.cache.delete(key), key)

    async def adelete(self, key: str) -> None:
        """:meth:`delete` from async code."""
        if self.is_async:
            await self.cache.delete(key)
        else:
            self.cache.delete(key)
