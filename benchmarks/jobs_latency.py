"""jobs_latency: enqueue → job function start, one idle worker process, on PostgreSQL.

Jobs are enqueued one at a time from this process at random gaps of 0.1–0.4 s; the worker
(another process) notes ``time.time()`` when the function starts. Ours: ``otelkit.jobs``
(LISTEN/NOTIFY wake-up, full tracking to no-op exporters), default worker options with
``concurrency=1``. Baseline: PgQueuer, one ``QueueManager`` with its defaults (psycopg
driver). Same PostgreSQL server, a fresh database each (created and dropped here); the two
alternate. The ratio is of the p50s; p90s are printed too.

Environment: ``OTELKIT_BENCH_POSTGRES_URL`` (else ``OTELKIT_TEST_POSTGRES_URL``, else
``postgresql://postgres@127.0.0.1:5432/postgres``), ``JOBS`` (per run, default 40),
``REPEATS`` (default 2).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
from typing import Any

from jobs_throughput import _Database, _dsn, _pgq_connect, _providers

JOBS = int(os.environ.get("JOBS", "40"))
REPEATS = int(os.environ.get("REPEATS", "2"))


# -- ours ----------------------------------------------------------------------------------
def _ours_worker(url: str, ready: Any, out: Any) -> None:
    from otelkit.jobs import Job, JobStore

    tracer_provider, meter_provider = _providers()
    store = JobStore(url, tracer_provider=tracer_provider, meter_provider=meter_provider)

    @store.job(name="ping")
    def ping(job: Job) -> None:
        out.put((job.data, time.time()))

    worker = store.worker(concurrency=1)
    import threading

    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    while not worker.listening:
        time.sleep(0.01)
    time.sleep(0.5)  # idle now
    ready.release()
    thread.join()


def _ours_producer(url: str) -> Any:
    from otelkit.jobs import Job, JobStore

    store = JobStore(url, gauges=False)

    @store.job(name="ping")
    def ping(job: Job) -> None: ...

    store.create_schema()
    return lambda i: ping.enqueue(i)


# -- PgQueuer ------------------------------------------------------------------------------
def _pgq_worker(url: str, ready: Any, out: Any) -> None:
    async def main() -> None:
        from pgqueuer import PsycopgDriver, Queries, QueueManager

        conn = await _pgq_connect(url)
        qm = QueueManager(Queries(PsycopgDriver(conn)))

        @qm.entrypoint("ping")
        async def ping(job: Any) -> None:
            out.put((int(job.payload.decode()), time.time()))

        loop = asyncio.get_running_loop()
        loop.call_later(1.0, ready.release)  # QueueManager listening and idle by then
        await qm.run()

    asyncio.run(main())


def _pgq_producer(url: str) -> Any:
    import psycopg
    from pgqueuer import Queries
    from pgqueuer.db import SyncPsycopgDriver

    async def install() -> None:
        from pgqueuer import PsycopgDriver

        conn = await _pgq_connect(url)
        await Queries(PsycopgDriver(conn)).install()
        await conn.close()

    asyncio.run(install())
    conn = psycopg.connect(_dsn(url), autocommit=True)
    from pgqueuer.queries import SyncQueries

    queries = SyncQueries(SyncPsycopgDriver(conn))
    return lambda i: queries.enqueue("ping", str(i).encode())


# -- harness -------------------------------------------------------------------------------
def _run(producer: Any, target: Any, rng: random.Random) -> list[float]:
    db = _Database()
    ctx = mp.get_context("spawn")
    proc = None
    try:
        url = db.url.render_as_string(hide_password=False)
        enqueue = producer(url)
        ready, out = ctx.Semaphore(0), ctx.Queue()
        proc = ctx.Process(target=target, args=(url, ready, out), daemon=True)
        proc.start()
        if not ready.acquire(timeout=120):
            raise RuntimeError("the worker did not start")
        latencies = []
        for i in range(JOBS):
            time.sleep(rng.uniform(0.1, 0.4))
            sent = time.time()
            enqueue(i)
            data, started = out.get(timeout=30)
            if data != i:
                raise RuntimeError(f"expected job {i}, got {data}")
            latencies.append(started - sent)
        return latencies
    finally:
        if proc is not None:
            proc.kill()
            proc.join(10)
        db.drop()


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    rng = random.Random(7)
    ours: list[float] = []
    base: list[float] = []
    for i in range(REPEATS):
        pair = [(ours, _ours_producer, _ours_worker), (base, _pgq_producer, _pgq_worker)]
        for into, producer, target in pair if i % 2 == 0 else pair[::-1]:
            into.extend(_run(producer, target, rng))
        print(
            f"run {i + 1}: ours p50={_p(ours, 0.5):.1f} ms, pgqueuer p50={_p(base, 0.5):.1f} ms",
            flush=True,
        )
    print(f"p90: ours={_p(ours, 0.9):.1f} ms, baseline={_p(base, 0.9):.1f} ms")
    print(f"{len(ours)} jobs each, one idle worker, gaps 0.1-0.4 s; medians (p50) compared")
    a, b = statistics.median(ours) * 1000, statistics.median(base) * 1000
    print(f"jobs_latency: ratio={a / b:.2f} (ours={a:.1f} ms, baseline={b:.1f} ms)")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
