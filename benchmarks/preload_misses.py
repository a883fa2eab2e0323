"""Misses served to readers of the hottest 1% of keys, with the preloader vs without it.

Simulated time (a FakeClock): readers arrive as a Poisson stream of RATE reads/s for
DURATION s, each reading a key drawn from Zipf(1.0) over 10,000 keys. Entries live 60 s;
a load takes 50 ms. Both arms use the same MemoryCache and the same stream:

baseline: plain cache-aside: a reader that finds no entry loads it.
ours:     otelkit.preload.Preloader over that cache (defaults, ttl=60 s), whose background
          loads finish 50 ms after they start (an executor that runs them 50 ms later).

A reader counts as missed when it finds no entry, and also when it arrives within the 50 ms
of a demand load of its key (it waits for that load). Only readers of the top 1% of keys
(ranks 1-100) are counted, including the first miss of every key (a cold start both arms
pay). The preloader's wasted fraction comes from its own metrics: ``otelkit.preload.wasted``
over the preloads that ended (used + wasted) by the end of the run. The simulation runs once
per seed in SEEDS; the medians are compared.
Run: .venv/bin/python benchmarks/preload_misses.py [simulated seconds per seed]
"""

from __future__ import annotations

import concurrent.futures
import itertools
import random
import sys
from collections.abc import Callable
from typing import Any

from _util import median, ratio_line
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otelkit.preload import MemoryCache, Preloader
from otelkit.testing import FakeClock

KEYS = 10_000
HOT = KEYS // 100  # the top 1%
TTL = 60.0
LOAD_TIME = 0.05
RATE = 100.0  # reads per simulated second
SEEDS = (11, 12, 13)


def workload(duration: float, seed: int) -> list[tuple[float, int]]:
    """(gap before the read in s, key rank) pairs: Poisson arrivals, Zipf(1.0) keys."""
    rng = random.Random(seed)
    cumulative = list(itertools.accumulate(1.0 / rank for rank in range(1, KEYS + 1)))
    n = int(duration * RATE)
    ranks = rng.choices(range(KEYS), cum_weights=cumulative, k=n)
    return [(rng.expovariate(RATE), rank) for rank in ranks]


def load(key: str) -> str:
    return f"value of {key}"


class DelayedExecutor(concurrent.futures.Executor):
    """Runs each background load LOAD_TIME simulated seconds after it was submitted."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self._clock.call_later(LOAD_TIME, lambda: fn(*args, **kwargs))
        return concurrent.futures.Future()


def replay(
    stream: list[tuple[float, int]], clock: FakeClock, read: Callable[[str], bool]
) -> tuple[int, int]:
    """Replay the stream; ``read(key)`` returns True when it ran a demand load.

    Returns (misses, reads) counted over readers of the top 1% of keys.
    """
    loading_until: dict[str, float] = {}
    misses = reads = 0
    for gap, rank in stream:
        clock.advance(gap)
        key = f"key:{rank}"
        now = clock.monotonic()
        waited = loading_until.get(key, -1.0) > now
        loaded = read(key)
        if loaded:
            loading_until[key] = now + LOAD_TIME
        if rank < HOT:
            reads += 1
            misses += loaded or waited
    return misses, reads


def run_baseline(stream: list[tuple[float, int]]) -> tuple[int, int]:
    clock = FakeClock()
    cache: MemoryCache[str] = MemoryCache(max_entries=None, clock=clock)

    def read(key: str) -> bool:
        if cache.get(key) is not None:
            return False
        cache.set(key, load(key), ttl=TTL)
        return True

    return replay(stream, clock, read)


def run_ours(stream: list[tuple[float, int]]) -> tuple[int, int, dict[str, float]]:
    clock = FakeClock()
    cache: MemoryCache[str] = MemoryCache(max_entries=None, clock=clock)
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    demand: list[str] = []

    def demand_load(key: str) -> str:
        demand.append(key)
        return load(key)

    with Preloader(
        cache, ttl=TTL, clock=clock, executor=DelayedExecutor(clock), meter_provider=meters
    ) as pre:
        pre.register_prefix("key:", load)  # what refreshes use

        def read(key: str) -> bool:
            before = len(demand)
            pre.get(key, demand_load)
            return len(demand) > before

        misses, reads = replay(stream, clock, read)
        totals = metric_totals(reader)
        totals["threshold"] = pre.threshold
    meters.shutdown()
    return misses, reads, totals


def metric_totals(reader: InMemoryMetricReader) -> dict[str, float]:
    totals: dict[str, float] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    attrs = dict(point.attributes or {})
                    name = metric.name
                    if name == "otelkit.preload.loads" and attrs.get("result") == "success":
                        name = f"loads.{attrs['reason']}"
                    if hasattr(point, "value"):
                        totals[name] = totals.get(name, 0.0) + point.value
    return totals


def main() -> None:
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 1200.0
    print(
        f"simulated {duration:.0f} s per seed: {RATE:.0f} reads/s, Zipf(1.0) over {KEYS} keys, "
        f"TTL {TTL:.0f} s, loads take {LOAD_TIME * 1000:.0f} ms; counting readers of the top "
        f"{HOT} keys"
    )
    ours: list[float] = []
    baseline: list[float] = []
    fractions: list[float] = []
    for seed in SEEDS:
        stream = workload(duration, seed)
        base_misses, base_reads = run_baseline(stream)
        our_misses, our_reads, totals = run_ours(stream)
        assert base_reads == our_reads
        preloads = totals.get("loads.refresh", 0.0) + totals.get("loads.related", 0.0)
        used = totals.get("otelkit.preload.used", 0.0)
        wasted = totals.get("otelkit.preload.wasted", 0.0)
        fraction = wasted / (used + wasted) if used + wasted else 0.0
        ours.append(our_misses)
        baseline.append(base_misses)
        fractions.append(fraction)
        print(
            f"seed {seed}: {our_reads} top-1% reads, misses {our_misses} with preloader vs "
            f"{base_misses} without; preloads {preloads:.0f} (used {used:.0f}, wasted "
            f"{wasted:.0f}, live {preloads - used - wasted:.0f}), threshold "
            f"{totals['threshold']:.2f}"
        )
    print(f"wasted fraction of ended preloads: {median(fractions):.3f} (median; target <= 0.2)")
    print(ratio_line("preload_misses", median(ours), median(baseline), "misses", digits=3))


if __name__ == "__main__":
    main()
