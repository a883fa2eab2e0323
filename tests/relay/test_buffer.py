"""The child's bounded buffer: lowest severity first, then oldest."""

from __future__ import annotations

from otelkit.relay._buffer import SeverityBuffer, severity_class

DEBUG, INFO, WARN, ERROR = (severity_class(n) for n in (5, 9, 13, 17))


def test_full_buffer_gives_up_the_oldest_of_the_lowest_severity() -> None:
    buf: SeverityBuffer[str] = SeverityBuffer(3)
    for item, cls in (("info1", INFO), ("debug1", DEBUG), ("debug2", DEBUG)):
        assert buf.append(item, cls) is None
    assert buf.append("error1", ERROR) == "debug1"
    assert buf.append("warn1", WARN) == "debug2"
    assert buf.append("error2", ERROR) == "info1"
    assert (buf.appended, buf.evicted, len(buf)) == (6, 3, 3)


def test_error_is_never_dropped_while_a_lower_record_is_buffered() -> None:
    buf: SeverityBuffer[str] = SeverityBuffer(2)
    buf.append("error1", ERROR)
    buf.append("error2", ERROR)
    assert buf.append("debug", DEBUG) == "debug"  # everything buffered is more severe
    assert buf.append("error3", ERROR) == "error1"  # same class: the oldest goes
    assert sorted(buf.take(10)) == ["error2", "error3"]


def test_take_returns_most_severe_first_and_oldest_first() -> None:
    buf: SeverityBuffer[str] = SeverityBuffer(10)
    for item, cls in (("i1", INFO), ("e1", ERROR), ("i2", INFO), ("e2", ERROR)):
        buf.append(item, cls)
    assert buf.take(3) == ["e1", "e2", "i1"]
    assert buf.take(3) == ["i2"]
    assert len(buf) == 0


def test_severity_classes_follow_otel_ranges() -> None:
    assert [severity_class(n) for n in (0, 1, 5, 9, 13, 17, 21, 24)] == [2, 0, 1, 2, 3, 4, 5, 5]
