"""MemoryCache: TTL on the injected clock, LRU bound, thread safety, clear errors."""

from __future__ import annotations

import threading

import pytest

from otelkit.preload import Cache, MemoryCache
from otelkit.testing import FakeClock, MemoryTelemetry


def test_memory_cache_is_a_cache() -> None:
    assert isinstance(MemoryCache(), Cache)


def test_entry_lives_for_its_ttl(fake_clock: FakeClock) -> None:
    cache: MemoryCache[str] = MemoryCache(clock=fake_clock)
    cache.set("k", "v", ttl=10)
    fake_clock.advance(9.9)
    assert cache.get("k") == "v"
    fake_clock.advance(0.1)
    assert cache.get("k") is None


def test_full_cache_drops_the_least_recently_used(fake_clock: FakeClock) -> None:
    cache: MemoryCache[int] = MemoryCache(max_entries=2, clock=fake_clock)
    cache.set("a", 1, ttl=60)
    cache.set("b", 2, ttl=60)
    assert cache.get("a") == 1  # b is now the least recently used
    cache.set("c", 3, ttl=60)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_expired_entries_are_purged_without_being_read(fake_clock: FakeClock) -> None:
    cache: MemoryCache[int] = MemoryCache(max_entries=None, clock=fake_clock)
    for i in range(100):
        cache.set(f"k{i}", i, ttl=5)
    fake_clock.advance(6)
    cache.set("fresh", 1, ttl=5)
    assert len(cache) == 1


def test_resetting_a_key_extends_its_life(fake_clock: FakeClock) -> None:
    cache: MemoryCache[int] = MemoryCache(clock=fake_clock)
    cache.set("k", 1, ttl=5)
    fake_clock.advance(4)
    cache.set("k", 2, ttl=5)
    fake_clock.advance(4)
    assert cache.get("k") == 2


def test_delete_and_none_values(fake_clock: FakeClock) -> None:
    cache: MemoryCache[int | None] = MemoryCache(clock=fake_clock)
    cache.set("k", 1, ttl=5)
    cache.delete("k")
    cache.delete("absent")
    assert cache.get("k") is None
    cache.set("n", None, ttl=5)
    assert len(cache) == 0


def test_concurrent_writers_and_readers_keep_the_bound() -> None:
    cache: MemoryCache[int] = MemoryCache(max_entries=50)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(2000):
                cache.set(f"k{(offset + i) % 300}", i, ttl=60)
                cache.get(f"k{i % 300}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n * 37,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert len(cache) <= 50


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10"])
def test_bad_max_entries_is_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="max_entries must be an int >= 1 or None"):
        MemoryCache(max_entries=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -5, float("nan"), "1", None])
def test_bad_ttl_is_rejected_and_nothing_stored(bad: object) -> None:
    cache: MemoryCache[int] = MemoryCache()
    with pytest.raises(ValueError, match="ttl must be a number > 0"):
        cache.set("k", 1, ttl=bad)  # type: ignore[arg-type]
    assert cache.get("k") is None


def test_bad_key_and_clock_are_rejected() -> None:
    with pytest.raises(TypeError, match="key must be a str"):
        MemoryCache().set(1, 1, ttl=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock must be an otelkit Clock"):
        MemoryCache(clock=object())  # type: ignore[arg-type]


def test_evictions_are_counted_by_reason(
    fake_clock: FakeClock, memory_telemetry: MemoryTelemetry
) -> None:
    cache: MemoryCache[int] = MemoryCache(
        max_entries=2, clock=fake_clock, meter_provider=memory_telemetry.meter_provider
    )
    for i in range(5):
        cache.set(f"k{i}", i, ttl=10)  # 3 least recently used entries dropped
    fake_clock.advance(10)
    assert cache.get("k4") is None  # expired, found by a read
    cache.set("fresh", 1, ttl=10)  # the other expired entry (k3) purged
    cache.delete("fresh")  # a delete is not an eviction
    points = memory_telemetry.metric_points("otelkit.cache.evictions")
    assert {attrs["reason"]: point.value for attrs, point in points} == {"size": 3, "expired": 2}
