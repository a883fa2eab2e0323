"""Waking idle workers: NOTIFY on PostgreSQL, an in-process signal, and sleeping until the
earliest known ``run_after`` instead of a fixed poll."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from otelkit.jobs import Backoff, Job, JobState
from otelkit.jobs._wakeup import APPLICATION_NAME, parse_payload
from otelkit.testing import wait_until

LONG_POLL = 60.0  # far longer than any wait below: a job that runs was woken, not polled


def _start(worker: Any) -> threading.Thread:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return thread


def _idle_waits(worker: Any) -> list[float]:
    """The monotonic times at which ``worker`` started to wait idle (appended as they
    happen): from then on only a wake-up (or the long poll, or a due time it knows) makes
    it claim again. A spy on the worker's wait, since an empty claim leaves no other trace;
    the worker holds its lock until it waits, so a wake-up after the append is not missed."""
    waits: list[float] = []
    wait = worker._idle

    def spy(**kwargs: Any) -> None:
        waits.append(time.monotonic())
        wait(**kwargs)

    worker._idle = spy
    return waits


def _stop(worker: Any, thread: threading.Thread) -> None:
    worker.stop()
    thread.join(15)
    assert not thread.is_alive()


def test_parse_payload() -> None:
    assert parse_payload("media 0.25") == ("media", 0.25)
    assert parse_payload("a queue with spaces -3") == ("a queue with spaces", -3.0)
    assert parse_payload("media") is None
    assert parse_payload(" 1") is None
    assert parse_payload("media nan") is None


@pytest.mark.postgres
def test_an_idle_worker_starts_a_job_soon_after_enqueue(pg_url, make_store) -> None:
    producer = make_store(pg_url)
    consumer = make_store(pg_url)  # another store: the wake-up comes through NOTIFY
    started: dict[str, float] = {}

    @producer.job(name="ping")
    def ping(job: Job) -> None: ...

    @consumer.job(name="ping")
    def ping_worker(job: Job) -> None:
        started[job.id] = time.monotonic()

    worker = consumer.worker(concurrency=1, poll_interval=LONG_POLL)
    idle = _idle_waits(worker)
    thread = _start(worker)
    try:
        wait_until(lambda: worker.listening, timeout=10)
        wait_until(lambda: idle, timeout=10)  # the first claim found nothing
        latencies = []
        for _ in range(10):
            enqueued = time.monotonic()
            job_id = ping.enqueue()
            wait_until(lambda job_id=job_id: job_id in started, timeout=10, interval=0.001)
            latencies.append(started[job_id] - enqueued)
    finally:
        _stop(worker, thread)
    # Woken, not polled: every job started long before the 60 s poll would have found it
    # (how soon is a speed figure: benchmarks/jobs_latency.py).
    assert max(latencies) < LONG_POLL / 6, latencies


@pytest.mark.postgres
def test_jobs_enqueued_while_the_listen_connection_is_down_still_run(pg_url, make_store) -> None:
    store = make_store(pg_url)
    ran: list[str] = []

    @store.job(name="work")
    def work(job: Job) -> None:
        ran.append(job.id)

    other = make_store(pg_url)  # enqueue through another store: no in-process wake-up

    @other.job(name="work")
    def produce(job: Job) -> None: ...

    worker = store.worker(concurrency=1, poll_interval=LONG_POLL)
    thread = _start(worker)
    admin = sa.create_engine(sa.make_url(pg_url), isolation_level="AUTOCOMMIT")
    try:
        wait_until(lambda: worker.listening, timeout=10)
        with admin.connect() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": f"{APPLICATION_NAME} {worker.id}"[:63]},
            ).all()
        assert killed == [(True,)]
        ids = [produce.enqueue(i) for i in range(3)]
        wait_until(lambda: sorted(ran) == sorted(ids), timeout=15)
        wait_until(lambda: worker.listening, timeout=15)  # re-established
        # and it wakes the worker again
        later = produce.enqueue("later")
        wait_until(lambda: later in ran, timeout=10)
    finally:
        _stop(worker, thread)
        admin.dispose()


def test_an_enqueue_in_the_workers_process_wakes_it(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    ran = threading.Event()

    @store.job(name="work")
    def work(job: Job) -> None:
        ran.set()

    worker = store.worker(concurrency=1, poll_interval=LONG_POLL)
    idle = _idle_waits(worker)
    thread = _start(worker)
    try:
        wait_until(lambda: idle, timeout=10)  # the first claim found nothing: only a wake-up
        work.enqueue()
        assert ran.wait(10)
    finally:
        _stop(worker, thread)


def test_a_worker_sleeps_until_the_earliest_run_after(db_url, make_store) -> None:
    store = make_store(db_url)
    ran: list[float] = []

    @store.job(name="later")
    def later(job: Job) -> None:
        ran.append(time.monotonic())

    later.enqueue(run_after=timedelta(seconds=0.3))  # known to the worker's first claim
    worker = store.worker(concurrency=1, poll_interval=LONG_POLL)
    idle = _idle_waits(worker)
    thread = _start(worker)
    try:
        wait_until(lambda: len(ran) == 1, timeout=10)
        # idle after the first job: its claims know of no other job from now on
        wait_until(lambda: idle[-1] > ran[0], timeout=10)
        later.enqueue(run_after=0.3)  # the wake-up carries the delay
        wait_until(lambda: len(ran) == 2, timeout=10)
    finally:
        _stop(worker, thread)


def test_a_retry_runs_when_its_backoff_ends_not_at_the_next_poll(db_url, make_store) -> None:
    store = make_store(db_url)
    attempts: list[int] = []

    @store.job(name="flaky", backoff=Backoff(base=0.3, jitter=0))
    def flaky(job: Job) -> None:
        attempts.append(job.attempt)
        if job.attempt == 1:
            raise ConnectionError("try again")

    job_id = flaky.enqueue()
    worker = store.worker(concurrency=1, poll_interval=LONG_POLL)
    thread = _start(worker)
    try:
        wait_until(lambda: store.get(job_id).state is JobState.SUCCEEDED, timeout=10)
    finally:
        _stop(worker, thread)
    assert attempts == [1, 2]
