"""Enqueue: validate everything first, then one INSERT inside a PRODUCER span."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from otelkit.jobs._execute import Definition
from otelkit.jobs._model import JobState, check_json
from otelkit.jobs._schema import db_now, jobs, require_schema
from otelkit.jobs._telemetry import JobTelemetry, error_type

__all__ = ["enqueue"]


def enqueue(
    writer: sa.Engine,
    telemetry: JobTelemetry,
    definition: Definition,
    items: Sequence[tuple[Any, str | None]],
    *,
    run_after: datetime | timedelta | float | None,
    priority: int,
) -> list[str]:
    """Insert one job per ``(data, id)`` item in one transaction; their ids.

    Bad input raises before anything is written; a duplicate id rolls the whole batch back.
    """
    at, delay = _run_after(run_after)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int, got {priority!r}")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for data, job_id in items:
        check_json(data, option="data")
        if job_id is None:
            job_id = uuid.uuid4().hex
        elif not isinstance(job_id, str) or not job_id or len(job_id) > 200:
            raise ValueError(f"id must be a non-empty str of <= 200 characters, got {job_id!r}")
        if job_id in seen:
            raise ValueError(f"id {job_id!r} appears twice in one enqueue")
        seen.add(job_id)
        rows.append({"id": job_id, "data": data})
    if not rows:
        return []
    d = definition
    tel = telemetry
    with tel.send_span(
        name=d.name, queue=d.queue, max_attempts=d.max_attempts, count=len(rows)
    ) as (span, carrier):
        if len(rows) == 1:
            span.set_attribute("messaging.message.id", rows[0]["id"])
        now = db_now()
        stmt = sa.insert(jobs).values(
            name=d.name,
            queue=d.queue,
            status=JobState.QUEUED.value,
            priority=priority,
            attempt=0,
            max_attempts=d.max_attempts,
            lease_seconds=d.lease,
            run_after=sa.func.coalesce(sa.literal(at, sa.Double), now + delay),
            created_at=now,
            updated_at=now,
            trace_context=carrier,
            errors=[],
        )
        try:
            with require_schema(writer), writer.begin() as conn:
                conn.execute(stmt, rows[0] if len(rows) == 1 else rows)  # one: no executemany
        except sa.exc.IntegrityError as exc:
            tel.sent(span=span, name=d.name, queue=d.queue, count=len(rows), error="duplicate_id")
            raise ValueError(
                f"a job with one of the ids {sorted(seen)[:5]} already exists; nothing was enqueued"
            ) from exc
        except Exception as exc:
            tel.sent(span=span, name=d.name, queue=d.queue, count=len(rows), error=error_type(exc))
            raise
        tel.sent(span=span, name=d.name, queue=d.queue, count=len(rows), error=None)
    return [row["id"] for row in rows]


def _run_after(value: datetime | timedelta | float | None) -> tuple[float | None, float]:
    """(absolute epoch seconds or None, delay after the database's now)."""
    if value is None:
        return None, 0.0
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("run_after: a datetime must be timezone-aware (e.g. UTC)")
        return value.timestamp(), 0.0
    if isinstance(value, timedelta):
        return None, value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return None, float(value)
    raise TypeError(
        "run_after must be an aware datetime, a timedelta or (finite) seconds from now, "
        f"got {type(value).__name__}"
    )
