"""Pausing and resuming queues: a row in ``otelkit_job_queues`` that the claim reads.

A paused queue's waiting jobs are not claimed by any worker (the claim statement itself
skips them, so the pause holds at once, across machines); attempts already running finish.
Resuming wakes listening workers (PostgreSQL ``NOTIFY``) and this process's workers.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa

from otelkit._validate import check_str
from otelkit.errors import InvalidOptionError
from otelkit.jobs._schema import db_now, dialect_insert, jobs, queues
from otelkit.jobs._wakeup import CHANNEL

__all__ = ["check_known", "paused_queues", "set_paused"]


def set_paused(
    writer: sa.Engine, where: str, queue: object, *, paused: bool, registered: Collection[str]
) -> bool:
    """Pause or resume ``queue``; whether its state changed.

    A queue is known if a registered function uses it or a job or a setting names it;
    another name raises ``InvalidOptionError`` listing the known ones (a typo would
    otherwise pause nothing, silently).
    """
    name = check_str(where, "queue", queue)
    values = {"queue": name, "paused": paused, "updated_at": db_now()}
    upsert = (
        dialect_insert(writer.dialect.name, queues)
        .values(values)
        .on_conflict_do_update(
            index_elements=[queues.c.queue],
            set_={"paused": paused, "updated_at": db_now()},
            where=queues.c.paused != paused,
        )
        .returning(queues.c.queue)
    )
    with writer.begin() as conn:
        check_known(conn, where, name, registered)
        changed = conn.execute(upsert).first() is not None
        if not paused and changed and conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_notify(CHANNEL, name + " 0")))
    return changed


def check_known(conn: sa.Connection, where: str, queue: object, registered: Collection[str]) -> str:
    """``queue`` if a registered function uses it or a job or a setting names it; another
    name raises ``InvalidOptionError`` listing the known ones (a typo would otherwise
    change nothing, silently)."""
    name = check_str(where, "queue", queue)
    if name not in registered and not _known(conn, name):
        known = sorted(set(registered) | _all_known(conn))
        raise InvalidOptionError(
            f"{where}: queue {name!r} is unknown (no registered function, job or setting "
            f"uses it); known queues: {', '.join(known) or 'none'}"
        )
    return name


def paused_queues(engine: sa.Engine) -> list[str]:
    """The names of the paused queues, sorted."""
    stmt = sa.select(queues.c.queue).where(queues.c.paused == sa.true()).order_by(queues.c.queue)
    with engine.connect() as conn:
        return list(conn.execute(stmt).scalars())


def _known(conn: sa.Connection, name: str) -> bool:
    in_jobs = sa.select(jobs.c.id).where(jobs.c.queue == name).limit(1)
    in_settings = sa.select(queues.c.queue).where(queues.c.queue == name)
    return (
        conn.execute(in_jobs).first() is not None or conn.execute(in_settings).first() is not None
    )


def _all_known(conn: sa.Connection) -> set[str]:
    found = set(conn.execute(sa.select(jobs.c.queue).distinct().limit(50)).scalars())
    return found | set(conn.execute(sa.select(queues.c.queue)).scalars())
