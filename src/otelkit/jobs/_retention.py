"""Retention: running workers delete finished jobs (and their history) past an age.

At most one pruner runs at a time across all workers and machines: it holds the ``prune``
row of ``otelkit_job_locks`` under a lease on the database clock (taken by one atomic
upsert, so two workers can never both win; a pruner that died frees it when the lease
ends). It deletes in bounded batches, each its own short transaction, oldest first; only
``succeeded``, ``failed`` and ``cancelled`` jobs are ever touched.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import sqlalchemy as sa
from opentelemetry.instrumentation.utils import suppress_instrumentation

from otelkit.errors import InvalidOptionError, OptionTypeError
from otelkit.jobs._schema import db_now, dialect_insert, history, jobs, locks
from otelkit.jobs._telemetry import JobTelemetry

__all__ = ["DEFAULT_RETENTION", "Pruner", "check_retention"]

DEFAULT_RETENTION = timedelta(days=7)
_LOCK = "prune"
_LOCK_LEASE = 120.0  # seconds: longer than any bounded pruning run
_FINAL = ("succeeded", "failed", "cancelled")
_c = jobs.c


def check_retention(where: str, value: object) -> float | None:
    """``None`` (pruning off) or a positive ``timedelta``; its seconds."""
    if value is None:
        return None
    if not isinstance(value, timedelta):
        raise OptionTypeError(
            f"{where}: retention must be a timedelta (e.g. timedelta(days=7)) or None to keep "
            f"finished jobs forever, got {type(value).__name__}"
        )
    if value.total_seconds() <= 0:
        raise InvalidOptionError(f"{where}: retention must be longer than 0, got {value!r}")
    return value.total_seconds()


class Pruner:
    """Deletes finished jobs older than ``age`` seconds, ``batch`` at a time."""

    def __init__(
        self,
        writer: sa.Engine,
        telemetry: JobTelemetry,
        *,
        owner: str,
        age: float,
        batch: int = 500,
        max_batches: int = 10,
    ) -> None:
        self._writer = writer
        self._telemetry = telemetry
        self._owner = owner
        self._age = age
        self.batch = batch
        self._max_batches = max_batches

    def run(self) -> tuple[int, bool]:
        """One bounded run if no other pruner holds the lock: (jobs deleted, more left)."""
        with suppress_instrumentation():
            if not self._acquire():
                return 0, False
            try:
                total = 0
                for _ in range(self._max_batches):
                    deleted = self.prune_batch()
                    total += deleted
                    if deleted < self.batch:
                        return total, False
                return total, True
            finally:
                self._release()

    def prune_batch(self) -> int:
        """Delete one batch (one transaction); how many jobs."""
        pick = (
            sa.select(_c.id)
            .where(_c.status.in_(_FINAL), _c.updated_at < db_now() - self._age)
            .order_by(_c.updated_at)
            .limit(self.batch)
        )
        with self._writer.begin() as conn:
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return 0
            conn.execute(sa.delete(history).where(history.c.job_id.in_(ids)))
            gone = conn.execute(
                sa.delete(jobs)
                .where(_c.id.in_(ids), _c.status.in_(_FINAL))
                .returning(_c.queue, _c.status)
            ).all()
        self._telemetry.pruned(Counter((row.queue, row.status) for row in gone))
        return len(gone)

    def _acquire(self) -> bool:
        stmt = dialect_insert(self._writer.dialect.name, locks).values(
            name=_LOCK, owner=self._owner, expires=db_now() + _LOCK_LEASE
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[locks.c.name],
            set_={"owner": stmt.excluded.owner, "expires": stmt.excluded.expires},
            where=sa.or_(locks.c.expires < db_now(), locks.c.owner == self._owner),
        )
        with self._writer.begin() as conn:
            return conn.execute(stmt.returning(locks.c.name)).first() is not None

    def _release(self) -> None:
        stmt = (
            sa.update(locks)
            .where(locks.c.name == _LOCK, locks.c.owner == self._owner)
            .values(expires=0.0)
        )
        with self._writer.begin() as conn:
            conn.execute(stmt)
