"""Cost of recording one access with 100,000 tracked keys at the bound.

ours:     otelkit.preload's popularity tracker as the preloader drives it: a threading lock,
          one clock read, lazy decay in the log domain, coldest-key eviction via a lazy heap.
baseline: the seed preloader's algorithm, reimplemented here: an asyncio lock per access,
          score = count * decay ** hours, and a scan of every key for the coldest when full.

Both start full (100,000 keys) and replay the same stream: Zipf(1.0) over 1,000,000 keys,
so most accesses touch a tracked key and the rest insert a new one and evict. Each side runs
REPEATS times on fresh state; the medians of the per-access cost are compared.
Run: .venv/bin/python benchmarks/preload_access.py [accesses]
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from _util import median, ratio_line

from otelkit._clock import REAL_CLOCK
from otelkit.preload._scores import Popularity

BOUND = 100_000
UNIVERSE = 1_000_000
REPEATS = 3


def zipf_stream(n: int, universe: int, seed: int = 7) -> list[str]:
    """``n`` keys drawn from Zipf(1.0) over ``universe`` keys (rank 0 is the hottest)."""
    cumulative = list(itertools.accumulate(1.0 / rank for rank in range(1, universe + 1)))
    draws = random.Random(seed).choices(range(universe), cum_weights=cumulative, k=n)
    return [f"key:{rank}" for rank in draws]


# ------------------------------------------------------------------ the seed's algorithm


@dataclass
class _Pattern:
    key: str
    access_count: int = 0
    last_access: float = 0.0
    score: float = 0.0
    related_keys: list[str] = field(default_factory=list)


class SeedTracker:
    """The seed's record_access: asyncio lock, decayed count, O(n) coldest scan when full."""

    def __init__(self, max_patterns: int, decay_factor: float = 0.9) -> None:
        self.max_patterns = max_patterns
        self.decay_factor = decay_factor
        self._patterns: dict[str, _Pattern] = {}
        self._associations: dict[str, set[str]] = defaultdict(set)
        self._total = 0
        self._lock = asyncio.Lock()

    def _score(self, pattern: _Pattern) -> float:
        hours = (time.time() - pattern.last_access) / 3600
        return pattern.access_count * self.decay_factor**hours

    async def record_access(self, key: str, related_keys: list[str] | None = None) -> None:
        async with self._lock:
            self._total += 1
            now = time.time()
            pattern = self._patterns.get(key)
            if pattern is not None:
                pattern.access_count += 1
                pattern.last_access = now
            else:
                pattern = _Pattern(key=key, access_count=1, last_access=now)
                self._patterns[key] = pattern
            pattern.score = self._score(pattern)
            if related_keys:
                self._associations[key].update(related_keys)
                pattern.related_keys = list(self._associations[key])
            if len(self._patterns) > self.max_patterns:
                coldest = min(self._patterns, key=lambda k: self._patterns[k].score)
                del self._patterns[coldest]
                self._associations.pop(coldest, None)


def run_baseline(warm: list[str], stream: list[str]) -> float:
    """Seconds per access of the seed's algorithm."""
    tracker = SeedTracker(BOUND)
    now = time.time()
    for key in warm:  # fill to the bound without 100,000 scans
        tracker._patterns[key] = _Pattern(key, 1, now, 1.0)

    async def replay() -> float:
        start = time.perf_counter()
        for key in stream:
            await tracker.record_access(key)
        return time.perf_counter() - start

    return asyncio.run(replay()) / len(stream)


def run_ours(warm: list[str], stream: list[str]) -> float:
    """Seconds per access of otelkit's tracker, with the lock and clock read it runs with."""
    pop = Popularity(half_life=60.0, max_keys=BOUND, max_related=16)
    lock = threading.Lock()
    clock = REAL_CLOCK
    for key in warm:
        pop.touch(key, clock.monotonic())
    start = time.perf_counter()
    for key in stream:
        with lock:
            pop.touch(key, clock.monotonic())
    return (time.perf_counter() - start) / len(stream)


def main() -> None:
    accesses = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
    warm = [f"key:{rank}" for rank in range(BOUND)]
    stream = zipf_stream(accesses, UNIVERSE)
    new = sum(1 for key in stream if int(key[4:]) >= BOUND)
    print(f"stream: {accesses} accesses, Zipf(1.0) over {UNIVERSE} keys, bound {BOUND}")
    print(f"accesses to keys outside the warm set (insert + evict): {new / accesses:.1%}")
    ours, baseline = [], []
    for repeat in range(REPEATS):
        ours.append(run_ours(warm, stream) * 1e6)
        baseline.append(run_baseline(warm, stream) * 1e6)
        print(f"repeat {repeat + 1}: ours={ours[-1]:.3f} us, baseline={baseline[-1]:.3f} us")
    print(ratio_line("preload_access", median(ours), median(baseline), "us/access", digits=4))


if __name__ == "__main__":
    main()
