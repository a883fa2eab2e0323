"""Celery: the worker's main process is the relay host, every pool process relays to it.

One line in the module that defines your Celery app (the workers, ``celery beat`` and the
code that sends tasks all import it)::

    app = Celery("shop", broker="redis://127.0.0.1:6379/0")
    otelkit.celery.instrument(app, service_name="shop-worker")

What it connects, each on Celery's own signals:

- ``worker_init``: the worker's main process calls ``otelkit.configure(relay=True, ...)``.
  Prefork pool processes are forked from it and relay to it, each under its own
  ``service.instance.id``; a pool process that Celery recycles
  (``--max-tasks-per-child``) or stops is flushed in ``worker_process_shutdown``, before
  billiard ends it with ``os._exit``.
- ``after_setup_logger`` / ``after_setup_task_logger``: Celery's
  ``worker_hijack_root_logger`` empties the root logger's handlers after ``worker_init``
  (and again in every pool process); otelkit's logging bridge is put back.
- ``beat_init``: ``celery beat`` configures otelkit for itself (no relay).
- Trace context from the code that sends a task to the task's span: with
  ``opentelemetry-instrumentation-celery`` installed its ``CeleryInstrumentor`` does it;
  without it, otelkit injects the sender's context into the message headers
  (``before_task_publish``) and runs each task in a ``run/<task name>`` CONSUMER span
  whose parent is that context (``task_prerun`` to ``task_postrun``).

Options are those of :func:`otelkit.configure`; anything not given comes from the
``OTEL_*`` environment. See ``docs/task-queues.md``.
"""

from __future__ import annotations

import contextlib
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter

import otelkit

__all__ = ["instrument"]

_SPAN = "_otelkit_span"  # the attribute of a task's request that holds (span, token)


def instrument(app: Any, **options: Any) -> None:
    """Connect otelkit to Celery app ``app``'s worker, beat and publishing signals.

    ``options`` go to :func:`otelkit.configure` in the worker's main process (with
    ``relay=True``) and in ``celery beat``. Calling it again for the same app does nothing.
    """
    try:
        from celery import signals
    except ImportError as exc:
        raise ImportError("otelkit.celery needs Celery: pip install 'otelkit[celery]'") from exc

    if "relay" in options:
        raise TypeError(
            "otelkit.celery.instrument: relay is not an option here (the worker's main process "
            "is always the relay host); pass the other configure() options"
        )
    if getattr(app, "_otelkit_instrumented", False):
        return
    app._otelkit_instrumented = True

    def on_worker_init(**_: Any) -> None:
        otelkit.configure(relay=True, **options)

    def on_worker_process_init(**_: Any) -> None:
        if otelkit.current() is None:  # a pool that was not forked from the host
            otelkit.configure(**options)

    def on_worker_process_shutdown(**_: Any) -> None:
        telemetry = otelkit.current()
        if telemetry is not None:
            telemetry.shutdown()

    def on_logging_set_up(**_: Any) -> None:
        from otelkit._telemetry import reattach_log_bridge

        reattach_log_bridge()

    def on_beat_init(**_: Any) -> None:
        otelkit.configure(**options)

    # weak=False: these closures are referenced by nothing else.
    signals.worker_init.connect(on_worker_init, weak=False)
    signals.worker_process_init.connect(on_worker_process_init, weak=False)
    signals.worker_process_shutdown.connect(on_worker_process_shutdown, weak=False)
    signals.after_setup_logger.connect(on_logging_set_up, weak=False)
    signals.after_setup_task_logger.connect(on_logging_set_up, weak=False)
    signals.beat_init.connect(on_beat_init, weak=False)
    if not _use_celery_instrumentation():
        signals.before_task_publish.connect(_inject_context, weak=False)
        signals.task_prerun.connect(_start_task_span, weak=False)
        signals.task_failure.connect(_record_failure, weak=False)
        signals.task_postrun.connect(_end_task_span, weak=False)


def _use_celery_instrumentation() -> bool:
    try:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
    except ImportError:
        return False
    instrumentor = CeleryInstrumentor()  # type: ignore[no-untyped-call]
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    return True


class _RequestGetter(Getter[Any]):
    """Celery copies every message header onto the task's request as an attribute."""

    def get(self, carrier: Any, key: str) -> list[str] | None:
        value = getattr(carrier, key, None)
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Any) -> list[str]:
        return []


_GETTER = _RequestGetter()


def _inject_context(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        propagate.inject(headers)


def _start_task_span(task: Any = None, **_: Any) -> None:
    if task is None:
        return
    parent = propagate.extract(task.request, getter=_GETTER)
    span = trace.get_tracer("otelkit.celery").start_span(
        f"run/{task.name}", context=parent, kind=trace.SpanKind.CONSUMER
    )
    token = context_api.attach(trace.set_span_in_context(span, parent))
    setattr(task.request, _SPAN, (span, token))


def _record_failure(exception: BaseException | None = None, **_: Any) -> None:
    if exception is not None:  # the task's span is the current one (task_prerun attached it)
        trace.get_current_span().record_exception(exception)


def _end_task_span(task: Any = None, state: str | None = None, **_: Any) -> None:
    held = getattr(task.request, _SPAN, None) if task is not None else None
    if held is None:
        return
    span, token = held
    delattr(task.request, _SPAN)
    if state == "FAILURE":
        span.set_status(trace.Status(trace.StatusCode.ERROR))
    span.end()
    with contextlib.suppress(ValueError):  # a token of another context (a task switched threads)
        context_api.detach(token)
