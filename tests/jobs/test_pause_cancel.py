"""Pausing queues and cancelling running jobs cooperatively, end to end with a worker."""

from __future__ import annotations

import asyncio
import threading

import pytest

from otelkit.errors import InvalidOptionError
from otelkit.jobs import Job, JobNotReadyError, JobState, LeaseLostError
from otelkit.testing import wait_until


def test_a_paused_queue_is_not_claimed_until_resumed(db_url, make_store) -> None:
    store = make_store(db_url)
    fn = store.job(name="p", queue="mail")(lambda job: "sent")
    other = store.job(name="o", queue="other")(lambda job: "done")
    held = fn.enqueue()
    free = other.enqueue()
    assert store.pause("mail") is True and store.pause("mail") is False
    assert store.paused_queues() == ["mail"]
    worker = store.worker(queues=["mail", "other"], concurrency=1)
    assert worker.run_until_idle(timeout=30) == 1  # only the other queue's job
    assert store.get(held).state is JobState.QUEUED
    assert store.get(free).state is JobState.SUCCEEDED
    assert store.resume("mail") is True and store.paused_queues() == []
    assert worker.run_until_idle(timeout=30) == 1
    assert held.wait(timeout=10).result == "sent"


def test_pausing_lets_running_attempts_finish(db_url, make_store) -> None:
    store = make_store(db_url)
    started, release = threading.Event(), threading.Event()

    @store.job(name="slow", queue="q")
    def slow(job: Job) -> str:
        started.set()
        release.wait(30)
        return "finished"

    first, second = slow.enqueue(), slow.enqueue()
    worker = store.worker(concurrency=1, batch=1)
    thread = threading.Thread(target=worker.run_until_idle, kwargs={"timeout": 60})
    thread.start()
    assert started.wait(30)
    store.pause("q")
    release.set()
    thread.join(60)
    states = {store.get(first).state, store.get(second).state}
    assert states == {JobState.SUCCEEDED, JobState.QUEUED}


