"""The values users see: job states, a job snapshot, recorded errors and backoff policy."""

from __future__ import annotations

import enum
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from otelkit.errors import InvalidOptionError, OtelkitError

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "Backoff",
    "FollowupScope",
    "Job",
    "JobError",
    "JobNotFoundError",
    "JobNotReadyError",
    "JobState",
    "LeaseLostError",
    "SchemaMissingError",
    "check_json",
    "from_epoch",
    "job_from_mapping",
    "job_from_row",
    "trace_id_of",
]


class JobNotFoundError(OtelkitError, LookupError):
    """No job has the given id."""


class JobNotReadyError(OtelkitError, RuntimeError):
    """The job exists but cannot run now (another worker holds it, or it is final)."""


class LeaseLostError(OtelkitError, RuntimeError):
    """The attempt ended after its lease was lost; its result was rejected and recorded."""


class SchemaMissingError(OtelkitError, ValueError):
    """The store's database has no job tables yet: call ``store.create_schema()`` once."""


class JobState(str, enum.Enum):
    """Where a job is in its life.

    ``queued → running → succeeded``; a failed attempt goes ``running → retrying → running``
    (after a backoff delay) until ``max_attempts`` is reached, then ``running → failed``.
    ``cancelled`` is set by an operator. ``succeeded``, ``failed`` and ``cancelled`` are final
    (workers delete final jobs after their ``retention``).
    """

    QUEUED = "queued"
    """Enqueued and waiting for its first attempt (``run_after`` may lie ahead). Leaves for
    ``running`` when a worker (or ``fn.run``) claims it, or ``cancelled`` (``store.cancel``)."""
    RUNNING = "running"
    """An attempt holds the job under a lease. Leaves for ``succeeded`` (the function
    returned), ``retrying`` (it raised or timed out with attempts left, or was interrupted),
    ``failed`` (it raised on the last attempt, the last attempt's lease expired, or no
    function has its name), ``running`` again (its lease expired and another worker took it
    over: the attempt is counted) or ``cancelled`` (``store.cancel``; the attempt's result
    is then discarded)."""
    RETRYING = "retrying"
    """A failed or released attempt is behind it; waiting for ``run_after`` (the backoff
    delay). Leaves for ``running`` when claimed, or ``cancelled`` (``store.cancel``)."""
    SUCCEEDED = "succeeded"
    """Final: an attempt returned and its result was stored. Nothing leads out of it."""
    FAILED = "failed"
    """Final: the last allowed attempt raised, timed out or lost its lease, or no function
    has its name; ``errors`` holds each attempt's error. ``store.retry`` moves it back to
    ``queued`` with fresh attempts."""
    CANCELLED = "cancelled"
    """Final: an operator cancelled it (``store.cancel``, ``otelkit jobs cancel``) before it
    finished. ``store.retry`` moves it back to ``queued`` with fresh attempts."""

    @property
    def is_final(self) -> bool:
        """True for ``succeeded``, ``failed`` and ``cancelled``."""
        return self in _FINAL


_FINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


def check_json(value: Any, *, option: str) -> str:
    """Serialise ``value`` to JSON or raise ``TypeError`` naming ``option``."""
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{option} must be JSON-serialisable (dict, list, str, int, float, bool, None; "
            f"no NaN or infinity): {exc}"
        ) from None


def trace_id_of(carrier: Any) -> str | None:
    """The trace id in a stored W3C carrier (``{"traceparent": "00-<trace>-<span>-01"}``)."""
    if not isinstance(carrier, dict):
        return None
    parts = str(carrier.get("traceparent", "")).split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
        return parts[1]
    return None


def from_epoch(value: float | None) -> datetime | None:
    """Database epoch seconds to an aware UTC datetime."""
    return None if value is None else datetime.fromtimestamp(value, tz=timezone.utc)


