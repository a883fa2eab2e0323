"""RelayHost over real Unix sockets: authentication, limits, fidelity, drop reports."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk._logs import ReadWriteLogRecord
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otelkit._drops import DropLedger
from otelkit.relay import RelayHost
from otelkit.relay._encode import encode_log_request, encode_resource
from otelkit.relay._wire import (
    FRAME_LOGS,
    FRAME_METRICS,
    FRAME_SPANS,
    MAGIC,
    REPLY_SIZE,
    STATUS_VERSION,
    VERSION,
    encode_drops,
    encode_frame,
)
from otelkit.testing import FakeClock, MemoryTelemetry, wait_until

from .raw_peer import authed as _authed
from .raw_peer import closed_by_peer as _closed_by_peer
from .raw_peer import connect as _connect

# Python 3.12+ warns when a process with threads forks; forking such a process is the
# behaviour under test here (fork children of a relay host or child).
pytestmark = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


RESOURCE = encode_resource(Resource({"service.name": "raw-child"}))


def _entry(body: str) -> tuple:  # type: ignore[type-arg]
    return (1, 2, 9, "INFO", body, {"k": 1}, 0, 0, 0, "raw", None, None, 0)


def _logs_frame(*bodies: str) -> bytes:
    return encode_frame(FRAME_LOGS, encode_log_request(RESOURCE, [_entry(b) for b in bodies]))


@pytest.fixture
def clocked_host(memory_telemetry: MemoryTelemetry, fake_clock: FakeClock) -> Iterator[RelayHost]:
    host = RelayHost(
        span_processor=SimpleSpanProcessor(memory_telemetry.span_exporter),
        log_processor=SimpleLogRecordProcessor(memory_telemetry.log_exporter),
        meter_provider=memory_telemetry.meter_provider,
        clock=fake_clock,
        max_frame_bytes=64 * 1024,
        drop_report_interval=10.0,
    )
    host.start()
    yield host
    host.close(5)


def _count(telemetry: MemoryTelemetry, name: str, **attrs: str) -> int:
    return sum(
        int(point.value)
        for found, point in telemetry.metric_points(name)
        if all(found.get(k) == v for k, v in attrs.items())
    )


def test_socket_is_private_and_close_removes_its_directory(clocked_host: RelayHost) -> None:
    path = clocked_host.address.path
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert clocked_host.env_value.endswith(":" + path)
    clocked_host.close(5)
    assert not os.path.exists(os.path.dirname(path))


def test_wrong_token_is_rejected_and_counted(
    clocked_host: RelayHost, memory_telemetry: MemoryTelemetry
) -> None:
    with _connect(clocked_host, token=bytes(16)) as sock:
        assert _closed_by_peer(sock)
    assert (
        _count(memory_telemetry, "otelkit.relay.rejected", **{"otelkit.relay.reason": "token"}) == 1
    )


def test_peer_without_handshake_is_rejected(
    clocked_host: RelayHost, memory_telemetry: MemoryTelemetry
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(clocked_host.address.path)
        sock.sendall(_logs_frame("sneaky") + b"\x00" * 32)
        assert _closed_by_peer(sock)
    assert memory_telemetry.logs() == ()
    assert clocked_host.stats["rejected"] == 1


def test_silent_peer_is_dropped_after_the_handshake_timeout(
    clocked_host: RelayHost, fake_clock: FakeClock
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(clocked_host.address.path)
        wait_until(lambda: len(clocked_host._conns) == 1, timeout=5)
        fake_clock.advance(6.0)
        assert _closed_by_peer(sock)
    assert clocked_host.stats["rejected"] == 1


def test_oversized_and_malformed_frames_close_only_that_connection(
    clocked_host: RelayHost, memory_telemetry: MemoryTelemetry
) -> None:
    good = _authed(clocked_host)
    oversized = _authed(clocked_host)
    malformed = _authed(clocked_host)
    oversized.sendall(encode_frame(FRAME_LOGS, b"\x0a" * (64 * 1024 + 1))[:1000])
    malformed.sendall(encode_frame(FRAME_SPANS, b"\xff\xff\xff garbage"))
    assert _closed_by_peer(oversized) and _closed_by_peer(malformed)
    good.sendall(_logs_frame("still served"))
    wait_until(lambda: len(memory_telemetry.logs()) == 1, timeout=5)
    assert memory_telemetry.logs()[0].log_record.body == "still served"
    errors = {
        found["otelkit.relay.reason"]: int(point.value)
        for found, point in memory_telemetry.metric_points("otelkit.relay.frame_errors")
    }
    assert errors == {"oversized": 1, "malformed": 1}
    for sock in (good, oversized, malformed):
        sock.close()


def test_records_keep_the_child_resource_scope_and_fields(
    clocked_host: RelayHost, memory_telemetry: MemoryTelemetry
) -> None:
    with _authed(clocked_host) as sock:
        sock.sendall(_logs_frame("a", "b"))
        wait_until(lambda: len(memory_telemetry.logs()) == 2, timeout=5)
    first = memory_telemetry.logs()[0]
    assert first.resource.attributes["service.name"] == "raw-child"
    assert first.instrumentation_scope is not None
    assert first.instrumentation_scope.name == "raw"
    assert (first.log_record.timestamp, first.log_record.observed_timestamp) == (1, 2)
    assert first.log_record.severity_text == "INFO"
    assert dict(first.log_record.attributes or {}) == {"k": 1}
    assert (
        _count(memory_telemetry, "otelkit.relay.records", **{"otelkit.relay.signal": "logs"}) == 2
    )


class Failing(SimpleLogRecordProcessor):
    """A log processor that raises on every record."""

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        raise RuntimeError("broken processor")


def test_a_failing_processor_counts_each_record_as_dropped(
    memory_telemetry: MemoryTelemetry, fake_clock: FakeClock
) -> None:
    ledger = DropLedger(meter_provider=memory_telemetry.meter_provider, clock=fake_clock)
    host = RelayHost(
        span_processor=SimpleSpanProcessor(memory_telemetry.span_exporter),
        log_processor=Failing(memory_telemetry.log_exporter),
        meter_provider=memory_telemetry.meter_provider,
        _drops=ledger,
    )
    host.start()
    try:
        with _authed(host) as sock:
            sock.sendall(_logs_frame("a", "b", "c"))
            wait_until(lambda: host.stats["logs"] == 3, timeout=5)
    finally:
        host.close(5)
    assert ledger.totals() == {("logs", "processor_error"): 3}


class Gated(SimpleLogRecordProcessor):
    """A log processor whose first record waits for ``gate`` (the serving thread is busy)."""

    def __init__(self, exporter: Any) -> None:
        super().__init__(exporter)
        self.entered = threading.Event()
        self.gate = threading.Event()

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self.entered.set()
        assert self.gate.wait(10), "the test never opened the gate"
        super().on_emit(log_record)


def test_frames_left_unread_at_the_close_deadline_are_counted_as_dropped(
    memory_telemetry: MemoryTelemetry, fake_clock: FakeClock
) -> None:
    processor = Gated(memory_telemetry.log_exporter)
    ledger = DropLedger(meter_provider=memory_telemetry.meter_provider, clock=fake_clock)
    host = RelayHost(
        span_processor=SimpleSpanProcessor(memory_telemetry.span_exporter),
        log_processor=processor,
        meter_provider=memory_telemetry.meter_provider,
        _drops=ledger,
        clock=fake_clock,
    )
    host.start()
    with _authed(host) as sock:
        sock.sendall(_logs_frame("read"))
        assert processor.entered.wait(5)  # the serving thread is inside that record's emit
        sock.sendall(_logs_frame("b1", "b2") + _logs_frame("c1", "c2", "c3"))
        sock.sendall(encode_drops(4, 0, 0))
        sock.sendall(_logs_frame("cut")[:-3])  # a frame the child never finished
        closing = threading.Thread(target=host.close, args=(5,))
        closing.start()
        wait_until(lambda: host._stopping, timeout=5)
        fake_clock.advance(10)  # past the drain deadline: nothing more is served
        processor.gate.set()
        closing.join(10)
        assert not closing.is_alive()
    assert [r.log_record.body for r in memory_telemetry.logs()][:1] == ["read"]
    assert ledger.totals() == {("logs", "shutdown"): 5, ("logs", "child_buffer_full"): 4}
    assert host.stats["frame_errors"] == 1  # the unfinished frame


def test_child_drop_reports_become_a_counter_and_one_log_record_per_interval(
    clocked_host: RelayHost, memory_telemetry: MemoryTelemetry, fake_clock: FakeClock
) -> None:
    with _authed(clocked_host) as sock:
        sock.sendall(encode_drops(5, 2) + encode_drops(3, 0))
        wait_until(lambda: clocked_host.stats["dropped_logs"] == 8, timeout=5)
    assert (
        _count(memory_telemetry, "otelkit.relay.dropped", **{"otelkit.relay.signal": "logs"}) == 8
    )
    assert (
        _count(memory_telemetry, "otelkit.relay.dropped", **{"otelkit.relay.signal": "spans"}) == 2
    )
    assert memory_telemetry.logs() == ()
    fake_clock.advance(10.0)
    (report,) = memory_telemetry.logs()
    assert report.log_record.attributes == {
        "otelkit.export.dropped.logs.child_buffer_full": 8,
        "otelkit.export.dropped.spans.child_buffer_full": 2,
    }
    fake_clock.advance(10.0)
    assert len(memory_telemetry.logs()) == 1  # nothing new dropped: no new report


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    garbage=st.one_of(
        st.binary(max_size=3000),
        st.builds(
            lambda t, p: encode_frame(t, p), st.sampled_from([1, 2, 3]), st.binary(max_size=300)
        ),
        st.builds(lambda n: _logs_frame("x")[:n], st.integers(min_value=1, max_value=60)),
    ),
    authenticate=st.booleans(),
)
def test_fuzzed_peers_never_crash_or_hang_the_host(
    clocked_host: RelayHost, memory_telemetry: MemoryTelemetry, garbage: bytes, authenticate: bool
) -> None:
    if authenticate:
        evil = _authed(clocked_host)
    else:
        evil = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        evil.settimeout(5)
        evil.connect(clocked_host.address.path)
    with contextlib.suppress(OSError):  # the host may already have hung up on it
        evil.sendall(garbage)
    evil.close()
    before = len(memory_telemetry.logs())
    with _authed(clocked_host) as good:
        good.sendall(_logs_frame("alive"))
        wait_until(lambda: len(memory_telemetry.logs()) > before, timeout=5)
    assert clocked_host._thread is not None and clocked_host._thread.is_alive()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_frame_bytes": 0}, ValueError),
        ({"drop_report_interval": -1}, ValueError),
        ({"address": "1:00:/x"}, TypeError),
    ],
)
def test_bad_options_are_refused(
    memory_telemetry: MemoryTelemetry, options: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        RelayHost(
            span_processor=SimpleSpanProcessor(memory_telemetry.span_exporter),
            log_processor=SimpleLogRecordProcessor(memory_telemetry.log_exporter),
            **options,  # type: ignore[arg-type]
        )


_FORKED_HOST: list[RelayHost] = []


def _check_forked_host() -> None:
    host = _FORKED_HOST[0]
    # The child neither serves nor removes anything; its socket copies are closed.
    assert host._stopping and host._dir is None
    assert host._listener.fileno() == -1
    host.close(1)  # harmless in the child


def test_forked_child_leaves_the_parents_relay_alone(
    relay_host: RelayHost, memory_telemetry: MemoryTelemetry
) -> None:
    import multiprocessing

    _FORKED_HOST[:] = [relay_host]
    proc = multiprocessing.get_context("fork").Process(target=_check_forked_host)
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    assert os.path.exists(relay_host.address.path)
    with _authed(relay_host) as sock:
        sock.sendall(_logs_frame("after the fork"))
        wait_until(lambda: len(memory_telemetry.logs()) == 1, timeout=5)


def test_a_child_of_another_wire_version_is_refused_with_the_reason(
    clocked_host: RelayHost, memory_telemetry: MemoryTelemetry
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(clocked_host.address.path)
        sock.sendall(MAGIC + bytes([VERSION - 1]) + clocked_host.address.token)
        reply = sock.recv(REPLY_SIZE)
        assert reply == MAGIC + bytes([VERSION, STATUS_VERSION])
        assert _closed_by_peer(sock)
    assert (
        _count(memory_telemetry, "otelkit.relay.rejected", **{"otelkit.relay.reason": "version"})
        == 1
    )


def test_a_child_refused_for_its_version_says_so_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from otelkit.relay import _link

    with pytest.raises(ConnectionError, match=f"relay version {VERSION + 1}, this child {VERSION}"):
        _link._refused(MAGIC + bytes([VERSION + 1, STATUS_VERSION]))
    assert "run the same otelkit release" in capsys.readouterr().err


def test_a_metrics_frame_that_does_not_decode_closes_only_that_connection(
    clocked_host: RelayHost, memory_telemetry: MemoryTelemetry
) -> None:
    good = _authed(clocked_host)
    bad = _authed(clocked_host)
    bad.sendall(encode_frame(FRAME_METRICS, b"\x0a\x05\x0a\x03xyz garbage"))
    assert _closed_by_peer(bad)
    good.sendall(_logs_frame("still served"))
    wait_until(lambda: len(memory_telemetry.logs()) == 1, timeout=5)
    assert clocked_host.stats["frame_errors"] == 1
    assert (
        _count(
            memory_telemetry, "otelkit.relay.frame_errors", **{"otelkit.relay.reason": "malformed"}
        )
        == 1
    )
    good.close()
    bad.close()


def test_relayed_metrics_are_exported_under_the_childs_resource(
    memory_telemetry: MemoryTelemetry,
) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from otelkit._exporters import RelayedMetricsMemory
    from otelkit.relay._metrics import encode_metrics_request

    exported = RelayedMetricsMemory()
    host = RelayHost(
        span_processor=SimpleSpanProcessor(memory_telemetry.span_exporter),
        log_processor=SimpleLogRecordProcessor(memory_telemetry.log_exporter),
        meter_provider=memory_telemetry.meter_provider,
        metric_exporter=exported,
    )
    host.start()
    try:
        reader = InMemoryMetricReader()
        child_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
        child_provider.get_meter("child").create_counter("child.things").add(3)
        data = reader.get_metrics_data()
        assert data is not None
        identity = Resource({"service.name": "kid", "process.pid": 4242})
        with _authed(host) as sock:
            sock.sendall(encode_frame(FRAME_METRICS, encode_metrics_request(data, identity)))
            wait_until(lambda: len(exported.batches) == 1, timeout=5)
        (batch,) = exported.batches
        (resource_metrics,) = batch.resource_metrics
        assert dict(resource_metrics.resource.attributes) == {
            "service.name": "kid",
            "process.pid": 4242,
        }
        (point,) = resource_metrics.scope_metrics[0].metrics[0].data.data_points
        assert point.value == 3  # type: ignore[union-attr]
        assert host.stats["metric_points"] == 1
    finally:
        host.close(5)


def test_stats_is_a_read_only_snapshot(clocked_host: RelayHost) -> None:
    stats = clocked_host.stats
    with pytest.raises(TypeError):
        stats["logs"] = 5  # type: ignore[index]
    assert clocked_host.stats["logs"] == 0
