"""A periodic job for the multi-process tests; run as a script it is one worker process.

Environment: ``PERIODIC_URL`` (database). The job records its period in ``scheduled_runs``.
"""

from __future__ import annotations

import os
from datetime import timedelta

import sqlalchemy as sa

from otelkit.jobs import Job, JobStore

store = JobStore(os.environ["PERIODIC_URL"], gauges=False)
runs = sa.Table(
    "scheduled_runs",
    sa.MetaData(),
    sa.Column("period", sa.String(40), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
)
_writer = store.engine.execution_options(otelkit_write=True)


@store.periodic(every=timedelta(seconds=1), name="tick")
def tick(job: Job) -> None:
    with _writer.begin() as conn:
        conn.execute(sa.insert(runs).values(period=job.data["period"], pid=os.getpid()))


def create_tables() -> None:
    store.create_schema()
    runs.create(store.engine, checkfirst=True)


if __name__ == "__main__":
    from _procs import mark_ready  # the test helper next to this file

    worker = store.worker(concurrency=2, poll_interval=0.2)
    mark_ready()
    worker.run()