def test_pausing_an_unknown_queue_names_the_known_ones(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    store.job(name="p", queue="mail")(lambda job: None)
    with pytest.raises(InvalidOptionError, match=r"queue 'mial' is unknown.*known queues: mail"):
        store.pause("mial")
    with pytest.raises(TypeError, match=r"store\.resume: queue must be a str"):
        store.resume(None)  # type: ignore[arg-type]
    assert store.paused_queues() == []


def test_a_sync_job_sees_cancel_requested_and_the_cancel_is_recorded(db_url, make_store) -> None:
    store = make_store(db_url)
    started = threading.Event()
    saw = []

    @store.job(name="long")
    def long(job: Job) -> str:
        started.set()
        wait_until(job.cancel_requested, timeout=30, interval=0.01)
        saw.append(True)
        return "stopped early"

    handle = long.enqueue()
    worker = store.worker(concurrency=2)
    thread = threading.Thread(target=worker.run_until_idle, kwargs={"timeout": 60})
    thread.start()
    assert started.wait(30)
    assert store.cancel(handle)
    job = handle.wait(timeout=30)
    thread.join(60)
    assert saw == [True] and job.state is JobState.CANCELLED and job.result is None
    history = [(t.from_state, t.to_state, t.error) for t in store.transitions(handle)]
    assert history[-2][:2] == ("running", "cancelled")
    assert history[-1] == ("running", "lost", "cancelled: result discarded")


def test_an_async_job_is_cancelled_with_cancelled_error(db_url, make_store) -> None:
    store = make_store(db_url)
    running, cleaned = threading.Event(), threading.Event()

    @store.job(name="along")
    async def along(job: Job) -> None:
        running.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cleaned.set()
            raise

    handle = along.enqueue()
    worker = store.worker(concurrency=2)
    thread = threading.Thread(target=worker.run_until_idle, kwargs={"timeout": 60})
    thread.start()
    assert running.wait(30)
    store.cancel(handle)
    assert cleaned.wait(30)
    thread.join(60)
    assert not thread.is_alive()
    assert store.get(handle).state is JobState.CANCELLED
    assert store.transitions(handle)[-1].error == "cancelled: result discarded"


def test_cancel_requested_is_false_while_the_job_is_ours(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    seen = []
    fn = store.job(name="c")(lambda job: seen.append(job.cancel_requested()))
    assert fn.run(fn.enqueue()) is JobState.SUCCEEDED and seen == [False]


def _last_history(store, job_id: str) -> tuple[str, str, str | None]:
    last = store.transitions(job_id)[-1]
    return (last.from_state, last.to_state, last.error)


def test_fn_run_of_a_job_cancelled_while_it_runs_says_it_was_cancelled(
    db_url, make_store, memory_telemetry
) -> None:
    store = make_store(db_url, tracer_provider=memory_telemetry.tracer_provider)
    saw = []

    @store.job(name="long")
    def long(job: Job) -> str:
        assert store.cancel(job.id)  # an operator, while the attempt runs
        saw.append(job.cancel_requested())  # the first question goes to the database
        return "stopped early"

    handle = long.enqueue()
    with pytest.raises(LeaseLostError) as raised:
        long.run(handle)
    job_id = str(handle)
    assert str(raised.value) == (
        f"job {job_id!r} was cancelled (store.cancel) while this attempt ran: its result was "
        f"discarded and the job stays cancelled; store.retry({job_id!r}) queues it again"
    )
    job = store.get(handle)
    assert saw == [True] and job is not None
    assert (job.state, job.result) == (JobState.CANCELLED, None)
    assert _last_history(store, handle) == ("running", "lost", "cancelled: result discarded")
    [lost] = [e for e in memory_telemetry.spans()[-1].events if e.name == "otelkit.job.lost"]
    assert lost.attributes["otelkit.job.reason"] == "cancelled: result discarded"


def test_a_cancel_the_function_never_asks_about_is_reported_as_a_cancel(db_url, make_store) -> None:
    store = make_store(db_url)

    @store.job(name="blind")
    def blind(job: Job) -> str:
        store.cancel(job.id)
        return "done anyway"

    by_run = blind.enqueue()
    with pytest.raises(LeaseLostError, match=r"was cancelled \(store\.cancel\) while"):
        blind.run(by_run)
    by_worker = blind.enqueue()
    assert store.worker(concurrency=1).run_until_idle(timeout=30) == 1
    for handle in (by_run, by_worker):
        job = store.get(handle)
        assert job is not None and (job.state, job.result) == (JobState.CANCELLED, None)
        assert _last_history(store, handle) == ("running", "lost", "cancelled: result discarded")


def test_run_async_of_an_async_job_cancelled_while_it_runs_says_it_was_cancelled(
    db_url, make_store
) -> None:
    store = make_store(db_url)
    cleaned = []

    @store.job(name="along")
    async def along(job: Job) -> None:
        await asyncio.to_thread(store.cancel, job.id)
        try:
            await asyncio.sleep(60)  # the watcher cancels it within about half a second
        except asyncio.CancelledError:
            cleaned.append(job.id)
            raise

    handle = along.enqueue()
    with pytest.raises(LeaseLostError, match=r"was cancelled \(store\.cancel\) while"):
        asyncio.run(asyncio.wait_for(along.run_async(handle), timeout=30))
    assert cleaned == [handle]
    assert store.get(handle).state is JobState.CANCELLED
    assert _last_history(store, handle) == ("running", "lost", "cancelled: result discarded")


def test_fn_run_of_a_job_cancelled_before_it_ran_says_it_is_cancelled(
    sqlite_url, make_store
) -> None:
    store = make_store(sqlite_url)
    fn = store.job(name="c")(lambda job: None)
    handle = fn.enqueue()
    assert store.cancel(handle)
    with pytest.raises(JobNotReadyError, match=r"is cancelled"):
        fn.run(handle)
