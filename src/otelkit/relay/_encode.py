"""The child's OTLP requests as bytes: its resource, its log records, spans and metrics.

Every message is written with :mod:`otelkit.export`'s protobuf writer (the one every
OTLP/HTTP export of otelkit uses), without building ``opentelemetry.proto`` message
objects, so a child never imports them. The output is a regular
``Export{Logs,Trace}ServiceRequest`` (tests parse it with ``opentelemetry.proto``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan

from otelkit.export._logs import log_record_field
from otelkit.export._protobuf import any_value, attributes, field_bytes, field_string
from otelkit.export._spans import span_message

__all__ = [
    "LogEntry",
    "encode_log_request",
    "encode_resource",
    "encode_scope",
    "encode_span_request",
    "entry_from_sdk",
]

LogEntry = tuple[Any, ...]
"""A log record in a child's buffer: ``(time_ns, observed_ns, severity_number,
severity_text, body, attributes, trace_id, span_id, trace_flags, scope_name,
scope_version, event_name, dropped_attributes)``. Times and ids are ints (0: none),
``severity_number`` 0-24 (0: unspecified), ``attributes`` a dict or ``None``."""


def encode_resource(resource: Resource) -> bytes:
    """An OTLP ``Resource`` message (attributes only)."""
    return attributes(1, resource.attributes)


def encode_scope(name: str, version: str | None) -> bytes:
    """An OTLP ``InstrumentationScope`` message (name and version)."""
    return field_string(1, name) + field_string(2, version)


def _grouped_request(resource: bytes, scopes: Iterable[tuple[bytes, list[bytes]]]) -> bytes:
    """An export request under one resource; ``records`` are complete fields of tag 2
    (``log_records`` / ``spans``) of their scope's group."""
    scope_parts = [
        field_bytes(2, field_bytes(1, scope) + b"".join(records)) for scope, records in scopes
    ]
    return field_bytes(1, field_bytes(1, resource) + b"".join(scope_parts))


def encode_span_request(resource: bytes, spans: Sequence[ReadableSpan]) -> bytes:
    """An ``ExportTraceServiceRequest`` with every span under one resource, grouped by
    scope ``(name, version)`` in order of first appearance."""
    scopes: dict[tuple[str, str | None], list[bytes]] = {}
    for span in spans:
        scope = span.instrumentation_scope
        key = (scope.name, scope.version or None) if scope is not None else ("", None)
        scopes.setdefault(key, []).append(span_message(span))
    return _grouped_request(resource, ((encode_scope(*k), v) for k, v in scopes.items()))


def _body(value: Any) -> bytes:
    try:
        return any_value(value)
    except TypeError:  # an object OTLP has no type for travels as its text
        return any_value(str(value))


def encode_log_request(resource: bytes, entries: Sequence[LogEntry]) -> bytes:
    """An ``ExportLogsServiceRequest`` with every entry under one resource, grouped by
    scope ``(name, version)`` in order of first appearance. Raises for a record OTLP
    cannot carry (an int field out of range, a body whose ``str()`` raises...)."""
    scopes: dict[tuple[str, str | None], list[bytes]] = {}
    for entry in entries:
        (ts, observed, number, text, body, attrs, trace_id, span_id, flags, scope, version,
         event, dropped) = entry  # fmt: skip
        field = log_record_field(
            ts, number, text, _body(body), attrs, dropped, flags, trace_id, span_id, observed, event
        )
        group = scopes.get((scope, version))
        if group is None:
            group = scopes[(scope, version)] = []
        group.append(field)
    return _grouped_request(resource, ((encode_scope(*k), v) for k, v in scopes.items()))


def entry_from_sdk(record: ReadableLogRecord | ReadWriteLogRecord) -> LogEntry:
    """The buffered form of a record that came through the SDK (``Logger.emit``)."""
    lr = record.log_record
    scope = record.instrumentation_scope
    severity = lr.severity_number
    return (
        lr.timestamp or 0,
        lr.observed_timestamp or 0,
        severity.value if severity is not None else 0,
        lr.severity_text,
        lr.body,
        lr.attributes,
        lr.trace_id or 0,
        lr.span_id or 0,
        int(lr.trace_flags or 0),
        scope.name if scope is not None else "",
        scope.version if scope is not None else None,
        getattr(lr, "event_name", None),
        record.dropped_attributes,
    )
