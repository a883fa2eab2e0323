"""Cooperative cancellation of a running attempt.

``store.cancel(job_id)`` moves a running job to ``cancelled`` at once (a history row
``running → cancelled``); the attempt learns it through a probe that asks the database
whether the row is still this attempt's: a sync function calls ``job.cancel_requested()``,
an async one is cancelled (``asyncio.CancelledError``) by a watcher. What the attempt then
returns is rejected by the fence and recorded as ``lost`` with the reason ``cancelled``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from opentelemetry.instrumentation.utils import suppress_instrumentation

from otelkit._clock import Clock
from otelkit._errors import report_internal_error
from otelkit.errors import OtelkitError
from otelkit.jobs._schema import RUNNING_SQL, jobs

__all__ = ["CancelProbe", "JobCancelledError", "absorb_own_cancel", "cancellable", "still_ours"]

_EVERY = 0.25  # seconds between two questions to the database from one attempt
_WATCH = 0.5  # seconds between checks of an async attempt

Check = Callable[[str, int, str], bool]


class JobCancelledError(OtelkitError, RuntimeError):
    """Raised inside the worker when an async attempt stopped because its job was
    cancelled (the function itself sees ``asyncio.CancelledError``)."""


def still_ours(engine: sa.Engine, job_id: str, attempt: int, owner: str) -> bool:
    """Whether the row is still running under this owner and attempt."""
    c = jobs.c
    stmt = sa.select(c.id).where(
        c.id == job_id, c.attempt == attempt, c.lease_owner == owner, sa.text(RUNNING_SQL)
    )
    with suppress_instrumentation(), engine.connect() as conn:
        return conn.execute(stmt).first() is not None


class CancelProbe:
    """``job.cancel_requested()`` of one attempt: asks at most every quarter second; once
    the answer is yes it stays yes. A database error answers no (and is reported)."""

    def __init__(self, check: Check, clock: Clock, job_id: str, attempt: int, owner: str):
        self._check = check
        self._clock = clock
        self._key = (job_id, attempt, owner)
        self._asked = -float("inf")
        self.seen = False

    def __call__(self) -> bool:
        if self.seen:
            return True
        now = self._clock.monotonic()
        if now - self._asked < _EVERY:
            return False
        self._asked = now
        try:
            self.seen = not self._check(*self._key)
        except Exception as exc:  # noqa: BLE001 - a cancellation check never fails the job
            report_internal_error("jobs.cancel_check", exc)
        return self.seen


def absorb_own_cancel(task: asyncio.Task[Any]) -> None:
    """A ``CancelledError`` this task got from our own ``task.cancel()`` (a timeout, a
    cancel request) is handled by the caller: on 3.11+ tell the task so."""
    uncancel = getattr(task, "uncancel", None)
    if uncancel is not None:
        uncancel()


async def cancellable(awaitable: Any, probe: CancelProbe) -> Any:
    """Await ``awaitable`` in this task; when ``probe`` says the job was cancelled, cancel
    it and raise :class:`JobCancelledError`."""
    task = asyncio.current_task()
    assert task is not None
    fired = False

    async def watch() -> None:
        nonlocal fired
        while True:
            await asyncio.sleep(_WATCH)
            if await asyncio.to_thread(probe):
                fired = True
                task.cancel()
                return

    watcher = asyncio.ensure_future(watch())
    try:
        return await awaitable
    except asyncio.CancelledError:
        if not fired:
            raise
        absorb_own_cancel(task)
        raise JobCancelledError("the job was cancelled while it ran") from None
    finally:
        watcher.cancel()
