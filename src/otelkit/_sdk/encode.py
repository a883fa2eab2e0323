"""Encoding shortcuts: a span's OTLP message without the request around it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan

from otelkit._sdk._check import checked

__all__ = ["span_encoder_ok", "span_messages", "warm_up"]

ScopeKey = tuple[str, str | None]
"""A span's instrumentation scope as the relay groups spans: ``(name, version)``."""


def _key(span: ReadableSpan) -> ScopeKey:
    scope = span.instrumentation_scope
    return (scope.name, scope.version or None) if scope is not None else ("", None)


def _private_encoder() -> Callable[[ReadableSpan], object]:
    from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import _encode_span

    return _encode_span


def _by_private_encoder(spans: Sequence[ReadableSpan]) -> dict[ScopeKey, list[bytes]]:
    encode = _private_encoder()
    out: dict[ScopeKey, list[bytes]] = {}
    for span in spans:
        out.setdefault(_key(span), []).append(encode(span).SerializeToString())  # type: ignore[attr-defined]
    return out


def _by_public_encoder(spans: Sequence[ReadableSpan]) -> dict[ScopeKey, list[bytes]]:
    # The exporter's public encoder builds the whole request (grouped by resource and
    # scope); only the span messages are kept, grouped as the shortcut groups them.
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    out: dict[ScopeKey, list[bytes]] = {}
    request = encode_spans(spans)
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            key = (scope.name, scope.version or None)
            out.setdefault(key, []).extend(span.SerializeToString() for span in scope_spans.spans)
    return out


def span_messages(spans: Sequence[ReadableSpan]) -> dict[ScopeKey, list[bytes]]:
    """Each span as a serialized OTLP ``Span`` message, grouped by ``(scope name, version)``
    in order of first appearance (spans keep their order within a scope)."""
    if span_encoder_ok():
        return _by_private_encoder(spans)
    return _by_public_encoder(spans)


def warm_up() -> None:
    """Import what encoding spans needs (protobuf message classes, ~25 ms)."""
    span_encoder_ok()


def _check_span_encoder() -> bool:
    """Spans with a parent, attributes, events, links and a status, in two scopes: the
    private per-span encoder gives byte for byte what the public request encoder holds."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.trace import Link, Status, StatusCode

    finished: list[ReadableSpan] = []

    class _Keep(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            finished.extend(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(_Keep()))
    try:
        first = provider.get_tracer("otelkit.sdk-check", "1")
        second = provider.get_tracer("otelkit.sdk-check.other")
        with first.start_as_current_span("outer", attributes={"a": 1, "b": [1.5, 2.5]}) as outer:
            outer.add_event("e", {"k": "v"})
            with second.start_as_current_span("inner", links=[Link(outer.get_span_context())]):
                pass
            outer.set_status(Status(StatusCode.ERROR, "broken"))
        return len(finished) == 2 and _by_private_encoder(finished) == _by_public_encoder(finished)
    finally:
        provider.shutdown()


_ok: list[bool] = []


def span_encoder_ok() -> bool:
    """Whether :func:`span_messages` may encode span by span with the exporter's private
    encoder. Checked on first use, not at import: encoding imports protobuf (~25 ms), which
    a relay child's start-up does not pay (its sender thread calls :func:`warm_up`)."""
    if not _ok:
        _ok.append(checked("span_messages", _check_span_encoder))
    return _ok[0]
