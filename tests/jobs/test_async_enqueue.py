"""aenqueue / aenqueue_many through SQLAlchemy's asyncio extension; awaiting a result."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from otelkit.errors import InvalidOptionError, OptionTypeError
from otelkit.jobs import Job, JobState, JobStore


def _count(store: JobStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM otelkit_jobs").scalar_one())


def _async_url(store: JobStore) -> Any:
    url = store.engine.url
    if url.get_backend_name() == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    return url


async def _lag_probe(stop: asyncio.Event, lags: list[float], period: float = 0.005) -> None:
    """How late each tick of a periodic task runs: a blocked loop shows as a long lag."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(period)
        lags.append(loop.time() - before - period)


@contextmanager
def _blocking_statements() -> Iterator[list[str]]:
    """Statements this thread sent through a blocking (sync) driver while inside."""
    thread, found = threading.get_ident(), []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() == thread and not conn.dialect.is_async:
            found.append(statement)

    sa.event.listen(sa.Engine, "before_cursor_execute", seen)
    try:
        yield found
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", seen)


def test_aenqueue_of_1000_jobs_never_blocks_the_loop_long(db_url, make_store) -> None:
    store = make_store(db_url)
    fn = store.job(name="a")(lambda job: None)

    async def app() -> tuple[list[str], list[float]]:
        stop, lags = asyncio.Event(), []
        probe = asyncio.create_task(_lag_probe(stop, lags))
        ids = []
        for start in range(0, 1000, 50):  # 50 concurrent requests at a time
            batch = [fn.aenqueue({"i": i}) for i in range(start, start + 50)]
            ids += await asyncio.gather(*batch)
        ids += await fn.aenqueue_many([{"i": i} for i in range(1000, 2000)])
        stop.set()
        await probe
        await store.aclose()
        return ids, lags

    with _blocking_statements() as blocking:
        ids, lags = asyncio.run(app())
    assert len(set(ids)) == 2000 and _count(store) == 2000
    assert blocking == []  # every statement went through the async driver
    # Each await yields to the loop; what runs between two is our Python, never a query
    # (the assertion above). The bound catches the loop stuck behind the whole batch of
    # queries (many seconds), not a busy machine's scheduling delays.
    assert len(lags) > 20 and max(lags) < 3.0


def test_await_a_handle_for_the_final_state_and_result(db_url, make_store) -> None:
    store = make_store(db_url)
    fn = store.job(name="a")(lambda job: job.data * 2)
    worker = store.worker(concurrency=1)

    async def app() -> Job:
        handle = await fn.aenqueue(21)
        runner = asyncio.create_task(asyncio.to_thread(worker.run_until_idle, timeout=30))
        job = await asyncio.wait_for(handle, timeout=30)
        await runner
        await store.aclose()
        return job

    job = asyncio.run(app())
    assert job.state is JobState.SUCCEEDED and job.result == 42


def test_wait_times_out_when_no_worker_runs(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    handle = store.job(name="a")(lambda job: None).enqueue()
    with pytest.raises(TimeoutError, match=r"not final within 0\.05 s"):
        handle.wait(timeout=0.05)


def test_async_session_and_connection_commit_or_roll_back(db_url, make_store) -> None:
    store = make_store(db_url)
    fn = store.job(name="a")(lambda job: None)

    async def app() -> str:
        engine = create_async_engine(_async_url(store))
        try:
            async with AsyncSession(engine) as session:
                await fn.aenqueue("dropped", session=session)
                await session.rollback()
            async with engine.connect() as conn:
                await conn.begin()
                await fn.aenqueue_many(["dropped too"], connection=conn)
                await conn.rollback()
            async with AsyncSession(engine) as session:
                kept = await fn.aenqueue("kept", session=session)
                await session.commit()
            return kept
        finally:
            await engine.dispose()
            await store.aclose()

    kept = asyncio.run(app())
    assert _count(store) == 1 and store.get(kept).data == "kept"


def test_aenqueue_refuses_sync_connections_and_unique_keys_work(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    fn = store.job(name="a")(lambda job: None)

    async def app() -> None:
        with store.engine.begin() as conn, pytest.raises(OptionTypeError, match="AsyncConnection"):
            await fn.aenqueue({}, connection=conn)
        with pytest.raises(OptionTypeError, match="AsyncSession"):
            await fn.aenqueue({}, session=object())
        with pytest.raises(InvalidOptionError, match="unique_key must not be empty"):
            await fn.aenqueue({}, unique_key="")
        first = await fn.aenqueue({}, unique_key="k")
        again = await fn.aenqueue({}, unique_key="k")
        assert again == first and again.duplicate
        await store.aclose()

    asyncio.run(app())
    assert _count(store) == 1
