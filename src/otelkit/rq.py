"""RQ: the worker is the relay host, every work-horse relays to it.

Run the worker with otelkit's worker class, and send jobs through otelkit's queue class so
that each job's span continues the trace of the code that enqueued it::

    rq worker -w otelkit.rq.Worker default

    from otelkit.rq import Queue
    Queue("default", connection=Redis()).enqueue(resize, "cat.png")

:class:`Worker` calls ``otelkit.configure(relay=True)`` (options from the ``OTEL_*``
environment) unless the process already hosts a relay (a ``configure(relay=True)`` of your
own in a settings module ``rq worker -c`` loads, say). RQ forks a work-horse for each job;
the horse relays to the worker under its own ``service.instance.id`` and, when RQ ends it
with ``os._exit``, flushes first (``configure()`` guards ``os._exit``). Each job runs in a
``run/<function name>`` CONSUMER span whose parent is the context :class:`Queue` stored in
the job's ``meta`` when it was enqueued. RQ's own SIGTERM handling is untouched: a warm
shutdown lets the job in flight finish. See ``docs/task-queues.md``.
"""

from __future__ import annotations

from typing import Any

try:
    import rq
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("otelkit.rq needs RQ: pip install 'otelkit[rq]'") from exc
from opentelemetry import context as context_api
from opentelemetry import propagate, trace

import otelkit

__all__ = ["Queue", "Worker"]

_META_KEY = "otelkit.context"  # job.meta entry: the enqueuing code's W3C trace context


class Queue(rq.Queue):  # type: ignore[misc,unused-ignore]
    """An ``rq.Queue`` that stores the enqueuing code's trace context in each job's meta."""

    def create_job(self, *args: Any, **kwargs: Any) -> Any:
        """Create the job as ``rq.Queue`` does, with the current trace context in its meta."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        if carrier:
            kwargs["meta"] = {**(kwargs.get("meta") or {}), _META_KEY: carrier}
        return super().create_job(*args, **kwargs)


class Worker(rq.Worker):  # type: ignore[misc,unused-ignore]
    """An ``rq.Worker`` that hosts otelkit's relay and runs each job in a span."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        telemetry = otelkit.current()
        if telemetry is None or telemetry.relay_host is None:
            otelkit.configure(relay=True)

    def perform_job(self, job: Any, queue: Any, *args: Any, **kwargs: Any) -> bool:
        """Run the job (in the work-horse) inside a span continuing the enqueuer's trace."""
        parent = propagate.extract((job.meta or {}).get(_META_KEY) or {})
        span = trace.get_tracer("otelkit.rq").start_span(
            f"run/{job.func_name}",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.system": "rq", "messaging.destination.name": queue.name},
        )
        token = context_api.attach(trace.set_span_in_context(span, parent))
        try:
            ok = bool(super().perform_job(job, queue, *args, **kwargs))
            if not ok:
                span.set_status(trace.Status(trace.StatusCode.ERROR, "the job failed"))
            return ok
        finally:
            span.end()
            context_api.detach(token)
