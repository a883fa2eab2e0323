"""An ``ExportLogsServiceRequest`` for a batch of SDK log records, as bytes."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from opentelemetry.sdk._logs import ReadableLogRecord

from otelkit.export._protobuf import (
    FIXED32,
    FIXED64,
    LEN,
    any_value,
    attributes,
    export_request,
    field_string,
    tag,
    varint,
)

__all__ = ["encode_logs"]

_fixed64 = struct.Struct("<Q").pack
_fixed32 = struct.Struct("<I").pack
_TIME, _SEVERITY = tag(1, FIXED64), tag(2, 0)
_BODY = tag(5, LEN)
_DROPPED, _FLAGS = tag(7, 0), tag(8, FIXED32)
_TRACE_ID, _SPAN_ID = tag(9, LEN) + b"\x10", tag(10, LEN) + b"\x08"
_OBSERVED = tag(11, FIXED64)
_RECORD = tag(2, LEN)  # ScopeLogs.log_records


def _record(readable: ReadableLogRecord) -> bytes:
    """One ``LogRecord`` message, fields in number order as the official classes write them."""
    record = readable.log_record
    parts = []
    if record.timestamp:
        parts.append(_TIME + _fixed64(record.timestamp))
    severity = getattr(record.severity_number, "value", None)
    if severity:
        parts.append(_SEVERITY + varint(severity))
    if record.severity_text:
        parts.append(field_string(3, record.severity_text))
    body = any_value(record.body)
    parts.append(_BODY + varint(len(body)) + body)
    if record.attributes:
        parts.append(attributes(6, record.attributes))
    dropped = readable.dropped_attributes
    if dropped:
        parts.append(_DROPPED + varint(dropped))
    flags = int(record.trace_flags or 0)
    if flags:
        parts.append(_FLAGS + _fixed32(flags))
    if record.trace_id:
        parts.append(_TRACE_ID + record.trace_id.to_bytes(16, "big"))
    if record.span_id:
        parts.append(_SPAN_ID + record.span_id.to_bytes(8, "big"))
    if record.observed_timestamp:
        parts.append(_OBSERVED + _fixed64(record.observed_timestamp))
    event_name = getattr(record, "event_name", None)
    if event_name:
        parts.append(field_string(12, event_name))
    data = b"".join(parts)
    return _RECORD + varint(len(data)) + data


def encode_logs(batch: Sequence[ReadableLogRecord]) -> bytes:
    """The serialized ``ExportLogsServiceRequest`` for ``batch``: what the SDK's
    ``encode_logs(batch).SerializeToString()`` gives."""
    return export_request(batch, _record)
