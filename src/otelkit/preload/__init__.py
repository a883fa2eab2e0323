"""Cache preloading: warm hot and related keys ahead of demand, visible as OTel metrics.

``Preloader`` reads through a :class:`Cache` or an :class:`AsyncCache` (``MemoryCache``,
``RedisCache`` and ``AsyncRedisCache`` built in), loads each miss
once however many readers wait, prefetches related keys and refreshes hot keys shortly
before they expire. See ``docs/preload.md``.
"""

from otelkit.preload._cache import AsyncCache, Cache, MemoryCache
from otelkit.preload._preloader import Preloader
from otelkit.preload._redis import AsyncRedisCache, RedisCache
from otelkit.preload._redis_core import Serializer

__all__ = [
    "AsyncCache",
    "AsyncRedisCache",
    "Cache",
    "MemoryCache",
    "Preloader",
    "RedisCache",
    "Serializer",
]
