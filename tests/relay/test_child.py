"""ChildPipeline against a real in-process host: delivery, policy, fallback, fork, imports."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, StatusCode

from otelkit._logbridge import OtelLogHandler
from otelkit.relay import ChildPipeline, RelayAddress, RelayHost
from otelkit.testing import MemoryTelemetry, wait_until

# Python 3.12+ warns when a process with threads forks; forking such a process is the
# behaviour under test here (fork children of a relay host or child).
pytestmark = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


CHILD = Resource({"service.name": "child-svc"})


def _logger(pipeline: ChildPipeline, name: str = "test.child") -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [pipeline.logging_handler()]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


@pytest.fixture
def pipeline(relay_host: RelayHost) -> Iterator[ChildPipeline]:
    pipe = ChildPipeline.from_env(relay_host.env_value, resource=CHILD, child_name="worker-a")
    yield pipe
    pipe.shutdown()


def test_spans_keep_parent_ids_links_events_status_and_the_child_identity(
    pipeline: ChildPipeline, memory_telemetry: MemoryTelemetry
) -> None:
    host_tracer = memory_telemetry.tracer_provider.get_tracer("host")
    child_provider = TracerProvider(resource=CHILD, shutdown_on_exit=False)
    child_provider.add_span_processor(pipeline.span_processor)
    child_tracer = child_provider.get_tracer("child.lib", "2.0")
    with host_tracer.start_as_current_span("host-op") as parent:
        link = Link(parent.get_span_context(), {"why": "test"})
        span = child_tracer.start_span(
            "child-op",
            kind=SpanKind.CONSUMER,
            attributes={"n": 3, "tags": ("a", "b")},
            links=[link],
        )
        span.add_event("step", {"i": 1})
        span.set_status(StatusCode.ERROR, "broken")
        span.end()
    assert pipeline.force_flush(5000)
    wait_until(lambda: len(memory_telemetry.spans()) == 2, timeout=5)
    relayed = next(s for s in memory_telemetry.spans() if s.name == "child-op")
    host_span = next(s for s in memory_telemetry.spans() if s.name == "host-op")
    assert relayed.context is not None and host_span.context is not None
    assert relayed.context.trace_id == host_span.context.trace_id
    assert relayed.parent is not None and relayed.parent.span_id == host_span.context.span_id
    assert relayed.kind is SpanKind.CONSUMER
    assert dict(relayed.attributes or {}) == {"n": 3, "tags": ("a", "b")}
    assert [(e.name, dict(e.attributes or {})) for e in relayed.events] == [("step", {"i": 1})]
    assert relayed.links[0].context.span_id == host_span.context.span_id
    assert relayed.status.status_code is StatusCode.ERROR
    assert relayed.status.description == "broken"
    assert relayed.instrumentation_scope is not None
    assert (relayed.instrumentation_scope.name, relayed.instrumentation_scope.version) == (
        "child.lib",
        "2.0",
    )
    resource = relayed.resource.attributes
    assert resource["service.name"] == "child-svc"
    assert resource["process.pid"] == os.getpid()
    assert resource["otelkit.relay.child"] == "worker-a"
    assert resource["service.instance.id"]


def test_log_records_through_the_opentelemetry_bridge_keep_every_field(
    pipeline: ChildPipeline, memory_telemetry: MemoryTelemetry
) -> None:
    provider = LoggerProvider(resource=CHILD, shutdown_on_exit=False)
    provider.add_log_record_processor(pipeline.log_processor)
    logger = logging.getLogger("test.bridge")
    logger.handlers[:] = [LoggingHandler(logger_provider=provider)]
    logger.propagate = False
    tracer = memory_telemetry.tracer_provider.get_tracer("host")
    with tracer.start_as_current_span("op") as span:
        try:
            {}["missing"]
        except KeyError:
            logger.exception("lookup failed for %s", "missing", extra={"user.tier": "gold"})
    assert pipeline.force_flush(5000)
    wait_until(lambda: len(memory_telemetry.logs()) == 1, timeout=5)
    (record,) = memory_telemetry.logs()
    lr = record.log_record
    assert lr.body == "lookup failed for missing"
    assert (lr.severity_text, lr.severity_number and lr.severity_number.value) == ("ERROR", 17)
    assert lr.trace_id == span.get_span_context().trace_id
    assert lr.span_id == span.get_span_context().span_id
    assert lr.timestamp and lr.observed_timestamp
    attributes = dict(lr.attributes or {})
    assert attributes["user.tier"] == "gold"
    assert attributes["exception.type"] == "KeyError"
    assert "Traceback" in attributes["exception.stacktrace"]
    assert record.instrumentation_scope is not None
    assert record.instrumentation_scope.name == "test.bridge"
    assert record.resource.attributes["otelkit.relay.child"] == "worker-a"


def _fields(record: Any) -> dict[str, Any]:
    lr = record.log_record
    return {
        "body": lr.body,
        "severity": (lr.severity_text, lr.severity_number),
        "event_name": lr.event_name,
        "trace": (lr.trace_id, lr.span_id, lr.trace_flags),
        "attributes": dict(lr.attributes or {}),
        "scope": record.instrumentation_scope and record.instrumentation_scope.name,
        "resource": dict(record.resource.attributes),
        "timestamped": bool(lr.timestamp and lr.observed_timestamp),
    }


def test_fast_handler_matches_the_bridge_fields(
    pipeline: ChildPipeline, memory_telemetry: MemoryTelemetry
) -> None:
    # One logging call, made once through otelkit's logging bridge (into the child's
    # processor) and once through the child's own handler: the host receives the same
    # record twice.
    provider = LoggerProvider(resource=CHILD, shutdown_on_exit=False)
    provider.add_log_record_processor(pipeline.log_processor)
    bridge = OtelLogHandler(provider)
    logger = _logger(pipeline, "test.same-call")
    tracer = memory_telemetry.tracer_provider.get_tracer("host")
    with tracer.start_as_current_span("op"):
        try:
            raise ValueError("bad value")
        except ValueError:
            for handler in (bridge, pipeline.logging_handler()):
                logger.handlers[:] = [handler]
                logger.warning(
                    "careful %d", 7, exc_info=True, extra={"otel.event.name": "ev", "tier": "gold"}
                )
    assert pipeline.force_flush(5000)
    wait_until(lambda: len(memory_telemetry.logs()) == 2, timeout=5)
    through_bridge, through_ours = (_fields(record) for record in memory_telemetry.logs())
    assert through_ours == through_bridge
    # The call's fields really are in both (not two empty records).
    assert through_ours["event_name"] == "ev"
    assert through_ours["attributes"]["exception.message"] == "bad value"
    assert through_ours["attributes"]["tier"] == "gold"


_DIRS: list[str] = []


@pytest.fixture(autouse=True)
def _remove_socket_dirs() -> Iterator[None]:
    yield
    while _DIRS:
        shutil.rmtree(_DIRS.pop(), ignore_errors=True)


def _unreachable_address() -> RelayAddress:
    """An address nobody listens on yet (a short path: Unix socket paths are limited)."""
    directory = tempfile.mkdtemp(prefix="otelkit-relay-test-")
    _DIRS.append(directory)
    return RelayAddress.generate(os.path.join(directory, "relay.sock"))


def test_buffered_while_host_is_down_then_errors_survive_overflow_and_drops_are_reported(
    memory_telemetry: MemoryTelemetry,
) -> None:
    address = _unreachable_address()
    pipe = ChildPipeline(address, resource=CHILD, max_buffer=4, flush_interval=0.05)
    logger = _logger(pipe, "test.overflow")
    for i in range(3):
        logger.error("error %d", i)
    for i in range(10):
        logger.debug("debug %d", i)
    logger.info("info last")
    assert pipe.dropped == (10, 0)
    host = RelayHost(
        span_processor=SimpleSpanProcessor(memory_telemetry.span_exporter),
        log_processor=SimpleLogRecordProcessor(memory_telemetry.log_exporter),
        meter_provider=memory_telemetry.meter_provider,
        address=address,
    )
    host.start()
    try:
        assert pipe.force_flush(10_000)
        wait_until(lambda: host.stats["logs"] == 4 and host.stats["dropped_logs"] == 10, timeout=10)
        bodies = sorted(str(r.log_record.body) for r in memory_telemetry.logs())
        assert bodies == ["error 0", "error 1", "error 2", "info last"]
    finally:
        pipe.shutdown()
        host.close(5)


def test_stderr_fallback_prints_what_overflow_drops(capfd: pytest.CaptureFixture[str]) -> None:
    pipe = ChildPipeline(
        _unreachable_address(),
        resource=CHILD,
        max_buffer=1,
        stderr_fallback=True,
        exit_timeout=0.1,
    )
    logger = _logger(pipe, "test.fallback")
    logger.info("first")
    logger.info("second")
    assert pipe.force_flush(100) is False  # nobody listens
    pipe.shutdown()
    err = capfd.readouterr().err
    assert "first" in err
    assert "second" not in err  # still buffered, not dropped


def test_host_restart_on_the_same_address_reconnects(
    memory_telemetry: MemoryTelemetry,
) -> None:
    address = _unreachable_address()

    def start() -> RelayHost:
        host = RelayHost(
            span_processor=SimpleSpanProcessor(memory_telemetry.span_exporter),
            log_processor=SimpleLogRecordProcessor(memory_telemetry.log_exporter),
            address=address,
        )
        host.start()
        return host

    host = start()
    pipe = ChildPipeline(address, resource=CHILD)
    logger = _logger(pipe, "test.restart")
    logger.info("before")
    assert pipe.force_flush(5000)
    wait_until(lambda: host.stats["logs"] == 1, timeout=5)
    host.close(5)
    logger.info("while down")
    host = start()
    try:
        logger.info("after")
        assert pipe.force_flush(10_000)
        wait_until(lambda: host.stats["logs"] == 2, timeout=10)
        bodies = [str(r.log_record.body) for r in memory_telemetry.logs()]
        assert bodies[1:] == ["while down", "after"] or sorted(bodies[1:]) == [
            "after",
            "while down",
        ]
        assert pipe._link.connects == 2
    finally:
        pipe.shutdown()
        host.close(5)


def _inherited_pipeline_child() -> None:
    _logger(_INHERITED[0], "test.inherited").info("from the child")


_INHERITED: list[ChildPipeline] = []


def test_after_fork_the_child_starts_empty_with_its_own_identity(
    relay_host: RelayHost, memory_telemetry: MemoryTelemetry
) -> None:
    pipe = ChildPipeline.from_env(relay_host.env_value, resource=CHILD, flush_interval=30)
    _INHERITED[:] = [pipe]
    logger = _logger(pipe, "test.inherited")
    for i in range(20):
        logger.info("parent %d", i)  # buffered in the parent when it forks
    proc = multiprocessing.get_context("fork").Process(target=_inherited_pipeline_child)
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0  # the child left through os._exit: the finalizer flushed
    wait_until(lambda: relay_host.stats["logs"] >= 1, timeout=10)
    (child_record,) = memory_telemetry.logs()
    assert child_record.log_record.body == "from the child"
    assert child_record.resource.attributes["process.pid"] == proc.pid
    assert pipe.force_flush(5000)
    wait_until(lambda: relay_host.stats["logs"] == 21, timeout=10)
    parent_ids = {
        r.resource.attributes["service.instance.id"]
        for r in memory_telemetry.logs()
        if str(r.log_record.body).startswith("parent")
    }
    assert len(parent_ids) == 1
    assert child_record.resource.attributes["service.instance.id"] not in parent_ids
    pipe.shutdown()


def test_child_path_never_imports_grpc_or_requests() -> None:
    code = (
        "import logging, sys\n"
        "from opentelemetry.sdk.resources import Resource\n"
        "from otelkit.relay import ChildPipeline, RelayAddress\n"
        "p = ChildPipeline(RelayAddress.generate('/nonexistent/relay.sock'),"
        " resource=Resource({}), exit_timeout=0.1)\n"
        "logging.getLogger('x').addHandler(p.logging_handler())\n"
        "logging.getLogger('x').warning('hi')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'requests')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_buffer": 0}, ValueError),
        ({"batch_size": "10"}, TypeError),
        ({"flush_interval": -1.0}, ValueError),
        ({"resource": {"service.name": "x"}}, TypeError),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], error: type[Exception]) -> None:
    kwargs: dict[str, object] = {"resource": CHILD, **options}
    with pytest.raises(error):
        ChildPipeline(_unreachable_address(), **kwargs)  # type: ignore[arg-type]


def test_bad_env_value_is_refused() -> None:
    with pytest.raises(ValueError, match="OTELKIT_RELAY"):
        ChildPipeline.from_env("nonsense", resource=CHILD)


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def test_an_unencodable_record_is_counted_and_the_rest_of_its_batch_delivered(
    pipeline: ChildPipeline, relay_host: RelayHost, memory_telemetry: MemoryTelemetry
) -> None:
    logger = _logger(pipeline, "test.unencodable")
    logger.info("fine 1")
    # an attribute OTLP cannot carry is left out, as the export encoder does
    logger.info("odd", extra={"thing": _Unprintable()})
    # a body with no OTLP type travels as its str(); one whose str() raises cannot travel
    pipeline._offer_log((1, 2, 9, "INFO", _Unprintable(), None, 0, 0, 0, "s", None, None, 0), 1)
    logger.info("fine 2")
    assert pipeline.force_flush(5000)
    wait_until(lambda: relay_host.stats["dropped_logs"] == 1, timeout=5)
    wait_until(lambda: len(memory_telemetry.logs()) == 3, timeout=5)
    logs = memory_telemetry.logs()
    assert sorted(str(r.log_record.body) for r in logs) == ["fine 1", "fine 2", "odd"]
    assert all("thing" not in (r.log_record.attributes or {}) for r in logs)
    assert pipeline.dropped == (1, 0)


def test_records_offered_after_shutdown_are_counted_as_dropped() -> None:
    from otelkit.relay import ChildPipeline, RelayAddress

    pipeline = ChildPipeline(
        RelayAddress.generate("/nonexistent/relay.sock"),
        resource=Resource({"service.name": "late"}),
        exit_hooks=False,
        exit_timeout=0.1,
    )
    pipeline.shutdown()
    logger = logging.getLogger("relay.test.after-close")
    logger.addHandler(pipeline.logging_handler())
    logger.propagate = False
    logger.warning("too late")
    assert pipeline.dropped == (1, 0)
