"""jobs_fairness: p50 enqueue-to-start of a small tenant's jobs behind another tenant's
1,000-job backlog, with fair claims (``Limits(fair=True)``) vs plain FIFO by priority.

One worker (4 threads) drains tenant A's backlog of 1,000 jobs of 2 ms each on PostgreSQL;
once 50 of them have finished, tenant B enqueues 10 jobs of the same priority. Their wait is
measured on the database clock, from ``created_at`` to the attempt's ``running`` transition.
With fair claims B's jobs take turns with A's; with FIFO they wait for A's backlog. The
ratio is fair / FIFO (lower is better). Each mode runs ``REPEATS`` times in fresh databases,
alternating; the medians of the per-run p50s are quoted.

Environment: ``OTELKIT_BENCH_POSTGRES_URL`` (else ``OTELKIT_TEST_POSTGRES_URL``, else
``postgresql://postgres@127.0.0.1:5432/postgres``), ``REPEATS`` (default 3).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time

import sqlalchemy as sa
from jobs_throughput import REPEATS, _Database

BACKLOG = 1000
SMALL = 10


def _run(fair: bool) -> float:
    """p50 seconds from enqueue to start of the small tenant's jobs, one run."""
    from otelkit.jobs import Job, JobState, JobStore, Limits

    db = _Database()
    store = JobStore(db.url.render_as_string(hide_password=False), gauges=False)
    try:

        @store.job(name="work", limit_key=lambda data: data["tenant"])
        def work(job: Job) -> None:
            time.sleep(0.002)

        store.create_schema()
        if fair:
            store.set_limits("default", Limits(fair=True))
        work.enqueue_many([{"tenant": "A"}] * BACKLOG)
        worker = store.worker(concurrency=4, poll_interval=0.05)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        while store.count_by_state()[JobState.SUCCEEDED] < 50:
            time.sleep(0.01)
        ids = work.enqueue_many([{"tenant": "B"}] * SMALL)
        deadline = time.monotonic() + 300
        while store.count_by_state()[JobState.SUCCEEDED] < BACKLOG + SMALL:
            if time.monotonic() > deadline:
                raise RuntimeError("the jobs did not finish within 300 s")
            time.sleep(0.05)
        worker.stop()
        thread.join(60)
        sql = sa.text(
            "SELECT min(t.at) - j.created_at FROM otelkit_jobs j "
            "JOIN otelkit_job_transitions t ON t.job_id = j.id AND t.to_status = 'running' "
            "WHERE j.id IN :ids GROUP BY j.id, j.created_at"
        ).bindparams(sa.bindparam("ids", expanding=True))
        with store.engine.connect() as conn:
            waits = [float(w) for w in conn.execute(sql, {"ids": list(ids)}).scalars()]
        assert len(waits) == SMALL
        return statistics.median(waits)
    finally:
        store.close()
        db.drop()


def main() -> None:
    fair: list[float] = []
    fifo: list[float] = []
    for i in range(REPEATS):
        for results, mode in (
            ((fair, True), (fifo, False))
            if i % 2 == 0
            else (
                (fifo, False),
                (fair, True),
            )
        ):
            results.append(_run(mode))
        print(
            f"run {i + 1}: p50 wait of B's jobs: fair={fair[-1] * 1000:.1f} ms, "
            f"FIFO={fifo[-1] * 1000:.1f} ms",
            flush=True,
        )
    a, b = statistics.median(fair) * 1000, statistics.median(fifo) * 1000
    print(f"{SMALL} jobs of tenant B behind {BACKLOG} of tenant A; medians of {REPEATS} runs")
    print(f"jobs_fairness: ratio={a / b:.3f} (ours={a:.1f} ms, baseline={b:.1f} ms)")


if __name__ == "__main__":
    sys.exit(main())
