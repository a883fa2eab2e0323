"""The demo's job functions, importable by spawned worker processes.

Most orders succeed; a "flaky" job fails its first attempt and succeeds on the retry; the
"doomed" job fails every attempt and ends ``failed``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from otelkit.jobs import Backoff, Job, JobFunction, JobStore

__all__ = ["DOOMED", "FLAKY", "ORDER", "QUEUE", "DemoJobs", "build_store"]

QUEUE = "demo"
ORDER, FLAKY, DOOMED = "demo.order", "demo.flaky", "demo.doomed"
_QUICK_RETRY = Backoff(base=0.2, factor=2.0, cap=1.0, jitter=0.5)
log = logging.getLogger("otelkit.demo.jobs")


@dataclass
class DemoJobs:
    """The store and its three job functions."""

    store: JobStore
    order: JobFunction[Any]
    flaky: JobFunction[Any]
    doomed: JobFunction[Any]


def build_store(url: str) -> DemoJobs:
    """A JobStore at ``url`` with the demo's three job functions registered."""
    store = JobStore(url, gauges=False)

    @store.job(name=ORDER, queue=QUEUE, lease=10.0)
    def process_order(job: Job) -> dict[str, int]:
        time.sleep(0.02)  # the work
        log.info("order %s packed", job.data["order"])
        return {"items": int(job.data["order"]) % 5 + 1}

    @store.job(name=FLAKY, queue=QUEUE, max_attempts=3, lease=10.0, backoff=_QUICK_RETRY)
    def sync_inventory(job: Job) -> None:
        time.sleep(0.02)
        if job.attempt == 1:
            raise ConnectionError("inventory service reset the connection")
        log.info("inventory synced on attempt %d", job.attempt)

    @store.job(name=DOOMED, queue=QUEUE, max_attempts=3, lease=10.0, backoff=_QUICK_RETRY)
    def charge_card(job: Job) -> None:
        time.sleep(0.01)
        raise ValueError(f"card {job.data['card']} declined")

    return DemoJobs(store, process_order, sync_inventory, charge_card)
