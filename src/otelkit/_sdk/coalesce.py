"""The SDK's private hook before a span ends, forwarded by the coalescing span processor
(a wrapper must not swallow its downstream's hooks). It needs no self-check: it calls the
hook only where the processor has one."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import SpanProcessor

__all__ = ["call_on_ending"]


def call_on_ending(downstream: SpanProcessor, span: Any) -> None:
    """Call ``downstream``'s ``_on_ending`` hook with ``span``, if it has one."""
    hook = getattr(downstream, "_on_ending", None)
    if hook is not None:
        hook(span)
