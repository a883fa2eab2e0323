"""Enqueue in the caller's transaction (Connection, Session) and batch inserts."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from otelkit.errors import InvalidOptionError, OptionTypeError
from otelkit.jobs import Job, JobState, JobStore


def _noop(job: Job) -> None:
    return None


def _counts(store: JobStore) -> tuple[int, int]:
    with store.engine.connect() as conn:
        jobs = conn.exec_driver_sql("SELECT count(*) FROM otelkit_jobs").scalar_one()
        history = conn.exec_driver_sql("SELECT count(*) FROM otelkit_job_transitions").scalar_one()
    return int(jobs), int(history)


def test_a_rolled_back_connection_leaves_no_job_and_no_history(db_url, make_store) -> None:
    store = make_store(db_url)
    fn = store.job(name="t")(_noop)
    with store.engine.connect() as conn, conn.begin() as tx:
        fn.enqueue({"a": 1}, connection=conn)
        fn.enqueue_many([{"b": 1}, {"b": 2}], connection=conn)
        tx.rollback()
    assert _counts(store) == (0, 0)


def test_a_committed_connection_makes_a_job_a_worker_runs(db_url, make_store) -> None:
    store = make_store(db_url)
    fn = store.job(name="t")(lambda job: {"got": job.data})
    with store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO orders VALUES (1)")
        handle = fn.enqueue({"order": 1}, connection=conn)
        assert store.get(handle) is None  # not visible before the commit
    assert store.worker(concurrency=1).run_until_idle(timeout=30) == 1
    job = handle.wait(timeout=10)
    assert job.state is JobState.SUCCEEDED and job.result == {"got": {"order": 1}}


def test_a_session_transaction_decides(db_url, make_store) -> None:
    store = make_store(db_url)
    fn = store.job(name="t")(_noop)
    with Session(store.engine) as session:
        fn.enqueue("dropped", session=session)
        session.rollback()
        kept = fn.enqueue("kept", session=session)
        session.commit()
    assert _counts(store)[0] == 1 and store.get(kept).data == "kept"


def test_the_send_span_is_a_child_of_the_callers_span(
    sqlite_url, make_store, memory_telemetry
) -> None:
    store = make_store(sqlite_url, tracer_provider=memory_telemetry.tracer_provider)
    fn = store.job(name="t")(_noop)
    tracer = memory_telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("checkout") as parent, store.engine.begin() as conn:
        handle = fn.enqueue({}, connection=conn)
    fn.run(handle)
    spans = {s.name: s for s in memory_telemetry.spans()}
    send, process = spans["send default"], spans["process default"]
    assert send.parent.span_id == parent.get_span_context().span_id
    assert process.links[0].context.span_id == send.context.span_id


def test_bad_connections_and_sessions_are_refused_with_nothing_written(
    sqlite_url, make_store, tmp_path: Path
) -> None:
    store = make_store(sqlite_url)
    fn = store.job(name="t")(_noop)
    outside = pytest.raises(InvalidOptionError, match="connection is not inside a transaction")
    with store.engine.connect() as conn, outside:
        fn.enqueue({}, connection=conn)
    with pytest.raises(OptionTypeError, match="connection must be a sqlalchemy"):
        fn.enqueue({}, connection=store.engine)
    other = sa.create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with other.begin() as conn, pytest.raises(InvalidOptionError, match="not to the store's"):
        fn.enqueue({}, connection=conn)
    with Session(other) as session, pytest.raises(InvalidOptionError, match="not to the store"):
        fn.enqueue({}, session=session)
    other.dispose()
    with pytest.raises(OptionTypeError, match=r"session must be a sqlalchemy\.orm\.Session"):
        fn.enqueue({}, session="db")
    both = pytest.raises(InvalidOptionError, match="not both")
    with store.engine.begin() as conn, Session(store.engine) as session, both:
        fn.enqueue({}, connection=conn, session=session)
    assert _counts(store) == (0, 0)


def test_enqueue_many_is_one_insert_statement(db_url, make_store) -> None:
    store = make_store(db_url)
    fn = store.job(name="t")(_noop)
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    handles = fn.enqueue_many([{"i": i} for i in range(1000)])
    event.remove(store.engine, "before_cursor_execute", seen)
    assert len(handles) == 1000 and len(set(handles)) == 1000
    assert len(statements) == 1
    assert _counts(store) == (1000, 1000)
