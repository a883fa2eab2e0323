"""Fixtures of the preload tests: a fake-clock preloader whose background loads run inline."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from otelkit.preload import MemoryCache, Preloader
from otelkit.testing import FakeClock, MemoryTelemetry


class InlineExecutor(concurrent.futures.Executor):
    """Runs each submitted call at once on the submitting thread (deterministic tests)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


class ManualExecutor(concurrent.futures.Executor):
    """Queues submitted calls until the test runs them with ``run_all()``."""

    def __init__(self) -> None:
        self.queued: list[Callable[[], Any]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self.queued.append(lambda: fn(*args, **kwargs))
        return concurrent.futures.Future()

    def run_all(self) -> int:
        ran = 0
        while self.queued:
            self.queued.pop(0)()
            ran += 1
        return ran


class Counter:
    """A loader that counts its calls per key and returns ``key#n``."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def __call__(self, key: str) -> str:
        self.calls[key] = self.calls.get(key, 0) + 1
        return f"{key}#{self.calls[key]}"

    def total(self) -> int:
        return sum(self.calls.values())


@pytest.fixture
def cache(fake_clock: FakeClock) -> MemoryCache[str]:
    return MemoryCache(clock=fake_clock)


@pytest.fixture
def make_preloader(
    fake_clock: FakeClock, cache: MemoryCache[str], memory_telemetry: MemoryTelemetry
) -> Iterator[Callable[..., Preloader[str]]]:
    """Build started preloaders on the fake clock and in-memory telemetry; closed after."""
    made: list[Preloader[str]] = []

    def make(**options: Any) -> Preloader[str]:
        options.setdefault("clock", fake_clock)
        options.setdefault("executor", InlineExecutor())
        options.setdefault("tracer_provider", memory_telemetry.tracer_provider)
        options.setdefault("meter_provider", memory_telemetry.meter_provider)
        preloader: Preloader[str] = Preloader(options.pop("cache", cache), **options)
        made.append(preloader.start())
        return preloader

    yield make
    for preloader in made:
        preloader.close()


def metric_sum(telemetry: MemoryTelemetry, name: str, **attributes: str) -> float:
    """Sum of a counter's points whose attributes include ``attributes``."""
    return sum(
        point.value
        for attrs, point in telemetry.metric_points(name)
        if all(attrs.get(k) == v for k, v in attributes.items())
    )


@pytest.fixture
def counter() -> Counter:
    """A loader counting its calls per key."""
    return Counter()


@pytest.fixture
def manual_executor() -> ManualExecutor:
    """An executor whose queued calls run only when the test says so."""
    return ManualExecutor()


@pytest.fixture
def points(memory_telemetry: MemoryTelemetry) -> Callable[..., float]:
    """``points(name, **attrs)``: the summed value of a counter's matching points."""
    return lambda name, **attrs: metric_sum(memory_telemetry, name, **attrs)
