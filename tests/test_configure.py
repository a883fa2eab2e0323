"""configure(): one pipeline per process, log–trace correlation, idempotence, shutdown."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import metrics, trace

import otelkit
from otelkit import Telemetry

log = logging.getLogger("tests.configure")


@pytest.fixture
def memory() -> Telemetry:
    telemetry = otelkit.configure(service_name="svc", exporter="memory", coalesce_window=False)
    yield telemetry
    telemetry.shutdown()


def test_spans_logs_and_metrics_reach_the_exporters(memory: Telemetry) -> None:
    assert memory.memory is not None
    with trace.get_tracer("t").start_as_current_span("work") as span:
        log.warning("inside %s", "work")
    metrics.get_meter("t").create_counter("things").add(3)
    spans = memory.memory.spans.get_finished_spans()
    assert [s.name for s in spans] == ["work"]
    assert spans[0].resource.attributes["service.name"] == "svc"
    records = [
        r for r in memory.memory.logs.get_finished_logs() if r.log_record.body == "inside work"
    ]
    assert len(records) == 1
    ctx = span.get_span_context()
    assert records[0].log_record.trace_id == ctx.trace_id
    assert records[0].log_record.span_id == ctx.span_id
    data = memory.memory.metrics.get_metrics_data()
    names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert "things" in names


def test_configure_twice_with_same_settings_returns_the_same_handle(memory: Telemetry) -> None:
    again = otelkit.configure(service_name="svc", exporter="memory", coalesce_window=False)
    assert again is memory
    log.warning("exactly once")
    bodies = [r.log_record.body for r in memory.memory.logs.get_finished_logs()]
    assert bodies.count("exactly once") == 1


def test_reconfigure_replaces_the_pipeline_without_doubling(memory: Telemetry) -> None:
    handlers_before = len(logging.getLogger().handlers)
    second = otelkit.configure(service_name="svc2", exporter="memory", coalesce_window=False)
    try:
        assert second is not memory
        assert not memory.active
        assert len(logging.getLogger().handlers) == handlers_before
        log.warning("once after reconfigure")
        new_bodies = [r.log_record.body for r in second.memory.logs.get_finished_logs()]
        old_bodies = [r.log_record.body for r in memory.memory.logs.get_finished_logs()]
        assert new_bodies.count("once after reconfigure") == 1
        assert "once after reconfigure" not in old_bodies
        with trace.get_tracer("t").start_as_current_span("after"):
            pass
        assert [s.name for s in second.memory.spans.get_finished_spans()] == ["after"]
        assert (
            second.memory.spans.get_finished_spans()[0].resource.attributes["service.name"]
            == "svc2"
        )
    finally:
        second.shutdown()


def test_logging_level_none_installs_no_handler() -> None:
    before = list(logging.getLogger().handlers)
    telemetry = otelkit.configure(exporter="memory", logging_level=None)
    try:
        assert logging.getLogger().handlers == before
    finally:
        telemetry.shutdown()


def test_shutdown_removes_the_handler_and_is_idempotent() -> None:
    before = list(logging.getLogger().handlers)
    telemetry = otelkit.configure(exporter="memory")
    assert len(logging.getLogger().handlers) == len(before) + 1
    assert telemetry.shutdown() is True
    assert telemetry.shutdown() is True
    assert logging.getLogger().handlers == before
    assert otelkit.current() is None


def test_sdk_disabled_installs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    before = list(logging.getLogger().handlers)
    telemetry = otelkit.configure(exporter="memory")
    try:
        assert telemetry.tracer_provider is None
        assert logging.getLogger().handlers == before
        assert telemetry.force_flush() is True
    finally:
        telemetry.shutdown()


def test_negative_flush_timeout_is_rejected(memory: Telemetry) -> None:
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        memory.force_flush(-1)


def test_sampler_always_off_records_nothing() -> None:
    telemetry = otelkit.configure(exporter="memory", sampler="always_off")
    try:
        with trace.get_tracer("t").start_as_current_span("dropped"):
            pass
        assert telemetry.memory.spans.get_finished_spans() == ()
    finally:
        telemetry.shutdown()


def test_exporter_records_are_not_fed_back_while_suppressed(memory: Telemetry) -> None:
    from opentelemetry import context

    token = context.attach(context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        logging.getLogger("opentelemetry.exporter").warning("export failed")
    finally:
        context.detach(token)
    logging.getLogger("opentelemetry.exporter").warning("outside an export")
    bodies = [r.log_record.body for r in memory.memory.logs.get_finished_logs()]
    assert "export failed" not in bodies
    assert "outside an export" in bodies  # the same logger is bridged otherwise


def test_log_coalescing_is_on_by_default() -> None:
    telemetry = otelkit.configure(exporter="memory")
    assert telemetry._settings.coalesce_window == 10.0
    for _ in range(100):
        log.warning("disk full")
    bodies = [r.log_record.body for r in telemetry.memory.logs.get_finished_logs()]
    assert bodies.count("disk full") == 1  # the first goes out at once
    telemetry.shutdown()  # closes the window: the summary follows
    records = [
        r for r in telemetry.memory.logs.get_finished_logs() if r.log_record.body == "disk full"
    ]
    assert len(records) == 2
    assert records[1].log_record.attributes["otelkit.coalesce.count"] == 100


def test_export_counts_follow_what_the_exporter_received(memory: Telemetry) -> None:
    for i in range(3):
        log.warning("counted %d", i)
    with trace.get_tracer("t").start_as_current_span("one"):
        pass
    counts = memory.export_counts()
    assert counts["logs"] == (len(memory.memory.logs.get_finished_logs()), 0)
    assert counts["logs"][0] >= 3
    assert counts["traces"] == (1, 0)


def test_span_coalescing_is_opt_in_by_predicate() -> None:
    telemetry = otelkit.configure(
        exporter="memory", coalesce_spans=lambda root: root.name == "poll"
    )
    tracer = trace.get_tracer("t")
    for _ in range(5):
        with tracer.start_as_current_span("poll"), tracer.start_as_current_span("query"):
            pass
        with tracer.start_as_current_span("request"):
            pass
    names = [s.name for s in telemetry.memory.spans.get_finished_spans()]
    assert names.count("poll") == 1  # the first tree, whole
    assert names.count("query") == 1
    assert names.count("request") == 5  # not chosen by the predicate
    telemetry.shutdown()
    polls = [s for s in telemetry.memory.spans.get_finished_spans() if s.name == "poll"]
    assert len(polls) == 2
    assert polls[1].attributes["otelkit.coalesce.count"] == 5
    assert polls[1].links[0].context.span_id == polls[0].context.span_id


def test_a_removed_logging_bridge_is_said_once_and_configure_puts_it_back(
    memory: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    assert memory.memory is not None
    root = logging.getLogger()
    kept = root.handlers
    root.handlers = [caplog.handler]  # what Celery's worker_hijack_root_logger does
    try:
        _bridge_gone_then_back(memory, caplog)
    finally:
        root.handlers = kept


def _bridge_gone_then_back(memory: Telemetry, caplog: pytest.LogCaptureFixture) -> None:
    assert memory.memory is not None
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        log.warning("while the bridge is gone")
        memory.force_flush()
        memory.force_flush()
    said = [r for r in caplog.records if "logging bridge was removed" in r.getMessage()]
    assert len(said) == 1
    assert otelkit.configure(service_name="svc", exporter="memory", coalesce_window=False) is memory
    log.warning("with the bridge back")
    bodies = [r.log_record.body for r in memory.memory.logs.get_finished_logs()]
    assert "with the bridge back" in bodies
    assert "while the bridge is gone" not in bodies
