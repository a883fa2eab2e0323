"""The drop ledger: counted on a metric at once, reported once per interval, never raising."""

from __future__ import annotations

import io
import os
import signal
import threading
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from otelkit._drops import DropLedger
from otelkit._errors import internal_error_counts
from otelkit.testing import FakeClock, wait_until

RESOURCE = Resource.create({"service.name": "drops-test"})


class Recording(LogRecordProcessor):
    """Keeps every record emitted to it; optionally runs a hook inside on_emit."""

    def __init__(self, hook: Any = None) -> None:
        self.records: list[ReadWriteLogRecord] = []
        self.hook = hook

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self.records.append(log_record)
        if self.hook is not None:
            self.hook()

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class Broken(Recording):
    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        raise RuntimeError("processor down")


class BrokenStream(io.StringIO):
    def write(self, s: str) -> int:
        raise OSError("stderr closed")


def make(
    clock: FakeClock, *, interval: float = 60.0, processor: LogRecordProcessor | None = None
) -> tuple[DropLedger, io.StringIO, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    stderr = io.StringIO()
    ledger = DropLedger(
        meter_provider=MeterProvider(metric_readers=[reader], shutdown_on_exit=False),
        clock=clock,
        interval=interval,
        stderr=stderr,
    )
    if processor is not None:
        ledger.attach(processor, RESOURCE)
    return ledger, stderr, reader


def dropped_points(reader: InMemoryMetricReader) -> tuple[Any, dict[tuple[str, str], int]]:
    data = reader.get_metrics_data()
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == "otelkit.export.dropped":
                    points = {
                        (p.attributes["signal"], p.attributes["reason"]): p.value
                        for p in metric.data.data_points
                    }
                    assert all(
                        set(p.attributes) == {"signal", "reason"} for p in metric.data.data_points
                    )
                    return (sm.scope.name, metric), points
    raise AssertionError("no otelkit.export.dropped metric")


def test_drops_are_counted_on_the_metric_by_signal_and_reason(fake_clock: FakeClock) -> None:
    ledger, _, reader = make(fake_clock)
    ledger.add("logs", "queue_full", 3)
    ledger.add("spans", "export_failed", 2)
    ledger.add("logs", "queue_full")
    (scope, metric), points = dropped_points(reader)
    assert points == {("logs", "queue_full"): 4, ("spans", "export_failed"): 2}
    assert scope == "otelkit.export"
    assert metric.unit == "{record}"
    assert "dropped" in metric.description


def test_totals_count_every_pair_since_creation(fake_clock: FakeClock) -> None:
    ledger, _, _ = make(fake_clock)
    ledger.add("logs", "queue_full", 5)
    fake_clock.advance(60)  # a report does not reset the totals
    ledger.add("logs", "queue_full", 1)
    ledger.add("metrics", "shutdown", 2)
    assert ledger.totals() == {("logs", "queue_full"): 6, ("metrics", "shutdown"): 2}
    assert ledger.total == 8


def test_one_warn_record_and_one_stderr_line_per_interval(fake_clock: FakeClock) -> None:
    processor = Recording()
    ledger, stderr, _ = make(fake_clock, processor=processor)
    ledger.add("logs", "queue_full", 1000)
    fake_clock.advance(30)
    ledger.add("spans", "export_failed", 500)
    fake_clock.advance(29.9)
    assert processor.records == [] and stderr.getvalue() == ""

    fake_clock.advance(0.1)
    assert len(processor.records) == 1
    record = processor.records[0]
    api = record.log_record
    assert api.severity_number is SeverityNumber.WARN and api.severity_text == "WARN"
    assert api.body == (
        "otelkit dropped 1500 records in the last 60 s: logs queue_full=1000, spans export_failed=500"
    )
    assert dict(api.attributes or {}) == {
        "otelkit.export.dropped.logs.queue_full": 1000,
        "otelkit.export.dropped.spans.export_failed": 500,
    }
    assert record.instrumentation_scope is not None
    assert record.instrumentation_scope.name == "otelkit.export"
    assert record.resource is RESOURCE
    lines = stderr.getvalue().splitlines(keepends=True)
    assert lines == [
        "otelkit: dropped 1500 records in the last 60 s: logs queue_full=1000, spans export_failed=500\n"
    ]


def test_the_next_interval_reports_only_its_own_drops(fake_clock: FakeClock) -> None:
    processor = Recording()
    ledger, stderr, _ = make(fake_clock, processor=processor)
    ledger.add("logs", "queue_full", 7)
    fake_clock.advance(60)
    fake_clock.advance(600)  # quiet: no timer, no report
    ledger.add("spans", "shutdown", 2)
    fake_clock.advance(60)
    assert len(processor.records) == 2
    assert dict(processor.records[1].log_record.attributes or {}) == {
        "otelkit.export.dropped.spans.shutdown": 2
    }
    assert len(stderr.getvalue().splitlines()) == 2


def test_nothing_is_reported_when_nothing_was_dropped(fake_clock: FakeClock) -> None:
    processor = Recording()
    ledger, stderr, _ = make(fake_clock, processor=processor)
    ledger.add("logs", "queue_full", 0)
    ledger.add("logs", "queue_full", -3)
    fake_clock.advance(3600)
    ledger.report_now()
    assert processor.records == [] and stderr.getvalue() == ""
    assert fake_clock.pending_timers() == 0
    assert ledger.total == 0


def test_report_now_reports_pending_drops_once_and_disarms_the_timer(
    fake_clock: FakeClock,
) -> None:
    processor = Recording()
    ledger, stderr, _ = make(fake_clock, processor=processor)
    ledger.add("logs", "shutdown", 1)
    assert fake_clock.pending_timers() == 1
    ledger.report_now()
    assert len(processor.records) == 1
    assert processor.records[0].log_record.body == (
        "otelkit dropped 1 record in the last 60 s: logs shutdown=1"
    )
    assert fake_clock.pending_timers() == 0
    fake_clock.advance(120)
    ledger.report_now()
    assert len(processor.records) == 1
    assert len(stderr.getvalue().splitlines()) == 1


def test_without_an_attached_processor_only_stderr_reports(fake_clock: FakeClock) -> None:
    ledger, stderr, _ = make(fake_clock)
    ledger.add("metrics", "export_failed", 4)
    fake_clock.advance(60)
    assert (
        stderr.getvalue()
        == "otelkit: dropped 4 records in the last 60 s: metrics export_failed=4\n"
    )


def test_a_failing_processor_or_stderr_is_contained(fake_clock: FakeClock) -> None:
    before = internal_error_counts().get("drops", 0)
    ledger = DropLedger(clock=fake_clock, stderr=BrokenStream(), meter_provider=MeterProvider())
    ledger.attach(Broken(), RESOURCE)
    ledger.add("logs", "queue_full", 1)
    fake_clock.advance(60)  # must not raise
    ledger.add("logs", "queue_full", 1)
    ledger.report_now()
    assert internal_error_counts()["drops"] - before == 4  # processor and stream, twice


def test_a_processor_that_drops_while_reporting_is_counted_next_interval(
    fake_clock: FakeClock,
) -> None:
    holder: list[DropLedger] = []
    processor = Recording(hook=lambda: holder[0].add("logs", "queue_full", 1))
    ledger, _, _ = make(fake_clock, processor=processor)
    holder.append(ledger)  # re-entering add() from the report must not deadlock
    ledger.add("spans", "queue_full", 3)
    fake_clock.advance(60)
    assert ledger.totals() == {("spans", "queue_full"): 3, ("logs", "queue_full"): 1}
    assert fake_clock.pending_timers() == 1  # the WARN record's own drop arms the next report


def test_concurrent_adds_are_all_counted(fake_clock: FakeClock) -> None:
    ledger, _, reader = make(fake_clock)

    def work() -> None:
        for _ in range(5000):
            ledger.add("logs", "queue_full")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert ledger.total == 40_000
    assert dropped_points(reader)[1] == {("logs", "queue_full"): 40_000}
    assert fake_clock.pending_timers() == 1


def test_binding_a_meter_provider_carries_the_totals_over(fake_clock: FakeClock) -> None:
    ledger, _, first = make(fake_clock)
    ledger.add("logs", "queue_full", 3)
    second = InMemoryMetricReader()
    ledger.bind_meter_provider(MeterProvider(metric_readers=[second], shutdown_on_exit=False))
    ledger.add("logs", "queue_full", 2)
    ledger.add("spans", "shutdown", 1)
    assert dropped_points(second)[1] == {("logs", "queue_full"): 5, ("spans", "shutdown"): 1}
    assert dropped_points(first)[1] == {("logs", "queue_full"): 3}


def test_a_bad_interval_is_rejected() -> None:
    with pytest.raises(ValueError, match="DropLedger: interval must be a positive number, got 0"):
        DropLedger(interval=0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_starts_with_an_empty_ledger(fake_clock: FakeClock) -> None:
    ledger, stderr, _ = make(fake_clock)
    ledger.add("logs", "queue_full", 9)
    pid = os.fork()
    if pid == 0:  # child: the parent's drops are the parent's to report
        code = 1
        try:
            empty = ledger.totals() == {} and ledger.total == 0
            ledger.report_now()
            silent = stderr.getvalue() == ""
            ledger.add("spans", "export_failed", 2)
            counts = ledger.totals() == {("spans", "export_failed"): 2}
            code = 0 if (empty and silent and counts) else 1
        finally:
            os._exit(code)
    assert wait_child(pid) == 0
    ledger.report_now()
    assert stderr.getvalue() == "otelkit: dropped 9 records in the last 60 s: logs queue_full=9\n"


def wait_child(pid: int, timeout: float = 20.0) -> int:
    """The child's exit code; kills it if it does not exit within ``timeout`` s."""
    status: list[int] = []

    def exited() -> bool:
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status.append(code)
        return bool(done)

    try:
        wait_until(exited, timeout=timeout)
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    return os.waitstatus_to_exitcode(status[0])
