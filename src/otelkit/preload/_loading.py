"""Loaders: where they are registered, how one load is shared, how sync code awaits one."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from otelkit.errors import OptionTypeError

__all__ = ["ErrorLog", "Flight", "Loader", "LoaderRegistry", "is_async_callable", "run_awaitable"]

V = TypeVar("V")

Loader = Callable[[str], V | Awaitable[V]]
"""A loader takes the key and returns its value, or an awaitable of it (async loaders)."""

_log = logging.getLogger("otelkit.preload")


def is_async_callable(fn: object) -> bool:
    """True for ``async def`` functions, partials of them and objects with ``async __call__``."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - looking for an async __call__
    )


async def _await(awaitable: Awaitable[V]) -> V:
    return await awaitable


def run_awaitable(awaitable: Awaitable[V], home: asyncio.AbstractEventLoop | None, key: str) -> V:
    """Wait for an async loader's result from synchronous code.

    On the thread of a running event loop this would deadlock: refuse clearly. Otherwise
    run it on ``home`` (the loop async readers use, where its resources live) when that
    loop is running, else on a fresh loop in this thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        if inspect.iscoroutine(awaitable):
            awaitable.close()  # never awaited on purpose: do not warn about it
        raise OptionTypeError(
            f"the loader of key {key!r} is async and get() was called inside a running event "
            "loop: use 'await preloader.aget(...)' there"
        )
    if home is not None and home.is_running() and not home.is_closed():
        return asyncio.run_coroutine_threadsafe(_await(awaitable), home).result()
    return asyncio.run(_await(awaitable))


class LoaderRegistry(Generic[V]):
    """Loaders registered for exact keys and for key prefixes (the longest prefix wins)."""

    def __init__(self) -> None:
        self._exact: dict[str, Loader[V]] = {}
        self._prefixes: dict[str, Loader[V]] = {}
        self._lengths: list[int] = []  # distinct prefix lengths, longest first

    def add(self, key: str, loader: Loader[V]) -> None:
        """Register ``loader`` for exactly ``key``."""
        self._exact[key] = loader

    def add_prefix(self, prefix: str, loader: Loader[V]) -> None:
        """Register ``loader`` for every key starting with ``prefix``."""
        self._prefixes[prefix] = loader
        self._lengths = sorted({len(p) for p in self._prefixes}, reverse=True)

    def find(self, key: str) -> Loader[V] | None:
        """The loader registered for ``key``: exact first, then the longest prefix."""
        loader = self._exact.get(key)
        if loader is not None:
            return loader
        for length in self._lengths:
            if length <= len(key):
                loader = self._prefixes.get(key[:length])
                if loader is not None:
                    return loader
        return None


class Flight(Generic[V]):
    """One load of one key, shared by every reader that wants the key meanwhile."""

    __slots__ = ("batch", "future", "joined", "key", "loader", "reason")

    def __init__(self, key: str, loader: Loader[V], reason: str, batch: Any = None) -> None:
        self.key = key
        self.loader = loader
        self.reason = reason
        self.batch = batch
        self.joined = False  # a reader waited for this (background) load
        self.future: concurrent.futures.Future[V] = concurrent.futures.Future()


class ErrorLog:
    """Per-key memory of loader failures: log once per key and window, back off meanwhile.

    Not thread-safe: the preloader calls it under its lock (and logs outside it).
    """

    def __init__(self, *, window: float, max_keys: int) -> None:
        self._window = window
        self._max_keys = max_keys
        self._last: OrderedDict[str, float] = OrderedDict()  # key -> time last logged

    def failed(self, key: str, now: float) -> bool:
        """Note a failure; True when it should be logged (first for this key in the window)."""
        last = self._last.get(key)
        if last is not None and now - last < self._window:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > self._max_keys:
            self._last.popitem(last=False)
        return True

    def log(self, key: str, reason: str, exc: BaseException) -> None:
        """Log one failure (called outside the preloader's lock)."""
        _log.warning(
            "otelkit preload: %s load of key %r failed (%s: %s); further failures of this key "
            "are counted and logged at most every %.0f s",
            reason,
            key,
            type(exc).__name__,
            exc,
            self._window,
        )

    def backing_off(self, key: str, now: float) -> bool:
        """True while ``key`` failed within the window (background loads skip it)."""
        last = self._last.get(key)
        return last is not None and now - last < self._window

    def succeeded(self, key: str) -> None:
        """Forget a key's failure once a load of it works again."""
        self._last.pop(key, None)
