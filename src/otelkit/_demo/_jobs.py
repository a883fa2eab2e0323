"""The demo's job functions, importable by spawned worker processes.

Most orders succeed; a "flaky" job fails its first attempt and succeeds on the retry; the
"doomed" job fails every attempt and ends ``failed``.

On a database shared with other work (``otelkit demo --db postgresql://...``) a run uses a
queue of its own (:func:`run_queue`), counts only that queue's jobs, and removes what it
created when it ends (:meth:`DemoJobs.cleanup`).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from otelkit.jobs import Backoff, Job, JobFunction, JobStore
from otelkit.jobs._schema import drop_schema, has_schema, history, jobs

__all__ = ["DOOMED", "FLAKY", "ORDER", "QUEUE", "DemoJobs", "build_store", "run_queue"]

QUEUE = "demo"
ORDER, FLAKY, DOOMED = "demo.order", "demo.flaky", "demo.doomed"
_QUICK_RETRY = Backoff(base=0.2, factor=2.0, cap=1.0, jitter=0.5)
log = logging.getLogger("otelkit.demo.jobs")


def run_queue(*, shared: bool) -> str:
    """The queue of one demo run: ``demo`` in a private database, ``demo-<8 hex>`` otherwise."""
    return f"{QUEUE}-{os.urandom(4).hex()}" if shared else QUEUE


@dataclass
class DemoJobs:
    """The store, its three job functions, and the queue they use."""

    store: JobStore
    order: JobFunction[Any]
    flaky: JobFunction[Any]
    doomed: JobFunction[Any]
    queue: str = QUEUE
    created_tables: bool = False

    def prepare(self) -> None:
        """Create the job tables if missing, remembering whether this run created them."""
        self.created_tables = not has_schema(self.store.engine)
        self.store.create_schema()

    def counts(self) -> dict[str, int]:
        """This run's jobs (its queue only) by state, every state included."""
        by_state = self.store.count_by_state(queue=self.queue)
        return {state.value: count for state, count in by_state.items()}

    def cleanup(self) -> None:
        """Delete this run's jobs and their history; drop the tables if this run created them
        and no other jobs are in them; close the store."""
        engine = self.store.engine
        writer = engine.execution_options(otelkit_write=True)
        mine = sa.select(jobs.c.id).where(jobs.c.queue == self.queue)
        try:
            with writer.begin() as conn:
                conn.execute(sa.delete(history).where(history.c.job_id.in_(mine)))
                conn.execute(sa.delete(jobs).where(jobs.c.queue == self.queue))
                others = conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar_one()
            if self.created_tables and not others:
                drop_schema(engine)
        finally:
            self.store.close()


def build_store(url: str, *, queue: str = QUEUE) -> DemoJobs:
    """A JobStore at ``url`` with the demo's three job functions registered on ``queue``."""
    store = JobStore(url, gauges=False)

    @store.job(name=ORDER, queue=queue, lease=10.0)
    def process_order(job: Job) -> dict[str, int]:
        time.sleep(0.02)  # the work
        log.info("order %s packed", job.data["order"])
        return {"items": int(job.data["order"]) % 5 + 1}

    @store.job(name=FLAKY, queue=queue, max_attempts=3, lease=10.0, backoff=_QUICK_RETRY)
    def sync_inventory(job: Job) -> None:
        time.sleep(0.02)
        if job.attempt == 1:
            raise ConnectionError("inventory service reset the connection")
        log.info("inventory synced on attempt %d", job.attempt)

    @store.job(name=DOOMED, queue=queue, max_attempts=3, lease=10.0, backoff=_QUICK_RETRY)
    def charge_card(job: Job) -> None:
        time.sleep(0.01)
        raise ValueError(f"card {job.data['card']} declined")

    return DemoJobs(store, process_order, sync_inventory, charge_card, queue=queue)
