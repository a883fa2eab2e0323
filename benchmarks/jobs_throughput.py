"""jobs_throughput: no-op jobs drained by 4 worker processes, claim batch 10, on PostgreSQL.

Ours: ``otelkit.jobs`` with full tracking — a CONSUMER span per attempt and every metric,
exported through the SDK's batch span processor and periodic metric reader to no-op
exporters. Baseline: PgQueuer (psycopg driver), 4 processes, ``batch_size=10``, a no-op
entrypoint, drain mode. Both drain the same number of jobs from the same PostgreSQL server,
each in a fresh database created (and dropped) by this script. Process start-up is not
timed: every worker connects, then waits for a common start signal; the time is from that
signal to the last worker finding the queue empty. Runs alternate; medians are quoted.

Environment: ``OTELKIT_BENCH_POSTGRES_URL`` (else ``OTELKIT_TEST_POSTGRES_URL``, else
``postgresql://postgres@127.0.0.1:5432/postgres``), ``JOBS`` (default 4000),
``REPEATS`` (default 3), ``PROCESSES`` (worker processes a side, default 4),
``CONCURRENCY`` (our jobs at once per process, default 1: a no-op job gains nothing from
threads, so it runs in the worker's loop thread).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

PROCESSES = int(os.environ.get("PROCESSES", "4"))
BATCH = 10
JOBS = int(os.environ.get("JOBS", "4000"))
REPEATS = int(os.environ.get("REPEATS", "3"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "1"))


def _admin_url() -> sa.URL:
    raw = (
        os.environ.get("OTELKIT_BENCH_POSTGRES_URL")
        or os.environ.get("OTELKIT_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    url = sa.make_url(raw)
    return url.set(drivername="postgresql+psycopg")


class _Database:
    def __init__(self) -> None:
        self.name = f"otelkit_bench_{uuid.uuid4().hex[:10]}"
        self.admin = sa.create_engine(_admin_url(), isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{self.name}"')
        self.url = _admin_url().set(database=self.name)

    def drop(self) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.dispose()


# -- ours ----------------------------------------------------------------------------------
def _providers() -> tuple[Any, Any]:
    from _util import noop_providers

    return noop_providers()


def _ours_store(url: str, **kw: Any) -> Any:
    from otelkit.jobs import Job, JobStore

    store = JobStore(url, **kw)

    @store.job(name="noop")
    def noop(job: Job) -> None:
        return None

    return store, noop


def _ours_worker(url: str, ready: Any, go: Any, out: Any) -> None:
    tracer_provider, meter_provider = _providers()
    store, _ = _ours_store(url, tracer_provider=tracer_provider, meter_provider=meter_provider)
    worker = store.worker(concurrency=CONCURRENCY, batch=BATCH, poll_interval=0.05)
    with store.engine.connect():
        pass  # connect before the clock starts
    ready.release()
    go.wait()
    done = worker.run_until_idle(timeout=600)
    out.put((done, time.monotonic()))
    tracer_provider.shutdown()
    meter_provider.shutdown()


def _ours_prepare(url: str) -> None:
    store, noop = _ours_store(url, gauges=False)
    store.create_schema()
    for start in range(0, JOBS, 1000):
        noop.enqueue_many([None] * min(1000, JOBS - start))
    store.close()


# -- PgQueuer ------------------------------------------------------------------------------
def _dsn(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pgq_connect(url: str) -> Any:
    import psycopg

    return await psycopg.AsyncConnection.connect(_dsn(url), autocommit=True)


def _pgq_prepare(url: str) -> None:
    async def main() -> None:
        from pgqueuer import PsycopgDriver, Queries

        conn = await _pgq_connect(url)
        queries = Queries(PsycopgDriver(conn))
        await queries.install()
        for start in range(0, JOBS, 1000):
            n = min(1000, JOBS - start)
            await queries.enqueue(["noop"] * n, [None] * n, [0] * n)
        await conn.close()

    asyncio.run(main())


def _pgq_worker(url: str, ready: Any, go: Any, out: Any) -> None:
    async def main() -> None:
        from pgqueuer import PsycopgDriver, Queries, QueueManager
        from pgqueuer.types import QueueExecutionMode

        conn = await _pgq_connect(url)
        qm = QueueManager(Queries(PsycopgDriver(conn)))
        done = 0

        @qm.entrypoint("noop")
        async def noop(job: Any) -> None:
            nonlocal done
            done += 1

        ready.release()
        await asyncio.to_thread(go.wait)
        await qm.run(
            batch_size=BATCH,
            mode=QueueExecutionMode.drain,
            dequeue_timeout=timedelta(seconds=0.05),
            log_aggregation_interval=timedelta(0),
        )
        out.put((done, time.monotonic()))
        await conn.close()

    asyncio.run(main())


# -- harness -------------------------------------------------------------------------------
def _run(prepare: Callable[[str], None], target: Callable[..., None]) -> float:
    """Jobs per second of one drained run in a fresh database."""
    db = _Database()
    try:
        url = db.url.render_as_string(hide_password=False)
        prepare(url)
        ctx = mp.get_context("spawn")
        ready, go, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=target, args=(url, ready, go, out)) for _ in range(PROCESSES)]
        for proc in procs:
            proc.start()
        for _ in procs:
            if not ready.acquire(timeout=120):
                raise RuntimeError("a worker did not start")
        start = time.monotonic()
        go.set()
        results = [out.get(timeout=600) for _ in procs]
        for proc in procs:
            proc.join(60)
        total = sum(n for n, _ in results)
        if total != JOBS:
            raise RuntimeError(f"{target.__name__}: drained {total} jobs, expected {JOBS}")
        return JOBS / (max(t for _, t in results) - start)
    finally:
        db.drop()


def main() -> None:
    ours: list[float] = []
    base: list[float] = []
    for i in range(REPEATS):
        if i % 2:  # alternate which goes first, so drift on a shared machine hits both
            base.append(_run(_pgq_prepare, _pgq_worker))
            ours.append(_run(_ours_prepare, _ours_worker))
        else:
            ours.append(_run(_ours_prepare, _ours_worker))
            base.append(_run(_pgq_prepare, _pgq_worker))
        print(
            f"run {i + 1}: ours={ours[-1]:.0f} jobs/s, pgqueuer={base[-1]:.0f} jobs/s "
            f"(ratio {ours[-1] / base[-1]:.2f})",
            flush=True,
        )
    a, b = statistics.median(ours), statistics.median(base)
    print(f"{JOBS} no-op jobs, {PROCESSES} processes, batch {BATCH}, medians of {REPEATS} runs")
    print(f"jobs_throughput: ratio={a / b:.2f} (ours={a:.0f} jobs/s, baseline={b:.0f} jobs/s)")


if __name__ == "__main__":
    sys.exit(main())
