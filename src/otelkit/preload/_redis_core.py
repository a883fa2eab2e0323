"""The logic of the Redis caches, free of I/O: one core, run by a sync and an async driver.

Each operation is a generator that yields :class:`Call` (a client call) and :class:`Sleep`
steps and returns the result; ``RedisCache`` runs the steps with a ``redis.Redis`` client,
``AsyncRedisCache`` awaits them with a ``redis.asyncio.Redis`` one. So reading, writing,
the single-flight lock, error accounting and (de)serialization exist once.

Keys: a value lives at ``namespace + key``, its single-flight lock at
``namespace + key + ":lock"``.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from opentelemetry.metrics import MeterProvider, get_meter_provider

from otelkit._clock import REAL_CLOCK, Clock
from otelkit._errors import report_internal_error
from otelkit._version import __version__
from otelkit.errors import InvalidOptionError, OptionTypeError

__all__ = ["JSON", "Call", "RedisCore", "Serializer", "Sleep", "Steps"]

T = TypeVar("T")

# One round trip: the value if there is one, else try to take the lock.
# Returns {1, value} (a hit), {2} (this caller holds the lock now) or {0} (someone else does).
GET_OR_LOCK = """
local value = redis.call('GET', KEYS[1])
if value then return {1, value} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
return {0}
"""

# Store the value (PX ARGV[2] ms; '0': no expiry) and release the lock if the token still
# owns it: a lock that expired and was taken by another process is left alone.
SET_AND_RELEASE = """
if ARGV[2] == '0' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
"""

OPERATIONS = ("get", "set", "delete")
REASONS = ("connection", "timeout", "unavailable", "deserialize", "serialize", "error")
"""``unavailable``: not tried, a connection error or timeout happened within ``retry_after``."""
FLIGHT_RESULTS = ("led", "served", "gave_up")
_ERROR_ATTRS = {(op, r): {"operation": op, "reason": r} for op in OPERATIONS for r in REASONS}
_FLIGHT_ATTRS = {result: {"result": result} for result in FLIGHT_RESULTS}


@runtime_checkable
class Serializer(Protocol):
    """How values become bytes in Redis and back (the ``json`` or ``pickle`` module fit)."""

    def dumps(self, value: Any, /) -> bytes | str:
        """The stored form of ``value`` (a ``str`` is stored as UTF-8)."""
        ...

    def loads(self, data: bytes, /) -> Any:
        """The value stored as ``data``; raise when ``data`` is not a stored value."""
        ...


class _Json:
    """The default serializer: compact UTF-8 JSON (data only, nothing runs on load)."""

    def dumps(self, value: Any, /) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()

    def loads(self, data: bytes, /) -> Any:
        return json.loads(data)

    def __repr__(self) -> str:
        return "JSON"


JSON = _Json()


@dataclass(frozen=True)
class Call:
    """Call ``fn(*args, **kwargs)`` (a client method or a script); send back its result."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` (``time.sleep`` or ``asyncio.sleep``)."""

    seconds: float


Steps = Generator["Call | Sleep", Any, T]