@dataclass(frozen=True)
class JobError:
    """One failed attempt: what was raised, and where."""

    attempt: int
    type: str
    message: str
    traceback: str
    at: float
    """Worker wall-clock time (epoch seconds) when the attempt failed."""
    trace_id: str = ""
    """The trace of the attempt's ``process`` span (32 hex digits; empty if not sampled)."""

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        stored: dict[str, Any] = {
            "attempt": self.attempt,
            "type": self.type,
            "message": self.message,
            "traceback": self.traceback,
            "at": self.at,
        }
        if self.trace_id:
            stored["trace_id"] = self.trace_id
        return stored

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> JobError:
        """Read the stored form back."""
        return cls(
            attempt=int(item.get("attempt", 0)),
            type=str(item.get("type", "")),
            message=str(item.get("message", "")),
            traceback=str(item.get("traceback", "")),
            at=float(item.get("at", 0.0)),
            trace_id=str(item.get("trace_id", "")),
        )


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter between attempts.

    The delay after attempt ``n`` is ``min(cap, base * factor ** (n - 1))`` reduced by a
    random fraction of at most ``jitter``. With ``factor * (1 - jitter) >= 1`` (the
    default 2 × 0.5) delays never shrink from one attempt to the next.
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 600.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not self.base > 0:
            raise ValueError(f"Backoff.base must be > 0 seconds, got {self.base!r}")
        if not self.factor >= 1:
            raise ValueError(f"Backoff.factor must be >= 1, got {self.factor!r}")
        if not self.cap >= self.base:
            raise ValueError(f"Backoff.cap must be >= base, got {self.cap!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"Backoff.jitter must be within [0, 1], got {self.jitter!r}")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        raw = min(self.cap, self.base * self.factor ** max(0, attempt - 1))
        return raw * (1.0 - self.jitter * rng.random())


@dataclass(eq=False)
class FollowupScope:
    """The follow-ups one running attempt records with :meth:`Job.then`. Closed once the
    attempt's outcome is decided: a follow-up recorded later could never be committed.

    ``prepare(fn, data, run_after, priority)`` checks one follow-up and returns what is
    recorded; the attempt that opens the scope gives it (the model knows no job functions).
    """

    prepare: Callable[[Any, Any, Any, int], Any]
    items: list[Any] = field(default_factory=list)
    open: bool = True


@dataclass(frozen=True)
class Job:
    """A snapshot of one job row, handed to the job function and returned by queries.

    A job function may record result data with :meth:`set_result` (or by returning a
    value); it is stored when the attempt succeeds.
    """

    id: str
    name: str
    queue: str
    state: JobState
    data: Any
    attempt: int
    max_attempts: int
    priority: int = 0
    run_after: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    lease_owner: str | None = None
    lease_expires: datetime | None = None
    errors: tuple[JobError, ...] = ()
    result: Any = None
    trace_id: str | None = None
    """The trace of the ``send`` span that enqueued the job (32 hex digits), if recorded."""
    limit_key: str | None = None
    """The key its queue's per-key limits and fair claims group it by (None: no key)."""
    _result_box: list[Any] = field(default_factory=list, repr=False, compare=False)
    _cancel_probe: Callable[[], bool] | None = field(default=None, repr=False, compare=False)
    _then: FollowupScope | None = field(default=None, repr=False, compare=False)
    """Set on the snapshot a running attempt hands its function (None on any other)."""

    def set_result(self, value: Any) -> None:
        """Record result data (JSON-serialisable); stored if this attempt succeeds."""
        check_json(value, option="result")
        self._result_box[:] = [value]

    def cancel_requested(self) -> bool:
        """Whether this attempt should stop: the job was cancelled (``store.cancel``) or
        is no longer this attempt's. Cheap to call in a loop (the database is asked at
        most every quarter second). An async job function is cancelled instead
        (``asyncio.CancelledError``); a sync one checks this and returns."""
        return self._cancel_probe is not None and self._cancel_probe()

    def then(self, fn: Any, data: Any = None, *, run_after: Any = None, priority: int = 0) -> None:
        """Enqueue a job of ``fn`` (a job function of the same store) if, and only if, this
        attempt succeeds: it is inserted in the transaction that records the success,
        fenced by this attempt's lease, so a failed or lost attempt adds nothing. Its
        ``send`` span is a child of this attempt's span.

        Outside a running attempt (a snapshot from ``store.get``, or after the function
        returned) it raises :class:`~otelkit.errors.InvalidOptionError` and records nothing.
        """
        scope = self._then
        if scope is None or not scope.open:
            target = getattr(fn, "name", "fn")
            raise InvalidOptionError(
                f"job.then() can only be called inside a running job attempt, on the job its "
                f"function was given and before it returns (job {self.id!r} is not one); to "
                f"enqueue a job now, call {target}.enqueue(...)"
            )
        scope.items.append(scope.prepare(fn, data, run_after, priority))

    @property
    def followups(self) -> tuple[Any, ...]:
        """The follow-ups recorded with :meth:`then` on this snapshot."""
        return () if self._then is None else tuple(self._then.items)

    @property
    def recorded_result(self) -> tuple[bool, Any]:
        """``(True, value)`` if :meth:`set_result` was called on this snapshot."""
        return (True, self._result_box[0]) if self._result_box else (False, None)


def job_from_row(row: sa.Row[Any]) -> Job:
    """A :class:`Job` snapshot of a row of ``otelkit_jobs``."""
    return job_from_mapping(row._mapping)


def job_from_mapping(m: Mapping[Any, Any]) -> Job:
    """A :class:`Job` snapshot of a row of ``otelkit_jobs`` given as a mapping."""
    return Job(
        id=m["id"],
        name=m["name"],
        queue=m["queue"],
        state=JobState(m["status"]),
        data=m["data"],
        attempt=m["attempt"],
        max_attempts=m["max_attempts"],
        priority=m["priority"],
        run_after=from_epoch(m["run_after"]),
        created_at=from_epoch(m["created_at"]),
        updated_at=from_epoch(m["updated_at"]),
        finished_at=from_epoch(m["finished_at"]),
        lease_owner=m["lease_owner"],
        lease_expires=from_epoch(m["lease_expires"]),
        errors=tuple(JobError.from_json(e) for e in (m["errors"] or ())),
        result=m["result"],
        limit_key=m.get("limit_key"),
        trace_id=trace_id_of(m["trace_context"]),
    )
