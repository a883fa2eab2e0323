"""The parts of an attempt: a claimed attempt on its way through a worker, its timeout and
the async execution limit."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from opentelemetry.trace import Span

from otelkit.errors import InvalidOptionError
from otelkit.jobs._cancel import CancelProbe, absorb_own_cancel
from otelkit.jobs._claim import Transition
from otelkit.jobs._definition import Definition
from otelkit.jobs._lease import Lease
from otelkit.jobs._model import Job

__all__ = [
    "Attempt",
    "check_timeout",
    "limited",
    "run_awaitable",
    "timeout_error",
    "trace_id_hex",
]


@dataclass(eq=False)
class Attempt:
    """One claimed attempt on its way through a worker."""

    job: Job
    claimed_from: str
    definition: Definition | None
    span: Span
    lease: Lease | None
    owner: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    errors_changed: bool = False
    started: bool = False
    began: float = 0.0
    duration: float | None = None
    transition: Transition | None = None
    error: str | None = None
    applied: bool = False
    settled: bool = False
    abandoned: bool = False
    """Timed out: the worker recorded the outcome; what the function does later is discarded."""
    expired_after: float | None = None
    """Set when the attempt's timeout (these seconds) cancelled an async function."""
    probe: CancelProbe | None = None
    """Answers ``job.cancel_requested()``; ``probe.seen``: the attempt learnt it."""
    cancelled: bool = False
    """The fence rejected the result because the job was cancelled while this attempt held
    it (not because another worker took it over)."""


def timeout_error(attempt: Attempt, seconds: float) -> TimeoutError:
    """The error recorded for an attempt abandoned after ``seconds``."""
    job = attempt.job
    return TimeoutError(
        f"job {job.name} (id {job.id}) attempt {job.attempt} of {job.max_attempts} ran longer "
        f"than its timeout of {seconds:g} s and was abandoned"
    )


async def limited(attempt: Attempt, awaitable: Any, seconds: float) -> Any:
    """Await ``awaitable`` in this task; past ``seconds``, cancel it and raise
    ``TimeoutError`` (Python 3.10 has no ``asyncio.timeout``)."""
    task = asyncio.current_task()
    assert task is not None
    fired = False

    def expire() -> None:
        nonlocal fired
        fired = True
        task.cancel()

    handle = asyncio.get_running_loop().call_later(seconds, expire)
    try:
        return await awaitable
    except asyncio.CancelledError:
        if not fired:
            raise
        absorb_own_cancel(task)
        attempt.expired_after = seconds
        raise timeout_error(attempt, seconds) from None
    finally:
        handle.cancel()


async def run_awaitable(value: Any) -> Any:
    return await value


def trace_id_hex(span: Span) -> str:
    context = span.get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else ""


def check_timeout(value: object, *, option: str) -> float | None:
    """``None`` or a finite number of seconds > 0 (a ``timedelta`` too); else ``InvalidOptionError``."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidOptionError(
            f"{option} must be a number of seconds > 0 (or a timedelta), or None, got {value!r}"
        )
    return float(value)
