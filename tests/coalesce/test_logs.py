"""CoalescingLogRecordProcessor: floods shrink to the first record plus a counted summary."""

from __future__ import annotations

import threading
import warnings
from typing import Any

import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import (
    LogRecordLimits,
    LogRecordProcessor,
    ReadableLogRecord,
    ReadWriteLogRecord,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otelkit._errors import internal_error_counts
from otelkit._sdk.logs import attribute_limits
from otelkit.coalesce import (
    COUNT_ATTRIBUTE,
    FIRST_TIMESTAMP_ATTRIBUTE,
    LAST_TIMESTAMP_ATTRIBUTE,
    WINDOW_ATTRIBUTE,
    CoalescingLogRecordProcessor,
    attributes_key,
)
from otelkit.coalesce._keys import call_site_key, message_key
from otelkit.testing import FakeClock, MemoryTelemetry

from .conftest import LogPipeline


class Spy(LogRecordProcessor):
    """A downstream that records what it is asked to do (and can be told to fail)."""

    def __init__(self, *, fail: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail = fail

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self.calls.append(("on_emit", log_record))
        if self.fail:
            raise RuntimeError("downstream is broken")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.calls.append(("force_flush", timeout_millis))
        return True

    def shutdown(self) -> None:
        self.calls.append(("shutdown", None))

    def emitted(self) -> list[ReadWriteLogRecord]:
        return [arg for name, arg in self.calls if name == "on_emit"]


HOST = Resource.create({"service.name": "host"})


def record(
    body: str = "boom",
    *,
    resource: Resource | None = None,
    attributes: dict[str, Any] | None = None,
    timestamp: int = 1,
) -> ReadWriteLogRecord:
    return ReadWriteLogRecord(
        LogRecord(
            timestamp=timestamp,
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body=body,
            attributes=attributes,
        ),
        resource=resource or HOST,
        instrumentation_scope=InstrumentationScope("tests"),
    )


def test_a_flood_becomes_the_first_record_then_one_summary(log_pipeline: LogPipeline) -> None:
    for _ in range(1000):
        log_pipeline.logger.warning("disk %s is full", "/var")
    assert log_pipeline.bodies() == ["disk /var is full"]  # the first left at once
    log_pipeline.clock.advance(10)
    first, summary = log_pipeline.records()
    attrs = summary.log_record.attributes
    assert attrs is not None
    assert attrs[COUNT_ATTRIBUTE] == 1000
    assert attrs[WINDOW_ATTRIBUTE] == 10.0
    assert attrs[FIRST_TIMESTAMP_ATTRIBUTE] == first.log_record.timestamp
    assert attrs[LAST_TIMESTAMP_ATTRIBUTE] >= attrs[FIRST_TIMESTAMP_ATTRIBUTE]
    assert summary.log_record.body == first.log_record.body
    assert summary.log_record.severity_number == first.log_record.severity_number
    assert summary.log_record.severity_text == first.log_record.severity_text
    assert summary.instrumentation_scope == first.instrumentation_scope
    assert summary.resource == first.resource
    assert attrs["code.line.number"] == first.log_record.attributes["code.line.number"]  # type: ignore[index]
    assert summary.log_record.timestamp == int(log_pipeline.clock.time() * 1e9)


def test_distinct_messages_all_pass_without_summaries(log_pipeline: LogPipeline) -> None:
    for i in range(50):
        log_pipeline.logger.warning("job %d failed", i)
    log_pipeline.clock.advance(10)
    assert len(log_pipeline.records()) == 50
    assert log_pipeline.summaries() == []


def test_only_true_repeats_merge_by_default(log_pipeline: LogPipeline) -> None:
    log = log_pipeline.logger
    for host in ("a", "b", "a", "a"):
        log.warning("blocked %s", host)
    log.error("blocked %s", "a")  # another severity: another key
    try:
        raise KeyError("x")
    except KeyError:
        log.warning("blocked %s", "a", exc_info=True)  # another exception type: another key
    log_pipeline.clock.advance(10)
    counts = {
        s.log_record.body: s.log_record.attributes[COUNT_ATTRIBUTE]  # type: ignore[index]
        for s in log_pipeline.summaries()
    }
    assert counts == {"blocked a": 3}
    assert len(log_pipeline.records()) == 5  # a, b, error a, exception a, summary


@pytest.mark.parametrize("log_options", [{"key": "call_site"}])
def test_call_site_key_merges_across_arguments(log_pipeline: LogPipeline) -> None:
    for host in ("a", "b", "c"):
        log_pipeline.logger.warning("blocked %s", host)  # one line: one call site
    log_pipeline.logger.warning("blocked %s", "d")  # another line
    log_pipeline.clock.advance(10)
    assert log_pipeline.bodies() == ["blocked a", "blocked d", "blocked a"]
    (summary,) = log_pipeline.summaries()
    assert summary.log_record.attributes[COUNT_ATTRIBUTE] == 3  # type: ignore[index]


@pytest.mark.parametrize("log_options", [{"key": attributes_key("route")}])
def test_attributes_key_merges_on_the_chosen_attributes(log_pipeline: LogPipeline) -> None:
    for i, route in enumerate(["/a", "/b", "/a", "/a"]):
        log_pipeline.logger.warning("slow request %d", i, extra={"route": route})
    log_pipeline.clock.advance(10)
    assert log_pipeline.bodies() == ["slow request 0", "slow request 1", "slow request 0"]
    assert log_pipeline.summaries()[0].log_record.attributes[COUNT_ATTRIBUTE] == 3  # type: ignore[index]


@pytest.mark.parametrize("log_options", [{"key": lambda r: r.log_record.severity_number}])
def test_any_callable_can_be_the_key(log_pipeline: LogPipeline) -> None:
    log_pipeline.logger.warning("one")
    log_pipeline.logger.warning("two")
    log_pipeline.logger.info("three")
    log_pipeline.clock.advance(10)
    assert log_pipeline.bodies() == ["one", "three", "one"]


def test_the_summary_keeps_the_first_records_trace_context(log_pipeline: LogPipeline) -> None:
    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("t")
    with tracer.start_as_current_span("request") as span:
        log_pipeline.logger.warning("retrying")
        log_pipeline.logger.warning("retrying")
    log_pipeline.clock.advance(10)  # the timer runs outside the span
    first, summary = log_pipeline.records()
    context = span.get_span_context()
    for item in (first, summary):
        assert item.log_record.trace_id == context.trace_id
        assert item.log_record.span_id == context.span_id
        assert item.log_record.trace_flags == context.trace_flags


def test_repeats_from_processes_of_one_service_merge_under_the_first_repeats_resource(
    fake_clock: FakeClock,
) -> None:
    spy = Spy()
    processor = CoalescingLogRecordProcessor(spy, clock=fake_clock)
    for pid in (11, 12, 13, 11):
        # a relay may bring a new (equal) resource object with every batch
        child = {"service.name": "worker", "process.pid": pid, "service.instance.id": str(pid)}
        processor.on_emit(record(resource=Resource.create(child)))
    fake_clock.advance(10)
    first, summary = spy.emitted()
    assert summary.log_record.attributes[COUNT_ATTRIBUTE] == 4  # type: ignore[index]
    assert first.resource.attributes["process.pid"] == 11  # type: ignore[union-attr]
    assert summary.resource.attributes["process.pid"] == 12  # type: ignore[union-attr]


def test_repeats_from_different_services_never_merge(fake_clock: FakeClock) -> None:
    spy = Spy()
    processor = CoalescingLogRecordProcessor(spy, clock=fake_clock)
    child = {"service.name": "plugin", "process.pid": 4242}
    for _ in range(3):
        processor.on_emit(record())
        processor.on_emit(record(resource=Resource.create(child)))
    fake_clock.advance(10)
    emitted = spy.emitted()
    assert len(emitted) == 4  # host first, child first, two summaries
    summaries = {r.resource.attributes.get("service.name"): r for r in emitted[2:]}
    assert summaries["plugin"].resource == Resource.create(child)
    assert summaries["plugin"].log_record.attributes[COUNT_ATTRIBUTE] == 3  # type: ignore[index]
    assert summaries["host"].log_record.attributes[COUNT_ATTRIBUTE] == 3  # type: ignore[index]


def test_per_resource_false_merges_every_resource_under_the_first_repeats(
    fake_clock: FakeClock,
) -> None:
    spy = Spy()
    processor = CoalescingLogRecordProcessor(spy, clock=fake_clock, per_resource=False)
    for service in ("a", "b", "c", "a"):
        processor.on_emit(record(resource=Resource.create({"service.name": service})))
    fake_clock.advance(10)
    first, summary = spy.emitted()
    assert summary.log_record.attributes[COUNT_ATTRIBUTE] == 4  # type: ignore[index]
    assert summary.resource.attributes["service.name"] == "b"  # type: ignore[union-attr]
    assert first.resource.attributes["service.name"] == "a"  # type: ignore[union-attr]


def test_presets_accept_readable_log_records() -> None:
    rw = record(attributes={"code.file.path": "x.py", "code.line.number": 3, "route": "/a"})
    readable = ReadableLogRecord(
        rw.log_record, rw.resource or Resource.get_empty(), rw.instrumentation_scope
    )
    for key in (message_key, call_site_key, attributes_key("route")):
        assert key(readable) == key(rw)
    assert call_site_key(rw) != message_key(rw)


def test_a_failing_downstream_is_contained_and_counted(fake_clock: FakeClock) -> None:
    processor = CoalescingLogRecordProcessor(Spy(fail=True), clock=fake_clock)
    before = internal_error_counts()
    processor.on_emit(record())  # forwarded: raises downstream, not here
    processor.on_emit(record())
    fake_clock.advance(10)  # the summary fails downstream too, on the timer
    after = internal_error_counts()
    assert after.get("coalesce.logs.downstream", 0) == before.get("coalesce.logs.downstream", 0) + 1
    assert after.get("coalesce.logs", 0) == before.get("coalesce.logs", 0) + 1
    assert processor._engine.consumer_errors == 1


def test_a_failing_key_function_forwards_the_record_and_is_counted(fake_clock: FakeClock) -> None:
    def broken(_: object) -> object:
        raise ValueError("bad key")

    spy = Spy()
    processor = CoalescingLogRecordProcessor(spy, clock=fake_clock, key=broken)
    before = internal_error_counts().get("coalesce.logs", 0)
    processor.on_emit(record())
    processor.on_emit(record())
    assert len(spy.emitted()) == 2  # nothing lost
    assert internal_error_counts()["coalesce.logs"] == before + 2


def test_force_flush_emits_pending_summaries_then_flushes_downstream_within_the_deadline(
    fake_clock: FakeClock,
) -> None:
    spy = Spy()
    processor = CoalescingLogRecordProcessor(spy, clock=fake_clock)
    processor.on_emit(record())
    processor.on_emit(record())
    assert processor.force_flush(5000) is True
    names = [name for name, _ in spy.calls]
    assert names == ["on_emit", "on_emit", "force_flush"]
    assert spy.emitted()[1].log_record.attributes[COUNT_ATTRIBUTE] == 2  # type: ignore[index]
    assert 0 <= spy.calls[-1][1] <= 5000


def test_shutdown_emits_pending_summaries_then_shuts_downstream(fake_clock: FakeClock) -> None:
    spy = Spy()
    processor = CoalescingLogRecordProcessor(spy, clock=fake_clock)
    processor.on_emit(record())
    processor.on_emit(record())
    processor.shutdown()
    assert [name for name, _ in spy.calls] == ["on_emit", "on_emit", "shutdown"]
    assert fake_clock.pending_timers() == 0


def test_suppressed_and_overflow_are_counted_with_only_the_signal_attribute(
    fake_clock: FakeClock, memory_telemetry: MemoryTelemetry
) -> None:
    processor = CoalescingLogRecordProcessor(
        Spy(), clock=fake_clock, max_keys=2, meter_provider=memory_telemetry.meter_provider
    )
    for body in ("a", "a", "a", "b", "c", "d"):
        processor.on_emit(record(body))
    fake_clock.advance(10)  # windows close: counts are published
    suppressed = memory_telemetry.metric_points("otelkit.coalesce.suppressed")
    overflow = memory_telemetry.metric_points("otelkit.coalesce.overflow")
    assert [(attrs, p.value) for attrs, p in suppressed] == [({"signal": "logs"}, 2)]
    assert [(attrs, p.value) for attrs, p in overflow] == [({"signal": "logs"}, 2)]


def test_the_summary_keeps_its_own_attributes_at_the_attribute_limit(
    fake_clock: FakeClock,
) -> None:
    spy = Spy()
    processor = CoalescingLogRecordProcessor(spy, clock=fake_clock)
    many = {f"a{i}": i for i in range(attribute_limits(LogRecordLimits())[0] or 128)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        processor.on_emit(record(attributes=many))
        processor.on_emit(record(attributes=many))
        fake_clock.advance(10)
    summary = spy.emitted()[-1]
    assert summary.log_record.attributes[COUNT_ATTRIBUTE] == 2  # type: ignore[index]
    assert summary.dropped_attributes == 0


def test_concurrent_producers_lose_nothing(fake_clock: FakeClock) -> None:
    spy = Spy()
    processor = CoalescingLogRecordProcessor(spy, clock=fake_clock)
    records = [record() for _ in range(5000)]
    threads = [
        threading.Thread(target=lambda: [processor.on_emit(r) for r in records]) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    processor.force_flush()
    _, summary = spy.emitted()
    assert summary.log_record.attributes[COUNT_ATTRIBUTE] == 20_000  # type: ignore[index]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"window": -1}, ValueError, "window"),
        ({"max_keys": 0}, ValueError, "max_keys"),
        ({"key": "nope"}, ValueError, "'message', 'call_site'"),
        ({"key": 42}, TypeError, "key"),
        ({"per_resource": "no"}, TypeError, "per_resource"),
    ],
)
def test_bad_options_name_the_option(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        CoalescingLogRecordProcessor(Spy(), **options)  # type: ignore[arg-type]


def test_a_downstream_that_is_not_a_processor_is_rejected() -> None:
    with pytest.raises(TypeError, match="downstream must be a LogRecordProcessor"):
        CoalescingLogRecordProcessor(object())  # type: ignore[arg-type]


@pytest.mark.parametrize("log_options", [{"max_keys": 1}])
def test_with_max_keys_open_new_messages_pass_and_repeats_still_merge(
    log_pipeline: LogPipeline,
) -> None:
    log = log_pipeline.logger
    log.warning("disk full")  # opens the only window
    log.warning("timeout")  # a new message: passes through, counted as overflow
    log.error("disk full")  # same body, another severity: another key, passes too
    log.warning("disk full")  # a repeat of the open window: suppressed
    log.warning("disk full")
    assert log_pipeline.bodies() == ["disk full", "timeout", "disk full"]
    log_pipeline.clock.advance(10)
    [summary] = log_pipeline.summaries()
    assert summary.log_record.attributes is not None
    assert summary.log_record.attributes["otelkit.coalesce.count"] == 3
    assert log_pipeline.metric("otelkit.coalesce.overflow") == 2
    assert log_pipeline.metric("otelkit.coalesce.suppressed") == 2


def test_importing_the_coalescing_processors_loads_no_relay_module() -> None:
    # Every process that coalesces imports them; only a relay host hands on relayed records.
    import subprocess
    import sys

    code = (
        "import sys, otelkit.coalesce\n"
        "print(sorted(m for m in sys.modules if m.startswith('otelkit.relay')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
