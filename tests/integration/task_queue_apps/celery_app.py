"""The Celery application of the task-queue tests.

``TQ_MODE`` chooses how otelkit is set up: ``recipe`` (``otelkit.celery.instrument``),
``manual`` (``configure(relay=True)`` in ``worker_init`` and ``configure()`` in
``worker_process_init``, as a user without the recipe would), ``host-only`` (the
``worker_init`` call alone), or ``plain`` (no otelkit: the
baseline for shutdown timing). ``TQ_NO_INSTRUMENTATION=1`` hides
``opentelemetry-instrumentation-celery`` so that otelkit's own propagation runs.
"""

from __future__ import annotations

import logging
import os
import sys

if os.environ.get("TQ_NO_INSTRUMENTATION") == "1":
    sys.modules["opentelemetry.instrumentation.celery"] = None  # type: ignore[assignment]

from celery import Celery, signals
from opentelemetry import metrics, trace

import otelkit
import otelkit.celery

app = Celery("tq", broker=os.environ["TQ_BROKER"])
app.conf.update(
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
    task_acks_late=False,
    worker_redirect_stdouts=False,
    task_default_queue=os.environ.get("TQ_QUEUE", "tq"),
)

if os.environ.get("TQ_BEAT") == "1":
    app.conf.beat_schedule = {"tick": {"task": "tq.work", "schedule": 0.5, "args": (0,)}}

MODE = os.environ.get("TQ_MODE", "recipe")
if MODE == "recipe":
    otelkit.celery.instrument(app)
elif MODE in ("manual", "host-only"):

    @signals.worker_init.connect(weak=False)
    def _host(**_: object) -> None:
        otelkit.configure(relay=True)

    if MODE == "manual":

        @signals.worker_process_init.connect(weak=False)
        def _child(**_: object) -> None:
            otelkit.configure()


@app.task(name="tq.work")
def work(n: int) -> int:
    with trace.get_tracer("tq").start_as_current_span("tq.work", attributes={"tq.n": n}):
        logging.getLogger("tq").warning("task %d", n, extra={"tq.n": n})
        metrics.get_meter("tq").create_counter("tq.done").add(1)
    return os.getpid()


@app.task(name="tq.fail")
def fail(n: int) -> None:
    raise ValueError(f"task {n} fails")
