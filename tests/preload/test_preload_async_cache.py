"""An AsyncCache behind the preloader: the same reads, awaited; sync reads run it on a loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from otelkit._errors import internal_error_counts
from otelkit.preload import AsyncCache, Cache, MemoryCache, Preloader
from otelkit.testing import FakeClock, MemoryTelemetry

from .conftest import Counter, InlineExecutor


class AsyncMemory:
    """An AsyncCache over a MemoryCache, recording each call (and the thread it ran on)."""

    def __init__(self, clock: FakeClock) -> None:
        self.inner: MemoryCache[str] = MemoryCache(clock=clock)
        self.calls: list[str] = []
        self.fail = False

    async def get(self, key: str) -> str | None:
        self.calls.append(f"get {key}")
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError("cache down")
        return self.inner.get(key)

    async def set(self, key: str, value: str, *, ttl: float) -> None:
        self.calls.append(f"set {key}")
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError("cache down")
        self.inner.set(key, value, ttl=ttl)

    async def delete(self, key: str) -> None:
        self.calls.append(f"delete {key}")
        self.inner.delete(key)


@pytest.fixture
def acache(fake_clock: FakeClock) -> AsyncMemory:
    return AsyncMemory(fake_clock)


@pytest.fixture
def make(
    fake_clock: FakeClock, memory_telemetry: MemoryTelemetry
) -> Callable[[object], Preloader[str]]:
    def build(cache: object) -> Preloader[str]:
        return Preloader(
            cache,  # type: ignore[arg-type]
            ttl=10.0,
            clock=fake_clock,
            executor=InlineExecutor(),
            meter_provider=memory_telemetry.meter_provider,
            tracer_provider=memory_telemetry.tracer_provider,
        )

    return build


def test_the_protocols_tell_sync_and_async_caches_apart(acache: AsyncMemory) -> None:
    assert isinstance(acache, AsyncCache)
    assert isinstance(MemoryCache(), Cache)


def test_aget_awaits_the_async_cache_and_stores_the_load(
    acache: AsyncMemory, make: Callable[[object], Preloader[str]], counter: Counter
) -> None:
    preloader = make(acache)

    async def main() -> list[str]:
        return [await preloader.aget("k", counter), await preloader.aget("k", counter)]

    assert asyncio.run(main()) == ["k#1", "k#1"]
    assert counter.total() == 1
    assert acache.calls == ["get k", "set k", "get k"]
    assert acache.inner.get("k") == "k#1"
    preloader.close()


def test_get_from_a_plain_thread_runs_the_async_cache_on_a_loop(
    acache: AsyncMemory, make: Callable[[object], Preloader[str]], counter: Counter
) -> None:
    preloader = make(acache)
    assert preloader.get("k", counter) == "k#1"
    assert preloader.get("k", counter) == "k#1"
    assert counter.total() == 1
    preloader.close()


def test_get_uses_the_running_loop_of_async_readers_from_another_thread(
    acache: AsyncMemory, make: Callable[[object], Preloader[str]], counter: Counter
) -> None:
    preloader = make(acache)
    got: list[str] = []

    async def main() -> None:
        await preloader.aget("a", counter)  # the preloader adopts this loop
        thread = threading.Thread(target=lambda: got.append(preloader.get("b", counter)))
        thread.start()
        while thread.is_alive():  # bounded: join below
            await asyncio.sleep(0.001)
        thread.join(timeout=10)

    asyncio.run(asyncio.wait_for(main(), 10))
    assert got == ["b#1"]
    assert acache.inner.get("b") == "b#1"
    preloader.close()


def test_get_inside_a_running_loop_over_an_async_cache_is_refused(
    acache: AsyncMemory, make: Callable[[object], Preloader[str]], counter: Counter
) -> None:
    preloader = make(acache)

    async def main() -> None:
        with pytest.raises(TypeError, match=r"cache is async.*use the async method"):
            preloader.get("k", counter)
        with pytest.raises(TypeError, match="cache is async"):
            preloader.invalidate("k")

    asyncio.run(main())
    assert counter.total() == 0
    preloader.close()


def test_a_failing_async_cache_is_a_miss_and_the_reader_gets_the_load(
    acache: AsyncMemory, make: Callable[[object], Preloader[str]], counter: Counter
) -> None:
    preloader = make(acache)
    acache.fail = True
    before = internal_error_counts().get("preload.cache", 0)

    async def main() -> list[str]:
        return [await preloader.aget("k", counter), await preloader.aget("k", counter)]

    assert asyncio.run(main()) == ["k#1", "k#2"]
    assert internal_error_counts()["preload.cache"] == before + 4  # two gets, two sets
    preloader.close()


def test_ainvalidate_deletes_through_the_async_cache(
    acache: AsyncMemory, make: Callable[[object], Preloader[str]], counter: Counter
) -> None:
    preloader = make(acache)

    async def main() -> str:
        await preloader.aget("k", counter)
        await preloader.ainvalidate("k")
        return await preloader.aget("k", counter)

    assert asyncio.run(main()) == "k#2"
    assert "delete k" in acache.calls
    preloader.close()


def test_refresh_ahead_writes_through_the_async_cache(
    acache: AsyncMemory,
    make: Callable[[object], Preloader[str]],
    counter: Counter,
    fake_clock: FakeClock,
) -> None:
    preloader = make(acache)
    for _ in range(3):
        assert preloader.get("hot", counter) == "hot#1"
    fake_clock.advance(9.0)  # within refresh_ahead (2 s) of the 10 s TTL
    assert acache.inner.get("hot") == "hot#2"
    assert preloader.get("hot", counter) == "hot#2"
    preloader.close()


class Mixed:
    def get(self, key: str) -> None:
        return None

    async def set(self, key: str, value: str, *, ttl: float) -> None:
        return None

    def delete(self, key: str) -> None:
        return None


def test_a_cache_mixing_sync_and_async_methods_is_refused() -> None:
    with pytest.raises(TypeError, match="mixes sync and async methods"):
        Preloader(Mixed())  # type: ignore[arg-type]
