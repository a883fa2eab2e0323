"""The store's producer: runs an enqueue in the right transaction, sync or async.

Own transaction (the store's writer, or its async engine), or the caller's: a SQLAlchemy
``Connection``/``Session`` (sync) or ``AsyncConnection``/``AsyncSession`` (async). The
PRODUCER span is opened in the caller's context either way, so the job links to the
caller's trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import sqlalchemy.orm

from otelkit._clock import Clock
from otelkit._extras import require
from otelkit.errors import InvalidOptionError, OptionTypeError
from otelkit.jobs._definition import Definition
from otelkit.jobs._engine import make_async_engine
from otelkit.jobs._enqueue import (
    Batch,
    Item,
    Options,
    check_connection,
    check_same_database,
    insert,
    prepare,
)
from otelkit.jobs._handle import EnqueuedJob
from otelkit.jobs._model import Job
from otelkit.jobs._schema import require_schema
from otelkit.jobs._telemetry import JobTelemetry, error_type

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["Producer"]


class Producer:
    """Enqueues jobs of one store (its ``writer`` engine, telemetry and clock)."""

    def __init__(
        self,
        writer: sa.Engine,
        telemetry: JobTelemetry,
        clock: Clock,
        *,
        get: Callable[[str], Job | None],
        wake: Callable[[str, float], None],
        autocommit: sa.Engine | None = None,
    ) -> None:
        self._writer = writer
        # PostgreSQL: an INSERT without unique keys is one atomic statement, so without a
        # caller's transaction it runs in autocommit mode (no COMMIT round trip).
        self._own = autocommit if autocommit is not None else writer
        self._telemetry = telemetry
        self._clock = clock
        self._get = get
        self._wake = wake
        # One async engine per event loop: pooled async connections belong to their loop.
        self._async_engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncEngine] = (
            weakref.WeakKeyDictionary()
        )

    def enqueue(
        self,
        where: str,
        definition: Definition,
        items: Sequence[Item],
        options: Options,
        *,
        connection: object = None,
        session: object = None,
    ) -> list[EnqueuedJob]:
        """Insert the items (in the caller's transaction if given); their handles."""
        conn = self._caller_connection(where, connection, session)
        batch = prepare(where, definition, items, options, now=self._clock.time())
        if not batch.rows:
            return []
        with self._span(batch) as (span, carrier):
            if conn is not None:
                with require_schema(self._writer):
                    outcome = insert(conn, batch, carrier)
            else:
                # Unique keys may take a second statement (a holder that finished
                # meanwhile): then one transaction, so that nothing is half-written.
                keyed = any(row["unique_key"] is not None for row in batch.rows)
                engine = self._writer if keyed else self._own
                with require_schema(self._writer), engine.begin() as own:
                    outcome = insert(own, batch, carrier)
            self._record(span, batch, outcome)
        return self._handles(batch, outcome, woke=conn is None)

    async def aenqueue(
        self,
        where: str,
        definition: Definition,
        items: Sequence[Item],
        options: Options,
        *,
        connection: object = None,
        session: object = None,
    ) -> list[EnqueuedJob]:
        """:meth:`enqueue` through the async driver: the event loop never waits on I/O."""
        conn = await self._caller_async_connection(where, connection, session)
        batch = prepare(where, definition, items, options, now=self._clock.time())
        if not batch.rows:
            return []
        with self._span(batch) as (span, carrier):

            def run(sync_conn: sa.Connection) -> list[tuple[str, bool]]:
                return insert(sync_conn, batch, carrier)

            with require_schema(self._writer):
                if conn is not None:
                    outcome = await conn.run_sync(run)
                else:
                    async with self._engine_async().begin() as own:
                        outcome = await own.run_sync(run)
            self._record(span, batch, outcome)
        return self._handles(batch, outcome, woke=conn is None)

    async def aclose(self) -> None:
        """Close the async connections of the running event loop."""
        engine = self._async_engines.pop(asyncio.get_running_loop(), None)
        if engine is not None:
            await engine.dispose()

    def close(self) -> None:
        """Let go of every loop's async engine (closing their connections needs the loop:
        async applications call :meth:`aclose` before their loop ends)."""
        for engine in list(self._async_engines.values()):
            engine.sync_engine.dispose(close=False)
        self._async_engines.clear()

    # -- parts -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _span(self, batch: Batch) -> Iterator[tuple[Any, dict[str, str]]]:
        d = batch.definition
        tel = self._telemetry
        with tel.send_span(
            name=d.name, queue=d.queue, max_attempts=d.max_attempts, count=len(batch.order)
        ) as (span, carrier):
            if len(batch.rows) == 1 and batch.rows[0]["unique_key"] is None:
                span.set_attribute("messaging.message.id", batch.rows[0]["id"])
            try:
                yield span, carrier
            except sa.exc.IntegrityError as exc:
                tel.sent(
                    span=span,
                    name=d.name,
                    queue=d.queue,
                    count=len(batch.rows),
                    error="duplicate_id",
                )
                ids = sorted(row["id"] for row in batch.rows)[:5]
                raise ValueError(
                    f"a job with one of the ids {ids} already exists; nothing was enqueued"
                ) from exc
            except Exception as exc:
                tel.sent(
                    span=span,
                    name=d.name,
                    queue=d.queue,
                    count=len(batch.rows),
                    error=error_type(exc),
                )
                raise

    def _record(self, span: Any, batch: Batch, outcome: list[tuple[str, bool]]) -> None:
        d = batch.definition
        added = len({job_id for job_id, duplicate in outcome if not duplicate})
        duplicates = len(outcome) - added
        if duplicates:
            span.set_attribute("otelkit.job.duplicates", duplicates)
        if len(outcome) == 1:
            span.set_attribute("messaging.message.id", outcome[0][0])
        self._telemetry.sent(span=span, name=d.name, queue=d.queue, count=added, error=None)

    def _handles(
        self, batch: Batch, outcome: list[tuple[str, bool]], *, woke: bool
    ) -> list[EnqueuedJob]:
        if woke and any(not duplicate for _, duplicate in outcome):
            self._wake(batch.definition.queue, batch.options.delay)
        return [EnqueuedJob(i, duplicate=dup, get=self._get) for i, dup in outcome]

    def _caller_connection(
        self, where: str, connection: object, session: object
    ) -> sa.Connection | None:
        if connection is not None and session is not None:
            raise InvalidOptionError(f"{where}: pass connection= or session=, not both")
        hint = " (for an AsyncConnection use aenqueue)"
        if session is not None:
            if not isinstance(session, sa.orm.Session):
                raise OptionTypeError(
                    f"{where}: session must be a sqlalchemy.orm.Session (for an AsyncSession "
                    f"use aenqueue), got {type(session).__name__}"
                )
            conn = session.connection()
            check_same_database(where, "session", conn.engine.url, self._writer.url)
            return conn
        if connection is None:
            return None
        check_connection(where, connection, self._writer, kind=sa.Connection, hint=hint)
        assert isinstance(connection, sa.Connection)
        return connection

    async def _caller_async_connection(
        self, where: str, connection: object, session: object
    ) -> AsyncConnection | None:
        # SQLAlchemy's asyncio extension fails on import without greenlet, naming its own extra.
        require("greenlet", extra="async", needed_by=f"{where} (SQLAlchemy's asyncio support)")
        from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

        if connection is not None and session is not None:
            raise InvalidOptionError(f"{where}: pass connection= or session=, not both")
        if session is not None:
            if not isinstance(session, AsyncSession):
                raise OptionTypeError(
                    f"{where}: session must be a sqlalchemy.ext.asyncio.AsyncSession (for a "
                    f"sync Session use enqueue), got {type(session).__name__}"
                )
            conn = await session.connection()
            check_same_database(where, "session", conn.engine.url, self._writer.url)
            return conn
        if connection is None:
            return None
        hint = " (for a sync Connection use enqueue)"
        check_connection(where, connection, self._writer, kind=AsyncConnection, hint=hint)
        assert isinstance(connection, AsyncConnection)
        return connection

    def _engine_async(self) -> AsyncEngine:
        loop = asyncio.get_running_loop()
        engine = self._async_engines.get(loop)
        if engine is None:
            engine = self._async_engines[loop] = make_async_engine(self._writer)
        return engine
