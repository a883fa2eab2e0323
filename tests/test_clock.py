import pytest

from otelkit.testing import FakeClock


def test_fake_clock_runs_due_timers_in_order_at_their_due_time() -> None:
    clock = FakeClock()
    seen: list[tuple[str, float]] = []
    clock.call_later(2.0, lambda: seen.append(("b", clock.monotonic())))
    clock.call_later(1.0, lambda: seen.append(("a", clock.monotonic())))
    clock.advance(1.5)
    assert seen == [("a", 1.0)]
    clock.advance(1.0)
    assert seen == [("a", 1.0), ("b", 2.0)]
    assert clock.monotonic() == 2.5


def test_cancelled_timer_never_runs() -> None:
    clock = FakeClock()
    seen: list[int] = []
    handle = clock.call_later(1.0, lambda: seen.append(1))
    handle.cancel()
    clock.advance(5)
    assert seen == []
    assert clock.pending_timers() == 0


def test_advance_rejects_negative_time() -> None:
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        FakeClock().advance(-1)


def test_real_clock_timer_fires() -> None:
    import threading

    from otelkit._clock import REAL_CLOCK

    fired = threading.Event()
    REAL_CLOCK.call_later(0.01, fired.set)
    assert fired.wait(5)
