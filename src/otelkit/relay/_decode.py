"""A child's frames back into SDK records the host's processors accept.

Log and span frames are OTLP export requests, parsed by the official protobuf classes (in C,
at a cost bounded by the frame's size; the parser refuses messages nested more than 100
deep, which allows attribute values nested about 45 levels). A frame is decoded and
checked completely before anything is emitted, so a malformed frame emits nothing. Records keep their timestamps, severity, body, attributes
(``exception.*`` included), trace and span ids, scope, and the child's resource.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope as PbScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
from opentelemetry.sdk._logs import LogRecordLimits, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    INVALID_SPAN,
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

from otelkit._sdk.logs import attribute_limits
from otelkit.relay._records import LogFields, build_log_records
from otelkit.relay._wire import FrameError

__all__ = ["Decoder"]

T = TypeVar("T")

_KINDS = {
    0: SpanKind.INTERNAL,
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
_IS_REMOTE = 0x200
_SEVERITIES = {s.value: s for s in SeverityNumber}
_FLAGS = [TraceFlags(i) for i in range(256)]
# The AnyValue kinds whose value the SDK keeps as it is.
_SCALARS = frozenset({"string_value", "bool_value", "int_value", "double_value", "bytes_value"})
# A non-empty context whose span is the invalid span: records without trace context keep
# none, and the SDK does not look up the host thread's current context for them.
_NO_SPAN = set_span_in_context(INVALID_SPAN, Context())


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind in _SCALARS:
        return getattr(v, kind)
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(_value(x) for x in v.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    raise FrameError("malformed", f"AnyValue {kind} is not used by the relay")


def _attributes(key_values: Sequence[Any]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in key_values}


def _record_attributes(key_values: Sequence[Any]) -> tuple[dict[str, Any], bool]:
    """A log record's attributes, and whether they are plain: scalars (the values the SDK
    keeps as they are) under non-empty keys."""
    out: dict[str, Any] = {}
    plain = True
    for kv in key_values:
        v = kv.value
        kind = v.WhichOneof("value")
        if kind in _SCALARS:
            out[kv.key] = getattr(v, kind)
        else:
            out[kv.key] = _value(v)
            plain = False
    return out, plain and "" not in out


def _id(raw: bytes, size: int, what: str) -> int:
    if not raw:
        return 0
    if len(raw) != size:
        raise FrameError("malformed", f"{what} must be {size} bytes, got {len(raw)}")
    return int.from_bytes(raw, "big")


class Decoder:
    """Decodes one connection's frames; caches the (usually single) child resource."""

    def __init__(self, *, limits: LogRecordLimits | None = None, fast: bool = True) -> None:
        self._limits = limits or LogRecordLimits()
        # Without a value length limit, the SDK keeps scalar values as they are.
        max_attributes, max_length = attribute_limits(self._limits)
        self._fast = fast and max_length is None
        self._max_attributes = max_attributes
        self._last_span: tuple[tuple[int, int, TraceFlags] | None, Context] = (None, _NO_SPAN)
        self._resources: dict[bytes, Resource] = {}
        self._scopes: dict[bytes, InstrumentationScope] = {}

    def _resource(self, pb: PbResource) -> Resource:
        key = pb.SerializeToString()
        found = self._resources.get(key)
        if found is None:
            if len(self._resources) > 64:
                self._resources.clear()
            found = self._resources[key] = Resource(_attributes(pb.attributes))
        return found

    def _scope(self, pb: PbScope, schema_url: str) -> InstrumentationScope:
        key = pb.SerializeToString() + schema_url.encode()
        found = self._scopes.get(key)
        if found is None:
            if len(self._scopes) > 1024:
                self._scopes.clear()
            found = self._scopes[key] = InstrumentationScope(
                pb.name, pb.version or None, schema_url or None, _attributes(pb.attributes) or None
            )
        return found

    def logs(self, payload: bytes) -> list[ReadWriteLogRecord]:
        """Every log record of an ``ExportLogsServiceRequest`` payload as an SDK record (for
        tests: the host builds each chunk of records just before it emits it)."""
        return self.build_logs(self.log_rows(payload))

    def log_rows(self, payload: bytes) -> list[LogFields]:
        """Every log record of an ``ExportLogsServiceRequest`` payload, checked in full
        (``FrameError`` otherwise) but not yet SDK records (:meth:`build_logs`): so a
        frame's records do not all sit in memory as SDK objects at once."""
        request = _parse(ExportLogsServiceRequest, payload)
        groups = ((rl.resource, rl.scope_logs, "log_records") for rl in request.resource_logs)
        return self._each(groups, self._log)

    def count_logs(self, payload: bytes) -> int:
        """How many log records an ``ExportLogsServiceRequest`` payload holds, without
        building them (``FrameError`` if it does not parse)."""
        request = _parse(ExportLogsServiceRequest, payload)
        return sum(len(g.log_records) for rl in request.resource_logs for g in rl.scope_logs)

    def build_logs(self, rows: Iterable[LogFields]) -> list[ReadWriteLogRecord]:
        """The SDK records of :meth:`logs` rows."""
        return build_log_records(rows, self._limits)

    def _log(self, pb: Any, resource: Resource, scope: InstrumentationScope) -> LogFields:
        trace_id = _id(pb.trace_id, 16, "trace_id")
        span_id = _id(pb.span_id, 8, "span_id")
        number = pb.severity_number
        severity = _SEVERITIES.get(number) if number else None
        if number and severity is None:
            raise FrameError("malformed", f"severity number {number} is not in 1-24")
        trace_flags = _FLAGS[pb.flags & 0xFF]
        if trace_id and span_id:
            # The record's context carries the child's span, as it did in the child; the
            # records of one span usually come in a row, so they share one context.
            key = (trace_id, span_id, trace_flags)
            if key != self._last_span[0]:
                span = NonRecordingSpan(SpanContext(trace_id, span_id, True, trace_flags))
                self._last_span = (key, set_span_in_context(span))
            context = self._last_span[1]
        else:
            context = _NO_SPAN
        attributes, plain = _record_attributes(pb.attributes)
        # Plain, within the count limit and with no value length limit: the SDK's cleaning
        # and limits would leave these attributes as they are.
        plain = plain and self._fast
        if plain and self._max_attributes is not None:
            plain = len(attributes) <= self._max_attributes
        return (
            pb.time_unix_nano or None,
            pb.observed_time_unix_nano or None,
            context,
            trace_id,
            span_id,
            trace_flags,
            pb.severity_text or None,
            severity,
            _value(pb.body),  # an unset body reads as an empty AnyValue: None
            attributes,
            pb.event_name or None,
            pb.dropped_attributes_count,
            resource,
            scope,
            plain,
        )

    def _each(self, groups: Iterable[tuple[Any, Any, str]], build: Callable[..., T]) -> list[T]:
        """``build(pb, resource, scope)`` for every item of every scope of every resource."""
        out: list[T] = []
        try:
            for pb_resource, scopes, items in groups:
                resource = self._resource(pb_resource)
                for group in scopes:
                    scope = self._scope(group.scope, group.schema_url)
                    out += [build(pb, resource, scope) for pb in getattr(group, items)]
        except FrameError:
            raise
        except Exception as exc:
            raise FrameError("malformed", f"undecodable {items}: {exc}") from exc
        return out

    def spans(self, payload: bytes) -> list[ReadableSpan]:
        """Every span of an ``ExportTraceServiceRequest`` payload (marked sampled)."""
        request = _parse(ExportTraceServiceRequest, payload)
        groups = ((rs.resource, rs.scope_spans, "spans") for rs in request.resource_spans)
        return self._each(groups, self._span)

    def count_spans(self, payload: bytes) -> int:
        """How many spans an ``ExportTraceServiceRequest`` payload holds, without building
        them (``FrameError`` if it does not parse)."""
        request = _parse(ExportTraceServiceRequest, payload)
        return sum(len(group.spans) for rs in request.resource_spans for group in rs.scope_spans)

    def _span(self, pb: Any, resource: Resource, scope: InstrumentationScope) -> ReadableSpan:
        trace_id = _id(pb.trace_id, 16, "trace_id")
        span_id = _id(pb.span_id, 8, "span_id")
        if not trace_id or not span_id:
            raise FrameError("malformed", "a span needs a trace_id and a span_id")
        flags = TraceFlags((pb.flags & 0xFF) | TraceFlags.SAMPLED)
        state = TraceState.from_header([pb.trace_state]) if pb.trace_state else None
        context = SpanContext(trace_id, span_id, False, flags, state)
        parent_id = _id(pb.parent_span_id, 8, "parent_span_id")
        parent = (
            SpanContext(trace_id, parent_id, bool(pb.flags & _IS_REMOTE), flags)
            if parent_id
            else None
        )
        events = [
            Event(e.name, _attributes(e.attributes) or None, e.time_unix_nano) for e in pb.events
        ]
        links = [
            Link(
                SpanContext(
                    _id(link.trace_id, 16, "link trace_id"),
                    _id(link.span_id, 8, "link span_id"),
                    bool(link.flags & _IS_REMOTE),
                    TraceFlags(link.flags & 0xFF),
                ),
                _attributes(link.attributes) or None,
            )
            for link in pb.links
        ]
        code = StatusCode(pb.status.code)
        status = Status(code, (pb.status.message or None) if code is StatusCode.ERROR else None)
        return ReadableSpan(
            name=pb.name,
            context=context,
            parent=parent,
            resource=resource,
            attributes=_attributes(pb.attributes),
            events=events,
            links=links,
            kind=_KINDS[pb.kind],
            status=status,
            start_time=pb.start_time_unix_nano,
            end_time=pb.end_time_unix_nano,
            instrumentation_scope=scope,
        )


def _parse(message_type: Any, payload: bytes) -> Any:
    try:
        return message_type.FromString(payload)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise FrameError("malformed", f"payload is not valid OTLP protobuf: {exc}") from exc
