"""Send N ``tq.work`` tasks inside one span of an otelkit-configured producer."""

from __future__ import annotations

import sys

from opentelemetry import trace

import otelkit

otelkit.configure(service_name="tq-producer")
from celery_app import work  # noqa: E402 - after configure(): the producer's own pipeline

count = int(sys.argv[1])
with trace.get_tracer("tq").start_as_current_span("tq.enqueue") as span:
    for n in range(count):
        work.delay(n)
    print(format(span.get_span_context().trace_id, "032x"), flush=True)
otelkit.current().shutdown()  # type: ignore[union-attr]
