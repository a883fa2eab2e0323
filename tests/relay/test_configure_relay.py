"""The relay through ``otelkit.configure()``: a host with ``relay=True`` and its children."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator

import pytest
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import otelkit
from otelkit.coalesce import CoalescingLogRecordProcessor
from otelkit.relay import RELAY_ENV, RelayHost
from otelkit.testing import FakeClock, MemoryTelemetry, wait_until

from . import workers

# Python 3.12+ warns when a process with threads forks; forking such a process is the
# behaviour under test here (fork children of a relay host or child).
pytestmark = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


@pytest.fixture
def configured_host() -> Iterator[otelkit.Telemetry]:
    tel = otelkit.configure(
        service_name="relay-host", exporter="memory", relay=True, coalesce_window=False
    )
    try:
        yield tel
    finally:
        tel.shutdown()


def _logs(tel: otelkit.Telemetry) -> list[otelkit.Telemetry]:
    assert tel.memory is not None
    return list(tel.memory.logs.get_finished_logs())  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_configured_children_export_through_the_configured_host(
    configured_host: otelkit.Telemetry, method: str
) -> None:
    assert configured_host.relay_host is not None
    assert os.environ[RELAY_ENV] == configured_host.relay_host.env_value
    ctx = multiprocessing.get_context(method)
    procs = [ctx.Process(target=workers.configured_child_logs, args=(method, 3)) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    wait_until(lambda: len(_logs(configured_host)) >= 6, timeout=20)
    records = _logs(configured_host)
    assert {r.log_record.body for r in records} == {method}  # type: ignore[attr-defined]
    resources = {r.resource.attributes["process.pid"] for r in records}  # type: ignore[attr-defined]
    assert resources == {proc.pid for proc in procs}
    names = {r.resource.attributes["service.name"] for r in records}  # type: ignore[attr-defined]
    assert names == {"configured-child"}


def test_forked_child_of_a_configured_host_relays_without_a_call_of_its_own(
    configured_host: otelkit.Telemetry,
) -> None:
    proc = multiprocessing.get_context("fork").Process(
        target=workers.inherited_child_logs, args=("from the fork",)
    )
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    wait_until(lambda: len(_logs(configured_host)) >= 1, timeout=20)
    # With OTELKIT_SDK_FALLBACKS=1 the child also relays the warning that its metrics are muted.
    (record,) = [
        r for r in _logs(configured_host) if "fresh metric state" not in str(r.log_record.body)
    ]  # type: ignore[attr-defined]
    assert record.log_record.body == "from the fork"  # type: ignore[attr-defined]
    assert record.resource.attributes["process.pid"] == proc.pid  # type: ignore[attr-defined]


@pytest.fixture
def coalescing_host(
    memory_telemetry: MemoryTelemetry, fake_clock: FakeClock
) -> Iterator[RelayHost]:
    host = RelayHost(
        span_processor=SimpleSpanProcessor(memory_telemetry.span_exporter),
        log_processor=CoalescingLogRecordProcessor(
            SimpleLogRecordProcessor(memory_telemetry.log_exporter), window=60.0, clock=fake_clock
        ),
    )
    host.start()
    os.environ[RELAY_ENV] = host.env_value
    try:
        yield host
    finally:
        host.close(5)
        os.environ.pop(RELAY_ENV, None)


def _four_children_log_the_same_warning(host: RelayHost) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=workers.log_same_warning, args=(1000,)) for _ in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    wait_until(lambda: host.stats["logs"] == 4000, timeout=30)


def test_four_children_same_warning_become_one_record_and_one_summary_of_4000(
    coalescing_host: RelayHost, memory_telemetry: MemoryTelemetry, fake_clock: FakeClock
) -> None:
    _four_children_log_the_same_warning(coalescing_host)
    assert len(memory_telemetry.logs()) == 1  # the first went out before the window closed
    fake_clock.advance(60.0)
    records = memory_telemetry.logs()
    assert len(records) == 2
    assert records[1].log_record.attributes["otelkit.coalesce.count"] == 4000  # type: ignore[index]


def _host_and_child_log_the_payment_error(tel: otelkit.Telemetry) -> None:
    workers.log_payment_error()
    proc = multiprocessing.get_context("spawn").Process(
        target=workers.configured_child_logs_payment_error, args=("relay-host",)
    )
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    assert tel.relay_host is not None
    wait_until(lambda: tel.relay_host is not None and tel.relay_host.stats["logs"] >= 1, timeout=20)


def test_the_same_log_exception_in_host_and_child_exports_the_same_fields() -> None:
    tel = otelkit.configure(
        service_name="relay-host", exporter="memory", relay=True, coalesce_window=False
    )
    try:
        _host_and_child_log_the_payment_error(tel)
        host, child = sorted(
            (r for r in _logs(tel) if r.log_record.body == "payment failed"),  # type: ignore[attr-defined]
            key=lambda r: r.resource.attributes["process.pid"] != os.getpid(),  # type: ignore[attr-defined]
        )
    finally:
        tel.shutdown()
    assert child.resource.attributes["process.pid"] != os.getpid()  # type: ignore[attr-defined]
    assert dict(child.log_record.attributes) == dict(host.log_record.attributes)  # type: ignore[attr-defined]
    attributes = host.log_record.attributes  # type: ignore[attr-defined]
    assert attributes["exception.type"] == f"{workers.__name__}.PaymentError"
    assert attributes["exception.message"] == "('boom', 42)"
    assert attributes["code.function.name"] == "log_payment_error"
    for field in ("severity_number", "severity_text", "body", "event_name"):
        assert getattr(child.log_record, field) == getattr(host.log_record, field)  # type: ignore[attr-defined]
    assert child.instrumentation_scope.name == host.instrumentation_scope.name  # type: ignore[attr-defined]


def test_the_same_log_exception_in_host_and_child_coalesces_into_one_summary() -> None:
    tel = otelkit.configure(
        service_name="relay-host", exporter="memory", relay=True, coalesce_window=60.0
    )
    try:
        _host_and_child_log_the_payment_error(tel)
    finally:
        tel.shutdown()  # closes the open window: its summary goes out
    records = [r for r in _logs(tel) if r.log_record.body == "payment failed"]  # type: ignore[attr-defined]
    assert len(records) == 2
    first, summary = records
    assert "otelkit.coalesce.count" not in first.log_record.attributes  # type: ignore[attr-defined]
    assert summary.log_record.attributes["otelkit.coalesce.count"] == 2  # type: ignore[attr-defined]
