"""The stdlib logging bridge: records built directly equal those ``Logger.emit`` builds."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otelkit import _logbridge
from otelkit._logbridge import OtelLogHandler


def _emit_all(direct: bool, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    monkeypatch.setattr(_logbridge, "_checked", [direct])
    provider = LoggerProvider(resource=Resource({"service.name": "b"}), shutdown_on_exit=False)
    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    handler = OtelLogHandler(provider)
    assert (handler._logger("bridge.test")[1] is not None) is direct
    log = logging.getLogger("bridge.test")
    log.propagate = False
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG)
    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("t")
    with tracer.start_as_current_span("s"):
        log.warning("plain %s", "extras", extra={"order": 7, "otel.event.name": "paid"})
        log.warning("odd extras", extra={"items": [1, 2], "obj": object.__new__(object)})
        try:
            raise ValueError("bad", 1)
        except ValueError:
            log.exception("failed")
    log.info("outside a span")
    out = []
    for record in memory.get_finished_logs():
        fields = dict(vars(record.log_record))
        fields.pop("observed_timestamp")
        fields["attributes"] = {
            k: v for k, v in (record.log_record.attributes or {}).items() if k != "code.line.number"
        }
        fields["scope"] = record.instrumentation_scope
        fields["resource"] = record.resource
        fields["dropped"] = record.dropped_attributes
        fields.pop("context")
        out.append(fields)
    return out


def test_records_built_directly_equal_those_the_loggers_emit_builds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.sdk.version import __version__ as sdk_version

    if tuple(int(part) for part in sdk_version.split(".")[:2]) < (1, 41):
        pytest.skip("SDK 1.40's logger takes no finished record: the bridge emits publicly")
    assert _logbridge._direct_emit_ok()  # on newer releases the direct path must hold
    direct = _emit_all(True, monkeypatch)
    public = _emit_all(False, monkeypatch)
    assert len(direct) == 4
    for ours, theirs in zip(direct, public, strict=True):
        ours["timestamp"] = theirs["timestamp"] = None  # different calls, different times
        ours["trace_id"] = theirs["trace_id"] = bool(theirs["trace_id"])
        ours["span_id"] = theirs["span_id"] = bool(theirs["span_id"])
        assert ours == theirs
    assert direct[0]["event_name"] == "paid" and direct[0]["attributes"]["order"] == 7
    assert direct[2]["attributes"]["exception.message"] == "('bad', 1)"
