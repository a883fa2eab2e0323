"""An ``ExportLogsServiceRequest`` for a batch of SDK log records, as bytes."""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource

from otelkit.export._protobuf import (
    FIXED32,
    FIXED64,
    LEN,
    Encoded,
    any_value,
    attributes,
    export_request,
    field_string,
    tag,
    varint,
)

__all__ = ["encode_logs", "encoded_log_record", "log_record_field"]

_fixed64 = struct.Struct("<Q").pack
_fixed32 = struct.Struct("<I").pack
_TIME, _SEVERITY = tag(1, FIXED64), tag(2, 0)
_BODY = tag(5, LEN)
_DROPPED, _FLAGS = tag(7, 0), tag(8, FIXED32)
_TRACE_ID, _SPAN_ID = tag(9, LEN) + b"\x10", tag(10, LEN) + b"\x08"
_OBSERVED = tag(11, FIXED64)
_RECORD = tag(2, LEN)  # ScopeLogs.log_records


def log_record_field(
    time_ns: int | None,
    severity_number: int,
    severity_text: str | None,
    body: bytes,
    attrs: Mapping[str, Any] | None,
    dropped: int,
    flags: int,
    trace_id: int | None,
    span_id: int | None,
    observed_ns: int | None,
    event_name: str | None,
) -> bytes:
    """One ``LogRecord`` message framed as ``ScopeLogs.log_records`` (``body``: an encoded
    ``AnyValue``), fields in number order as the official classes write them."""
    parts = []
    if time_ns:
        parts.append(_TIME + _fixed64(time_ns))
    if severity_number:
        parts.append(_SEVERITY + varint(severity_number))
    if severity_text:
        parts.append(field_string(3, severity_text))
    parts.append(_BODY + varint(len(body)) + body)
    if attrs:
        parts.append(attributes(6, attrs))
    if dropped:
        parts.append(_DROPPED + varint(dropped))
    if flags:
        parts.append(_FLAGS + _fixed32(flags))
    if trace_id:
        parts.append(_TRACE_ID + trace_id.to_bytes(16, "big"))
    if span_id:
        parts.append(_SPAN_ID + span_id.to_bytes(8, "big"))
    if observed_ns:
        parts.append(_OBSERVED + _fixed64(observed_ns))
    if event_name:
        parts.append(field_string(12, event_name))
    data = b"".join(parts)
    return _RECORD + varint(len(data)) + data


def _record(readable: ReadableLogRecord | ReadWriteLogRecord) -> bytes:
    record = readable.log_record
    attrs = record.attributes
    return log_record_field(
        record.timestamp,
        getattr(record.severity_number, "value", None) or 0,
        record.severity_text,
        any_value(record.body),
        _plain(attrs) if attrs else None,
        readable.dropped_attributes,
        int(record.trace_flags or 0),
        record.trace_id,
        record.span_id,
        record.observed_timestamp,
        getattr(record, "event_name", None),
    )


def encoded_log_record(record: ReadWriteLogRecord) -> Encoded:
    """An emitted ``record`` written now, for a batch queue to hold in place of the copy
    the SDK's processor queues (a record without a resource gets the SDK's empty one, as
    in that copy)."""
    resource = record.resource
    return Encoded(
        resource if resource is not None else Resource.create({}),
        record.instrumentation_scope,
        _record(record),
    )


def encode_logs(batch: Sequence[ReadableLogRecord | Encoded]) -> bytes:
    """The serialized ``ExportLogsServiceRequest`` for ``batch`` (SDK log records, or
    records :func:`encoded_log_record` wrote): what the SDK's
    ``encode_logs(batch).SerializeToString()`` gives for the records."""
    return export_request(batch, _record)


def _plain(attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    """``attrs``, or for the SDK's ``BoundedAttributes`` its public ``copy()``: a plain dict
    of the items in order, read without a Python call and lock per item."""
    return attrs.copy() if isinstance(attrs, BoundedAttributes) else attrs
