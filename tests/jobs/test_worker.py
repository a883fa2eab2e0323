"""The worker loop: sync and async jobs, concurrency, idle detection, graceful stop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from otelkit.jobs import Job, JobState
from otelkit.testing import wait_until


def _states(store: Any, ids: list[str]) -> list[JobState]:
    return [store.get(i).state for i in ids]


def test_worker_runs_sync_and_async_jobs_until_idle(db_url, make_store) -> None:
    store = make_store(db_url)
    seen: list[tuple[str, int]] = []

    @store.job(name="sync", queue="a")
    def sync_job(job: Job) -> int:
        seen.append(("sync", job.data))
        return int(job.data)

    @store.job(name="async", queue="b")
    async def async_job(job: Job) -> int:
        await asyncio.sleep(0)
        seen.append(("async", job.data))
        return -int(job.data)

    ids = sync_job.enqueue_many(range(10)) + async_job.enqueue_many(range(10))
    future = sync_job.enqueue(99, run_after=3600)  # not ready: not waited for
    worker = store.worker(concurrency=3, batch=4)
    assert worker.queues == ("a", "b")
    assert worker.run_until_idle(timeout=30) == 20
    assert _states(store, ids) == [JobState.SUCCEEDED] * 20
    assert sorted(seen) == sorted(
        [("sync", i) for i in range(10)] + [("async", i) for i in range(10)]
    )
    assert store.get(ids[-1]).result == -9
    assert store.get(future).state is JobState.QUEUED


def test_worker_only_claims_its_queues(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    a = store.job(name="a", queue="a")(lambda job: None)
    b = store.job(name="b", queue="b")(lambda job: None)
    ja, jb = a.enqueue(), b.enqueue()
    assert store.worker(queues=["a"]).run_until_idle(timeout=30) == 1
    assert _states(store, [ja, jb]) == [JobState.SUCCEEDED, JobState.QUEUED]


def test_concurrency_runs_jobs_at_the_same_time(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    barrier = threading.Barrier(3, timeout=10)

    @store.job(name="meet")
    def meet(job: Job) -> None:
        barrier.wait()  # only passes if three attempts run at once

    ids = meet.enqueue_many([1, 2, 3])
    assert store.worker(concurrency=3, batch=1).run_until_idle(timeout=30) == 3
    assert _states(store, ids) == [JobState.SUCCEEDED] * 3


def test_priority_orders_claims(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    order: list[str] = []
    fn = store.job(name="p")(lambda job: order.append(job.data))
    fn.enqueue("low")
    fn.enqueue("high", priority=10)
    fn.enqueue("mid", priority=5)
    store.worker(concurrency=1, batch=1).run_until_idle(timeout=30)
    assert order == ["high", "mid", "low"]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"batch": 0}, "batch"),
        ({"queues": "default"}, "queues"),
        ({"queues": []}, "queues"),
        ({"poll_interval": -1}, "poll_interval"),
    ],
)
def test_bad_worker_options(sqlite_url, make_store, options, match) -> None:
    store = make_store(sqlite_url)
    store.job(name="x")(lambda job: None)
    with pytest.raises(ValueError, match=match):
        store.worker(**options)


def test_worker_needs_registered_functions(sqlite_url, make_store) -> None:
    with pytest.raises(ValueError, match="no job functions"):
        make_store(sqlite_url).worker()


def _start(worker: Any) -> threading.Thread:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return thread


def test_a_stop_asked_while_the_worker_starts_is_kept(sqlite_url, make_store) -> None:
    """A SIGTERM that arrives once ``run()`` has installed its handler, while the worker is
    still starting (checking the schema), stops it: it once forgot that stop and ran on
    until killed."""
    store = make_store(sqlite_url)

    @store.job(name="s")
    def s(job: Job) -> None:
        return None

    worker = store.worker(poll_interval=0.05)
    check_schema = store._backend.check_schema

    def check_then_signal() -> None:
        check_schema()
        worker.stop()  # what the SIGTERM handler does

    store._backend.check_schema = check_then_signal
    thread = _start(worker)
    thread.join(10)
    stuck = thread.is_alive()
    worker.stop()  # lets a stuck worker end with the test
    thread.join(10)
    assert not stuck


@pytest.mark.parametrize("concurrency", [1, 2])
def test_stop_lets_running_jobs_finish_and_releases_unstarted_ones(
    db_url, make_store, concurrency
) -> None:
    store = make_store(db_url)
    started = threading.Semaphore(0)
    proceed = threading.Event()

    @store.job(name="s")
    def s(job: Job) -> None:
        started.release()
        assert proceed.wait(10)

    ids = s.enqueue_many(range(4))
    worker = store.worker(concurrency=concurrency, batch=4, shutdown_timeout=10)
    thread = _start(worker)
    for _ in range(concurrency):
        assert started.acquire(timeout=10)
    worker.stop()
    if concurrency > 1:  # the loop thread is free: unstarted jobs are released at once
        wait_until(lambda: _states(store, ids).count(JobState.RETRYING) == 2, timeout=10)
    proceed.set()  # running jobs finish within the grace period
    thread.join(15)
    assert not thread.is_alive()
    states = _states(store, ids)
    assert states.count(JobState.SUCCEEDED) == concurrency
    assert states.count(JobState.RETRYING) == 4 - concurrency
    for jid, state in zip(ids, states, strict=True):
        job = store.get(jid)
        if state is JobState.RETRYING:  # never started: the attempt is given back
            assert job.attempt == 0 and job.lease_expires is None


def test_stop_releases_a_job_that_outlives_the_grace_period(db_url, make_store) -> None:
    store = make_store(db_url)
    started, proceed = threading.Event(), threading.Event()

    @store.job(name="stuck")
    def stuck(job: Job) -> None:
        started.set()
        proceed.wait(10)

    jid = stuck.enqueue()
    worker = store.worker(concurrency=2, shutdown_timeout=0.2)
    thread = _start(worker)
    assert started.wait(10)
    worker.stop()
    thread.join(15)
    proceed.set()
    job = store.get(jid)
    assert (job.state, job.attempt, job.lease_expires) == (JobState.RETRYING, 1, None)
    assert store.transitions(jid)[-1].error == "released: worker stopped before the job finished"


def test_stop_cancels_async_jobs_which_release_themselves(db_url, make_store) -> None:
    store = make_store(db_url)
    started = threading.Event()

    @store.job(name="forever")
    async def forever(job: Job) -> None:
        started.set()
        await asyncio.sleep(60)

    jid = forever.enqueue()
    worker = store.worker(concurrency=1, shutdown_timeout=0.1)
    thread = _start(worker)
    assert started.wait(10)
    worker.stop()
    thread.join(15)
    assert not thread.is_alive()
    job = store.get(jid)
    assert (job.state, job.lease_expires) == (JobState.RETRYING, None)
    assert store.transitions(jid)[-1].error == "released: asyncio.exceptions.CancelledError"


def test_run_until_idle_times_out_and_releases(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    release = threading.Event()
    fn = store.job(name="slow")(lambda job: release.wait(10))
    jid = fn.enqueue()
    with pytest.raises(TimeoutError):
        store.worker(shutdown_timeout=0).run_until_idle(timeout=0.3)
    release.set()
    wait_until(lambda: store.get(jid).state is JobState.RETRYING, timeout=10)
