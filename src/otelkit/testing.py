"""Test helpers for code instrumented with otelkit.

Installed with the package, otelkit's pytest plugin (``otelkit._pytest_plugin``, which
imports this module only when a test uses one of them) offers these fixtures:

``fake_clock``
    A :class:`FakeClock` that moves only when the test calls ``advance()``.
``memory_telemetry``
    A :class:`MemoryTelemetry`: private tracer, logger and meter providers writing to
    in-memory exporters. Nothing global is touched; pass its providers to the code under test.
``otlp_sink``
    An :class:`OtlpSink`: an OTLP/HTTP receiver on a free loopback port that decodes every
    request with ``opentelemetry-proto`` and keeps it for assertions.
``otelkit_memory``
    ``otelkit.configure(exporter="memory")`` for the test, shut down afterwards; the
    returned :class:`otelkit.Telemetry` has ``.memory``, a :class:`MemoryExporters`:
    ``.spans`` / ``.logs`` / ``.metrics`` (SDK in-memory exporters and reader).
``rotel_collector``
    A real OTLP Collector (:class:`RotelCollector`, the ``rotel`` package's agent) on free
    loopback ports, forwarding everything to ``otlp_sink``. Skips when ``rotel`` is not
    installed.
"""

from __future__ import annotations

import gzip
import http.server
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as ProtoLogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelkit import _testsupport
from otelkit._clock import FakeClock
from otelkit._pytest_plugin import (
    fake_clock,
    memory_telemetry,
    otelkit_memory,
    otlp_sink,
    rotel_collector,
)

if TYPE_CHECKING:
    from otelkit._exporters import MemoryExporters

__all__ = [
    "FakeClock",
    "MemoryExporters",
    "MemoryTelemetry",
    "OtlpSink",
    "RotelCollector",
    "fake_clock",
    "memory_telemetry",
    "otelkit_memory",
    "otlp_sink",
    "proto_attributes",
    "rotel_collector",
    "wait_until",
]


def __getattr__(name: str) -> Any:
    # MemoryExporters (the type of ``Telemetry.memory``) comes with otelkit's exporters and
    # batch processors: imported on first use, so a test that only uses OtlpSink does not pay.
    if name != "MemoryExporters":
        raise AttributeError(f"module 'otelkit.testing' has no attribute {name!r}")
    from otelkit._exporters import MemoryExporters

    globals()[name] = MemoryExporters
    return MemoryExporters


