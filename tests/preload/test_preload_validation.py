"""Bad input is refused with errors naming the option; nothing is half-written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import otelkit.preload
from otelkit.errors import InvalidOptionError, OptionTypeError
from otelkit.preload import MemoryCache, Preloader
from otelkit.testing import FakeClock


def test_public_names_are_complete_sorted_and_documented() -> None:
    assert otelkit.preload.__doc__
    assert otelkit.preload.__all__ == [
        "AsyncCache",
        "AsyncRedisCache",
        "Cache",
        "MemoryCache",
        "Preloader",
        "RedisCache",
        "Serializer",
    ]
    for name in otelkit.preload.__all__:
        public = getattr(otelkit.preload, name)
        assert public.__doc__
        for attr, member in vars(public).items():
            if not attr.startswith("_") and callable(member):
                assert member.__doc__, f"{name}.{attr} has no docstring"


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"ttl": 0}, InvalidOptionError, "ttl must be greater than 0"),
        ({"ttl": float("inf")}, InvalidOptionError, "ttl must be finite"),
        ({"half_life": -1}, InvalidOptionError, "half_life must be greater than 0"),
        ({"half_life": "60"}, OptionTypeError, "half_life must be a number"),
        ({"threshold": 0}, InvalidOptionError, "threshold must be greater than 0"),
        ({"max_keys": 0}, InvalidOptionError, "max_keys must be 1 or more"),
        ({"max_keys": 10.0}, OptionTypeError, "max_keys must be an int"),
        ({"concurrency": 0}, InvalidOptionError, "concurrency must be 1 or more"),
        ({"concurrency": True}, OptionTypeError, "concurrency must be an int"),
        ({"refresh_ahead": 1.0}, InvalidOptionError, "refresh_ahead must be between 0 and 1"),
        ({"refresh_ahead": "0.5"}, OptionTypeError, "refresh_ahead must be a number"),
        ({"refresh_interval": 0}, InvalidOptionError, "refresh_interval must be greater than 0"),
        ({"refresh_interval": 20}, ValueError, "refresh_interval .* must be shorter"),
        ({"max_related": -1}, InvalidOptionError, "max_related must be 0 or more"),
        ({"adaptive": 1}, TypeError, "adaptive must be a bool"),
        ({"target_waste": 0}, InvalidOptionError, "target_waste must be between 0 and 1"),
        ({"threshold_range": [0.1, 2]}, TypeError, "threshold_range must be a"),
        ({"threshold_range": (2.0, 3.0)}, ValueError, "threshold_range must contain threshold"),
        ({"threshold_range": (0.0, 3.0)}, ValueError, r"threshold_range\[0\] must be"),
        ({"executor": object()}, TypeError, "executor must be a concurrent.futures.Executor"),
        ({"clock": object()}, TypeError, "clock must be an otelkit Clock"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        Preloader(MemoryCache(), **options)


def test_a_cache_without_the_protocol_is_refused() -> None:
    with pytest.raises(TypeError, match="cache must have get"):
        Preloader({})  # type: ignore[arg-type]


@pytest.fixture
def pre(make_preloader: Callable[..., Preloader[str]]) -> Preloader[str]:
    return make_preloader()


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda p: p.get(1, lambda k: "v"), TypeError, "Preloader.get: key must be a str"),
        (lambda p: p.get("k", "not callable"), TypeError, "loader must be callable"),
        (lambda p: p.get("k", lambda k: "v", "user:1"), TypeError, "related must be an iterable"),
        (lambda p: p.get("k", lambda k: "v", 5), TypeError, "related must be an iterable"),
        (lambda p: p.get("k", lambda k: "v", ("a", 2)), TypeError, "every related key must be"),
        (lambda p: p.register(3, lambda k: "v"), TypeError, "key must be a str"),
        (lambda p: p.register("k", None), TypeError, "loader must be callable"),
        (lambda p: p.register_prefix(b"u:", lambda k: "v"), TypeError, "prefix must be a str"),
        (lambda p: p.hot_keys(-1), ValueError, "limit must be an int >= 0"),
        (lambda p: p.invalidate(None), TypeError, "key must be a str"),
    ],
)
def test_bad_arguments_are_refused(
    pre: Preloader[str], call: Callable[[Preloader[str]], object], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        call(pre)
    assert pre.hot_keys() == []  # nothing was recorded


def test_a_miss_without_any_loader_is_refused_before_recording(
    pre: Preloader[str], fake_clock: FakeClock
) -> None:
    with pytest.raises(ValueError, match="no loader for key 'k'"):
        pre.get("k")
    assert pre.score("k") == 0.0
    pre.register("k", lambda key: "v")
    assert pre.get("k") == "v"
