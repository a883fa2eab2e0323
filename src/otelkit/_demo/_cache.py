"""The demo's cache: the same Zipf-distributed reads through a plain TTL cache and through a
Preloader, to show how many reads refresh-ahead turns from misses into hits."""

from __future__ import annotations

import itertools
import random
import threading
import time
from dataclasses import dataclass

from otelkit.preload import MemoryCache, Preloader

__all__ = ["CacheComparison", "compare_caching"]

_KEYS = 100
_TTL = 1.0
_LOAD_SECONDS = 0.002


@dataclass
class CacheComparison:
    """Reads and misses of the plain cache and of the preloaded one."""

    reads: int = 0
    plain_misses: int = 0
    preloaded_misses: int = 0

    @staticmethod
    def _ratio(reads: int, misses: int) -> float:
        return 1.0 - misses / reads if reads else 0.0

    @property
    def plain_hit_ratio(self) -> float:
        """Share of reads the plain TTL cache answered."""
        return self._ratio(self.reads, self.plain_misses)

    @property
    def preloaded_hit_ratio(self) -> float:
        """Share of reads the preloaded cache answered without a load on the reader's thread."""
        return self._ratio(self.reads, self.preloaded_misses)


def _zipf_keys(rng: random.Random) -> list[str]:
    weights = [1.0 / rank for rank in range(1, _KEYS + 1)]
    return [f"price:{i}" for i in rng.choices(range(_KEYS), weights, k=4096)]


def compare_caching(stop: threading.Event, result: CacheComparison, rate: float = 400.0) -> None:
    """Read until ``stop`` at ``rate`` reads a second, updating ``result`` as it goes."""
    reader = threading.current_thread()

    def slow_lookup(key: str) -> str:
        if threading.current_thread() is reader:
            result.preloaded_misses += 1  # a load the reader had to wait for
        time.sleep(_LOAD_SECONDS)
        return f"{key}=42"

    plain: MemoryCache[str] = MemoryCache()
    preloader: Preloader[str] = Preloader(
        MemoryCache(),
        ttl=_TTL,
        half_life=5.0,
        threshold=0.3,
        refresh_ahead=0.6,
        refresh_interval=0.1,
        concurrency=2,
    )
    keys = itertools.cycle(_zipf_keys(random.Random(7)))
    interval = 1.0 / rate
    with preloader:
        next_at = time.monotonic()
        while not stop.is_set():
            key = next(keys)
            result.reads += 1
            if plain.get(key) is None:
                result.plain_misses += 1
                plain.set(key, slow_lookup_plain(key), ttl=_TTL)
            preloader.get(key, slow_lookup)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                stop.wait(delay)


def slow_lookup_plain(key: str) -> str:
    """The plain cache's loader: the same slow lookup."""
    time.sleep(_LOAD_SECONDS)
    return f"{key}=42"
