"""jobs_idle_load: database load of one idle worker, listening vs polling, on PostgreSQL.

Ours: an idle ``otelkit.jobs`` worker with its defaults (LISTEN/NOTIFY, a fallback poll
every 15 s). Baseline: the same worker polling every second (``listen=False``,
``poll_interval=1``: what every worker did before). Each runs alone against a fresh
database for ``SECONDS``; the load is the statements per minute the worker sends, counted
in its process (every SQLAlchemy cursor execution, plus BEGIN and COMMIT of each explicit
transaction; the LISTEN connection sends one statement when it connects and nothing while
it waits). pg_stat_statements is not assumed loaded; the database's own transaction count
(``pg_stat_database``, which also includes autovacuum and the statistics of a fresh
database) is printed beside it.

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


def _per_minute(**worker_options: object) -> tuple[float, float]:
    from otelkit.jobs import Job, JobStore

    db = _Database()
    try:
        store = JobStore(db.url.render_as_string(hide_password=False), gauges=False)

        @store.job(name="idle")
        def idle(job: Job) -> None: ...

        store.create_schema()
        sent = [0]

        @sa.event.listens_for(store.engine, "before_cursor_execute")
        def statement(*args: object) -> None:
            sent[0] += 1

        @sa.event.listens_for(store.engine, "begin")
        def begin(conn: sa.Connection) -> None:
            if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                sent[0] += 2  # BEGIN and COMMIT

        worker = store.worker(concurrency=1, **worker_options)  # type: ignore[arg-type]
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        time.sleep(2.0)  # started, first claim done
        before, sent_before = _transactions(db), sent[0]
        time.sleep(SECONDS)
        after, sent_after = _transactions(db), sent[0]
        worker.stop()
        thread.join(30)
        store.close()
        return (sent_after - sent_before) * 60.0 / SECONDS, (after - before) * 60.0 / SECONDS
    finally:
        db.drop()


def main() -> None:
    ours, ours_tx = _per_minute()
    base, base_tx = _per_minute(listen=False, poll_interval=1.0)
    print(f"pg_stat_database transactions/min: ours={ours_tx:.0f}, baseline={base_tx:.0f}")
    print(f"one idle worker for {SECONDS:.0f} s; statements per minute it sends")
    print(
        f"jobs_idle_load: ratio={ours / base:.3f} (ours={ours:.1f} statements/min, baseline={base:.1f} statements/min)"
    )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
