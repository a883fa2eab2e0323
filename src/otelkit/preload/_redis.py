"""Redis caches for the preloader: ``RedisCache`` (``redis.Redis``) and ``AsyncRedisCache``
(``redis.asyncio.Redis``), two thin drivers of one core (``_redis_core.RedisCore``).

Two classes rather than one that accepts either client: the preloader tells a
:class:`~otelkit.preload.Cache` from an :class:`~otelkit.preload.AsyncCache` by whether its
methods are coroutines, and type checkers need the same answer statically. A method that
returns a value for one client and a coroutine for the other would satisfy neither.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import MeterProvider

from otelkit._clock import Clock
from otelkit._extras import require
from otelkit.errors import OptionTypeError
from otelkit.preload._redis_core import JSON, Call, RedisCore, Serializer, Steps

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["AsyncRedisCache", "RedisCache"]

_OPTIONS_DOC = """
    Values are stored at ``namespace + key`` with their TTL (``SET ... PX``), as
    ``serializer.dumps(value)`` (default: compact UTF-8 JSON; pass ``serializer=pickle``
    only when everyone who can write to this Redis is trusted, since unpickling runs
    code). A Redis that is down or slow, or a value that does not deserialize, makes
    ``get`` return ``None`` (a miss, so the preloader loads the value); failed ``set``
    calls leave the value uncached. Both are counted in ``otelkit.cache.errors``
    {operation, reason} and logged at most once a minute; ``delete`` counts and raises.
    After a connection error or a timeout, ``get`` and ``set`` skip Redis for
    ``retry_after`` seconds (reason ``unavailable``), so a down Redis costs one slow call
    per window, not one per read. Bound each call with the client's ``socket_timeout``
    and ``socket_connect_timeout``, and pass ``retry=None`` (redis-py's default retries
    make a refused connection take seconds).

    ``single_flight=True`` lets one process of a fleet load a missing key: a miss takes
    the lock ``namespace + key + ":lock"`` (``SET NX PX lock_ttl``; released by the
    ``set`` of its owner only), and the others poll for the value every
    ``poll_interval`` for up to ``wait`` seconds, taking the lock themselves if it is
    freed, then load on their own. Counted in ``otelkit.cache.single_flight`` {result}.
"""


def _client_class(owner: str, asynchronous: bool) -> type[Any]:
    redis = require("redis", extra="redis", needed_by=owner)
    require("redis.asyncio", extra="redis", needed_by=owner)
    return redis.asyncio.Redis if asynchronous else redis.Redis  # type: ignore[no-any-return]


def _check_client(owner: str, client: object, asynchronous: bool) -> None:
    wanted = _client_class(owner, asynchronous)
    if isinstance(client, wanted):
        return
    other = _client_class(owner, not asynchronous)
    if isinstance(client, other):
        hint = "AsyncRedisCache" if not asynchronous else "RedisCache"
        raise OptionTypeError(
            f"{owner}: {client!r} is a {other.__module__}.Redis client; use {hint}"
        )
    raise OptionTypeError(
        f"{owner}: client must be a {wanted.__module__}.{wanted.__name__}, got {client!r}"
    )


class RedisCache:
    __doc__ = (
        """A preloader :class:`~otelkit.preload.Cache` over a synchronous ``redis.Redis``.
"""
        + _OPTIONS_DOC
    )

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str = "otelkit:",
        serializer: Serializer = JSON,
        single_flight: bool = False,
        lock_ttl: float = 5.0,
        wait: float = 5.0,
        poll_interval: float = 0.05,
        retry_after: float = 1.0,
        clock: Clock | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        _check_client("RedisCache", client, asynchronous=False)
        self._core = RedisCore(
            "RedisCache",
            client,
            namespace=namespace,
            serializer=serializer,
            single_flight=single_flight,
            lock_ttl=lock_ttl,
            wait=wait,
            poll_interval=poll_interval,
            retry_after=retry_after,
            clock=clock,
            meter_provider=meter_provider,
        )

    def get(self, key: str) -> Any | None:
        """The value of ``key``, or ``None`` (absent, expired, undecodable, Redis failing)."""
        return _run(self._core.get(key))

    def set(self, key: str, value: Any, *, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds; a failure is counted, not raised."""
        _run(self._core.set(key, value, ttl))

    def delete(self, key: str) -> None:
        """Remove ``key``; a Redis error is counted and raised."""
        _run(self._core.delete(key))


class AsyncRedisCache:
    __doc__ = (
        """A preloader :class:`~otelkit.preload.AsyncCache` over a ``redis.asyncio.Redis``:
    every call is awaited, so the event loop never blocks on Redis.
"""
        + _OPTIONS_DOC
    )

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        namespace: str = "otelkit:",
        serializer: Serializer = JSON,
        single_flight: bool = False,
        lock_ttl: float = 5.0,
        wait: float = 5.0,
        poll_interval: float = 0.05,
        retry_after: float = 1.0,
        clock: Clock | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        _check_client("AsyncRedisCache", client, asynchronous=True)
        self._core = RedisCore(
            "AsyncRedisCache",
            client,
            namespace=namespace,
            serializer=serializer,
            single_flight=single_flight,
            lock_ttl=lock_ttl,
            wait=wait,
            poll_interval=poll_interval,
            retry_after=retry_after,
            clock=clock,
            meter_provider=meter_provider,
        )

    async def get(self, key: str) -> Any | None:
        """The value of ``key``, or ``None`` (absent, expired, undecodable, Redis failing)."""
        return await _arun(self._core.get(key))

    async def set(self, key: str, value: Any, *, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds; a failure is counted, not raised."""
        await _arun(self._core.set(key, value, ttl))

    async def delete(self, key: str) -> None:
        """Remove ``key``; a Redis error is counted and raised."""
        await _arun(self._core.delete(key))


def _run(steps: Steps[Any]) -> Any:
    """Run the core's steps with blocking calls."""
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(result)
        except StopIteration as stop:
            return stop.value
        result, error = None, None
        try:
            if isinstance(step, Call):
                result = step.fn(*step.args, **step.kwargs)
            else:
                time.sleep(step.seconds)
        except Exception as exc:  # noqa: BLE001 - handed to the core, which decides
            error = exc


async def _arun(steps: Steps[Any]) -> Any:
    """Run the core's steps, awaiting each call (the loop keeps running meanwhile)."""
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(result)
        except StopIteration as stop:
            return stop.value
        result, error = None, None
        try:
            if isinstance(step, Call):
                result = await step.fn(*step.args, **step.kwargs)
            else:
                await asyncio.sleep(step.seconds)
        except Exception as exc:  # noqa: BLE001 - handed to the core, which decides
            error = exc
