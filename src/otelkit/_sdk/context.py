"""Context shortcuts: the current span read straight from the API's context variable."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Span

from otelkit._sdk._check import checked

__all__ = ["CURRENT_SPAN_OK", "SPAN_LOOKUP", "current_span"]


def _lookup() -> tuple[Callable[[], Context], str] | None:
    """``(read the current context, the key of its span)`` when the API's default
    ``contextvars`` runtime context is in use; ``None`` otherwise."""
    from opentelemetry import context as context_api
    from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
    from opentelemetry.trace.propagation import _SPAN_KEY

    runtime = getattr(context_api, "_RUNTIME_CONTEXT", None)
    variable = getattr(runtime, "_current_context", None)
    if type(runtime) is not ContextVarsRuntimeContext or not isinstance(variable, ContextVar):
        return None
    return variable.get, _SPAN_KEY


def _shortcut() -> Callable[[], Span] | None:
    """``trace.get_current_span`` as one C call and a lookup, when the API's default
    ``contextvars`` runtime context is in use; ``None`` otherwise."""
    lookup = _lookup()
    if lookup is None:
        return None
    read, key = lookup

    def current_span() -> Span:
        span = read().get(key)
        return span if isinstance(span, Span) else INVALID_SPAN

    return current_span


def _check_current_span() -> bool:
    """The shortcut returns what ``trace.get_current_span()`` returns: with no span, inside
    a span made current, and after it ends."""
    fast = _shortcut()
    if fast is None:
        return False
    if fast() is not trace.get_current_span():
        return False
    span = trace.NonRecordingSpan(
        trace.SpanContext(1, 2, is_remote=False, trace_flags=trace.TraceFlags(1))
    )
    with trace.use_span(span):
        if fast() is not span or trace.get_current_span() is not span:
            return False
    return fast() is trace.get_current_span()


CURRENT_SPAN_OK = checked("current_span", _check_current_span)
"""Whether :data:`current_span` reads the context variable directly."""

current_span: Callable[[], Span] = (
    (_shortcut() or trace.get_current_span) if CURRENT_SPAN_OK else trace.get_current_span
)
"""The current span, as ``opentelemetry.trace.get_current_span()`` (``INVALID_SPAN`` when
there is none), read straight from the context variable when the shortcut is on."""

SPAN_LOOKUP: tuple[Callable[[], Context], str] | None = _lookup() if CURRENT_SPAN_OK else None
"""For a hot path that cannot afford a call frame: ``(read, key)`` such that
``read().get(key)`` is the current span (or ``None``, or a non-span to be ignored, as
``trace.get_current_span`` ignores it); ``None`` when the caller must use
:data:`current_span`."""
