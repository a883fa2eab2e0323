"""A job module for the flow-control process tests; run as a script it is one worker process.

Environment: ``FLOWAPP_URL`` (database), ``FLOWAPP_LIMITS`` (JSON of the limits the code
declares for queue ``flow``: ``{"concurrency": 3, "key_concurrency": 1, "rate": [20, 1.0]}``),
``FLOWAPP_CONCURRENCY`` (threads). A job sleeps ``data["ms"]`` milliseconds; its limit key is
``data["key"]``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from otelkit.jobs import Job, JobStore, Limits, Rate

store = JobStore(os.environ["FLOWAPP_URL"], gauges=False)


def _limits() -> Limits | None:
    raw = json.loads(os.environ.get("FLOWAPP_LIMITS", "null"))
    if raw is None:
        return None
    for name in ("rate", "key_rate"):
        if name in raw:
            raw[name] = Rate(*raw[name])
    return Limits(**raw)


def _key(data: Any) -> str | None:
    return data.get("key") if isinstance(data, dict) else None


@store.job(name="step", queue="flow", limits=_limits(), limit_key=_key)
def step(job: Job) -> None:
    """Take ``ms`` milliseconds."""
    time.sleep(job.data.get("ms", 0) / 1000)


if __name__ == "__main__":
    from _procs import mark_ready  # the test helper next to this file

    worker = store.worker(
        concurrency=int(os.environ.get("FLOWAPP_CONCURRENCY", "4")), poll_interval=0.05
    )
    mark_ready()
    worker.run()