def wait_until(
    predicate: Callable[[], object], *, timeout: float = 10.0, interval: float = 0.02
) -> None:
    """Poll ``predicate`` until it is truthy; raise ``TimeoutError`` after ``timeout`` s.

    For real concurrency only (processes, sockets, databases); time windows use a FakeClock.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)


@dataclass
class MemoryTelemetry:
    """Private SDK providers that export synchronously to memory, for assertions."""

    resource: Resource = field(default_factory=lambda: Resource.create({"service.name": "test"}))

    def __post_init__(self) -> None:
        self.span_exporter = InMemorySpanExporter()
        self.log_exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        self.metric_reader = InMemoryMetricReader()
        self.tracer_provider = TracerProvider(resource=self.resource, shutdown_on_exit=False)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.span_exporter))
        self.logger_provider = LoggerProvider(resource=self.resource, shutdown_on_exit=False)
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.log_exporter))
        self.meter_provider = MeterProvider(
            resource=self.resource, metric_readers=[self.metric_reader], shutdown_on_exit=False
        )

    def spans(self) -> tuple[ReadableSpan, ...]:
        """Every finished span so far."""
        return self.span_exporter.get_finished_spans()

    def logs(self) -> tuple[ReadableLogRecord, ...]:
        """Every emitted log record so far."""
        return self.log_exporter.get_finished_logs()

    def metric_points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """Collect now and return ``(attributes, point)`` pairs of the metric ``name``."""
        data = self.metric_reader.get_metrics_data()
        found: list[tuple[dict[str, Any], Any]] = []
        if data is None:
            return found
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        found.extend(
                            (dict(point.attributes or {}), point)
                            for point in metric.data.data_points
                        )
        return found

    def shutdown(self) -> None:
        """Shut the three providers down."""
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        self.meter_provider.shutdown()


def _decompress(body: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


class OtlpSink:
    """An OTLP/HTTP (protobuf) receiver on a free loopback port that keeps what it gets."""

    _PATHS: ClassVar[dict[str, type[Any]]] = {
        "/v1/traces": ExportTraceServiceRequest,
        "/v1/metrics": ExportMetricsServiceRequest,
        "/v1/logs": ExportLogsServiceRequest,
    }

    def __init__(self) -> None:
        self.requests: dict[str, list[Any]] = {path: [] for path in self._PATHS}
        self.bytes_received = 0
        self._lock = threading.Lock()
        sink = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                message_type = sink._PATHS.get(self.path)
                if message_type is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                message = message_type()
                message.ParseFromString(_decompress(body, self.headers.get("content-encoding")))
                with sink._lock:
                    sink.bytes_received += length
                    sink.requests[self.path].append(message)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="otlp-sink", daemon=True
        )
        self._thread.start()

    def spans(self) -> list[tuple[dict[str, Any], ProtoSpan]]:
        """Every received span with its resource attributes."""
        out: list[tuple[dict[str, Any], ProtoSpan]] = []
        with self._lock:
            for req in self.requests["/v1/traces"]:
                for rs in req.resource_spans:
                    res = proto_attributes(rs.resource.attributes)
                    out.extend((res, span) for ss in rs.scope_spans for span in ss.spans)
        return out

    def logs(self) -> list[tuple[dict[str, Any], ProtoLogRecord]]:
        """Every received log record with its resource attributes."""
        out: list[tuple[dict[str, Any], ProtoLogRecord]] = []
        with self._lock:
            for req in self.requests["/v1/logs"]:
                for rl in req.resource_logs:
                    res = proto_attributes(rl.resource.attributes)
                    out.extend((res, rec) for sl in rl.scope_logs for rec in sl.log_records)
        return out

    def metric_names(self) -> set[str]:
        """Names of every metric received."""
        with self._lock:
            return {
                metric.name
                for req in self.requests["/v1/metrics"]
                for rm in req.resource_metrics
                for sm in rm.scope_metrics
                for metric in sm.metrics
            }

    def metric_points(self, name: str) -> list[tuple[dict[str, Any], dict[str, Any], Any]]:
        """``(resource attributes, point attributes, value)`` of every received point of
        metric ``name`` (sums and gauges: the number; histograms: the count)."""
        out: list[tuple[dict[str, Any], dict[str, Any], Any]] = []
        with self._lock:
            requests = list(self.requests["/v1/metrics"])
        for request in requests:
            for rm in request.resource_metrics:
                resource = proto_attributes(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        if metric.name != name:
                            continue
                        kind = metric.WhichOneof("data")
                        for point in getattr(metric, kind).data_points:
                            if kind in ("sum", "gauge"):
                                value = getattr(point, point.WhichOneof("value"))
                            else:
                                value = point.count
                            out.append((resource, proto_attributes(point.attributes), value))
        return out

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def _any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return proto_attributes(value.kvlist_value.values)
    return getattr(value, kind)


def proto_attributes(key_values: Any) -> dict[str, Any]:
    """A protobuf ``KeyValue`` list (resource, span or log attributes) as a plain dict."""
    return {kv.key: _any_value(kv.value) for kv in key_values}


class RotelCollector:
    """A real OTLP Collector process (rotel) on free loopback ports, exporting to ``sink``.

    ``grpc_endpoint`` and ``http_endpoint`` are where applications send telemetry.
    """

    def __init__(self, sink: OtlpSink, *, binary: str | None = None) -> None:
        binary = binary or _testsupport.rotel_binary()
        if binary is None:
            raise RuntimeError("the rotel package is not installed: pip install 'otelkit[test]'")
        for attempt in range(3):
            self._start(binary, sink)
            try:
                wait_until(self._ready, timeout=15.0)
                return
            except TimeoutError:
                self.stop()
                raise RuntimeError(f"rotel did not start: {self.output()}") from None
            except RuntimeError:
                output = self.output()
                self.stop()
                # free_port() cannot reserve a port: another process may take it first.
                if "Address already in use" not in output or attempt == 2:
                    raise

    def _start(self, binary: str, sink: OtlpSink) -> None:
        self.grpc_port = _testsupport.free_port()
        self.http_port = _testsupport.free_port()
        self.grpc_endpoint = f"http://127.0.0.1:{self.grpc_port}"
        self.http_endpoint = f"http://127.0.0.1:{self.http_port}"
        self._dir = tempfile.mkdtemp(prefix="otelkit-rotel-")
        self._log = open(os.path.join(self._dir, "stdout.log"), "wb")  # noqa: SIM115
        self._output = ""
        self.process = subprocess.Popen(
            [
                binary,
                "start",
                "--otlp-grpc-endpoint",
                f"127.0.0.1:{self.grpc_port}",
                "--otlp-http-endpoint",
                f"127.0.0.1:{self.http_port}",
                "--exporter",
                "otlp",
                "--otlp-exporter-protocol",
                "http",
                "--otlp-exporter-endpoint",
                sink.endpoint,
                "--batch-timeout",
                "50ms",
                "--log-file",
                os.path.join(self._dir, "rotel.log"),
                "--pid-file",
                os.path.join(self._dir, "rotel.pid"),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"rotel exited with {self.process.returncode}: {self.output()}")
        for port in (self.grpc_port, self.http_port):
            with socket.socket() as sock:
                sock.settimeout(0.2)
                if sock.connect_ex(("127.0.0.1", port)) != 0:
                    return False
        return True

    def output(self) -> str:
        """What the agent printed so far (kept after :meth:`stop`)."""
        if not self._log.closed:
            self._log.flush()
            self._output = Path(self._dir, "stdout.log").read_text(errors="replace")[-4000:]
        return self._output

    def stop(self) -> None:
        """Terminate the agent (bounded) and remove its files."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.output()
        self._log.close()
        shutil.rmtree(self._dir, ignore_errors=True)
