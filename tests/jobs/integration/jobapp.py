"""A job module for the multi-process tests; run as a script it is one worker process.

Environment: ``JOBAPP_URL`` (database), ``JOBAPP_LEASE`` (seconds), ``JOBAPP_CONCURRENCY``,
``JOBAPP_BATCH``. The job records each execution in the ``executions`` table.
"""

from __future__ import annotations

import os
import time

import sqlalchemy as sa

from otelkit.jobs import Job, JobStore

store = JobStore(os.environ["JOBAPP_URL"], gauges=False)
executions = sa.Table(
    "executions",
    sa.MetaData(),
    sa.Column("job_id", sa.String(200), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
)
_writer = store.engine.execution_options(otelkit_write=True)


@store.job(name="record", lease=float(os.environ.get("JOBAPP_LEASE", "30")))
def record(job: Job) -> None:
    """Record this execution; a ``hang`` job hangs on its first attempt."""
    with _writer.begin() as conn:
        conn.execute(
            sa.insert(executions).values(job_id=job.id, attempt=job.attempt, pid=os.getpid())
        )
    if job.data == "hang" and job.attempt == 1:
        time.sleep(600)


def create_tables() -> None:
    """Job tables and the executions table."""
    store.create_schema()
    executions.create(store.engine, checkfirst=True)


if __name__ == "__main__":
    from _procs import mark_ready  # the test helper next to this file

    worker = store.worker(
        concurrency=int(os.environ.get("JOBAPP_CONCURRENCY", "4")),
        batch=int(os.environ.get("JOBAPP_BATCH", "10")),
        poll_interval=0.1,
    )
    mark_ready()
    worker.run()
