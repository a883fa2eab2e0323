"""Every preload metric moves as documented, and no attribute carries a key."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from otelkit.preload import MemoryCache, Preloader
from otelkit.preload._metrics import DURATION_BUCKETS
from otelkit.testing import FakeClock, MemoryTelemetry

from .conftest import Counter

_NAMES = (
    "otelkit.cache.requests",
    "otelkit.preload.loads",
    "otelkit.preload.load.duration",
    "otelkit.preload.used",
    "otelkit.preload.wasted",
    "otelkit.preload.tracked_keys",
    "otelkit.preload.threshold",
)


def gauge(telemetry: MemoryTelemetry, name: str) -> list[float]:
    return [point.value for _, point in telemetry.metric_points(name)]


def test_requests_count_hits_and_misses(
    make_preloader: Callable[..., Preloader[str]], counter: Counter, points: Callable[..., float]
) -> None:
    pre = make_preloader()
    pre.get("a", counter)
    pre.get("a", counter)
    pre.get("a", counter)
    pre.get("b", counter)
    assert points("otelkit.cache.requests", result="hit") == 2
    assert points("otelkit.cache.requests", result="miss") == 2


def test_loads_count_reason_and_result_and_their_duration(
    make_preloader: Callable[..., Preloader[str]],
    fake_clock: FakeClock,
    counter: Counter,
    points: Callable[..., float],
    memory_telemetry: MemoryTelemetry,
) -> None:
    pre = make_preloader(ttl=60, adaptive=False)

    def slow(key: str) -> str:
        fake_clock.advance(0.2)  # the loader takes 200 ms of fake time
        return "slow"

    def broken(key: str) -> str:
        raise ValueError("nope")

    pre.register_prefix("user:", counter)
    pre.get("page", slow, related=("user:1",))
    pre.get("page", slow)
    with pytest.raises(ValueError, match="nope"):
        pre.get("bad", broken)
    fake_clock.advance(48)  # page is hot: refreshed
    assert points("otelkit.preload.loads", reason="demand", result="success") == 1
    assert points("otelkit.preload.loads", reason="demand", result="error") == 1
    assert points("otelkit.preload.loads", reason="related", result="success") == 1
    assert points("otelkit.preload.loads", reason="refresh", result="success") >= 1
    histogram = {
        attrs["reason"]: point
        for attrs, point in memory_telemetry.metric_points("otelkit.preload.load.duration")
    }
    assert histogram["demand"].count == 2
    assert histogram["demand"].sum == 0.2
    assert tuple(histogram["demand"].explicit_bounds) == DURATION_BUCKETS
    assert histogram["related"].count == 1


def test_used_counts_preloads_served_before_expiry(
    make_preloader: Callable[..., Preloader[str]], counter: Counter, points: Callable[..., float]
) -> None:
    pre = make_preloader(adaptive=False)
    pre.register_prefix("user:", counter)
    pre.get("page", lambda key: "page", related=("user:1", "user:2"))
    pre.get("user:1")
    pre.get("user:1")  # the same preload is used once
    assert points("otelkit.preload.used", reason="related") == 1
    assert points("otelkit.preload.wasted") == 0


def test_wasted_counts_expired_replaced_and_evicted_preloads(
    make_preloader: Callable[..., Preloader[str]],
    fake_clock: FakeClock,
    counter: Counter,
    points: Callable[..., float],
) -> None:
    small: MemoryCache[str] = MemoryCache(max_entries=2, clock=fake_clock)
    pre = make_preloader(cache=small, ttl=60, adaptive=False)
    pre.register_prefix("user:", counter)
    pre.get("page", lambda key: "page", related=("user:1",))
    fake_clock.advance(61)  # user:1 expired unread
    assert points("otelkit.preload.wasted", reason="related") == 1

    pre.get("p2", lambda key: "p2", related=("user:2",))
    pre.get("x", lambda key: "x")
    pre.get("y", lambda key: "y")  # evicts user:2 from the two-entry cache
    pre.get("user:2")  # a miss while the preload was still live: evicted unused
    assert points("otelkit.preload.wasted", reason="related") == 2


def test_a_refresh_nobody_read_is_wasted_when_replaced(
    make_preloader: Callable[..., Preloader[str]],
    fake_clock: FakeClock,
    counter: Counter,
    points: Callable[..., float],
) -> None:
    pre = make_preloader(ttl=60, half_life=600, adaptive=False)
    for _ in range(3):
        pre.get("k", counter)
    fake_clock.advance(48)  # first refresh
    fake_clock.advance(48)  # second refresh replaces the first, unread
    assert points("otelkit.preload.loads", reason="refresh", result="success") == 2
    assert points("otelkit.preload.wasted", reason="refresh") == 1
    pre.get("k", counter)
    assert points("otelkit.preload.used", reason="refresh") == 1


def test_preloads_are_conserved(
    make_preloader: Callable[..., Preloader[str]],
    fake_clock: FakeClock,
    counter: Counter,
    points: Callable[..., float],
) -> None:
    pre = make_preloader(ttl=60, half_life=120)
    pre.register_prefix("user:", counter)
    for step in range(200):
        page = f"page:{step % 7}"
        pre.get(page, counter, related=(f"user:{step % 11}", f"user:{step % 5}"))
        if step % 3 == 0:
            pre.get(f"user:{step % 11}")
        fake_clock.advance(3)
    fake_clock.advance(3000)  # every key goes cold, every entry ends
    preloads = points("otelkit.preload.loads", reason="related", result="success") + points(
        "otelkit.preload.loads", reason="refresh", result="success"
    )
    assert preloads > 0
    assert preloads == points("otelkit.preload.used") + points("otelkit.preload.wasted")


def test_gauges_report_tracked_keys_and_threshold(
    make_preloader: Callable[..., Preloader[str]],
    counter: Counter,
    memory_telemetry: MemoryTelemetry,
) -> None:
    pre = make_preloader(max_keys=3, threshold=1.5, adaptive=False)
    for key in "abcde":
        pre.get(key, counter)
    assert gauge(memory_telemetry, "otelkit.preload.tracked_keys") == [3]
    assert gauge(memory_telemetry, "otelkit.preload.threshold") == [1.5]
    pre.close()
    assert gauge(memory_telemetry, "otelkit.preload.tracked_keys") == []


def test_no_metric_attribute_carries_a_key(
    make_preloader: Callable[..., Preloader[str]],
    fake_clock: FakeClock,
    counter: Counter,
    memory_telemetry: MemoryTelemetry,
) -> None:
    pre = make_preloader(ttl=60)
    pre.register_prefix("user:", counter)
    keys = {"page", "user:1", "solo"}
    pre.get("page", counter, related=("user:1",))
    pre.get("user:1")
    pre.get("page", counter)
    pre.get("solo", counter)
    fake_clock.advance(120)
    seen = set()
    for name in _NAMES:
        for attrs, _ in memory_telemetry.metric_points(name):
            seen.add(name)
            assert set(attrs) <= {"reason", "result"}
            assert not keys & set(map(str, attrs.values()))
    assert seen == set(_NAMES)
