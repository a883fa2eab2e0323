"""jobs_enqueue: enqueue throughput on PostgreSQL, ours vs PgQueuer's batch enqueue.

Ours: ``fn.enqueue_many`` of 1,000 jobs (one INSERT statement, a PRODUCER span and the
sent-messages metric, exported through the SDK's batch processor to no-op exporters) and,
for reference, 1,000 single ``fn.enqueue`` calls (one transaction each). Baseline:
PgQueuer's ``Queries.enqueue`` of 1,000 jobs (one statement; psycopg async driver). Each
side enqueues into its own fresh database on the same server (created and dropped here), three batches each
per round (their median); rounds alternate which goes first; medians of ``REPEATS`` rounds are quoted. The ratio
compares the batch paths (jobs per second).

Environment: ``OTELKIT_BENCH_POSTGRES_URL`` (else ``OTELKIT_TEST_POSTGRES_URL``, else
``postgresql://postgres@127.0.0.1:5432/postgres``), ``REPEATS`` (default 5).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from typing import Any

import sqlalchemy as sa
from jobs_throughput import _Database

BATCH = 1000
REPEATS = int(os.environ.get("REPEATS", "5"))
DATA = {"user": 42, "kind": "thumbnail", "path": "/media/a.jpg"}


def _ours(url: sa.URL, rounds: int) -> tuple[list[float], list[float]]:
    from _util import noop_providers

    from otelkit.jobs import Job, JobStore

    tracer_provider, meter_provider = noop_providers()
    store = JobStore(
        url.render_as_string(hide_password=False),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )
    store.create_schema()

    @store.job(name="noop")
    def noop(job: Job) -> None:
        return None

    noop.enqueue_many([DATA] * 10)  # warm: connection, compiled statements
    noop.enqueue(DATA)
    batch, single = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        noop.enqueue_many([DATA] * BATCH)
        batch.append(BATCH / (time.perf_counter() - start))
        start = time.perf_counter()
        for _ in range(BATCH):
            noop.enqueue(DATA)
        single.append(BATCH / (time.perf_counter() - start))
    store.close()
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return batch, single


def _pgqueuer(url: sa.URL, rounds: int) -> list[float]:
    import psycopg
    from pgqueuer import PsycopgDriver, Queries

    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    payload = json.dumps(DATA).encode()

    async def main() -> list[float]:
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        queries = Queries(PsycopgDriver(conn))
        await queries.install()
        await queries.enqueue(["noop"] * 10, [payload] * 10, [0] * 10)  # warm
        rates = []
        for _ in range(rounds):
            start = time.perf_counter()
            await queries.enqueue(["noop"] * BATCH, [payload] * BATCH, [0] * BATCH)
            rates.append(BATCH / (time.perf_counter() - start))
        await conn.close()
        return rates

    return asyncio.run(main())


def _round(first_ours: bool) -> tuple[float, float, float]:
    results: dict[str, Any] = {}
    order = ("ours", "pgq") if first_ours else ("pgq", "ours")
    for side in order:
        db = _Database()
        try:
            results[side] = _ours(db.url, 3) if side == "ours" else _pgqueuer(db.url, 3)
        finally:
            db.drop()
    batch, single = (statistics.median(rates) for rates in results["ours"])
    return batch, single, statistics.median(results["pgq"])


def main() -> None:
    batch, single, base = [], [], []
    for i in range(REPEATS):
        b, s, p = _round(first_ours=i % 2 == 0)
        batch.append(b)
        single.append(s)
        base.append(p)
        print(
            f"round {i + 1}: ours enqueue_many={b:.0f} jobs/s, ours single={s:.0f} jobs/s, "
            f"pgqueuer batch={p:.0f} jobs/s (ratio {b / p:.2f})",
            flush=True,
        )
    a, s, b = statistics.median(batch), statistics.median(single), statistics.median(base)
    print(f"batches of {BATCH}, medians of {REPEATS} rounds; ours single enqueue: {s:.0f} jobs/s")
    print(f"jobs_enqueue: ratio={a / b:.2f} (ours={a:.0f} jobs/s, baseline={b:.0f} jobs/s)")


if __name__ == "__main__":
    sys.exit(main())
