"""RedisCache and AsyncRedisCache against the real Redis (marker ``redis``).

Every test uses a key namespace of its own and deletes it afterwards. Waits for real
concurrency (other processes, Redis expiry) are bounded.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import multiprocessing
import os
import pickle
import queue
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from otelkit.preload import AsyncRedisCache, Preloader, RedisCache
from otelkit.testing import FakeClock, MemoryTelemetry

from . import redis_children
from .conftest import metric_sum

pytestmark = pytest.mark.redis

URL = os.environ.get("OTELKIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(URL, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        pytest.skip(f"no Redis at {URL} ({exc}); set OTELKIT_TEST_REDIS_URL")
    yield client
    client.close()


@pytest.fixture
def ns(client: redis.Redis) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"otelkit-test:{uuid.uuid4().hex}:"
    yield prefix
    for name in client.scan_iter(match=prefix + "*"):
        client.delete(name)


def errors(telemetry: MemoryTelemetry, **attrs: str) -> float:
    return metric_sum(telemetry, "otelkit.cache.errors", **attrs)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------- round trips


def test_sync_round_trip_stores_json_with_the_ttl(client: redis.Redis, ns: str) -> None:
    cache = RedisCache(client, namespace=ns)
    cache.set("user:1", {"name": "Ada", "tags": [1, 2]}, ttl=30.0)
    assert client.get(ns + "user:1") == b'{"name":"Ada","tags":[1,2]}'
    assert 29_000 < client.pttl(ns + "user:1") <= 30_000
    assert cache.get("user:1") == {"name": "Ada", "tags": [1, 2]}
    cache.delete("user:1")
    assert cache.get("user:1") is None
    assert client.exists(ns + "user:1") == 0


def test_sync_preloader_reads_through_redis(
    client: redis.Redis, ns: str, memory_telemetry: MemoryTelemetry
) -> None:
    calls: list[str] = []

    def load(key: str) -> dict[str, str]:
        calls.append(key)
        return {"id": key}

    cache = RedisCache(client, namespace=ns, meter_provider=memory_telemetry.meter_provider)
    with Preloader(cache, ttl=120.0) as preloader:
        assert preloader.get("user:7", load) == {"id": "user:7"}
        assert preloader.get("user:7", load) == {"id": "user:7"}
        assert 119_000 < client.pttl(ns + "user:7") <= 120_000
        preloader.invalidate("user:7")
        assert client.exists(ns + "user:7") == 0
    assert calls == ["user:7"]
    assert errors(memory_telemetry) == 0


def test_async_round_trip_through_the_preloader(client: redis.Redis, ns: str) -> None:
    calls: list[str] = []

    async def load(key: str) -> list[str]:
        calls.append(key)
        await asyncio.sleep(0)
        return [key, "loaded"]

    async def main() -> list[Any]:
        aclient = redis.asyncio.Redis.from_url(URL, socket_timeout=5)
        cache = AsyncRedisCache(aclient, namespace=ns)
        try:
            async with Preloader(cache, ttl=45.0) as preloader:
                first = await preloader.aget("album:3", load)
                second = await preloader.aget("album:3", load)
                direct = await cache.get("album:3")
                await preloader.ainvalidate("album:3")
                gone = await cache.get("album:3")
                return [first, second, direct, gone]
        finally:
            await aclient.aclose()

    first, second, direct, gone = asyncio.run(asyncio.wait_for(main(), 30))
    assert first == second == direct == ["album:3", "loaded"]
    assert gone is None
    assert calls == ["album:3"]


def test_async_set_uses_the_ttl(client: redis.Redis, ns: str) -> None:
    async def main() -> None:
        aclient = redis.asyncio.Redis.from_url(URL, socket_timeout=5)
        try:
            await AsyncRedisCache(aclient, namespace=ns).set("k", 1, ttl=2.5)
        finally:
            await aclient.aclose()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert client.get(ns + "k") == b"1"
    assert 2_000 < client.pttl(ns + "k") <= 2_500


def test_a_chosen_serializer_is_used(client: redis.Redis, ns: str) -> None:
    cache = RedisCache(client, namespace=ns, serializer=pickle)
    cache.set("t", ("a", 1), ttl=10.0)
    assert pickle.loads(client.get(ns + "t")) == ("a", 1)  # type: ignore[arg-type]
    assert cache.get("t") == ("a", 1)  # a tuple: JSON would have made it a list


# ---------------------------------------------------------------- bad values, failures


def test_an_undecodable_value_is_a_counted_miss_and_gets_replaced(
    client: redis.Redis, ns: str, memory_telemetry: MemoryTelemetry
) -> None:
    client.set(ns + "k", b"\x80 not json")
    cache = RedisCache(client, namespace=ns, meter_provider=memory_telemetry.meter_provider)
    assert cache.get("k") is None
    assert errors(memory_telemetry, operation="get", reason="deserialize") == 1
    with Preloader(cache, ttl=10.0) as preloader:
        assert preloader.get("k", lambda key: "fresh") == "fresh"
    assert client.get(ns + "k") == b'"fresh"'


def test_a_value_that_does_not_serialize_is_counted_and_still_served(
    client: redis.Redis, ns: str, memory_telemetry: MemoryTelemetry
) -> None:
    cache = RedisCache(client, namespace=ns, meter_provider=memory_telemetry.meter_provider)
    with Preloader(cache, ttl=10.0) as preloader:
        assert preloader.get("k", lambda key: {1, 2}) == {1, 2}  # a set: not JSON
    assert client.exists(ns + "k") == 0
    assert errors(memory_telemetry, operation="set", reason="serialize") == 1


def test_redis_down_reads_fall_back_to_the_loader_counted_and_logged_rarely(
    memory_telemetry: MemoryTelemetry, caplog: pytest.LogCaptureFixture, fake_clock: FakeClock
) -> None:
    down = redis.Redis(port=closed_port(), socket_connect_timeout=1, socket_timeout=1, retry=None)
    cache = RedisCache(
        down, retry_after=5.0, clock=fake_clock, meter_provider=memory_telemetry.meter_provider
    )
    calls: list[str] = []

    def load(key: str) -> str:
        calls.append(key)
        return key.upper()

    with caplog.at_level(logging.WARNING, logger="otelkit"), Preloader(cache) as preloader:
        assert [preloader.get("k", load) for _ in range(5)] == ["K"] * 5
        fake_clock.advance(5.0)  # retry_after is over: the next read tries Redis again
        assert preloader.get("k", load) == "K"
        with pytest.raises(redis.ConnectionError):
            preloader.invalidate("k")  # an invalidation that did not happen is not hidden
    assert calls == ["k"] * 6
    assert errors(memory_telemetry, operation="get", reason="connection") == 2
    assert errors(memory_telemetry, operation="get", reason="unavailable") == 4
    assert errors(memory_telemetry, operation="set", reason="unavailable") == 6
    assert errors(memory_telemetry, operation="delete", reason="connection") == 1
    logged = [r for r in caplog.records if "cache.redis.get" in r.getMessage()]
    assert len(logged) <= 1  # at most once a minute per kind of error
    down.close()


def test_async_redis_down_reads_fall_back_to_the_loader(
    memory_telemetry: MemoryTelemetry,
) -> None:
    async def main() -> list[str]:
        down = redis.asyncio.Redis(port=closed_port(), socket_connect_timeout=1, retry=None)
        cache = AsyncRedisCache(down, meter_provider=memory_telemetry.meter_provider)
        try:
            async with Preloader(cache) as preloader:
                return [await preloader.aget("k", lambda key: "v") for _ in range(3)]
        finally:
            await down.aclose()

    assert asyncio.run(asyncio.wait_for(main(), 30)) == ["v"] * 3
    assert errors(memory_telemetry, operation="get", reason="connection") == 1
    assert errors(memory_telemetry, operation="get", reason="unavailable") == 2


def test_a_redis_that_does_not_answer_times_out_into_a_miss(
    memory_telemetry: MemoryTelemetry,
) -> None:
    with socket.socket() as server:  # accepts connections, never replies
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        mute = redis.Redis(port=server.getsockname()[1], socket_timeout=0.2, retry=None)
        cache = RedisCache(mute, meter_provider=memory_telemetry.meter_provider)
        assert cache.get("k") is None
        mute.close()
    assert errors(memory_telemetry, operation="get", reason="timeout") == 1


# ---------------------------------------------------------------- single flight


def test_single_flight_across_processes_loads_a_cold_key_once(client: redis.Redis, ns: str) -> None:
    processes = 4
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    children = [
        ctx.Process(
            target=redis_children.read_cold_key, args=(URL, ns, processes, barrier, results)
        )
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    try:
        got = [results.get(timeout=120) for _ in range(processes)]
    finally:
        for child in children:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()
    assert [child.exitcode for child in children] == [0] * processes
    assert int(client.get(ns + "loads") or 0) == 1
    assert len({value["loaded_by"] for value in got}) == 1
    assert got[0]["key"] == "hot"
    assert client.exists(ns + "hot:lock") == 0  # released by its owner's set


def _leader_and_follower(
    client: redis.Redis, ns: str, telemetry: MemoryTelemetry, **follower: Any
) -> tuple[RedisCache, RedisCache]:
    leader = RedisCache(client, namespace=ns, single_flight=True, lock_ttl=30)
    other = redis.Redis.from_url(URL, socket_timeout=5, client_name=f"follower-{ns}")
    options: dict[str, Any] = {"wait": 10.0, "poll_interval": 0.01, **follower}
    return leader, RedisCache(
        other,
        namespace=ns,
        single_flight=True,
        meter_provider=telemetry.meter_provider,
        **options,
    )


def _get_in_thread(cache: RedisCache, key: str) -> queue.Queue[Any]:
    out: queue.Queue[Any] = queue.Queue()
    threading.Thread(target=lambda: out.put(cache.get(key)), daemon=True).start()
    return out


def test_a_follower_waits_for_the_leaders_value(
    client: redis.Redis, ns: str, memory_telemetry: MemoryTelemetry
) -> None:
    leader, follower = _leader_and_follower(client, ns, memory_telemetry)
    assert leader.get("k") is None  # a miss: this one holds the lock and loads
    assert client.exists(ns + "k:lock") == 1
    assert leader.get("k") is None  # its own readers do not wait for themselves
    out = _get_in_thread(follower, "k")
    for _ in range(500):  # until the follower has asked Redis at least once (bounded)
        names = {c["name"]: c["cmd"] for c in client.client_list()}
        if names.get(f"follower-{ns}") in ("evalsha", "eval"):
            break
        time.sleep(0.01)
    else:
        pytest.fail("the follower never asked Redis")
    leader.set("k", "value", ttl=30)
    assert out.get(timeout=10) == "value"
    assert client.exists(ns + "k:lock") == 0
    assert metric_sum(memory_telemetry, "otelkit.cache.single_flight", result="served") == 1


def test_a_follower_gives_up_after_wait_and_loads_itself(
    client: redis.Redis, ns: str, memory_telemetry: MemoryTelemetry
) -> None:
    leader, follower = _leader_and_follower(
        client, ns, memory_telemetry, wait=0.1, poll_interval=0.02
    )
    assert leader.get("k") is None
    assert follower.get("k") is None  # the leader never stored: give up after `wait`
    assert metric_sum(memory_telemetry, "otelkit.cache.single_flight", result="gave_up") == 1
    follower.set("k", "mine", ttl=30)  # without the lock: a plain SET, the lock stays
    assert client.get(ns + "k") == b'"mine"'
    assert client.exists(ns + "k:lock") == 1


def test_a_follower_takes_over_an_expired_lock(
    client: redis.Redis, ns: str, memory_telemetry: MemoryTelemetry
) -> None:
    leader = RedisCache(client, namespace=ns, single_flight=True, lock_ttl=0.05)
    _, follower = _leader_and_follower(client, ns, memory_telemetry)
    assert leader.get("k") is None  # its load fails: nothing is ever stored
    assert follower.get("k") is None  # the lock expired meanwhile: it leads now
    assert metric_sum(memory_telemetry, "otelkit.cache.single_flight", result="led") == 1
    leader.set("k", "late", ttl=30)  # the old leader's token no longer owns the lock
    assert client.exists(ns + "k:lock") == 1


# ---------------------------------------------------------------- the event loop


def test_aget_over_a_slow_redis_never_blocks_the_loop(client: redis.Redis, ns: str) -> None:
    """200 reads wait for a paused Redis while a probe task keeps ticking on the loop."""
    pause_ms = 500

    async def main() -> tuple[list[str], float, float]:
        aclient = redis.asyncio.Redis.from_url(URL, socket_timeout=10)
        cache = AsyncRedisCache(aclient, namespace=ns)
        await aclient.ping()  # connected before the pause
        ticks: list[float] = []
        done = asyncio.Event()

        async def probe() -> None:
            while not done.is_set():
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.005)

        async def load(key: str) -> str:
            return key.upper()

        try:
            async with Preloader(cache, ttl=30.0) as preloader:
                ticker = asyncio.create_task(probe())
                await asyncio.sleep(0.02)
                client.execute_command("CLIENT", "PAUSE", pause_ms, "ALL")
                started = time.perf_counter()
                values = await asyncio.gather(*(preloader.aget(f"k{i}", load) for i in range(200)))
                elapsed = time.perf_counter() - started
                done.set()
                await ticker
        finally:
            client.execute_command("CLIENT", "UNPAUSE")
            await aclient.aclose()
        # While Redis holds every reply (not the burst of work once it answers): the loop
        # must keep ticking, since the reads only wait.
        waiting = [t for t in ticks if started <= t <= started + 0.8 * pause_ms / 1000]
        edges = [started, *waiting, started + 0.8 * pause_ms / 1000]
        return values, elapsed, max(b - a for a, b in itertools.pairwise(edges))

    # A full collection of the test run's own heap can stall any loop for a quarter of a
    # second: frozen, it is not what is measured.
    gc.collect()
    gc.freeze()
    try:
        values, elapsed, max_gap = asyncio.run(asyncio.wait_for(main(), 30))
    finally:
        gc.unfreeze()
    assert values == [f"K{i}" for i in range(200)]
    assert elapsed >= 0.8 * pause_ms / 1000  # the reads really waited for Redis
    assert max_gap < 0.5 * pause_ms / 1000  # and meanwhile the loop kept running
