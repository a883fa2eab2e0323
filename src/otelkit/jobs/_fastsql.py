"""Hot statements on the raw DBAPI connection: compiled once per dialect, run directly.

``fn.run(job_id)`` makes two short transactions per job. Through a SQLAlchemy
``Connection`` each statement costs more Python than SQLite needs to run it (execution
context, result object, events), so the hot statements are compiled once per dialect by
SQLAlchemy — the same statement objects the worker uses — and executed on the pooled
DBAPI connection. The pool, the connect-time pragmas and the types' bind and result
processors stay SQLAlchemy's; driver errors are translated into ``sqlalchemy.exc``
exceptions as SQLAlchemy would, and a connection that died (``is_disconnect``) is
invalidated so that the pool does not hand it out again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["RawStatement", "in_transaction"]

T = TypeVar("T")

_Processor = Callable[[Any], Any] | None


class RawStatement:
    """A SQLAlchemy statement compiled for one dialect, executed on a DBAPI cursor.

    ``returning`` names the columns of its ``RETURNING`` clause (in order), so rows come
    back as dicts of processed values.
    """

    __slots__ = ("_binds", "_dialect", "_positional", "_results", "_returning", "sql")

    def __init__(
        self,
        stmt: sa.ClauseElement,
        dialect: sa.Dialect,
        returning: Iterable[sa.Column[Any]] = (),
    ) -> None:
        compiled = stmt.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        self._positional = compiled.positional
        names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
        binds: list[tuple[str, str | None, Any, _Processor]] = []
        for name in names:
            bind = compiled.binds[name]
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.required or bind.callable is not None:
                binds.append((name, bind.key, None, processor))
            else:  # a literal value built into the statement: convert it once
                value = bind.effective_value
                binds.append((name, None, processor(value) if processor else value, None))
        self._binds = tuple(binds)
        self._dialect = dialect
        self._returning = tuple(returning)
        self._results: tuple[tuple[str, _Processor], ...] | None = None

    def params(self, values: dict[str, Any]) -> Any:
        """DBAPI parameters (a tuple or a dict, per paramstyle) for ``values`` by bind key."""
        out = []
        for _, key, const, processor in self._binds:
            if key is None:
                out.append(const)
            else:
                value = values[key]
                out.append(
                    processor(value) if processor is not None and value is not None else value
                )
        if self._positional:
            return tuple(out)
        return {name: value for (name, *_), value in zip(self._binds, out, strict=True)}

    def rows(self, cursor: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
        """Execute on ``cursor``; the ``RETURNING`` rows as dicts."""
        cursor.execute(self.sql, self.params(values))
        if not self._returning:
            return []
        results = self._results
        if results is None:  # processors may depend on the driver's type codes
            dialect = self._dialect
            results = self._results = tuple(
                (column.key, column.type.dialect_impl(dialect).result_processor(dialect, desc[1]))
                for column, desc in zip(self._returning, cursor.description, strict=True)
            )
        return [
            {
                key: (proc(value) if proc is not None else value)
                for (key, proc), value in zip(results, row, strict=True)
            }
            for row in cursor.fetchall()
        ]


def in_transaction(engine: sa.Engine, work: Callable[[Any], T], *, write: bool = True) -> T:
    """``work(cursor)`` inside one transaction on a pooled DBAPI connection, committed.

    SQLite write transactions begin ``IMMEDIATE`` (as the engine's ``begin`` listener
    does for SQLAlchemy connections). An exception rolls back; driver errors become
    ``sqlalchemy.exc`` errors, and a dead connection is invalidated.
    """
    dialect = engine.dialect
    fairy = engine.raw_connection()
    dbapi_connection: Any = fairy.driver_connection
    cursor = None
    try:
        cursor = dbapi_connection.cursor()
        if dialect.name == "sqlite":
            cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        result = work(cursor)
        dbapi_connection.commit()
        return result
    except BaseException as exc:
        with suppress(Exception):  # the connection may be gone; the original error matters
            dbapi_connection.rollback()
        dbapi_error = dialect.loaded_dbapi.Error
        if not isinstance(exc, dbapi_error):
            raise
        disconnect = dialect.is_disconnect(exc, fairy, cursor)
        if disconnect:
            fairy.invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            None, None, exc, dbapi_error, connection_invalidated=disconnect, dialect=dialect
        ) from exc
    finally:
        if cursor is not None:
            with suppress(Exception):  # a cursor of a dead connection
                cursor.close()
        fairy.close()
