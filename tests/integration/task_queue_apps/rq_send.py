"""Enqueue N ``rq_jobs.work`` jobs on queue QUEUE inside one span of a configured producer."""

from __future__ import annotations

import sys

from opentelemetry import trace
from redis import Redis
from rq_jobs import work

import otelkit
from otelkit.rq import Queue

otelkit.configure(service_name="tq-producer")
queue_name, count, url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
queue = Queue(queue_name, connection=Redis.from_url(url))
with trace.get_tracer("tq").start_as_current_span("tq.enqueue") as span:
    for n in range(count):
        queue.enqueue(work, n)
    print(format(span.get_span_context().trace_id, "032x"), flush=True)
otelkit.current().shutdown()  # type: ignore[union-attr]
