"""jobs_idle_load: database load of one idle worker, listening vs polling, on PostgreSQL.

Ours: an idle ``otelkit.jobs`` worker with its defaults (LISTEN/NOTIFY, a fallback poll
every 15 s). Baseline: the same worker polling every second (``listen=False``,
``poll_interval=1``: what every worker did before). Each runs alone against a fresh
database for ``SECONDS``; the load is the database's committed + rolled-back transactions
per minute (``pg_stat_database`` deltas; pg_stat_statements is not assumed loaded), which
counts every claim, poll and sweep: each is one transaction.

Environment: ``OTELKIT_BENCH_POSTGRES_URL`` (else ``OTELKIT_TEST_POSTGRES_URL``, else
``postgresql://postgres@127.0.0.1:5432/postgres``), ``SECONDS`` (default 60).
"""

from __future__ import annotations

import os
import sys
import threading
import time

import sqlalchemy as sa
from jobs_throughput import _Database

SECONDS = float(os.environ.get("SECONDS", "60"))


def _transactions(db: _Database) -> int:
    time.sleep(0.6)  # the statistics collector reports with a delay
    with db.admin.connect() as conn:
        conn.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
        value = conn.execute(
            sa.text("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = :n"),
            {"n": db.name},
        ).scalar_one()
    return int(value)


def _per_minute(**worker_options: object) -> float:
    from otelkit.jobs import Job, JobStore

    db = _Database()
    try:
        store = JobStore(db.url.render_as_string(hide_password=False), gauges=False)

        @store.job(name="idle")
        def idle(job: Job) -> None: ...

        store.create_schema()
        worker = store.worker(concurrency=1, **worker_options)  # type: ignore[arg-type]
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        time.sleep(2.0)  # started, first claim done
        before = _transactions(db)
        time.sleep(SECONDS)
        after = _transactions(db)
        worker.stop()
        thread.join(30)
        store.close()
        return (after - before) * 60.0 / SECONDS
    finally:
        db.drop()


def main() -> None:
    ours = _per_minute()
    base = _per_minute(listen=False, poll_interval=1.0)
    print(f"one idle worker for {SECONDS:.0f} s; transactions per minute on its database")
    print(
        f"jobs_idle_load: ratio={ours / base:.3f} (ours={ours:.1f} tx/min, baseline={base:.1f} tx/min)"
    )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
