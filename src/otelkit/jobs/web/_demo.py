"""``otelkit jobs web --demo``: a dashboard over a temporary SQLite store holding jobs worth
looking at (succeeded, retried, failed with tracebacks, scheduled, a paused queue)."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from opentelemetry.sdk.trace import TracerProvider

from otelkit.jobs import Backoff, Job, JobStore

__all__ = ["demo_store"]

_QUICK = Backoff(base=0.05, factor=1.0, cap=0.05, jitter=0.0)


def demo_store(path: str) -> JobStore:
    """A store at ``path`` (a new SQLite file) with demo jobs run by a worker here.

    Attempts are traced by a tracer that exports nowhere: their trace ids are recorded (the
    dashboard links them) although no trace was sent.
    """
    store = JobStore(path, tracer_provider=TracerProvider(), gauges=False)
    store.create_schema()

    @store.job(name="orders.pack", queue="orders")
    def pack(job: Job) -> dict[str, int]:
        return {"items": int(job.data["order"]) % 5 + 1}

    @store.job(name="inventory.sync", queue="inventory", max_attempts=3, backoff=_QUICK)
    def sync(job: Job) -> str:
        if job.attempt == 1:
            raise ConnectionError("inventory service reset the connection")
        job.then(pack, {"order": 1000})
        return f"synced {job.data['sku']} on attempt {job.attempt}"

    @store.job(name="payments.charge", queue="payments", max_attempts=2, backoff=_QUICK)
    def charge(job: Job) -> None:
        raise ValueError(f"card {job.data['card']} declined by the issuer")

    @store.job(name="mail.send", queue="mail")
    def send(job: Job) -> str:
        return "sent"

    pack.enqueue_many([{"order": n} for n in range(40)])
    sync.enqueue({"sku": "A-42"})
    for card in ("4000-0000-0000-0002", "4000-0000-0000-9995"):
        charge.enqueue({"card": card, "amount": 1999})
    send.enqueue_many([{"to": f"user{n}@example.com"} for n in range(5)])
    quiet = logging.getLogger("otelkit.jobs")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # the failures are the point: no tracebacks on stderr
    try:
        worker = store.worker(concurrency=2, listen=False, retention=None)
        for _ in range(4):  # retries wait for their (short) backoff
            worker.run_until_idle(timeout=60)
            time.sleep(0.06)
    finally:
        quiet.setLevel(level)
    store.pause("mail")
    send.enqueue_many([{"to": f"late{n}@example.com"} for n in range(3)])
    pack.enqueue({"order": 2000}, run_after=timedelta(minutes=30))
    return store
