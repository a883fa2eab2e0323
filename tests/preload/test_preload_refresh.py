"""Refresh-ahead, cold keys, adaptive threshold, contained loader errors, lifecycle."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest

from otelkit.preload import MemoryCache, Preloader
from otelkit.testing import FakeClock

from .conftest import Counter, InlineExecutor, ManualExecutor


def read_every(
    pre: Preloader[str], clock: FakeClock, key: str, loader: Counter, *, every: float, until: float
) -> list[str]:
    seen = []
    while clock.monotonic() < until:
        seen.append(pre.get(key, loader))
        clock.advance(every)
    return seen


def test_hot_key_is_reloaded_before_expiry_and_readers_never_miss(
    make_preloader: Callable[..., Preloader[str]],
    fake_clock: FakeClock,
    counter: Counter,
    points: Callable[..., float],
) -> None:
    pre = make_preloader(ttl=60, half_life=60, threshold=1.0, adaptive=False)
    seen = read_every(pre, fake_clock, "hot", counter, every=5, until=600)
    assert counter.calls["hot"] >= 10  # one demand load, then a refresh every ~48 s
    assert points("otelkit.cache.requests", result="miss") == 1  # only the very first read
    assert points("otelkit.cache.requests", result="hit") == len(seen) - 1
    assert points("otelkit.preload.loads", reason="refresh", result="success") == (
        counter.calls["hot"] - 1
    )
    assert seen[-1] != seen[0]  # readers moved on to refreshed values


def test_the_old_value_is_served_while_a_refresh_runs(
    make_preloader: Callable[..., Preloader[str]],
    fake_clock: FakeClock,
    counter: Counter,
    manual_executor: ManualExecutor,
) -> None:
    pre = make_preloader(ttl=60, executor=manual_executor, adaptive=False)
    pre.get("k", counter)
    pre.get("k", counter)
    fake_clock.advance(49)  # past the refresh point (48 s): the refresh is queued
    assert len(manual_executor.queued) == 1
    assert pre.get("k", counter) == "k#1"  # old value, no second load
    assert manual_executor.run_all() == 1
    assert pre.get("k", counter) == "k#2"


def test_cold_key_is_left_to_expire(
    make_preloader: Callable[..., Preloader[str]],
    fake_clock: FakeClock,
    cache: MemoryCache[str],
    counter: Counter,
    points: Callable[..., float],
) -> None:
    pre = make_preloader(ttl=60, half_life=10, threshold=1.0, adaptive=False)
    pre.get("cold", counter)
    fake_clock.advance(61)  # score 2**-4.8 at the refresh point: far below 1
    assert cache.get("cold") is None
    assert counter.calls == {"cold": 1}
    assert points("otelkit.preload.loads", reason="refresh") == 0


def test_refresh_span_per_batch(
    make_preloader: Callable[..., Preloader[str]],
    fake_clock: FakeClock,
    counter: Counter,
    memory_telemetry,  # type: ignore[no-untyped-def]
) -> None:
    pre = make_preloader(ttl=60, adaptive=False)
    for key in ("a", "b", "c"):
        pre.get(key, counter)
        pre.get(key, counter)
    pre.get("cold", counter)  # score 1 * 2**-0.8 < 1 at refresh time
    fake_clock.advance(48)
    spans = [s for s in memory_telemetry.spans() if s.name == "otelkit.preload.refresh"]
    assert len(spans) == 1
    attrs = dict(spans[0].attributes or {})
    assert attrs["otelkit.preload.batch.size"] == 3
    assert attrs["otelkit.preload.batch.skipped"] == 1
    assert attrs["otelkit.preload.batch.errors"] == 0


def test_loader_spans_nest_under_the_refresh_batch(
    make_preloader: Callable[..., Preloader[str]],
    fake_clock: FakeClock,
    memory_telemetry,  # type: ignore[no-untyped-def]
) -> None:
    tracer = memory_telemetry.tracer_provider.get_tracer("app")

    def loader(key: str) -> str:
        with tracer.start_as_current_span("db query"):
            return "v"

    pre = make_preloader(ttl=60, adaptive=False)
    pre.get("k", loader)
    pre.get("k", loader)
    fake_clock.advance(48)
    by_name = {}
    for span in memory_telemetry.spans():
        by_name.setdefault(span.name, []).append(span)
    batch = by_name["otelkit.preload.refresh"][0]
    refresh_query = by_name["db query"][-1]
    assert refresh_query.parent is not None
    assert refresh_query.parent.span_id == batch.context.span_id


def test_threshold_rises_while_preloads_go_unused(
    make_preloader: Callable[..., Preloader[str]], fake_clock: FakeClock, counter: Counter
) -> None:
    pre = make_preloader(ttl=60, threshold=1.0)
    pre.register_prefix("user:", counter)
    for page in range(5):
        pre.get(f"page:{page}", lambda key: "page", related=(f"user:{page}",))
    fake_clock.advance(61)  # the five prefetched users expire unread
    assert pre.threshold > 1.0


def test_threshold_falls_while_preloads_are_used(
    make_preloader: Callable[..., Preloader[str]], counter: Counter
) -> None:
    pre = make_preloader(ttl=60, threshold=1.0)
    pre.register_prefix("user:", counter)
    for page in range(5):
        pre.get(f"page:{page}", lambda key: "page", related=(f"user:{page}",))
        pre.get(f"user:{page}")
    assert pre.threshold < 1.0


def test_threshold_stays_in_its_range(
    make_preloader: Callable[..., Preloader[str]], fake_clock: FakeClock, counter: Counter
) -> None:
    pre = make_preloader(ttl=60, threshold=1.0, threshold_range=(0.5, 1.2))
    pre.register_prefix("user:", counter)
    for page in range(40):
        pre.get(f"page:{page}", lambda key: "page", related=(f"user:{page}",))
    fake_clock.advance(61)
    assert pre.threshold == 1.2


def test_background_loader_errors_are_contained_counted_and_logged_once(
    make_preloader: Callable[..., Preloader[str]],
    fake_clock: FakeClock,
    points: Callable[..., float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    pre = make_preloader(ttl=60, adaptive=False)

    def broken(key: str) -> str:
        raise ConnectionError("db down")

    pre.register_prefix("user:", broken)
    with caplog.at_level(logging.WARNING, logger="otelkit.preload"):
        for _ in range(3):
            assert pre.get("page", lambda key: "page", related=("user:1",)) == "page"
            fake_clock.advance(70)  # past the backoff window of the key
    assert points("otelkit.preload.loads", reason="related", result="error") == 3
    logged = [r for r in caplog.records if "user:1" in r.getMessage()]
    assert len(logged) == 3  # once per window: each attempt was in a new window


def test_demand_errors_reach_the_reader_and_are_logged_once_per_window(
    make_preloader: Callable[..., Preloader[str]],
    fake_clock: FakeClock,
    points: Callable[..., float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    pre = make_preloader(ttl=60)

    def broken(key: str) -> str:
        raise ConnectionError("db down")

    with caplog.at_level(logging.WARNING, logger="otelkit.preload"):
        for _ in range(4):
            with pytest.raises(ConnectionError):
                pre.get("k", broken)
        fake_clock.advance(60)
        with pytest.raises(ConnectionError):
            pre.get("k", broken)
    assert points("otelkit.preload.loads", reason="demand", result="error") == 5
    assert len([r for r in caplog.records if "'k'" in r.getMessage()]) == 2


def test_a_failing_refresh_keeps_the_old_value_until_expiry(
    make_preloader: Callable[..., Preloader[str]],
    fake_clock: FakeClock,
    points: Callable[..., float],
    memory_telemetry,  # type: ignore[no-untyped-def]
) -> None:
    pre = make_preloader(ttl=60, adaptive=False)
    answers = iter(["v1"])

    def flaky(key: str) -> str:
        return next(answers)  # StopIteration (an Exception) on the second call

    pre.get("k", flaky)
    pre.get("k", flaky)
    fake_clock.advance(50)
    assert pre.get("k", flaky) == "v1"
    assert points("otelkit.preload.loads", reason="refresh", result="error") == 1
    batch = next(s for s in memory_telemetry.spans() if s.name == "otelkit.preload.refresh")
    assert not batch.status.is_ok


def test_a_first_get_before_start_starts_the_preloader(
    fake_clock: FakeClock, cache: MemoryCache[str], counter: Counter
) -> None:
    pre: Preloader[str] = Preloader(cache, clock=fake_clock, executor=InlineExecutor())
    pre.register_prefix("user:", counter)
    assert fake_clock.pending_timers() == 0
    try:
        assert pre.get("page", lambda key: "page", related=("user:1",)) == "page"
        assert fake_clock.pending_timers() == 1  # the refresher is armed
        assert counter.calls == {"user:1": 1}  # and the related key was prefetched
    finally:
        pre.close()
    assert fake_clock.pending_timers() == 0


def test_close_leaves_nothing_running(fake_clock: FakeClock, cache: MemoryCache[str]) -> None:
    before = {t.name for t in threading.enumerate()}
    pre: Preloader[str] = Preloader(cache, clock=fake_clock, concurrency=2)
    with pre:
        pre.register_prefix("user:", lambda key: key)
        pre.get("page", lambda key: "page", related=("user:1", "user:2"))
        assert fake_clock.pending_timers() == 1
    assert fake_clock.pending_timers() == 0
    leftover = {t.name for t in threading.enumerate()} - before
    assert not [name for name in leftover if name.startswith("otelkit-preload")]
    with pytest.raises(RuntimeError, match="after close"):
        pre.start()


def test_reads_after_close_are_plain_cache_aside(
    fake_clock: FakeClock, cache: MemoryCache[str], counter: Counter
) -> None:
    with Preloader(cache, clock=fake_clock) as pre:
        pre.register_prefix("user:", counter)
    assert pre.get("page", lambda key: "page", related=("user:1",)) == "page"
    assert counter.calls == {}
    fake_clock.advance(120)
    assert fake_clock.pending_timers() == 0


def test_refreshes_beyond_concurrency_wait_for_a_free_worker(
    make_preloader: Callable[..., Preloader[str]],
    fake_clock: FakeClock,
    counter: Counter,
    manual_executor: ManualExecutor,
    memory_telemetry,  # type: ignore[no-untyped-def]
) -> None:
    pre = make_preloader(ttl=60, concurrency=2, executor=manual_executor, adaptive=False)
    keys = [f"k{i}" for i in range(5)]
    for key in keys:
        pre.get(key, counter)
        pre.get(key, counter)
    fake_clock.advance(48)
    assert len(manual_executor.queued) == 2  # two workers busy, three refreshes wait
    assert manual_executor.run_all() == 5  # each finished load starts a waiting one
    assert all(counter.calls[key] == 2 for key in keys)
    spans = [s for s in memory_telemetry.spans() if s.name == "otelkit.preload.refresh"]
    assert len(spans) == 1
    assert dict(spans[0].attributes or {})["otelkit.preload.batch.size"] == 5


def test_a_refresh_that_cannot_start_in_time_is_left_to_expire(
    make_preloader: Callable[..., Preloader[str]],
    fake_clock: FakeClock,
    counter: Counter,
    manual_executor: ManualExecutor,
) -> None:
    pre = make_preloader(ttl=60, concurrency=1, executor=manual_executor, adaptive=False)
    for key in ("a", "b"):
        pre.get(key, counter)
        pre.get(key, counter)
    fake_clock.advance(48)
    assert len(manual_executor.queued) == 1
    fake_clock.advance(7)  # less than half the 12 s lead is left for the waiting key
    assert manual_executor.run_all() == 1
    assert counter.calls == {"a": 2, "b": 1}


def test_long_chains_of_queued_refreshes_do_not_deepen_the_stack(
    make_preloader: Callable[..., Preloader[str]], fake_clock: FakeClock, counter: Counter
) -> None:
    pre = make_preloader(ttl=60, concurrency=1, max_keys=5000, adaptive=False)
    keys = [f"k{i}" for i in range(3000)]
    for key in keys:
        pre.get(key, counter)
        pre.get(key, counter)
    fake_clock.advance(48)  # 3000 refreshes due at once, one worker, loads run inline
    assert all(counter.calls[key] == 2 for key in keys)
