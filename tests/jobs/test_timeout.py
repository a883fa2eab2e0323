"""Execution timeouts: an attempt running past ``timeout`` is abandoned as a TimeoutError
(async: cancelled; sync: its slot freed, its lease dropped, its late result rejected)."""

from __future__ import annotations

import asyncio
import math
import threading
from datetime import timedelta
from typing import Any

import pytest

from otelkit.jobs import Backoff, Job, JobState
from otelkit.testing import wait_until

QUICK = Backoff(base=0.01, jitter=0)


def _start(worker: Any) -> threading.Thread:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return thread


def _stop(worker: Any, thread: threading.Thread) -> None:
    worker.stop()
    thread.join(15)
    assert not thread.is_alive()


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, "5", True, timedelta(0)])
def test_a_bad_timeout_is_refused_at_decoration(sqlite_url, make_store, bad) -> None:
    store = make_store(sqlite_url)
    with pytest.raises(ValueError, match=r"store\.job: timeout must be"):
        store.job(name="x", timeout=bad)(lambda job: None)


def test_a_bad_worker_timeout_is_refused(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    store.job(name="x")(lambda job: None)
    with pytest.raises(ValueError, match="worker: timeout must be"):
        store.worker(timeout=0)


def _tracked_store(make_store: Any, url: str, memory_telemetry: Any) -> Any:
    return make_store(
        url,
        tracer_provider=memory_telemetry.tracer_provider,
        meter_provider=memory_telemetry.meter_provider,
    )


def _timeout_spans(memory_telemetry: Any) -> list[Any]:
    return [
        s
        for s in memory_telemetry.spans()
        if s.name.startswith("process") and any(e.name == "otelkit.job.timeout" for e in s.events)
    ]


def test_a_sync_job_past_its_timeout_is_retried_while_its_thread_still_runs(
    db_url, make_store, memory_telemetry
) -> None:
    store = _tracked_store(make_store, db_url, memory_telemetry)
    release = threading.Event()
    first_returned = threading.Event()

    @store.job(name="slow", timeout=0.2, max_attempts=3, backoff=QUICK)
    def slow(job: Job) -> str:
        if job.attempt == 1:
            release.wait(20)  # "sleeps" far past its timeout, until the test lets it go
            first_returned.set()
            return "late"
        return "on time"

    job_id = slow.enqueue()
    worker = store.worker(concurrency=1, poll_interval=0.05)  # one slot
    thread = _start(worker)
    try:
        # attempt 2 runs while attempt 1's thread is still blocked: its slot was freed
        wait_until(lambda: store.get(job_id).state is JobState.SUCCEEDED, timeout=10)
        assert not first_returned.is_set()
        release.set()
        assert first_returned.wait(10)
        wait_until(lambda: any(t.to_state == "lost" for t in store.transitions(job_id)), timeout=10)
    finally:
        release.set()
        _stop(worker, thread)
    job = store.get(job_id)
    assert job.state is JobState.SUCCEEDED and job.result == "on time"  # not overwritten
    assert job.attempt == 2
    assert [e.type for e in job.errors] == ["TimeoutError"]
    assert "ran longer than its timeout of 0.2 s" in job.errors[0].message
    lost = [t for t in store.transitions(job_id) if t.to_state == "lost"]
    assert [(t.attempt, t.error) for t in lost] == [(1, "timed out: late result rejected")]
    (span,) = _timeout_spans(memory_telemetry)
    assert span.attributes["error.type"] == "TimeoutError"
    assert span.attributes["otelkit.job.attempt"] == 1
    assert [e.name for e in span.events][-1] == "otelkit.job.retrying"
    points = memory_telemetry.metric_points("otelkit.job.timeouts")
    assert [(a["otelkit.job.name"], p.value) for a, p in points] == [("slow", 1)]


def test_an_async_job_past_its_timeout_is_cancelled_and_retried(
    db_url, make_store, memory_telemetry
) -> None:
    store = _tracked_store(make_store, db_url, memory_telemetry)
    cancelled = threading.Event()

    @store.job(name="hang", timeout=timedelta(seconds=0.2), backoff=QUICK)
    async def hang(job: Job) -> str:
        if job.attempt == 1:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise
        return "done"

    job_id = hang.enqueue()
    worker = store.worker(concurrency=1, poll_interval=0.05)
    thread = _start(worker)
    try:
        wait_until(lambda: store.get(job_id).state is JobState.SUCCEEDED, timeout=10)
    finally:
        _stop(worker, thread)
    assert cancelled.is_set()
    job = store.get(job_id)
    assert [e.type for e in job.errors] == ["TimeoutError"]
    assert "timeout of 0.2 s" in job.errors[0].message
    (span,) = _timeout_spans(memory_telemetry)
    assert span.attributes["error.type"] == "TimeoutError"


def test_the_workers_default_timeout_applies_to_functions_without_one(
    sqlite_url, make_store
) -> None:
    store = make_store(sqlite_url)

    @store.job(name="hang", max_attempts=1)
    async def hang(job: Job) -> None:
        await asyncio.sleep(30)

    job_id = hang.enqueue()
    worker = store.worker(concurrency=2, timeout=0.2, poll_interval=0.05)
    assert worker.run_until_idle(timeout=10) == 1
    job = store.get(job_id)
    assert job.state is JobState.FAILED
    assert [e.type for e in job.errors] == ["TimeoutError"]


def test_a_function_that_raises_timeouterror_itself_is_not_a_timeout(
    sqlite_url, make_store
) -> None:
    store = make_store(sqlite_url)

    @store.job(name="own", max_attempts=1, timeout=30)
    async def own(job: Job) -> None:
        raise TimeoutError("upstream timed out")

    job_id = own.enqueue()
    store.worker(concurrency=1).run_until_idle(timeout=10)
    (error,) = store.get(job_id).errors
    assert (error.type, error.message) == ("TimeoutError", "upstream timed out")


def test_fn_run_of_a_sync_job_past_its_timeout_returns_and_its_late_result_is_rejected(
    db_url, make_store, memory_telemetry
) -> None:
    store = _tracked_store(make_store, db_url, memory_telemetry)
    release = threading.Event()
    returned = threading.Event()

    @store.job(name="stuck", timeout=0.2, max_attempts=3, backoff=QUICK)
    def stuck(job: Job) -> str:
        release.wait(20)  # far past its timeout, until the test lets it go
        returned.set()
        return "late"

    job_id = stuck.enqueue()
    try:
        assert stuck.run(job_id) is JobState.RETRYING  # back after the timeout, not after 20 s
        assert not returned.is_set()
        job = store.get(job_id)
        assert [e.type for e in job.errors] == ["TimeoutError"]
        assert "ran longer than its timeout of 0.2 s" in job.errors[0].message
    finally:
        release.set()
    assert returned.wait(10)
    wait_until(lambda: any(t.to_state == "lost" for t in store.transitions(job_id)), timeout=10)
    job = store.get(job_id)
    assert job.state is JobState.RETRYING and job.result is None  # the late "late" is not stored
    lost = [t for t in store.transitions(job_id) if t.to_state == "lost"]
    assert [(t.attempt, t.error) for t in lost] == [(1, "timed out: late result rejected")]
    (span,) = _timeout_spans(memory_telemetry)
    assert span.attributes["error.type"] == "TimeoutError"


def test_fn_run_of_a_sync_job_within_its_timeout_returns_its_outcome(
    sqlite_url, make_store
) -> None:
    store = make_store(sqlite_url)

    @store.job(name="quick", timeout=30)
    def quick(job: Job) -> str:
        return threading.current_thread().name

    job_id = quick.enqueue()
    assert quick.run(job_id) is JobState.SUCCEEDED
    assert store.get(job_id).result.startswith("otelkit-job-")  # ran on its own thread
