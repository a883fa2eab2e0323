"""Flow control decided by the database at claim time: limits per queue and key, rates, fair
claims, runtime changes, why a ready job waits, telemetry and bad input (both databases).

Claims are made with ``store._backend.cycle`` by several owners, as workers of several
processes would: what each gets is the database's decision, not a worker's own count.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from otelkit.errors import InvalidOptionError, OptionTypeError
from otelkit.jobs import Job, JobState, Limits, Rate
from otelkit.jobs._limits import parse_rate


def _claim(store: Any, owner: str, limit: int = 50, queues: tuple[str, ...] = ("q",)) -> Any:
    attempts, next_in, held = store._backend.cycle(owner, [], queues=list(queues), limit=limit)
    return attempts, next_in, held


def _finish(store: Any, owner: str, attempts: list[Any]) -> None:
    for attempt in attempts:
        store._backend.runner.invoke_sync(attempt)
    store._backend.complete(owner, attempts)


def _running(store: Any, queue: str = "q") -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM otelkit_jobs WHERE status = 'running' AND queue = :q"
                ),
                {"q": queue},
            ).scalar_one()
        )


@pytest.fixture
def flow(db_url: str, make_store: Any) -> Any:
    store = make_store(db_url)

    @store.job(name="step", queue="q", limit_key=lambda data: data.get("key"))
    def step(job: Job) -> None:
        return None

    return store, step


def test_a_queue_limit_holds_across_claimers(flow: Any) -> None:
    store, step = flow
    store.set_limits("q", Limits(concurrency=3))
    step.enqueue_many([{"i": i} for i in range(10)])
    first, _, held_first = _claim(store, "w1", limit=2)
    second, next_in, held = _claim(store, "w2", limit=10)
    third, _, held_third = _claim(store, "w3", limit=10)
    assert (len(first), len(second), len(third)) == (2, 1, 0)
    assert not held_first and held and held_third
    assert next_in is None  # a concurrency limit waits for a slot (NOTIFY or the poll)
    assert _running(store) == 3
    _finish(store, "w1", first)
    freed, _, _ = _claim(store, "w3", limit=10)
    assert len(freed) == 2 and _running(store) == 3


def test_a_key_limit_holds_per_key_and_leaves_other_keys_free(flow: Any) -> None:
    store, step = flow
    store.set_limits("q", Limits(key_concurrency=2))
    step.enqueue_many([{"key": "A"}] * 6 + [{"key": "B"}] * 3 + [{}] * 3)
    attempts, _, held = _claim(store, "w1", limit=50)
    by_key: dict[str | None, int] = {}
    for attempt in attempts:
        by_key[attempt.job.limit_key] = by_key.get(attempt.job.limit_key, 0) + 1
    assert by_key == {"A": 2, "B": 2, None: 3}  # jobs without a key count only to the queue
    assert held
    again, _, _ = _claim(store, "w2", limit=50)
    assert again == []


def test_fair_claims_rotate_between_keys_behind_a_backlog(flow: Any) -> None:
    store, step = flow
    store.set_limits("q", Limits(fair=True))
    step.enqueue_many([{"key": "big"}] * 40)
    small = step.enqueue_many([{"key": "small"}] * 2)
    attempts, _, _ = _claim(store, "w1", limit=4)
    keys = [a.job.limit_key for a in attempts]
    assert sorted(keys) == ["big", "big", "small", "small"]
    assert {a.job.id for a in attempts} >= set(small)


def test_without_fairness_the_backlog_goes_first(flow: Any) -> None:
    store, step = flow
    step.enqueue_many([{"key": "big"}] * 40)
    step.enqueue_many([{"key": "small"}] * 2)
    attempts, _, _ = _claim(store, "w1", limit=4)
    assert {a.job.limit_key for a in attempts} == {"big"}


def test_priority_still_comes_first_in_fair_claims(flow: Any) -> None:
    store, step = flow
    store.set_limits("q", Limits(fair=True))
    step.enqueue_many([{"key": "A"}] * 3, priority=5)
    step.enqueue_many([{"key": "B"}] * 3)
    attempts, _, _ = _claim(store, "w1", limit=3)
    assert [a.job.limit_key for a in attempts] == ["A", "A", "A"]


def test_a_rate_holds_and_says_when_the_window_frees(flow: Any) -> None:
    store, step = flow
    store.set_limits("q", Limits(rate=Rate(3, per=60.0)))
    step.enqueue_many([{}] * 5)
    first, _, _ = _claim(store, "w1", limit=2)
    _finish(store, "w1", first)  # finishing does not give starts back
    second, next_in, held = _claim(store, "w2", limit=10)
    assert len(second) == 1 and held
    assert next_in is not None and 55.0 < next_in <= 60.0
    assert _claim(store, "w3")[0] == []


def test_a_key_rate_holds_per_key(flow: Any) -> None:
    store, step = flow
    store.set_limits("q", Limits(key_rate=Rate(1, per=60.0)))
    step.enqueue_many([{"key": "A"}] * 3 + [{"key": "B"}] * 3)
    attempts, next_in, held = _claim(store, "w1")
    assert sorted(a.job.limit_key for a in attempts) == ["A", "B"]
    assert held and next_in is not None and next_in > 55.0


def test_a_limit_changed_at_runtime_binds_at_the_next_claim(flow: Any) -> None:
    store, step = flow
    store.set_limits("q", Limits(concurrency=1))
    step.enqueue_many([{}] * 6)
    assert len(_claim(store, "w1")[0]) == 1
    store.set_limits("q", Limits(concurrency=3))
    assert len(_claim(store, "w2")[0]) == 2
    store.set_limits("q", Limits())  # no limit: the plain claim takes the rest
    assert len(_claim(store, "w3")[0]) == 3


def test_code_declares_limits_and_an_operator_overrides_them_until_reset(
    db_url: str, make_store: Any
) -> None:
    store = make_store(db_url)
    store.declare_limits("mail", Limits(concurrency=2))

    @store.job(name="send", queue="mail")
    def send(job: Job) -> None:
        return None

    assert store.limits() == []  # declared in code; a worker's start stores it
    store.worker(queues=["mail"]).run_until_idle(timeout=30)
    [stored] = store.limits()
    assert (stored.queue, stored.limits, stored.set_by) == ("mail", Limits(concurrency=2), "code")
    store.set_limits("mail", Limits(concurrency=5))
    store.worker(queues=["mail"]).run_until_idle(timeout=30)  # does not replace the operator's
    [stored] = store.limits()
    assert (stored.limits.concurrency, stored.set_by) == (5, "operator")
    assert store.reset_limits("mail") == Limits(concurrency=2)
    [stored] = store.limits("mail")
    assert (stored.limits.concurrency, stored.set_by) == (2, "code")


def test_a_limit_no_longer_declared_is_removed_at_the_next_worker_start(
    db_url: str, make_store: Any
) -> None:
    old = make_store(db_url)

    @old.job(name="send", queue="mail", limits=Limits(concurrency=2))
    def send(job: Job) -> None:
        return None

    old.worker().run_until_idle(timeout=30)
    assert [q.queue for q in old.limits()] == ["mail"]
    new = make_store(db_url)

    @new.job(name="send", queue="mail")
    def send_again(job: Job) -> None:
        return None

    new.worker().run_until_idle(timeout=30)
    assert new.limits() == []


def test_workers_run_limited_jobs_to_the_end(flow: Any) -> None:
    store, step = flow
    store.set_limits("q", Limits(concurrency=2, key_concurrency=1, rate=Rate(100, per=1.0)))
    step.enqueue_many([{"key": k} for k in "ABCABCABC"])
    worker = store.worker(concurrency=4, poll_interval=0.05)
    assert worker.run_until_idle(timeout=60) == 9
    assert store.count_by_state()[JobState.SUCCEEDED] == 9


def test_why_a_ready_job_waits(flow: Any) -> None:
    store, step = flow
    store.set_limits("q", Limits(concurrency=1))
    ids = step.enqueue_many([{"key": "A"}] * 2)
    assert store.wait_reasons([store.get(i) for i in ids]) == {}  # nothing binds yet
    [attempt], _, _ = _claim(store, "w1")
    waiting = store.get(ids[1] if attempt.job.id == ids[0] else ids[0])
    reason = store.wait_reason(waiting.id)
    assert reason is not None and reason.reason == "concurrency"
    assert "1 of 1 running in queue 'q'" in reason.message
    assert store.wait_reason(attempt.job.id) is None  # running: not waiting

    store.set_limits("q", Limits(key_concurrency=1))
    reason = store.wait_reason(waiting.id)
    assert reason is not None and reason.reason == "key_concurrency" and "'A'" in reason.message

    store.set_limits("q", Limits(rate=Rate(1, per=30.0)))
    store._backend.cycle("w0", [], queues=["q"], limit=0)
    _claim(store, "w2")  # the rate window now holds its one start
    later = step.enqueue({"key": "B"})
    reason = store.wait_reason(later)
    assert reason is not None and reason.reason == "rate" and reason.retry_in is not None
    assert 0 < reason.retry_in <= 30.0

    store.pause("q")
    reason = store.wait_reason(later)
    assert reason is not None and reason.reason == "paused"


def test_a_held_attempt_gets_a_span_event_and_the_hold_is_counted(
    db_url: str, make_store: Any, memory_telemetry: Any
) -> None:
    store = make_store(
        db_url,
        tracer_provider=memory_telemetry.tracer_provider,
        meter_provider=memory_telemetry.meter_provider,
    )

    @store.job(name="step", queue="q", limit_key=lambda data: data)
    def step(job: Job) -> None:
        return None

    store.set_limits("q", Limits(concurrency=1))
    step.enqueue_many(["tenant-1", "tenant-2"])
    [attempt], _, _ = _claim(store, "w1")
    assert _claim(store, "w2")[0] == []  # held: the queue is at its limit
    _finish(store, "w1", [attempt])
    [held], _, _ = _claim(store, "w2")
    _finish(store, "w2", [held])
    spans = {
        s.attributes["messaging.message.id"]: s
        for s in memory_telemetry.spans()
        if s.name == "process q"
    }
    events = {
        job_id: [e for e in spans[job_id].events if e.name == "otelkit.job.held"]
        for job_id in (attempt.job.id, held.job.id)
    }
    assert events[attempt.job.id] == []
    [event] = events[held.job.id]
    assert event.attributes["otelkit.job.throttle.reason"] == "concurrency"
    assert event.attributes["otelkit.job.held.seconds"] >= 0
    points = memory_telemetry.metric_points("otelkit.job.throttled")
    assert [(attrs, p.value) for attrs, p in points] == [
        (
            {"messaging.destination.name": "q", "otelkit.job.throttle.reason": "concurrency"},
            2,
        )
    ]  # w1's claim and w2's first one left a ready job behind; no key (tenant) attribute


@pytest.mark.postgres
def test_a_slot_freed_in_a_limited_queue_notifies_listeners(pg_url: str, make_store: Any) -> None:
    from otelkit.jobs._wakeup import Listener
    from otelkit.testing import wait_until

    store = make_store(pg_url)

    @store.job(name="step", queue="q")
    def step(job: Job) -> None:
        return None

    store.set_limits("q", Limits(concurrency=1))
    step.enqueue_many([None, None])
    [attempt], _, held = _claim(store, "w1")  # the second job is held back: a worker waits
    assert held
    heard: list[tuple[str, float]] = []
    listener = Listener(
        store.engine.url, on_notify=lambda q, d: heard.append((q, d)), on_connect=lambda: None,
        name="test",
    )  # fmt: skip
    try:
        wait_until(lambda: listener.connected, timeout=10)
        _finish(store, "w1", [attempt])
        wait_until(lambda: ("q", 0.0) in heard, timeout=10)
    finally:
        listener.close()


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"concurrency": 0}, "concurrency must be >= 1"),
        ({"concurrency": -2}, "concurrency must be >= 1"),
        ({"key_concurrency": 1.5}, "key_concurrency must be a whole number"),
        ({"concurrency": "3"}, "concurrency must be a whole number"),
        ({"concurrency": True}, "concurrency must be a whole number"),
    ],
)
def test_bad_limits_are_refused_naming_the_option(options: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidOptionError, match=named):
        Limits(**options)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((0,), "limit must be >= 1"),
        ((5, 0), "per .* greater than 0"),
        ((5, -1.0), "per .* greater than 0"),
        ((5, float("inf")), "per .* greater than 0"),
        ((2.5,), "limit must be a whole number"),
    ],
)
def test_bad_rates_are_refused(args: tuple[Any, ...], named: str) -> None:
    with pytest.raises(InvalidOptionError, match=named):
        Rate(*args)


def test_the_cli_rate_form_is_parsed_and_checked() -> None:
    assert parse_rate("20/1s", "--rate") == Rate(20, per=1.0)
    assert parse_rate("600/m", "--rate") == Rate(600, per=60.0)
    with pytest.raises(InvalidOptionError, match="--rate must look like"):
        parse_rate("fast", "--rate")
    with pytest.raises(InvalidOptionError, match="--rate: Rate: per"):
        parse_rate("5/0s", "--rate")


def test_a_failing_key_function_enqueues_nothing(db_url: str, make_store: Any) -> None:
    store = make_store(db_url)

    @store.job(name="by-tenant", queue="q", limit_key=lambda data: data["tenant"])
    def by_tenant(job: Job) -> None:
        return None

    with pytest.raises(InvalidOptionError, match=r"limit_key function of job 'by-tenant' raised"):
        by_tenant.enqueue_many([{"tenant": "a"}, {"no": "tenant"}])
    with pytest.raises(InvalidOptionError, match=r"limit_key function of job 'by-tenant'.*dict"):
        by_tenant.enqueue({"tenant": {"nested": 1}})
    assert store.count_by_state()[JobState.QUEUED] == 0


def test_bad_limit_options_at_definition_and_enqueue(db_url: str, make_store: Any) -> None:
    store = make_store(db_url)
    with pytest.raises(
        InvalidOptionError, match=r"store\.job\('x'\): limit_key must be a function"
    ):
        store.job(name="x", limit_key="tenant")(lambda job: None)  # type: ignore[arg-type]
    with pytest.raises(OptionTypeError, match=r"limits must be an otelkit\.jobs\.Limits"):
        store.job(name="y", limits={"concurrency": 3})(lambda job: None)  # type: ignore[arg-type]

    @store.job(name="z", queue="q", limits=Limits(concurrency=2))
    def z(job: Job) -> None:
        return None

    with pytest.raises(InvalidOptionError, match="queue 'q' already has limits declared"):
        store.job(name="w", queue="q", limits=Limits(concurrency=3))(lambda job: None)
    with pytest.raises(InvalidOptionError, match=r"z\.enqueue: limit_key must be a str"):
        z.enqueue(limit_key=["a"])  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match=r"store\.set_limits: queue 'nope' is unknown"):
        store.set_limits("nope", Limits(concurrency=1))
    with pytest.raises(OptionTypeError, match=r"store\.set_limits: limits must be"):
        store.set_limits("q", 3)  # type: ignore[arg-type]


@pytest.mark.postgres
def test_a_limit_that_does_not_bind_sends_no_notify(pg_url: str, make_store: Any) -> None:
    from otelkit.jobs._wakeup import CHANNEL, Listener
    from otelkit.testing import wait_until

    store = make_store(pg_url)

    @store.job(name="step", queue="q")
    def step(job: Job) -> None:
        return None

    store.set_limits("q", Limits(concurrency=5))
    step.enqueue()
    [attempt], _, held = _claim(store, "w1")
    assert not held
    heard: list[str] = []
    listener = Listener(
        store.engine.url, on_notify=lambda q, d: heard.append(q), on_connect=lambda: None,
        name="test",
    )  # fmt: skip
    try:
        wait_until(lambda: listener.connected, timeout=10)
        _finish(store, "w1", [attempt])
        with store.engine.begin() as conn:  # delivered after anything the finish sent
            conn.execute(sa.select(sa.func.pg_notify(CHANNEL, "sentinel 0")))
        wait_until(lambda: "sentinel" in heard, timeout=10)
    finally:
        listener.close()
    assert heard == ["sentinel"]  # a NOTIFY serialises commits: none for a free slot


@pytest.mark.postgres
def test_a_claim_that_waits_for_the_lock_counts_and_stamps_after_it(
    pg_url: str, make_store: Any
) -> None:
    import threading

    from otelkit.testing import wait_until

    store = make_store(pg_url)

    @store.job(name="step", queue="q")
    def step(job: Job) -> None:
        return None

    store.set_limits("q", Limits(concurrency=2))
    step.enqueue_many([None] * 3)
    got: list[Any] = []
    claim = sa.text("SELECT * FROM otelkit_jobs_flow_claim(ARRAY['q'], 'w1', 1)")
    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND query LIKE '%otelkit_jobs_flow_claim%'"
    )
    now = sa.text("SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8")

    def scalar(conn: sa.Connection, query: sa.TextClause) -> Any:
        with conn.begin():  # a new snapshot of pg_stat_activity each time
            return conn.execute(query).scalar_one()

    with store.engine.connect() as first, store.engine.connect() as probe:
        first.execute(claim)  # w1 claims one job and holds the queue's lock until its commit
        second = threading.Thread(target=lambda: got.extend(_claim(store, "w2", limit=10)[0]))
        second.start()
        wait_until(lambda: scalar(probe, waiting) == 1, timeout=10)
        released = scalar(probe, now)
        first.commit()
        second.join(timeout=30)
    assert not second.is_alive()
    assert len(got) == 1  # counted after the lock: w1's job runs, one slot was left
    assert got[0].job.updated_at.timestamp() >= released  # stamped after the lock, too


def _index_entries_read(conn: sa.Connection) -> int:
    """Index entries of ``otelkit_jobs`` read so far, by every session (this one's flushed)."""
    conn.execute(sa.text("SELECT pg_stat_force_next_flush()"))
    conn.execute(sa.text("SELECT 1"))  # the flush happens as a statement ends
    conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
    read = conn.execute(
        sa.text("SELECT sum(idx_tup_read) FROM pg_stat_user_indexes WHERE relname = 'otelkit_jobs'")
    ).scalar()
    return int(read or 0)


@pytest.mark.postgres
def test_a_limited_claim_reads_the_jobs_it_takes_not_the_backlog(
    pg_url: str, make_store: Any
) -> None:
    """The claim function's cached plan (forced here: PL/pgSQL caches one after a few
    calls), made before any ANALYZE has seen the backlog, looks the picked jobs up by key:
    it once read every ready job of the queue, for every claim of 10."""
    from otelkit.jobs import _flow

    store = make_store(pg_url)

    @store.job(name="step", queue="q")
    def step(job: Job) -> None:
        return None

    store.set_limits("q", Limits(concurrency=1000))
    step.enqueue_many([None] * 2000)
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SET plan_cache_mode = force_generic_plan"))

            reads = []
            for _ in range(3):
                before = _index_entries_read(conn)
                assert len(_flow.claim(conn, owner="w", queues_=["q"], limit=10).rows) == 10
                reads.append(_index_entries_read(conn) - before)
    finally:
        engine.dispose()
    assert max(reads) < 200, f"claims of 10 read {reads} index entries of a 2,000-job backlog"


@pytest.mark.postgres
def test_a_keyed_claim_reads_each_keys_first_jobs_not_the_backlog(
    pg_url: str, make_store: Any
) -> None:
    """Behind one key's backlog of 2,000 jobs, a claim with a key limit takes the first job
    of every key and reads about as many index entries as it takes: it once ranked every
    ready job of the queue at each claim."""
    from otelkit.jobs import _flow

    store = make_store(pg_url)

    @store.job(name="step", queue="q", limit_key=lambda data: data["key"])
    def step(job: Job) -> None:
        return None

    store.set_limits("q", Limits(key_concurrency=1))
    step.enqueue_many([{"key": "A"}] * 2000)
    small = step.enqueue_many([{"key": k} for k in "BCD"])
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            before = _index_entries_read(conn)
            rows = _flow.claim(conn, owner="w", queues_=["q"], limit=10).rows
            read = _index_entries_read(conn) - before
    finally:
        engine.dispose()
    assert sorted(r.limit_key for r in rows) == ["A", "B", "C", "D"]  # one per key
    assert set(small) <= {r.id for r in rows}
    assert read < 200, f"a claim read {read} index entries behind a 2,000-job backlog"
