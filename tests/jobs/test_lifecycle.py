"""Retries, backoff, final failure, interrupts, leases and fencing — on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from otelkit.jobs import Backoff, Job, JobNotReadyError, JobState, LeaseLostError
from otelkit.testing import wait_until

BACKOFF = Backoff(base=10.0, factor=2.0, cap=1000.0, jitter=0.5)


def _row(store: Any, job_id: str) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT * FROM otelkit_jobs WHERE id = :id"), {"id": job_id}
        ).one()


def test_retry_delays_grow_with_jitter_and_every_error_is_kept(db_url, make_store) -> None:
    store = make_store(db_url, rng=random.Random(7))

    @store.job(name="flaky", max_attempts=4, backoff=BACKOFF)
    def flaky(job: Job) -> None:
        raise ValueError(f"bad input on attempt {job.attempt}")

    jid = flaky.enqueue({"n": 1})
    delays = []
    for _ in range(3):
        assert flaky.run(jid) is JobState.RETRYING
        row = _row(store, jid)
        assert row.lease_expires is None
        delays.append(row.run_after - row.updated_at)
    assert flaky.run(jid) is JobState.FAILED

    expected_rng = random.Random(7)
    expected = [BACKOFF.delay(n, expected_rng) for n in (1, 2, 3)]
    assert delays == pytest.approx(expected, abs=1e-3)
    for n, delay in enumerate(delays, start=1):  # within the jitter band of 10 * 2**(n-1)
        assert 0.5 * 10 * 2 ** (n - 1) <= delay <= 10 * 2 ** (n - 1)
    assert delays == sorted(delays)
    assert len({round(d / 2**i, 6) for i, d in enumerate(delays)}) == 3  # jitter differs

    job = store.get(jid)
    assert job.state is JobState.FAILED and job.attempt == 4 and job.finished_at is not None
    assert [(e.attempt, e.type, e.message) for e in job.errors] == [
        (n, "ValueError", f"bad input on attempt {n}") for n in (1, 2, 3, 4)
    ]
    assert all("Traceback" in e.traceback for e in job.errors)
    history = [(t.from_state, t.to_state, t.attempt) for t in store.transitions(jid)]
    assert history == [
        (None, "queued", 0),
        ("queued", "running", 1), ("running", "retrying", 1),
        ("retrying", "running", 2), ("running", "retrying", 2),
        ("retrying", "running", 3), ("running", "retrying", 3),
        ("retrying", "running", 4), ("running", "failed", 4),
    ]  # fmt: skip
    assert store.transitions(jid)[-1].error == "ValueError: bad input on attempt 4"


def test_error_list_is_bounded(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url, max_errors=2)
    fn = store.job(name="f", max_attempts=3)(lambda job: 1 / 0)
    jid = fn.enqueue()
    for _ in range(3):
        fn.run(jid)
    assert [e.attempt for e in store.get(jid).errors] == [2, 3]


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_interrupt_releases_the_job_and_propagates(db_url, make_store, interrupt) -> None:
    store = make_store(db_url)
    calls = []

    @store.job(name="i")
    def work(job: Job) -> str:
        calls.append(job.attempt)
        if len(calls) == 1:
            raise interrupt()
        return "done"

    jid = work.enqueue()
    with pytest.raises(interrupt):
        work.run(jid)
    row = _row(store, jid)
    assert (row.status, row.lease_expires, row.attempt) == ("retrying", None, 1)
    released = store.transitions(jid)[-1]
    assert (released.from_state, released.to_state) == ("running", "retrying")
    assert released.error == f"released: {interrupt.__name__}"
    assert work.run(jid) is JobState.SUCCEEDED  # ready again at once
    assert calls == [1, 2]


def test_cancellation_of_run_async_releases_the_job(db_url, make_store) -> None:
    import asyncio

    store = make_store(db_url)
    started = asyncio.Event()

    @store.job(name="slow")
    async def slow(job: Job) -> None:
        started.set()
        await asyncio.sleep(30)

    jid = slow.enqueue()

    async def main() -> None:
        task = asyncio.create_task(slow.run_async(jid))
        await asyncio.wait_for(started.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)

    asyncio.run(main())
    row = _row(store, jid)
    assert (row.status, row.lease_expires) == ("retrying", None)


def test_lost_lease_rejects_the_old_owners_completion(
    db_url, make_store, fake_clock, caplog
) -> None:
    # Owner A's clock is fake and never advanced: its lease is never renewed (a stalled
    # worker). Owner B takes the job over once the lease expired on the database clock.
    store_a = make_store(db_url, clock=fake_clock)
    store_b = make_store(db_url)
    started, proceed = threading.Event(), threading.Event()

    @store_a.job(name="work", lease=2.0)
    def work_a(job: Job) -> str:
        started.set()
        assert proceed.wait(10)
        return "from A"

    @store_b.job(name="work", lease=2.0)
    def work_b(job: Job) -> str:
        return "from B"

    jid = work_a.enqueue({"k": 1})
    outcome: list[BaseException | JobState] = []

    def run_a() -> None:
        try:
            outcome.append(work_a.run(jid))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run_a)
    thread.start()
    assert started.wait(10)
    with pytest.raises(JobNotReadyError, match="valid lease"):
        work_b.run(jid)

    def b_took_over() -> bool:
        try:
            return work_b.run(jid) is JobState.SUCCEEDED
        except JobNotReadyError:
            return False

    wait_until(b_took_over, timeout=10, interval=0.05)
    proceed.set()
    thread.join(10)
    assert isinstance(outcome[0], LeaseLostError)

    job = store_b.get(jid)
    assert (job.state, job.attempt, job.result) == (JobState.SUCCEEDED, 2, "from B")
    assert [e.type for e in job.errors] == ["otelkit.jobs.LeaseExpired"]
    history = [(t.from_state, t.to_state, t.attempt) for t in store_b.transitions(jid)]
    assert history == [
        (None, "queued", 0),
        ("queued", "running", 1),
        ("running", "running", 2),  # takeover: the attempt is counted
        ("running", "succeeded", 2),
        ("running", "lost", 1),  # A's late completion, rejected and recorded
    ]
    lost = store_b.transitions(jid)[-1]
    assert lost.worker is not None and ":run:" in lost.worker and lost.error
    takeovers = [r for r in caplog.records if r.name == "otelkit.jobs"]
    assert [r.getMessage() for r in takeovers] == [
        f"job work (id {jid}) attempt 1 of 5 was lost: its worker's lease expired; "
        "taken over as attempt 2"
    ]
    assert takeovers[0].levelname == "WARNING"


def test_running_attempts_renew_their_lease(db_url, make_store, fake_clock) -> None:
    store = make_store(db_url, clock=fake_clock)
    started, proceed = threading.Event(), threading.Event()

    @store.job(name="long", lease=3.0)
    def long(job: Job) -> None:
        started.set()
        assert proceed.wait(10)

    jid = long.enqueue()
    thread = threading.Thread(target=long.run, args=(jid,))
    thread.start()
    try:
        assert started.wait(10)
        first = _row(store, jid).lease_expires
        fake_clock.advance(1.4)
        assert _row(store, jid).lease_expires == first  # not yet half the lease
        fake_clock.advance(0.2)  # 1.6 s >= lease / 2: renewal due
        wait_until(lambda: _row(store, jid).lease_expires > first, timeout=10)
    finally:
        proceed.set()
        thread.join(10)
    assert store.get(jid).state is JobState.SUCCEEDED


def test_cancel_while_running_rejects_the_result(db_url, make_store) -> None:
    store = make_store(db_url)
    started, proceed = threading.Event(), threading.Event()
    outcome: list[Any] = []

    @store.job(name="c")
    def c(job: Job) -> None:
        started.set()
        assert proceed.wait(10)

    jid = c.enqueue()

    def run() -> None:
        try:
            c.run(jid)
        except LeaseLostError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(10)
    assert store.cancel(jid) is True
    proceed.set()
    thread.join(10)
    assert len(outcome) == 1
    assert f"job {str(jid)!r} was cancelled (store.cancel) while this attempt ran" in str(
        outcome[0]
    )
    assert store.get(jid).state is JobState.CANCELLED
    assert [t.to_state for t in store.transitions(jid)][-2:] == ["cancelled", "lost"]


def test_operator_retry_cancel_and_purge(db_url, make_store) -> None:
    store = make_store(db_url)
    fn = store.job(name="p", max_attempts=1)(lambda job: 1 / 0)
    jid = fn.enqueue()
    assert fn.run(jid) is JobState.FAILED
    assert store.cancel(jid) is False  # final jobs cannot be cancelled
    assert store.retry(jid) is True
    job = store.get(jid)
    assert (job.state, job.attempt, len(job.errors)) == (JobState.QUEUED, 0, 1)
    assert fn.run(jid) is JobState.FAILED
    assert len(store.get(jid).errors) == 2  # errors are kept across operator retries
    keep = fn.enqueue()
    assert store.purge(older_than=__import__("datetime").timedelta(0)) == 1
    assert store.get(jid) is None and store.transitions(jid) == []
    assert store.get(keep) is not None
    with pytest.raises(ValueError, match="final states"):
        store.purge(states=["queued"])


def test_expired_last_attempt_is_failed_by_the_sweep(
    db_url, make_store, fake_clock, caplog
) -> None:
    store = make_store(db_url, clock=fake_clock)
    started, proceed = threading.Event(), threading.Event()

    @store.job(name="last", max_attempts=1, lease=0.2)
    def last(job: Job) -> None:
        started.set()
        assert proceed.wait(10)

    jid = last.enqueue()

    def run() -> None:
        with pytest.raises(LeaseLostError):
            last.run(jid)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert started.wait(10)
        wait_until(lambda: store._backend.fail_exhausted() == 1, timeout=10, interval=0.05)
    finally:
        proceed.set()
        thread.join(10)
    job = store.get(jid)
    assert job.state is JobState.FAILED
    assert job.errors[-1].type == "otelkit.jobs.LeaseExpired"
    (record,) = [r for r in caplog.records if r.name == "otelkit.jobs"]
    assert record.levelname == "ERROR"
    assert record.getMessage() == (
        f"job last (id {jid}) attempt 1 of 1 was lost: its lease expired; "
        "no attempt is left: the job failed"
    )


def test_unknown_job_name_is_failed_with_the_reason(db_url, make_store) -> None:
    producer = make_store(db_url)
    consumer = make_store(db_url)
    fn = producer.job(name="only.in.producer")(lambda job: None)
    consumer.job(name="other")(lambda job: None)
    jid = fn.enqueue()
    assert consumer.worker(queues=["default"]).run_until_idle(timeout=30) == 1
    job = consumer.get(jid)
    assert job.state is JobState.FAILED
    assert job.errors[-1].type == "otelkit.jobs.UnknownJobError"
    assert "only.in.producer" in job.errors[-1].message


def test_a_retried_commit_that_had_landed_is_not_counted_as_lost(db_url, make_store) -> None:
    # The connection can drop after COMMIT reached the server but before the worker heard
    # back; the worker then retries the same fenced transition and must recognise it.
    from otelkit.jobs import _claim

    store = make_store(db_url)
    fn = store.job(name="once")(lambda job: None)
    jid = fn.enqueue()
    [attempt] = store._backend.cycle("w1", [], queues=["default"], limit=1)[0]
    store._backend.runner.invoke_sync(attempt)
    transition = attempt.transition
    for _ in range(2):
        with store._backend.writer.begin() as conn:
            assert _claim.finish(conn, owner="w1", transitions=[transition]) == {jid}
    with (
        store._backend.writer.begin() as conn
    ):  # another owner's identical claim is still fenced out
        assert _claim.finish(conn, owner="w2", transitions=[transition]) == set()
    assert [t.to_state for t in store.transitions(jid)] == ["queued", "running", "succeeded"]


def test_count_by_state_counts_every_state_in_one_query(sqlite_url, make_store) -> None:
    store = make_store(sqlite_url)
    ok = store.job(name="ok", queue="a")(lambda job: None)
    other = store.job(name="other", queue="b")(lambda job: None)
    done = ok.enqueue()
    ok.enqueue()
    other.enqueue()
    ok.run(done)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(sa.Engine, "before_cursor_execute", record)
    try:
        counts = store.count_by_state()
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", record)
    assert len(statements) == 1, statements
    assert counts[JobState.SUCCEEDED] == 1
    assert counts[JobState.QUEUED] == 2
    assert counts[JobState.FAILED] == 0
    assert set(counts) == set(JobState)
    assert store.count_by_state(queue="b")[JobState.QUEUED] == 1
