"""A refresh batch: the keys one refresher tick reloads, traced as one span."""

from __future__ import annotations

import threading

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = ["SPAN_NAME", "RefreshBatch"]

SPAN_NAME = "otelkit.preload.refresh"


class RefreshBatch:
    """One span from the first dispatch until the last load of the batch finished.

    Loads of the batch run with this span as their parent context, so spans a loader makes
    (a database query, an HTTP call) nest under it. Refreshes that waited for a free worker
    join the batch of the load whose end freed it.
    """

    def __init__(self, tracer: trace.Tracer) -> None:
        self.span = tracer.start_span(SPAN_NAME, kind=SpanKind.INTERNAL)
        self.context: Context = trace.set_span_in_context(self.span)
        self._size = 0
        self._skipped = 0
        self._remaining = 0
        self._errors = 0
        self._lock = threading.Lock()

    def add(self, launched: int, skipped: int) -> None:
        """``launched`` more loads belong to the batch; ``skipped`` due keys were cold."""
        with self._lock:
            self._size += launched
            self._remaining += launched
            self._skipped += skipped

    def done(self, ok: bool) -> None:
        """One load of the batch finished; the last one ends the span."""
        with self._lock:
            self._remaining -= 1
            self._errors += not ok
            last = self._remaining == 0
        if last:
            self.span.set_attributes(
                {
                    "otelkit.preload.batch.size": self._size,
                    "otelkit.preload.batch.skipped": self._skipped,
                    "otelkit.preload.batch.errors": self._errors,
                }
            )
            if self._errors:
                self.span.set_status(
                    Status(StatusCode.ERROR, f"{self._errors} of {self._size} refresh loads failed")
                )
            self.span.end()
