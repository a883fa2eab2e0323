"""The engine: the seed's semantics, one timer, bounds, fork, contained consumer errors."""

from __future__ import annotations

import gc
import os
import tracemalloc

import pytest

from otelkit._errors import internal_error_counts
from otelkit.coalesce._window import EMIT, SUPPRESS, Coalescer, Summary
from otelkit.testing import FakeClock


def make(
    clock: FakeClock, *, window: float = 10.0, max_keys: int = 100
) -> tuple[Coalescer[str], list[Summary[str]]]:
    summaries: list[Summary[str]] = []
    engine: Coalescer[str] = Coalescer(
        window=window, on_summary=summaries.append, max_keys=max_keys, clock=clock
    )
    return engine, summaries


def test_first_occurrence_is_emitted_and_repeats_are_suppressed(fake_clock: FakeClock) -> None:
    engine, _ = make(fake_clock)
    assert engine.offer("k", "first") is EMIT
    assert engine.offer("k", "second") is SUPPRESS
    assert engine.offer("k", "third") is SUPPRESS
    assert engine.offer("other", "x") is EMIT
    assert engine.suppressed == 2


def test_summary_at_window_end_counts_the_first_and_keeps_the_first_repeats_payload(
    fake_clock: FakeClock,
) -> None:
    engine, summaries = make(fake_clock)
    engine.offer("k", "first", 1_000)
    fake_clock.advance(3)
    engine.offer("k", "second", 2_000)
    engine.offer("k", "third", 3_000)
    fake_clock.advance(6.9)
    assert summaries == []
    fake_clock.advance(0.1)
    assert summaries == [
        Summary(
            key="k",
            count=3,
            first=None,
            sample="second",
            first_time_ns=1_000,
            last_time_ns=3_000,
            window=10.0,
        )
    ]
    assert engine.open_keys == 0


@pytest.mark.parametrize("key", [None, 0, "", ()])
def test_any_hashable_key_merges_even_a_falsy_one(fake_clock: FakeClock, key: object) -> None:
    engine, summaries = make(fake_clock)
    assert engine.offer(key, "first") is EMIT
    assert engine.offer(key, "second") is SUPPRESS
    assert engine.flush() == 1
    assert (summaries[0].key, summaries[0].count) == (key, 2)


def test_no_summary_for_a_key_seen_once(fake_clock: FakeClock) -> None:
    engine, summaries = make(fake_clock)
    engine.offer("once", "x")
    fake_clock.advance(20)
    assert summaries == []
    assert engine.open_keys == 0


def test_a_new_window_starts_after_the_old_one_ends(fake_clock: FakeClock) -> None:
    engine, summaries = make(fake_clock)
    engine.offer("k", "a")
    engine.offer("k", "b")
    fake_clock.advance(10)
    assert engine.offer("k", "c") is EMIT
    assert [s.count for s in summaries] == [2]


def test_keys_expire_in_creation_order_with_one_timer(fake_clock: FakeClock) -> None:
    engine, summaries = make(fake_clock)
    for i in range(5):
        engine.offer(i, f"p{i}")
        engine.offer(i, f"p{i}")
        assert fake_clock.pending_timers() == 1
        fake_clock.advance(1)
    fake_clock.advance(5)  # t=10: key 0 ends
    assert [s.key for s in summaries] == [0]
    fake_clock.advance(2.5)  # t=12.5: keys 1 and 2 end
    assert [s.key for s in summaries] == [0, 1, 2]
    assert fake_clock.pending_timers() == 1
    fake_clock.advance(10)
    assert [s.key for s in summaries] == [0, 1, 2, 3, 4]
    assert fake_clock.pending_timers() == 0


def test_hundreds_of_windows_ending_together_close_in_opening_order(
    fake_clock: FakeClock,
) -> None:
    # The timer reads the oldest windows in growing batches: more end than one batch holds.
    engine, summaries = make(fake_clock, max_keys=1000)
    for key in range(300):
        engine.offer(key, "first")
        engine.offer(key, "repeat")
    fake_clock.advance(5)
    for key in range(300, 600):
        engine.offer(key, "first")
        engine.offer(key, "repeat")
    fake_clock.advance(5)  # the first 300 end
    assert [s.key for s in summaries] == list(range(300))
    assert engine.open_keys == 300
    fake_clock.advance(5)
    assert [s.key for s in summaries] == list(range(600))
    assert engine.open_keys == 0 and fake_clock.pending_timers() == 0


def test_flush_emits_every_pending_summary_and_cancels_the_timer(fake_clock: FakeClock) -> None:
    engine, summaries = make(fake_clock)
    for key in ("a", "b", "c"):
        engine.offer(key, key)
    engine.offer("a", "a")
    engine.offer("b", "b")
    assert engine.flush() == 2
    assert sorted(s.key for s in summaries) == ["a", "b"]
    assert fake_clock.pending_timers() == 0
    assert engine.offer("a", "again") is EMIT


def test_close_flushes_all_then_passes_everything_through(fake_clock: FakeClock) -> None:
    engine, summaries = make(fake_clock)
    engine.offer("k", "1")
    engine.offer("k", "2")
    engine.close()
    assert [s.count for s in summaries] == [2]
    assert engine.offer("k", "3") is EMIT
    assert engine.offer("k", "4") is EMIT
    assert engine.open_keys == 0


