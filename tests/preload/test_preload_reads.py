"""Reads: cache-aside, single-flight, related prefetch, sync and async loaders."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

import pytest

from otelkit._errors import internal_error_counts
from otelkit.preload import MemoryCache, Preloader
from otelkit.testing import FakeClock, MemoryTelemetry, wait_until

from .conftest import Counter


def test_miss_loads_once_then_hits(
    make_preloader: Callable[..., Preloader[str]], counter: Counter
) -> None:
    pre = make_preloader()
    assert pre.get("k", counter) == "k#1"
    assert pre.get("k", counter) == "k#1"
    assert counter.calls == {"k": 1}


def test_registered_loaders_serve_keys_and_prefixes(
    make_preloader: Callable[..., Preloader[str]],
) -> None:
    pre = make_preloader()
    pre.register("config", lambda key: "exact")
    pre.register_prefix("user:", lambda key: f"user {key[5:]}")
    pre.register_prefix("user:admin:", lambda key: "admin")
    assert pre.get("config") == "exact"
    assert pre.get("user:7") == "user 7"
    assert pre.get("user:admin:1") == "admin"  # the longest prefix wins


def test_single_flight_under_50_concurrent_threads(
    make_preloader: Callable[..., Preloader[str]],
) -> None:
    pre = make_preloader()
    release = threading.Event()
    calls: list[str] = []

    def slow_loader(key: str) -> str:
        calls.append(key)
        assert release.wait(timeout=10)
        return "value"

    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(pre.get("k", slow_loader)))
        for _ in range(50)
    ]
    for thread in threads:
        thread.start()
    # Every reader has recorded its access (and joined the flight) before the load ends.
    wait_until(lambda: pre.score("k") > 49.5, timeout=10)
    release.set()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert calls == ["k"]
    assert results == ["value"] * 50


def test_single_flight_under_50_concurrent_tasks(
    make_preloader: Callable[..., Preloader[str]],
) -> None:
    pre = make_preloader()
    calls: list[str] = []

    async def main() -> list[str]:
        release = asyncio.Event()

        async def loader(key: str) -> str:
            calls.append(key)
            await release.wait()
            return "value"

        readers = [asyncio.ensure_future(pre.aget("k", loader)) for _ in range(50)]
        for _ in range(5):
            await asyncio.sleep(0)
        release.set()
        return await asyncio.wait_for(asyncio.gather(*readers), timeout=10)

    assert asyncio.run(main()) == ["value"] * 50
    assert calls == ["k"]


def test_a_failed_load_reaches_every_waiting_reader(
    make_preloader: Callable[..., Preloader[str]],
) -> None:
    pre = make_preloader()

    def broken(key: str) -> str:
        raise LookupError("row gone")

    with pytest.raises(LookupError, match="row gone"):
        pre.get("k", broken)
    assert pre.get("k", lambda key: "back") == "back"  # nothing stuck in flight


def test_related_keys_are_prefetched(
    make_preloader: Callable[..., Preloader[str]], cache: MemoryCache[str], counter: Counter
) -> None:
    pre = make_preloader()
    pre.register_prefix("user:", counter)
    pre.get("page:1", lambda key: "page", related=("user:1", "user:2", "unknown:3"))
    assert cache.get("user:1") == "user:1#1"
    assert cache.get("user:2") == "user:2#1"
    assert cache.get("unknown:3") is None  # no loader known: nothing to do
    assert pre.get("user:1") == "user:1#1"  # served from the prefetch
    assert counter.calls == {"user:1": 1, "user:2": 1}


def test_related_keys_are_remembered_for_later_reads(
    make_preloader: Callable[..., Preloader[str]],
    cache: MemoryCache[str],
    counter: Counter,
    fake_clock: FakeClock,
) -> None:
    pre = make_preloader(adaptive=False)
    pre.register_prefix("user:", counter)
    pre.get("page:1", lambda key: "page", related=("user:1",))
    fake_clock.advance(61)  # everything expired
    assert cache.get("user:1") is None
    pre.get("page:1", lambda key: "page")  # no related given this time
    assert cache.get("user:1") == "user:1#2"


def test_related_prefetch_waits_for_the_key_to_be_popular_enough(
    make_preloader: Callable[..., Preloader[str]], cache: MemoryCache[str], counter: Counter
) -> None:
    pre = make_preloader(threshold=2.0, adaptive=False)
    pre.register_prefix("user:", counter)
    pre.get("page:1", lambda key: "page", related=("user:1",))
    assert cache.get("user:1") is None  # score 1 < 2
    pre.get("page:1", lambda key: "page")
    assert cache.get("user:1") == "user:1#1"


def test_async_related_loader_runs_on_the_readers_loop(
    fake_clock: FakeClock, cache: MemoryCache[str]
) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def load_user(key: str) -> str:
        loops.append(asyncio.get_running_loop())
        return key.upper()

    async def main() -> None:
        async with Preloader(cache, clock=fake_clock) as pre:
            pre.register_prefix("user:", load_user)
            await pre.aget("page", lambda key: "page", related=("user:1",))
            for _ in range(100):
                if cache.get("user:1") is not None:
                    break
                await asyncio.sleep(0)
            assert loops == [asyncio.get_running_loop()]

    asyncio.run(main())
    assert cache.get("user:1") == "USER:1"


def test_async_loader_from_sync_code(make_preloader: Callable[..., Preloader[str]]) -> None:
    pre = make_preloader()

    async def loader(key: str) -> str:
        await asyncio.sleep(0)
        return "async value"

    assert pre.get("k", loader) == "async value"


def test_async_loader_from_sync_get_inside_a_loop_is_refused(
    make_preloader: Callable[..., Preloader[str]],
) -> None:
    pre = make_preloader()

    async def loader(key: str) -> str:
        return "never"

    async def main() -> None:
        with pytest.raises(TypeError, match=r"use 'await preloader\.aget"):
            pre.get("k", loader)

    asyncio.run(main())


def test_aget_runs_a_sync_loader_off_the_event_loop(
    make_preloader: Callable[..., Preloader[str]],
) -> None:
    pre = make_preloader()
    threads: list[int] = []

    def loader(key: str) -> str:
        threads.append(threading.get_ident())
        return "sync value"

    async def main() -> str:
        return await pre.aget("k", loader)

    assert asyncio.run(main()) == "sync value"
    assert threads and threads[0] != threading.get_ident()


def test_one_cancelled_reader_does_not_abort_the_shared_load(
    make_preloader: Callable[..., Preloader[str]],
) -> None:
    pre = make_preloader()

    async def main() -> str:
        release = asyncio.Event()

        async def loader(key: str) -> str:
            await release.wait()
            return "value"

        first = asyncio.ensure_future(pre.aget("k", loader))
        second = asyncio.ensure_future(pre.aget("k", loader))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        release.set()
        return await asyncio.wait_for(second, timeout=10)

    assert asyncio.run(main()) == "value"


def test_invalidate_forgets_the_entry(
    make_preloader: Callable[..., Preloader[str]], counter: Counter
) -> None:
    pre = make_preloader()
    pre.get("k", counter)
    pre.invalidate("k")
    assert pre.get("k", counter) == "k#2"


def test_none_is_returned_but_not_cached(make_preloader: Callable[..., Preloader[str]]) -> None:
    pre = make_preloader()
    calls: list[str] = []

    def loader(key: str) -> None:
        calls.append(key)

    assert pre.get("k", loader) is None  # type: ignore[arg-type]
    assert pre.get("k", loader) is None  # type: ignore[arg-type]
    assert calls == ["k", "k"]


class _BrokenCache:
    def get(self, key: str) -> str | None:
        raise ConnectionError("cache down")

    def set(self, key: str, value: str, *, ttl: float) -> None:
        raise ConnectionError("cache down")

    def delete(self, key: str) -> None:
        raise ConnectionError("cache down")


def test_a_broken_cache_degrades_to_loading_every_read(
    make_preloader: Callable[..., Preloader[str]], counter: Counter
) -> None:
    before = internal_error_counts().get("preload.cache", 0)
    pre = make_preloader(cache=_BrokenCache())
    assert pre.get("k", counter) == "k#1"
    assert pre.get("k", counter) == "k#2"
    assert internal_error_counts()["preload.cache"] == before + 4  # two gets, two sets


def test_related_keys_without_a_loader_are_counted_and_logged_once(
    make_preloader: Callable[..., Preloader[str]],
    memory_telemetry: MemoryTelemetry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pre = make_preloader()
    with caplog.at_level(logging.WARNING, logger="otelkit.preload"):
        pre.get("page:1", lambda key: "page", related=("album:7", "album:8"))
        pre.get("page:2", lambda key: "page", related=("album:9",))
    skipped = memory_telemetry.metric_points("otelkit.preload.skipped")
    assert [(attrs, point.value) for attrs, point in skipped] == [({"reason": "no_loader"}, 3)]
    warnings = [r for r in caplog.records if "has no loader" in r.getMessage()]
    assert len(warnings) == 1
    assert (
        "related key 'album:" in warnings[0].getMessage()
        and "register_prefix()" in warnings[0].getMessage()
    )
