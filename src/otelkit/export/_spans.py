"""An ``ExportTraceServiceRequest`` for a batch of finished SDK spans, as bytes."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

from otelkit.export._protobuf import (
    FIXED32,
    FIXED64,
    LEN,
    Encoded,
    attributes,
    export_request,
    field_bytes,
    field_string,
    field_varint,
    tag,
    varint,
)

__all__ = ["encode_spans", "encoded_span", "span_message"]

_fixed64 = struct.Struct("<Q").pack
_fixed32 = struct.Struct("<I").pack
_TRACE_ID, _SPAN_ID, _PARENT = tag(1, LEN) + b"\x10", tag(2, LEN) + b"\x08", tag(4, LEN) + b"\x08"
_NAME = tag(5, LEN)
_START, _END = tag(7, FIXED64), tag(8, FIXED64)
_SPAN = tag(2, LEN)  # ScopeSpans.spans
# The fields that take a few values, written once: the kind (the SDK's kinds, OTLP's
# numbering), a status without a description, and the flags. SpanFlags: the context says
# whether it is remote (always), and that it is.
_KINDS = {kind: field_varint(6, kind.value + 1) for kind in SpanKind}
_STATUSES = {code: field_bytes(15, field_varint(3, code.value)) for code in StatusCode}
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200
_LOCAL = _fixed32(_HAS_IS_REMOTE)
_REMOTE = _fixed32(_HAS_IS_REMOTE | _IS_REMOTE)
_FLAGS = tag(16, FIXED32)


def _flags(context: SpanContext | None) -> bytes:
    return _REMOTE if context is not None and context.is_remote else _LOCAL


def _event(event: Any) -> bytes:
    timestamp = event.timestamp
    return field_bytes(
        11,
        (tag(1, FIXED64) + _fixed64(timestamp) if timestamp else b"")
        + field_string(2, event.name)
        + attributes(3, event.attributes)
        + field_varint(4, event.dropped_attributes),
    )


def _link(link: Any) -> bytes:
    context = link.context
    return field_bytes(
        13,
        field_bytes(1, context.trace_id.to_bytes(16, "big"))
        + field_bytes(2, context.span_id.to_bytes(8, "big"))
        + attributes(4, link.attributes)
        + field_varint(5, link.dropped_attributes)
        + tag(6, FIXED32)
        + _flags(context),
    )


def span_message(span: ReadableSpan) -> bytes:
    """One ``Span`` message framed as field 2 of ``ScopeSpans`` (tag, length, message),
    fields in number order as the official classes write them. A field left at its
    default is not written (proto3), except the status, which the SDK always sets."""
    context = span.get_span_context()
    assert context is not None  # a finished SDK span always has one
    parts = [_TRACE_ID, context.trace_id.to_bytes(16, "big")]
    parts += (_SPAN_ID, context.span_id.to_bytes(8, "big"))
    trace_state = context.trace_state
    if trace_state:
        parts.append(field_string(3, ",".join(f"{k}={v}" for k, v in trace_state.items())))
    parent = span.parent
    if parent:
        parts += (_PARENT, parent.span_id.to_bytes(8, "big"))
    name = span.name.encode()
    if name:
        parts += (_NAME, varint(len(name)), name)
    parts.append(_KINDS[span.kind])
    start, end = span.start_time, span.end_time
    if start:
        parts += (_START, _fixed64(start))
    if end:
        parts += (_END, _fixed64(end))
    parts.append(attributes(9, span.attributes))
    dropped = span.dropped_attributes
    if dropped:
        parts.append(field_varint(10, dropped))
    for event in span.events:
        parts.append(_event(event))
    dropped = span.dropped_events
    if dropped:
        parts.append(field_varint(12, dropped))
    for link in span.links:
        parts.append(_link(link))
    dropped = span.dropped_links
    if dropped:
        parts.append(field_varint(14, dropped))
    status = span.status
    if status.description:
        status_field = field_string(2, status.description) + field_varint(
            3, status.status_code.value
        )
        parts.append(field_bytes(15, status_field))
    else:
        parts.append(_STATUSES[status.status_code])
    parts += (_FLAGS, _flags(parent))
    data = b"".join(parts)
    return _SPAN + varint(len(data)) + data


def encoded_span(span: ReadableSpan) -> Encoded:
    """``span`` written now, for a batch queue to hold in its place."""
    return Encoded(span.resource, span.instrumentation_scope, span_message(span))


def encode_spans(spans: Sequence[ReadableSpan | Encoded]) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` for ``spans`` (finished SDK spans, or
    spans :func:`encoded_span` wrote): what the SDK's
    ``encode_spans(spans).SerializeToString()`` gives for the spans."""
    return export_request(spans, span_message)
