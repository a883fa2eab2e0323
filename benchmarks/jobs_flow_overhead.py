"""jobs_flow_overhead: throughput with a per-queue concurrency limit that never binds vs no
limit, same run, PostgreSQL.

The harness of ``jobs_throughput`` (4 worker processes, claim batch 10, no-op jobs with full
tracking, start-up not timed) drains the same number of jobs twice per repeat in fresh
databases: once with ``Limits(concurrency=40)`` on the queue (>= processes x batch, so it
never holds a job back, yet every claim takes the limited path: lock the queue's settings
row, count, claim) and once without limits (the plain claim). Runs alternate; medians.

Environment: as ``jobs_throughput`` (``OTELKIT_BENCH_POSTGRES_URL``, ``JOBS``, ``REPEATS``,
``PROCESSES``: ``PROCESSES=1`` measures the claim alone, with no other worker to take turns
with).
"""

from __future__ import annotations

import statistics
import sys
from typing import Any

from jobs_throughput import BATCH, JOBS, PROCESSES, REPEATS, _ours_prepare, _ours_worker, _run

LIMIT = PROCESSES * BATCH


def _prepare_limited(url: str) -> None:
    from otelkit.jobs import JobStore, Limits

    _ours_prepare(url)
    store = JobStore(url, gauges=False)
    store.set_limits("default", Limits(concurrency=LIMIT))
    store.close()


def main() -> None:
    limited: list[float] = []
    plain: list[float] = []
    runs: list[tuple[list[float], Any]] = [
        (limited, _prepare_limited),
        (plain, _ours_prepare),
    ]
    for i in range(REPEATS):
        for results, prepare in runs if i % 2 == 0 else runs[::-1]:
            results.append(_run(prepare, _ours_worker))
        print(
            f"run {i + 1}: limit {LIMIT} (never binds)={limited[-1]:.0f} jobs/s, "
            f"no limit={plain[-1]:.0f} jobs/s (ratio {limited[-1] / plain[-1]:.2f})",
            flush=True,
        )
    a, b = statistics.median(limited), statistics.median(plain)
    print(f"{JOBS} no-op jobs, {PROCESSES} processes, batch {BATCH}, medians of {REPEATS} runs")
    print(f"jobs_flow_overhead: ratio={a / b:.2f} (ours={a:.0f} jobs/s, baseline={b:.0f} jobs/s)")


if __name__ == "__main__":
    sys.exit(main())
