"""RedisCache / AsyncRedisCache refuse bad constructor arguments clearly (no server needed)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
import redis.asyncio

from otelkit.errors import InvalidOptionError, OptionTypeError
from otelkit.preload import AsyncCache, AsyncRedisCache, Cache, RedisCache


def test_each_class_is_the_cache_protocol_of_its_client() -> None:
    assert isinstance(RedisCache(redis.Redis()), Cache)
    assert isinstance(AsyncRedisCache(redis.asyncio.Redis()), AsyncCache)


def test_the_wrong_client_kind_names_the_right_class() -> None:
    with pytest.raises(TypeError, match="use AsyncRedisCache"):
        RedisCache(redis.asyncio.Redis())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="use RedisCache"):
        AsyncRedisCache(redis.Redis())  # type: ignore[arg-type]


@pytest.mark.parametrize("client", ["redis://localhost", None, object()])
def test_a_non_client_is_refused(client: object) -> None:
    with pytest.raises(TypeError, match=r"client must be a redis\.client\.Redis"):
        RedisCache(client)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"client must be a redis\.asyncio\.client\.Redis"):
        AsyncRedisCache(client)  # type: ignore[arg-type]


@pytest.mark.parametrize("option", ["lock_ttl", "wait", "poll_interval", "retry_after"])
@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (0, InvalidOptionError),
        (-1.0, InvalidOptionError),
        (float("nan"), InvalidOptionError),
        (float("inf"), InvalidOptionError),
        (True, OptionTypeError),
        ("1", OptionTypeError),
    ],
)
def test_non_positive_or_non_numeric_durations_are_refused(
    option: str, bad: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=f"{option} must be"):
        RedisCache(redis.Redis(), **{option: bad})


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"poll_interval": 2.0, "wait": 1.0}, ValueError, "must not exceed wait"),
        ({"serializer": object()}, TypeError, "serializer must have dumps"),
        ({"namespace": 3}, TypeError, "namespace must be a str"),
        ({"single_flight": "yes"}, TypeError, "single_flight must be a bool"),
        ({"clock": object()}, TypeError, "clock must be an otelkit Clock"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        AsyncRedisCache(redis.asyncio.Redis(), **options)


def test_bad_keys_and_ttls_are_refused_before_any_call() -> None:
    cache = RedisCache(redis.Redis(port=1))  # nothing listens: no call may happen
    with pytest.raises(TypeError, match="key must be a str"):
        cache.get(1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl must be a number > 0"):
        cache.set("k", 1, ttl=0)
