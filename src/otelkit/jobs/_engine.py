"""Turning a URL, a path or an Engine into a configured SQLAlchemy Engine.

SQLite: WAL journal, a busy timeout, and transactions begun by us so that write
transactions are ``BEGIN IMMEDIATE`` (the claim must hold the write lock from its first
read). PostgreSQL: ``postgresql://`` means psycopg 3.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

__all__ = ["WRITE", "make_engine", "make_url"]

WRITE = "otelkit_write"
"""Execution option marking a connection whose transactions write (SQLite: IMMEDIATE)."""

_MIN_SQLITE = (3, 35, 0)  # UPDATE ... RETURNING
_CONFIGURED = "_otelkit_jobs_configured"


def make_engine(url_or_engine: object, *, sqlite_busy_timeout: float = 30.0) -> sa.Engine:
    """An Engine for the store; raises ``ValueError``/``TypeError`` for what we cannot use."""
    if isinstance(url_or_engine, sa.Engine):
        engine = url_or_engine
    elif isinstance(url_or_engine, (str, os.PathLike)):
        engine = sa.create_engine(_url(os.fspath(url_or_engine)))
    else:
        raise TypeError(
            "JobStore: url_or_engine must be a database URL, a SQLite file path or a "
            f"sqlalchemy Engine, got {type(url_or_engine).__name__}"
        )
    name = engine.dialect.name
    if name == "sqlite":
        if sqlite3.sqlite_version_info < _MIN_SQLITE:
            raise ValueError(
                f"JobStore needs SQLite >= 3.35 (UPDATE ... RETURNING); this Python links "
                f"SQLite {sqlite3.sqlite_version}"
            )
        database = engine.url.database
        if not database or database == ":memory:" or database.startswith("file::memory:"):
            raise ValueError(
                "JobStore needs a SQLite *file* (workers in other threads and processes must "
                f"see the same jobs), got {str(engine.url)!r}"
            )
        _configure_sqlite(engine, sqlite_busy_timeout)
    elif name != "postgresql":
        raise ValueError(
            f"JobStore supports SQLite and PostgreSQL, got dialect {name!r} ({engine.url!r})"
        )
    return engine


def make_url(text: str) -> sa.URL:
    """The URL a store would use for ``text`` (a URL or a SQLite file path)."""
    return _url(text)


def _url(text: str) -> sa.URL:
    if "://" not in text:
        return sa.make_url("sqlite:///" + os.path.abspath(text))
    try:
        url = sa.make_url(text)
    except sa.exc.ArgumentError as exc:
        raise ValueError(f"JobStore: not a database URL: {text!r} ({exc})") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"JobStore supports SQLite and PostgreSQL, got {url.drivername!r} URL")
    return url


def _configure_sqlite(engine: sa.Engine, busy_timeout: float) -> None:
    if getattr(engine, _CONFIGURED, False):
        return
    setattr(engine, _CONFIGURED, True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get(WRITE, False)
        # Straight to the driver: a full SQLAlchemy execution per BEGIN costs more than it.
        dbapi_connection = conn.connection.dbapi_connection
        assert dbapi_connection is not None
        dbapi_connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    engine.dispose(close=False)  # connections made before the listeners are not reused
