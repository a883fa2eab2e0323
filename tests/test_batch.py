"""otelkit's batch core and processors: every item offered is exported, counted or queued."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry._logs import LogRecord
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, TraceFlags

from otelkit._batch import (
    BatchCore,
    BatchLogRecordProcessor,
    BatchSpanProcessor,
    BatchStats,
    blocking_offers,
)
from otelkit._drops import DropLedger
from otelkit._errors import internal_error_counts
from otelkit._relayed import RelayedLogRecord
from otelkit.testing import FakeClock, wait_until


class Sink:
    """An export callable: keeps what it gets; can fail, raise, be slow or be held."""

    def __init__(self, *, result: bool = True, delay: float = 0.0) -> None:
        self.items: list[Any] = []
        self.batches: list[int] = []
        self.result = result
        self.delay = delay
        self.error: Exception | None = None
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.instrumented: list[bool] = []

    def __call__(self, batch: list[Any]) -> bool:
        self.entered.set()
        self.instrumented.append(is_instrumentation_enabled())
        assert self.gate.wait(20), "test never released the exporter"
        if self.delay:
            time.sleep(self.delay)  # a slow network, not a time window
        if self.error is not None:
            raise self.error
        self.items.extend(batch)
        self.batches.append(len(batch))
        return self.result


@pytest.fixture
def ledger(fake_clock: FakeClock) -> DropLedger:
    return DropLedger(clock=fake_clock, meter_provider=MeterProvider(shutdown_on_exit=False))


@pytest.fixture
def cores() -> Iterator[Callable[..., BatchCore[Any]]]:
    """Makes cores and shuts each down after the test (their workers are daemon threads)."""
    made: list[BatchCore[Any]] = []

    def make(sink: Sink, drops: DropLedger | None = None, **options: Any) -> BatchCore[Any]:
        options = {"max_queue_size": 64, "schedule_delay": 60.0, **options}
        options.setdefault("max_export_batch_size", min(16, options["max_queue_size"]))
        core: BatchCore[Any] = BatchCore(sink, signal="logs", drops=drops, name="test", **options)
        made.append(core)
        return core

    yield make
    for core in made:
        core.shutdown(5)


def conserved(stats: BatchStats) -> bool:
    return stats.offered == stats.exported + sum(stats.dropped.values()) + stats.queued


def held(core: BatchCore[Any], sink: Sink) -> None:
    """Fill ``core``: one batch stuck inside the exporter, then a full queue behind it."""
    sink.gate.clear()
    sink.entered.clear()
    for i in range(core.max_export_batch_size):
        assert core.offer(("held", i))
    assert sink.entered.wait(10)
    for i in range(core.max_queue_size):
        assert core.offer(("queued", i))


# ---- the core -----------------------------------------------------------------------------
def test_a_flood_from_several_threads_is_conserved(
    cores: Callable[..., BatchCore[Any]], ledger: DropLedger
) -> None:
    sink = Sink(delay=0.002)
    core = cores(sink, ledger, schedule_delay=0.01)

    def flood(n: int) -> None:
        for i in range(5000):
            core.offer((n, i))

    threads = [threading.Thread(target=flood, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert core.force_flush(30)
    stats = core.stats()
    assert stats.offered == 20_000 and stats.queued == 0
    assert stats.offered == stats.exported + stats.dropped["queue_full"]
    assert set(stats.dropped) == {"queue_full"} and stats.dropped["queue_full"] > 0
    assert ledger.totals() == {("logs", "queue_full"): stats.dropped["queue_full"]}
    assert len(sink.items) == stats.exported == core.exported
    assert max(sink.batches) <= 16


def test_items_go_out_oldest_first_in_bounded_batches(
    cores: Callable[..., BatchCore[Any]],
) -> None:
    sink = Sink()
    core = cores(sink, max_export_batch_size=4)
    for i in range(10):
        core.offer(i)
    assert core.force_flush(10)
    assert sink.items == list(range(10))
    assert max(sink.batches) <= 4


def test_a_full_batch_is_exported_without_waiting_for_the_delay(
    cores: Callable[..., BatchCore[Any]],
) -> None:
    sink = Sink()
    core = cores(sink, max_export_batch_size=4, schedule_delay=3600.0)
    for i in range(4):
        core.offer(i)
    wait_until(lambda: core.exported == 4, timeout=10)
    assert core.queued == 0


class CountingClock(FakeClock):
    """A fake clock that counts how often the worker has read it."""

    reads = 0

    def monotonic(self) -> float:
        self.reads += 1
        return super().monotonic()


def test_a_partial_batch_is_exported_after_the_schedule_delay_not_before(
    cores: Callable[..., BatchCore[Any]],
) -> None:
    sink = Sink()
    clock = CountingClock()
    core = cores(sink, max_export_batch_size=16, schedule_delay=5.0, clock=clock)
    core.offer("alone")
    reads = clock.reads
    wait_until(lambda: clock.reads >= reads + 3, timeout=10)  # it looked, and waited on
    clock.advance(4.9)
    reads = clock.reads
    wait_until(lambda: clock.reads >= reads + 3, timeout=10)
    assert sink.items == []
    clock.advance(0.1)
    wait_until(lambda: sink.items == ["alone"], timeout=10)


def test_the_worker_starts_on_the_first_offer_only(cores: Callable[..., BatchCore[Any]]) -> None:
    def workers() -> int:
        return sum(t.name == "otelkit-test" for t in threading.enumerate())

    before = workers()
    core = cores(Sink())
    assert workers() == before
    core.offer(1)
    assert workers() == before + 1


def test_exports_run_with_instrumentation_suppressed(
    cores: Callable[..., BatchCore[Any]],
) -> None:
    sink = Sink()
    core = cores(sink)
    core.offer(1)
    assert core.force_flush(10)
    assert sink.instrumented == [False]
    assert is_instrumentation_enabled()


def test_a_failed_export_is_counted(
    cores: Callable[..., BatchCore[Any]], ledger: DropLedger
) -> None:
    sink = Sink(result=False)
    core = cores(sink, ledger)
    for i in range(5):
        core.offer(i)
    assert core.force_flush(10)
    assert core.stats() == BatchStats(5, 0, {"export_failed": 5}, 0)
    assert ledger.totals() == {("logs", "export_failed"): 5}


def test_an_exporter_exception_is_counted_and_contained(
    cores: Callable[..., BatchCore[Any]], ledger: DropLedger
) -> None:
    sink = Sink()
    sink.error = ConnectionError("collector gone")
    before = internal_error_counts().get("batch.logs", 0)
    core = cores(sink, ledger)
    for i in range(3):
        core.offer(i)
    assert core.force_flush(10)
    assert core.dropped == {"export_failed": 3}
    assert internal_error_counts()["batch.logs"] == before + 1
    sink.error = None  # the worker survived and keeps exporting
    core.offer("next")
    assert core.force_flush(10)
    assert sink.items == ["next"]
    assert conserved(core.stats())


def test_shutdown_counts_what_is_left_as_shutdown(
    cores: Callable[..., BatchCore[Any]], ledger: DropLedger
) -> None:
    sink = Sink()
    core = cores(sink, ledger, max_queue_size=8, max_export_batch_size=4)
    held(core, sink)
    assert not core.shutdown(0.1)  # the held export outlives the deadline
    assert core.dropped == {"shutdown": 8}
    assert not core.offer("late")
    assert core.dropped == {"shutdown": 9}
    assert core.stats().queued == 4  # the batch still inside the exporter
    sink.gate.set()
    wait_until(lambda: core.exported == 4, timeout=10)
    stats = core.stats()
    assert stats == BatchStats(offered=13, exported=4, dropped={"shutdown": 9}, queued=0)
    assert ledger.totals() == {("logs", "shutdown"): 9}


def test_shutdown_exports_what_is_queued_in_time(cores: Callable[..., BatchCore[Any]]) -> None:
    sink = Sink()
    core = cores(sink)
    for i in range(40):
        core.offer(i)
    assert core.shutdown(10)
    assert sink.items == list(range(40))
    assert core.stats() == BatchStats(40, 40, {}, 0)


def test_force_flush_exports_what_was_queued(cores: Callable[..., BatchCore[Any]]) -> None:
    sink = Sink()
    core = cores(sink, schedule_delay=3600.0, max_export_batch_size=64)
    for i in range(10):
        core.offer(i)
    assert core.force_flush(10)
    assert sink.items == list(range(10))


def test_force_flush_gives_up_at_its_deadline(cores: Callable[..., BatchCore[Any]]) -> None:
    sink = Sink()
    core = cores(sink, max_queue_size=8, max_export_batch_size=4)
    held(core, sink)
    assert not core.force_flush(0.05)
    sink.gate.set()
    assert core.force_flush(10)
    assert core.exported == 12


def test_a_full_queue_drops_the_new_item_without_blocking(
    cores: Callable[..., BatchCore[Any]], ledger: DropLedger
) -> None:
    sink = Sink()
    core = cores(sink, ledger, max_queue_size=8, max_export_batch_size=4)
    held(core, sink)
    assert not core.offer("new")
    assert core.dropped == {"queue_full": 1}
    sink.gate.set()
    assert core.force_flush(10)
    assert ("queued", 7) in sink.items and "new" not in sink.items


def test_blocking_offers_wait_for_room_and_lose_nothing(
    cores: Callable[..., BatchCore[Any]],
) -> None:
    sink = Sink(delay=0.001)
    core = cores(sink, max_queue_size=8, max_export_batch_size=4, schedule_delay=0.01)
    results: list[bool] = []

    def reader() -> None:
        with blocking_offers(lambda: False):
            results.extend(core.offer(i) for i in range(500))

    thread = threading.Thread(target=reader)
    thread.start()
    thread.join(timeout=60)
    assert results == [True] * 500
    assert core.force_flush(10)
    assert core.stats() == BatchStats(500, 500, {}, 0)
    assert sink.items == list(range(500))


def test_a_blocked_offer_gives_up_and_counts_when_told_to_stop(
    cores: Callable[..., BatchCore[Any]], ledger: DropLedger
) -> None:
    sink = Sink()
    core = cores(sink, ledger, max_queue_size=8, max_export_batch_size=4)
    held(core, sink)
    stop = threading.Event()
    results: list[bool] = []

    def reader() -> None:
        with blocking_offers(stop.is_set):
            results.append(core.offer("waits"))

    thread = threading.Thread(target=reader)
    thread.start()
    wait_until(lambda: core.offered == 13, timeout=10)
    thread.join(timeout=0.2)
    assert thread.is_alive() and results == []  # still waiting for room
    stop.set()
    thread.join(timeout=10)
    assert results == [False]
    assert core.dropped == {"queue_full": 1}
    assert ledger.totals() == {("logs", "queue_full"): 1}
    sink.gate.set()


def test_blocking_offers_nest_and_restore_the_outer_predicate(
    cores: Callable[..., BatchCore[Any]],
) -> None:
    sink = Sink()
    core = cores(sink, max_queue_size=8, max_export_batch_size=4)
    held(core, sink)
    asked: list[str] = []
    with blocking_offers(lambda: asked.append("outer") or True):
        with blocking_offers(lambda: asked.append("inner") or True):
            assert not core.offer("a")
        assert not core.offer("b")
    assert not core.offer("c")  # outside: drops at once, asks nobody
    assert asked == ["inner", "outer"]
    assert core.dropped == {"queue_full": 3}
    sink.gate.set()


def test_a_blocked_offer_counts_shutdown_when_the_core_shuts_down(
    cores: Callable[..., BatchCore[Any]],
) -> None:
    sink = Sink()
    core = cores(sink, max_queue_size=8, max_export_batch_size=4)
    held(core, sink)
    results: list[bool] = []

    def reader() -> None:
        with blocking_offers(lambda: False):
            results.append(core.offer("waits"))

    thread = threading.Thread(target=reader)
    thread.start()
    wait_until(lambda: core.offered == 13, timeout=10)
    core.shutdown(0.05)
    thread.join(timeout=10)
    assert results == [False]
    assert core.dropped == {"shutdown": 9}
    sink.gate.set()


def test_the_ledger_counts_each_item_by_its_weight(
    cores: Callable[..., BatchCore[Any]], ledger: DropLedger
) -> None:
    sink = Sink(result=False)
    core = cores(sink, ledger, max_queue_size=8, max_export_batch_size=4, weight=len)
    core.offer("abc")  # export fails: 3 records
    assert core.force_flush(10)
    sink.result = True
    held(core, sink)  # items are 2-tuples
    core.offer("xy")  # queue full: 2 records
    core.shutdown(0.05)  # 8 queued 2-tuples left: 16 records
    sink.gate.set()
    assert ledger.totals() == {
        ("logs", "export_failed"): 3,
        ("logs", "queue_full"): 2,
        ("logs", "shutdown"): 16,
    }
    assert core.dropped == {"export_failed": 1, "queue_full": 1, "shutdown": 8}  # in items


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_queue_size": 0}, "BatchCore: max_queue_size must be a positive int, got 0"),
        ({"max_queue_size": 2.5}, "max_queue_size must be a positive int, got 2.5"),
        ({"max_export_batch_size": True}, "max_export_batch_size must be a positive int"),
        ({"schedule_delay": -1}, "schedule_delay must be a positive number, got -1"),
        ({"export_timeout": float("nan")}, "export_timeout must be a positive number"),
        (
            {"max_queue_size": 8, "max_export_batch_size": 9},
            r"max_export_batch_size \(9\) must be <= max_queue_size \(8\)",
        ),
    ],
)
def test_bad_core_options_are_rejected(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BatchCore(Sink(), signal="logs", drops=None, name="bad", **options)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_starts_empty_and_works(cores: Callable[..., BatchCore[Any]]) -> None:
    sink = Sink()
    core = cores(sink, schedule_delay=3600.0)
    for i in range(5):
        core.offer(("parent", i))
    pid = os.fork()
    if pid == 0:  # child: the parent's queued items are the parent's to export
        code = 1
        try:
            empty = core.stats() == BatchStats(0, 0, {}, 0)
            for i in range(3):
                core.offer(("child", i))
            flushed = core.force_flush(10)
            exported = sink.items == [("child", i) for i in range(3)]
            code = 0 if (empty and flushed and exported) else 1
        finally:
            os._exit(code)
    assert wait_child(pid) == 0
    assert core.force_flush(10)
    assert sink.items == [("parent", i) for i in range(5)]


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


# ---- the processors -----------------------------------------------------------------------
class RecordingSpanExporter(InMemorySpanExporter):
    def __init__(self, result: SpanExportResult = SpanExportResult.SUCCESS) -> None:
        super().__init__()
        self.result = result
        self.calls: list[str] = []

    def export(self, spans: Any) -> SpanExportResult:
        super().export(spans)
        return self.result

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.calls.append("force_flush")
        return True

    def shutdown(self) -> None:
        self.calls.append("shutdown")
        super().shutdown()


@pytest.fixture
def span_processor() -> Iterator[tuple[BatchSpanProcessor, RecordingSpanExporter, DropLedger]]:
    exporter = RecordingSpanExporter()
    drops = DropLedger(meter_provider=MeterProvider(shutdown_on_exit=False), clock=FakeClock())
    processor = BatchSpanProcessor(exporter, drops=drops, schedule_delay_millis=60_000)
    yield processor, exporter, drops
    processor.shutdown()


def test_sampled_spans_are_exported(span_processor: Any) -> None:
    processor, exporter, _ = span_processor
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    with provider.get_tracer("t").start_as_current_span("work"):
        pass
    assert processor.force_flush()
    assert [s.name for s in exporter.get_finished_spans()] == ["work"]
    assert exporter.calls == ["force_flush"]


def test_unsampled_spans_are_not_queued(span_processor: Any) -> None:
    processor, exporter, _ = span_processor
    unsampled = SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(TraceFlags.DEFAULT))
    processor.on_end(ReadableSpan("skipped", context=unsampled))
    assert processor.force_flush()
    assert exporter.get_finished_spans() == ()
    assert processor.core.offered == 0


def test_on_end_never_raises(span_processor: Any) -> None:
    processor, _, _ = span_processor
    before = internal_error_counts().get("batch.spans", 0)
    processor.on_end(object())  # no .context: contained, counted
    assert internal_error_counts()["batch.spans"] == before + 1


def test_a_failed_span_export_is_counted(span_processor: Any) -> None:
    processor, exporter, drops = span_processor
    exporter.result = SpanExportResult.FAILURE
    processor.on_end(ReadableSpan("lost", context=trace.SpanContext(1, 2, False, TraceFlags(1))))
    assert processor.force_flush()
    assert drops.totals() == {("spans", "export_failed"): 1}


def test_shutdown_exports_and_shuts_the_exporter_down_once(span_processor: Any) -> None:
    processor, exporter, drops = span_processor
    processor.on_end(ReadableSpan("last", context=trace.SpanContext(1, 2, False, TraceFlags(1))))
    processor.shutdown()
    processor.shutdown()
    assert exporter.calls == ["shutdown"]
    assert processor.core.exported == 1
    processor.on_end(ReadableSpan("late", context=trace.SpanContext(1, 3, False, TraceFlags(1))))
    assert drops.totals() == {("spans", "shutdown"): 1}


def test_with_encode_the_queue_and_the_exporter_get_what_it_makes_of_each_span() -> None:
    exporter = InMemorySpanExporter()
    drops = DropLedger(meter_provider=MeterProvider(shutdown_on_exit=False), clock=FakeClock())
    made: list[str] = []

    def encode(span: ReadableSpan) -> Any:
        if span.name == "bad":
            raise ValueError("cannot encode")
        made.append(span.name)
        return ("encoded", span.name)

    processor = BatchSpanProcessor(exporter, drops=drops, encode=encode)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for name in ("a", "bad", "b"):
        tracer.start_span(name).end()
    assert made == ["a", "b"]  # when each span ended, not when its batch went
    assert processor.force_flush()
    assert exporter.get_finished_spans() == (("encoded", "a"), ("encoded", "b"))
    assert processor.core.stats() == BatchStats(3, 2, {"processor_error": 1}, 0)
    assert drops.totals() == {("spans", "processor_error"): 1}
    processor.shutdown()


def test_the_log_processor_queues_a_context_free_copy() -> None:
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    processor = BatchLogRecordProcessor(exporter)
    resource = Resource.create({"service.name": "copy"})
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_log_record_processor(processor)
    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("t")
    with tracer.start_as_current_span("inside"):
        provider.get_logger("app").emit(LogRecord(body="hello"))
    provider.shutdown()
    (record,) = exporter.get_finished_logs()
    assert isinstance(record, ReadableLogRecord)
    assert record.log_record.body == "hello"
    assert record.log_record.context == {}  # the caller's context is not kept alive
    assert record.log_record.trace_id != 0  # the span's ids are still on the record
    assert record.resource is resource
    assert record.instrumentation_scope is not None and record.instrumentation_scope.name == "app"


def test_a_relayed_record_is_queued_as_it_is_not_copied() -> None:
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    processor = BatchLogRecordProcessor(exporter)
    resource = Resource.create({"service.name": "relayed"})
    relayed = RelayedLogRecord(body="from a child")
    processor.on_emit(ReadWriteLogRecord(relayed, resource=resource))
    processor.shutdown()
    (record,) = exporter.get_finished_logs()
    assert record.log_record is relayed  # nothing of the caller's to let go of: no copy
    assert record.resource is resource


def test_with_encode_the_log_queue_holds_what_it_makes_of_each_emitted_record() -> None:
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    drops = DropLedger(meter_provider=MeterProvider(shutdown_on_exit=False), clock=FakeClock())
    seen: list[Any] = []

    def encode(record: ReadWriteLogRecord) -> Any:
        seen.append(record.log_record.context)  # the emitted record, context and all
        if record.log_record.body == "bad":
            raise ValueError("cannot encode")
        return ("encoded", record.log_record.body)

    processor = BatchLogRecordProcessor(exporter, drops=drops, encode=encode)
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(processor)
    for body in ("a", "bad", "b"):
        provider.get_logger("app").emit(LogRecord(body=body))
    assert len(seen) == 3  # when each record was emitted, not when its batch went
    assert processor.core.force_flush(5)
    assert exporter.get_finished_logs() == (("encoded", "a"), ("encoded", "b"))
    assert (processor.core.stats(), drops.totals()) == (
        BatchStats(3, 2, {"processor_error": 1}, 0),
        {("logs", "processor_error"): 1},
    )
    processor.shutdown()


def test_a_record_or_span_that_cannot_be_queued_is_counted_as_dropped() -> None:
    drops = DropLedger(meter_provider=MeterProvider(shutdown_on_exit=False), clock=FakeClock())
    logs = BatchLogRecordProcessor(InMemoryLogRecordExporter(), drops=drops)  # type: ignore[no-untyped-call]
    spans = BatchSpanProcessor(InMemorySpanExporter(), drops=drops)
    logs.on_emit(object())  # type: ignore[arg-type]
    spans.on_end(object())  # type: ignore[arg-type]
    assert logs.core.stats() == BatchStats(1, 0, {"processor_error": 1}, 0)
    assert spans.core.stats() == BatchStats(1, 0, {"processor_error": 1}, 0)
    assert drops.totals() == {("logs", "processor_error"): 1, ("spans", "processor_error"): 1}
    logs.shutdown()
    spans.shutdown()


class FailingLogExporter(InMemoryLogRecordExporter):
    def export(self, batch: Any) -> LogRecordExportResult:
        return LogRecordExportResult.FAILURE


def test_a_failed_log_export_is_counted() -> None:
    drops = DropLedger(meter_provider=MeterProvider(shutdown_on_exit=False), clock=FakeClock())
    processor = BatchLogRecordProcessor(FailingLogExporter(), drops=drops)  # type: ignore[no-untyped-call]
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(processor)
    provider.get_logger("app").emit(LogRecord(body="lost"))
    provider.shutdown()
    assert drops.totals() == {("logs", "export_failed"): 1}


def test_100k_log_records_in_a_tight_loop_are_all_exported_or_counted() -> None:
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    drops = DropLedger(meter_provider=MeterProvider(shutdown_on_exit=False), clock=FakeClock())
    processor = BatchLogRecordProcessor(exporter, drops=drops)
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(processor)
    logger = provider.get_logger("app")
    for i in range(100_000):
        logger.emit(LogRecord(body="GET /api/items 200 in 12 ms", attributes={"request": i}))
    provider.shutdown()
    exported = len(exporter.get_finished_logs())
    assert exported + drops.total == 100_000
    assert set(drops.totals()) <= {("logs", "queue_full")}
    assert processor.core.stats() == BatchStats(
        100_000, exported, {"queue_full": drops.total} if drops.total else {}, 0
    )


# ---- options ------------------------------------------------------------------------------
def test_span_options_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "250")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10")
    monkeypatch.setenv("OTEL_BSP_EXPORT_TIMEOUT", "1500")
    core = BatchSpanProcessor(InMemorySpanExporter()).core
    assert (core.max_queue_size, core.schedule_delay) == (100, 0.25)
    assert (core.max_export_batch_size, core.export_timeout) == (10, 1.5)


def test_log_options_come_from_the_environment_and_arguments_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_BLRP_MAX_QUEUE_SIZE", "300")
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "20")
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    core = BatchLogRecordProcessor(exporter, max_queue_size=50).core
    assert (core.max_queue_size, core.schedule_delay) == (50, 0.02)
    assert core.max_export_batch_size == 50  # the default 512, clipped to the chosen queue


def test_spec_defaults_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MAX_QUEUE_SIZE", "SCHEDULE_DELAY", "MAX_EXPORT_BATCH_SIZE", "EXPORT_TIMEOUT"):
        monkeypatch.delenv(f"OTEL_BSP_{var}", raising=False)
        monkeypatch.delenv(f"OTEL_BLRP_{var}", raising=False)
    spans = BatchSpanProcessor(InMemorySpanExporter()).core
    logs = BatchLogRecordProcessor(InMemoryLogRecordExporter()).core  # type: ignore[no-untyped-call]
    assert (spans.max_queue_size, spans.schedule_delay, spans.max_export_batch_size) == (
        2048,
        5.0,
        512,
    )
    assert (logs.schedule_delay, logs.export_timeout) == (1.0, 30.0)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("OTEL_BSP_MAX_QUEUE_SIZE", "lots"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1.5"),
        ("OTEL_BSP_SCHEDULE_DELAY", "soon"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "-5"),
    ],
)
def test_a_malformed_environment_value_is_rejected(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=f"BatchSpanProcessor: {var} must be a positive"):
        BatchSpanProcessor(InMemorySpanExporter())


def test_an_explicit_batch_size_above_the_queue_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"max_export_batch_size \(600\) must be <= "):
        BatchLogRecordProcessor(
            InMemoryLogRecordExporter(),  # type: ignore[no-untyped-call]
            max_queue_size=500,
            max_export_batch_size=600,
        )


def test_bad_processor_arguments_name_the_option() -> None:
    with pytest.raises(
        ValueError, match="BatchSpanProcessor: max_queue_size must be a positive int"
    ):
        BatchSpanProcessor(InMemorySpanExporter(), max_queue_size=0)
    with pytest.raises(ValueError, match="schedule_delay_millis must be a positive number"):
        BatchSpanProcessor(InMemorySpanExporter(), schedule_delay_millis=0)