def test_consumer_exception_is_contained_counted_and_other_summaries_still_go_out(
    fake_clock: FakeClock,
) -> None:
    delivered: list[object] = []

    def consumer(summary: Summary[str]) -> None:
        if summary.key == "bad":
            raise RuntimeError("consumer is broken")
        delivered.append(summary.key)

    engine: Coalescer[str] = Coalescer(window=1, on_summary=consumer, clock=fake_clock)
    before = internal_error_counts().get("coalesce", 0)
    for key in ("bad", "good"):
        engine.offer(key, key)
        engine.offer(key, key)
    fake_clock.advance(1)  # runs the timer: must not raise here
    assert delivered == ["good"]
    assert engine.consumer_errors == 1
    assert internal_error_counts()["coalesce"] == before + 1


def test_beyond_max_keys_new_keys_pass_through_and_count_as_overflow(
    fake_clock: FakeClock,
) -> None:
    engine, _ = make(fake_clock, max_keys=2)
    assert engine.offer("a", "a") is EMIT
    assert engine.offer("b", "b") is EMIT
    assert engine.offer("c", "c") is EMIT
    assert engine.offer("c", "c") is EMIT  # not opened: every occurrence passes
    assert engine.offer("a", "a") is SUPPRESS  # open keys still coalesce
    assert engine.overflow == 2
    assert engine.take_counts() == (1, 2)
    assert engine.take_counts() == (0, 0)


def test_a_million_distinct_keys_keep_memory_bounded(fake_clock: FakeClock) -> None:
    max_keys = 10_000
    engine: Coalescer[None] = Coalescer(
        window=10, on_summary=lambda s: None, max_keys=max_keys, clock=fake_clock
    )
    tracemalloc.start()
    try:
        for i in range(1_000_000):
            engine.offer(i, None, 0)
            if i % 100_000 == 99_999:
                assert engine.open_keys <= max_keys
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert engine.open_keys == max_keys
    assert engine.overflow == 1_000_000 - max_keys
    # ~10,000 windows of a few hundred bytes each; a million would take > 100 MB.
    assert peak < 8 * 1024 * 1024, peak
    fake_clock.advance(10)
    assert engine.open_keys == 0


def test_remember_and_capture_keep_what_the_summary_hands_back(fake_clock: FakeClock) -> None:
    summaries: list[Summary[tuple[str, int]]] = []
    remembered: list[str] = []
    captured: list[str] = []

    def remember(payload: str) -> int:
        remembered.append(payload)
        return len(payload)

    def capture(payload: str) -> tuple[str, int]:
        captured.append(payload)
        return payload.upper(), len(payload)

    engine: Coalescer[tuple[str, int]] = Coalescer(
        window=10,
        on_summary=summaries.append,
        clock=fake_clock,
        remember=remember,
        capture=capture,
    )
    engine.offer("a", "first", 1)
    engine.offer("a", "second", 2)
    engine.offer("b", "once", 3)
    engine.offer("c", "x", 4)
    engine.offer("c", "y", 5)
    engine.offer("c", "z", 6)
    fake_clock.advance(10)
    got = [(s.key, s.first, s.sample, s.count, s.first_time_ns, s.last_time_ns) for s in summaries]
    assert got == [("a", 5, ("SECOND", 6), 2, 1, 2), ("c", 1, ("Y", 1), 3, 4, 6)]
    assert remembered == ["first", "once", "x"]  # only when a window opens
    assert captured == ["second", "y"]  # only on a window's first repeat


def test_windows_seen_once_give_the_garbage_collector_nothing_to_walk(
    fake_clock: FakeClock,
) -> None:
    engine: Coalescer[str] = Coalescer(
        window=10, on_summary=print, clock=fake_clock, max_keys=2_000, remember=lambda p: (p, 1)
    )
    gc.collect()
    before = len(gc.get_objects())
    for i in range(1_000):
        engine.offer(("key", i), f"payload {i}", i)
    gc.collect()  # looks at the new tuples once, and stops tracking them
    assert engine.open_keys == 1_000
    assert len(gc.get_objects()) - before < 100


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"window": 0}, ValueError, "window"),
        ({"window": "10"}, TypeError, "window"),
        ({"window": float("inf")}, ValueError, "window"),
        ({"max_keys": 0}, ValueError, "max_keys"),
        ({"max_keys": 1.5}, TypeError, "max_keys"),
        ({"on_summary": None}, TypeError, "on_summary"),
        ({"capture": 3}, TypeError, "capture"),
        ({"remember": 3}, TypeError, "remember"),
    ],
)
def test_bad_options_are_rejected_with_the_option_named(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    kwargs: dict[str, object] = {"window": 1.0, "on_summary": print, **options}
    with pytest.raises(error, match=message):
        Coalescer(**kwargs)  # type: ignore[arg-type]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() in a threaded process
def test_a_forked_child_starts_with_no_open_windows(fake_clock: FakeClock) -> None:
    engine, summaries = make(fake_clock)
    engine.offer("k", "parent")
    engine.offer("k", "parent")
    pid = os.fork()
    if pid == 0:  # child: the parent owns its windows; the child must not summarise them
        code = 0
        try:
            ok = engine.open_keys == 0 and engine.flush() == 0 and engine.offer("k", "c") is EMIT
            code = 0 if ok else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert engine.flush() == 1
    assert summaries[0].count == 2


def test_windows_ending_within_the_slack_close_together(fake_clock: FakeClock) -> None:
    engine, summaries = make(fake_clock)
    for key in ("a", "b"):
        engine.offer(key, "p")
        engine.offer(key, "p")
        fake_clock.advance(0.01)  # b's window ends 10 ms after a's
    fake_clock.advance(10 - 0.02)  # t = 10.0: a's deadline
    assert [s.key for s in summaries] == ["a"]
    # The timer does not wake again for b alone 10 ms later, but at most 0.1 s later.
    fake_clock.advance(0.05)
    assert [s.key for s in summaries] == ["a"]
    fake_clock.advance(0.05)
    assert [s.key for s in summaries] == ["a", "b"]
