"""Turning a URL, a path or an Engine into a configured SQLAlchemy Engine.

SQLite: WAL journal, a busy timeout, and transactions begun by us so that write
transactions are ``BEGIN IMMEDIATE`` (the claim must hold the write lock from its first
read). PostgreSQL: ``postgresql://`` means psycopg 3 (the ``postgres`` extra).

What a string means: text starting with a scheme (``postgresql:``, ``sqlite:``) is a URL and
must parse as one; any other text is a SQLite file path if it ends in ``.db``, ``.sqlite`` or
``.sqlite3`` or contains a path separator. Anything else (a bare word such as ``jobs`` or
``not-a-url``) is refused: it is more often a mistyped URL than a wanted file name.
"""

from __future__ import annotations

import os
import re
import sqlite3
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from otelkit._extras import require

__all__ = ["WRITE", "make_async_engine", "make_engine", "make_url"]

WRITE = "otelkit_write"
"""Execution option marking a connection whose transactions write (SQLite: IMMEDIATE)."""

_MIN_SQLITE = (3, 35, 0)  # UPDATE ... RETURNING
_CONFIGURED = "_otelkit_jobs_configured"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")  # two letters at least: not "C:"
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_OPTION = "JobStore(url_or_engine)"
_FORMS = (
    "pass a URL such as 'postgresql://user@host:5432/dbname' or 'sqlite:///jobs.sqlite3', "
    "or a SQLite file path that ends in .db, .sqlite or .sqlite3 or contains a '/' "
    "(such as 'jobs.sqlite3' or './data/jobs')"
)
POSTGRES_EXTRA = "pip install 'otelkit[postgres]'"


def make_engine(url_or_engine: object, *, sqlite_busy_timeout: float = 30.0) -> sa.Engine:
    """An Engine for the store; raises ``ValueError``/``TypeError`` for what we cannot use."""
    if isinstance(url_or_engine, sa.Engine):
        engine = url_or_engine
    elif isinstance(url_or_engine, (str, os.PathLike)):
        url = make_url(url_or_engine)
        try:
            engine = sa.create_engine(url)
        except ImportError as exc:
            if url.get_backend_name() != "postgresql":
                raise
            raise ValueError(
                f"{_OPTION}: {url.render_as_string()!r} needs the PostgreSQL driver psycopg 3, "
                f"which is not installed ({exc}); install it with: {POSTGRES_EXTRA}"
            ) from exc
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


def make_url(value: str | os.PathLike[str], *, option: str = _OPTION) -> sa.URL:
    """The URL a store would use for ``value`` (a URL, or a SQLite file path).

    Raises ``ValueError`` naming ``option`` for text that is neither (see the module doc).
    """
    if isinstance(value, os.PathLike):  # a Path object: a file, whatever its name
        return sa.make_url("sqlite:///" + os.path.abspath(os.fspath(value)))
    if not isinstance(value, str):
        raise TypeError(f"{option}: expected a str, got {type(value).__name__}")
    text = value.strip()
    scheme = _SCHEME.match(text)
    if scheme is None:
        separators = {"/", os.sep, os.altsep or "/"}
        if text.lower().endswith(_SQLITE_SUFFIXES) or any(sep in text for sep in separators):
            return sa.make_url("sqlite:///" + os.path.abspath(text))
        raise ValueError(
            f"{option}: {value!r} is neither a database URL nor a SQLite file path; {_FORMS}"
        )
    name = scheme.group(1)
    if not text[scheme.end() :].startswith("//"):
        raise ValueError(
            f"{option}: {value!r} is a malformed URL: '{name}:' must be followed by '//' "
            f"(e.g. '{name}://user@host:5432/dbname'); {_FORMS}"
        )
    try:
        url = sa.make_url(text)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise ValueError(
            f"{option}: {value!r} is a malformed URL ({exc}); the form is "
            "'postgresql://user:password@host:port/dbname' or 'sqlite:///path/to/jobs.sqlite3'"
        ) from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(
            f"{option}: otelkit.jobs supports SQLite and PostgreSQL, got a {url.drivername!r} URL"
        )
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


def make_async_engine(engine: sa.Engine) -> Any:
    """An ``AsyncEngine`` on the same database as ``engine`` (psycopg async, aiosqlite).

    SQLite connections get the store's pragmas, and write transactions begin ``IMMEDIATE``.
    """
    needed_by = "otelkit.jobs async enqueue"
    require("greenlet", extra="async", needed_by=f"{needed_by} (SQLAlchemy's asyncio support)")
    from sqlalchemy.ext.asyncio import create_async_engine

    url = engine.url
    if url.get_backend_name() == "postgresql":
        return create_async_engine(url.set(drivername="postgresql+psycopg"))
    require("aiosqlite", extra="async", needed_by=f"{needed_by} on SQLite")
    async_engine = create_async_engine(url.set(drivername="sqlite+aiosqlite"))

    @event.listens_for(async_engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA busy_timeout = 30000")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(async_engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute("BEGIN IMMEDIATE")
        finally:
            cursor.close()

    return async_engine