def _positive(owner: str, name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidOptionError(
            f"{owner}: {name} must be a finite number > 0 seconds, got {value!r}"
        )
    return float(value)


def reason_of(exc: BaseException) -> str:
    """The ``reason`` attribute of a failed call: a small fixed set."""
    import redis.exceptions as rex

    if isinstance(exc, (rex.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, (rex.ConnectionError, OSError)):
        return "connection"
    if isinstance(exc, UnicodeDecodeError):
        return "deserialize"  # a client with decode_responses=True read a binary value
    return "error"


class RedisCore:
    """Options, key names, lock tokens, metrics and the steps of every operation."""

    def __init__(
        self,
        owner: str,
        client: Any,
        *,
        namespace: str,
        serializer: Serializer,
        single_flight: bool,
        lock_ttl: float,
        wait: float,
        poll_interval: float,
        retry_after: float,
        clock: Clock | None,
        meter_provider: MeterProvider | None,
    ) -> None:
        if not isinstance(namespace, str):
            raise OptionTypeError(f"{owner}: namespace must be a str, got {namespace!r}")
        if not (
            callable(getattr(serializer, "dumps", None))
            and callable(getattr(serializer, "loads", None))
        ):
            raise OptionTypeError(
                f"{owner}: serializer must have dumps(value) and loads(data), got {serializer!r}"
            )
        if not isinstance(single_flight, bool):
            raise OptionTypeError(f"{owner}: single_flight must be a bool, got {single_flight!r}")
        self.lock_ttl = _positive(owner, "lock_ttl", lock_ttl)
        self.wait = _positive(owner, "wait", wait)
        self.poll_interval = _positive(owner, "poll_interval", poll_interval)
        self.retry_after = _positive(owner, "retry_after", retry_after)
        if self.poll_interval > self.wait:
            raise InvalidOptionError(
                f"{owner}: poll_interval ({poll_interval!r}) must not exceed wait ({wait!r})"
            )
        if clock is not None and not isinstance(clock, Clock):
            raise OptionTypeError(f"{owner}: clock must be an otelkit Clock, got {clock!r}")
        self.owner = owner
        self.client = client
        self.namespace = namespace
        self.serializer = serializer
        self.single_flight = single_flight
        self._polls = max(1, math.ceil(self.wait / self.poll_interval))
        self._lock_ms = max(1, math.ceil(self.lock_ttl * 1000))
        self._clock = clock or REAL_CLOCK
        self._get_or_lock = client.register_script(GET_OR_LOCK)
        self._set_and_release = client.register_script(SET_AND_RELEASE)
        self._held: dict[str, tuple[str, float]] = {}  # key -> (lock token, expires at)
        self._held_lock = threading.Lock()
        self._down_until = -math.inf  # no get or set tries Redis before (after a failure)
        meter = (meter_provider or get_meter_provider()).get_meter("otelkit.cache", __version__)
        self._errors = meter.create_counter(
            "otelkit.cache.errors",
            unit="{error}",
            description="Failed Redis cache calls, by operation (get, set, delete) and reason "
            "(connection, timeout, unavailable, deserialize, serialize, error); a failed get "
            "is a miss.",
        )
        self._flights = meter.create_counter(
            "otelkit.cache.single_flight",
            unit="{read}",
            description="Single-flight misses, by result: led (this process loads), served "
            "(another process's load arrived in time), gave_up (waited out: loads itself).",
        )

    # ------------------------------------------------------------------ operations

    def get(self, key: str) -> Steps[Any]:
        """The value of ``key`` or ``None``; with single flight, wait for another loader."""
        if not isinstance(key, str):
            raise OptionTypeError(f"{self.owner}.get: key must be a str, got {type(key).__name__}")
        name = self.namespace + key
        if self._skipping("get"):
            return None
        if not self.single_flight:
            try:
                raw = yield Call(self.client.get, (name,))
            except Exception as exc:  # noqa: BLE001 - a failing Redis is a miss
                self._failed("get", exc)
                return None
            return None if raw is None else self._decode(raw)
        if self._holding(key):
            return None  # this process loads it already: its readers share that load
        token = secrets.token_hex(16)
        keys, args = (name, name + ":lock"), (token, self._lock_ms)
        for attempt in range(self._polls + 1):
            if attempt:
                yield Sleep(self.poll_interval)
            try:
                found = yield Call(self._get_or_lock, (), {"keys": keys, "args": args})
            except Exception as exc:  # noqa: BLE001 - a failing Redis is a miss
                self._failed("get", exc)
                return None
            if int(found[0]) == 1:
                if attempt:
                    self._flights.add(1, _FLIGHT_ATTRS["served"])
                return self._decode(found[1])
            if int(found[0]) == 2:
                self._hold(key, token)
                self._flights.add(1, _FLIGHT_ATTRS["led"])
                return None
        self._flights.add(1, _FLIGHT_ATTRS["gave_up"])
        return None

    def set(self, key: str, value: Any, ttl: float) -> Steps[None]:
        """Store ``value`` for ``ttl`` seconds (SET PX) and release this process's lock."""
        if not isinstance(key, str):
            raise OptionTypeError(f"{self.owner}.set: key must be a str, got {type(key).__name__}")
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
            raise InvalidOptionError(
                f"{self.owner}.set: ttl must be a number > 0 seconds, got {ttl!r}"
            )
        name = self.namespace + key
        token = self._release(key)
        if self._skipping("set"):
            return
        if value is None:  # None means a miss: never stored
            yield from self._delete(name, raise_errors=False)
            return
        try:
            data = self.serializer.dumps(value)
            if isinstance(data, str):
                data = data.encode()
            elif not isinstance(data, (bytes, bytearray)):
                raise OptionTypeError(
                    f"serializer.dumps returned {type(data).__name__}, not bytes or str"
                )
        except Exception as exc:  # noqa: BLE001 - the reader still has its value
            self._failed("set", exc, "serialize")
            return
        px = 0 if math.isinf(ttl) else max(1, math.ceil(ttl * 1000))
        try:
            if token is not None:
                yield Call(
                    self._set_and_release,
                    (),
                    {"keys": (name, name + ":lock"), "args": (data, px, token)},
                )
            else:
                yield Call(self.client.set, (name, data), {"px": px or None})
        except Exception as exc:  # noqa: BLE001 - a failing Redis leaves the value uncached
            self._failed("set", exc)

    def delete(self, key: str) -> Steps[None]:
        """Delete ``key``; a Redis error is counted and raised (an invalidation failed)."""
        if not isinstance(key, str):
            raise OptionTypeError(
                f"{self.owner}.delete: key must be a str, got {type(key).__name__}"
            )
        yield from self._delete(self.namespace + key, raise_errors=True)

    # ------------------------------------------------------------------ helpers

    def _delete(self, name: str, *, raise_errors: bool) -> Steps[None]:
        try:
            yield Call(self.client.delete, (name,))
        except Exception as exc:
            self._failed("delete", exc)
            if raise_errors:
                raise

    def _decode(self, raw: Any) -> Any:
        try:
            return self.serializer.loads(raw.encode() if isinstance(raw, str) else bytes(raw))
        except Exception as exc:  # noqa: BLE001 - an undecodable value is a miss
            self._failed("get", exc, "deserialize")
            return None

    def _failed(self, operation: str, exc: BaseException, reason: str | None = None) -> None:
        reason = reason or reason_of(exc)
        if reason in ("connection", "timeout"):
            self._down_until = self._clock.monotonic() + self.retry_after
        self._errors.add(1, _ERROR_ATTRS[operation, reason])
        report_internal_error(f"cache.redis.{operation}", exc)

    def _skipping(self, operation: str) -> bool:
        """True (counted) while Redis failed within ``retry_after``: no call waits for it."""
        if self._clock.monotonic() >= self._down_until:
            return False
        self._errors.add(1, _ERROR_ATTRS[operation, "unavailable"])
        return True

    def _holding(self, key: str) -> bool:
        with self._held_lock:
            held = self._held.get(key)
            if held is not None and held[1] <= self._clock.monotonic():
                del self._held[key]
                held = None
            return held is not None

    def _hold(self, key: str, token: str) -> None:
        now = self._clock.monotonic()
        with self._held_lock:
            self._held[key] = (token, now + self.lock_ttl)
            if len(self._held) > 1024:  # loads that never stored: their locks expired
                for stale in [k for k, (_, exp) in self._held.items() if exp <= now]:
                    del self._held[stale]

    def _release(self, key: str) -> str | None:
        with self._held_lock:
            held = self._held.pop(key, None)
        if held is None or held[1] <= self._clock.monotonic():
            return None
        return held[0]
