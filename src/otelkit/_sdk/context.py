"""Context shortcuts: the current span read straight from the API's context variable, and
whether instrumentation is suppressed read without importing ``opentelemetry-instrumentation``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Span

from otelkit._sdk._check import checked

__all__ = [
    "CURRENT_SPAN_OK",
    "SPAN_LOOKUP",
    "SUPPRESSION_OK",
    "current_span",
    "instrumentation_enabled",
    "suppress_instrumentation",
]


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


# The key opentelemetry-instrumentation sets beside the API's, for older instrumentations.
_PLAIN_SUPPRESSION_KEY = "suppress_instrumentation"


def _suppression_key() -> str | None:
    from opentelemetry import context as context_api

    key = getattr(context_api, "_SUPPRESS_INSTRUMENTATION_KEY", None)
    return key if isinstance(key, str) else None


def _enabled_shortcut(key: str) -> Callable[[], bool]:
    lookup = _lookup()
    if lookup is not None:
        # The context read with one C call: this runs on every logging call.
        read = lookup[0]

        def instrumentation_enabled() -> bool:
            context = read()
            return not (context.get(key) or context.get(_PLAIN_SUPPRESSION_KEY))

        return instrumentation_enabled

    from opentelemetry.context import get_value

    def enabled_through_the_api() -> bool:
        return not (get_value(key) or get_value(_PLAIN_SUPPRESSION_KEY))

    return enabled_through_the_api


def _suppressing(key: str) -> Callable[[], contextlib.AbstractContextManager[None]]:
    from opentelemetry import context as context_api

    @contextlib.contextmanager
    def suppress_instrumentation() -> Iterator[None]:
        ctx = context_api.set_value(key, True)
        token = context_api.attach(context_api.set_value(_PLAIN_SUPPRESSION_KEY, True, ctx))
        try:
            yield
        finally:
            context_api.detach(token)

    return suppress_instrumentation


def _check_suppression() -> bool:
    """The API still defines the key ``suppress_instrumentation()`` sets; compared with
    ``is_instrumentation_enabled`` itself when ``opentelemetry.instrumentation.utils`` is
    already imported (importing it only for this costs ~20 ms of start-up; the seam's tests
    compare the two on every supported release)."""
    key = _suppression_key()
    if key is None:
        return False
    utils = sys.modules.get("opentelemetry.instrumentation.utils")
    if utils is None:
        return True
    fast = _enabled_shortcut(key)
    if fast() is not utils.is_instrumentation_enabled():
        return False
    with utils.suppress_instrumentation():
        if fast() or utils.is_instrumentation_enabled():
            return False
    with _suppressing(key)():
        return utils.is_instrumentation_enabled() is False


SUPPRESSION_OK = checked("instrumentation_enabled", _check_suppression)
"""Whether :data:`instrumentation_enabled` reads the API's suppression key itself."""


if SUPPRESSION_OK:
    _KEY = _suppression_key() or ""
    instrumentation_enabled: Callable[[], bool] = _enabled_shortcut(_KEY)
    suppress_instrumentation: Callable[[], contextlib.AbstractContextManager[None]] = _suppressing(
        _KEY
    )
else:
    from opentelemetry.instrumentation import utils as _utils

    instrumentation_enabled = _utils.is_instrumentation_enabled
    suppress_instrumentation = _utils.suppress_instrumentation
"""``instrumentation_enabled()`` and ``with suppress_instrumentation():`` as
``opentelemetry.instrumentation.utils``'s functions of those names (the same context keys),
without importing that package (and ``wrapt``) when the shortcut is on."""
