"""Spawned processes of the Redis single-flight test (imported by module name)."""

from __future__ import annotations

import os
import time
from typing import Any


def read_cold_key(url: str, namespace: str, processes: int, barrier: Any, results: Any) -> None:
    """Read one cold key through a single-flight RedisCache at the same moment as the others.

    The loader counts its calls in Redis and holds the lock until every process has asked
    for the key, so all of them really meet a cold key at once (bounded: 20 s).
    """
    import redis

    from otelkit.preload import Preloader, RedisCache

    client = redis.Redis.from_url(url, socket_timeout=5)
    cache = RedisCache(
        client, namespace=namespace, single_flight=True, lock_ttl=30, wait=30, poll_interval=0.01
    )

    def load(key: str) -> dict[str, Any]:
        client.incr(namespace + "loads")
        for _ in range(2000):
            if int(client.get(namespace + "asked") or 0) >= processes:
                break
            time.sleep(0.01)
        return {"key": key, "loaded_by": os.getpid()}

    with Preloader(cache, ttl=60.0) as preloader:
        barrier.wait(timeout=60)
        client.incr(namespace + "asked")
        results.put(preloader.get("hot", load))
    client.close()
