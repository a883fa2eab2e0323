"""The store's engine room: what job functions, workers and the CLI use of a store.

:class:`Backend` owns the write engines, the lease keeper, the runner of attempts, the
producer of jobs, the worker cycle (commit finished attempts, claim more, in one
transaction), schedules, retention and the in-process wake-up of idle workers.
``JobStore`` is the public face; its collaborators talk to ``store._backend`` instead of
reaching into the store's private methods.
"""

from __future__ import annotations

import contextlib
import functools
import random
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from opentelemetry.instrumentation.utils import suppress_instrumentation

from otelkit._clock import Clock
from otelkit.errors import InvalidOptionError
from otelkit.jobs import _claim, _flow
from otelkit.jobs._attempt import Attempt
from otelkit.jobs._cancel import still_ours
from otelkit.jobs._definition import Definition
from otelkit.jobs._engine import WRITE
from otelkit.jobs._execute import Runner
from otelkit.jobs._followup import Followups
from otelkit.jobs._lease import LeaseKeeper
from otelkit.jobs._limits import Limits
from otelkit.jobs._model import Job, JobState, job_from_row
from otelkit.jobs._produce import Producer
from otelkit.jobs._retention import Pruner
from otelkit.jobs._runnow import RunNow
from otelkit.jobs._scheduler import run_schedules
from otelkit.jobs._schema import has_schema, missing_schema
from otelkit.jobs._telemetry import Counts, JobTelemetry

__all__ = ["Backend"]


class Backend:
    """A store's internals, shared with its job functions, workers and the CLI."""

    def __init__(
        self,
        engine: sa.Engine,
        telemetry: JobTelemetry,
        clock: Clock,
        *,
        rng: random.Random,
        max_errors: int,
        get: Callable[[str], Job | None],
    ) -> None:
        self.engine = engine
        self.writer = engine.execution_options(**{WRITE: True})
        """Write transactions (SQLite: ``BEGIN IMMEDIATE``)."""
        self.autocommit: sa.Engine | None = None
        if engine.dialect.name == "postgresql":
            self.autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.telemetry = telemetry
        self.clock = clock
        self.registry: dict[str, Definition] = {}
        self.keeper = LeaseKeeper(self.renew, clock)
        self.runner = Runner(
            registry=self.registry,
            telemetry=telemetry,
            keeper=self.keeper,
            clock=clock,
            rng=rng,
            max_errors=max_errors,
            still_ours=functools.partial(still_ours, engine),
        )
        self.producer = Producer(
            self.writer, telemetry, clock, get=get, wake=self.wake, autocommit=self.autocommit
        )
        self._followups = Followups(telemetry, clock)
        self._run = RunNow(
            self.writer,
            self.runner,
            get_job=get,
            cycle=self.complete,
            reject_late=lambda owner, attempt: self.cycle(owner, [], late=[attempt]),
        )
        self._wakers: set[weakref.WeakMethod[Callable[[str, float], None]]] = set()
        self._schema_seen = False
        self.declared: dict[str, Limits] = {}
        """Limits declared in code, by queue (a worker's start writes them)."""
        self._limited: frozenset[str] = frozenset()
        """Queues the last claim found limited (which claim to try first: a hint only)."""

    # -- registration and schema -------------------------------------------------------------
    def register(self, definition: Definition) -> None:
        """Add a job function (a name may not be taken by another function)."""
        existing = self.registry.get(definition.name)
        if existing is not None and existing.fn is not definition.fn:
            raise ValueError(
                f"a job named {definition.name!r} is already registered "
                f"({existing.fn.__module__}.{existing.fn.__qualname__}); pass name=... to "
                "choose another"
            )
        if definition.limits is not None:
            self.declare(f"store.job({definition.name!r})", definition.queue, definition.limits)
        self.registry[definition.name] = definition

    def declare(self, where: str, queue: str, limits: Limits) -> None:
        """Record the limits code declares for ``queue`` (one declaration per queue)."""
        existing = self.declared.get(queue)
        if existing is not None and existing != limits:
            raise InvalidOptionError(
                f"{where}: queue {queue!r} already has limits declared ({existing.describe()}), "
                f"not {limits.describe()}; limits belong to a queue: declare them once "
                "(store.declare_limits(queue, ...)) or give the functions the same limits"
            )
        self.declared[queue] = limits

    def sync_limits(self, queues: Sequence[str]) -> None:
        """Write the declared limits of ``queues`` (a worker's start): declared ones are
        stored, code limits no longer declared are removed; an operator's stay."""
        with suppress_instrumentation(), self.writer.begin() as conn:
            for queue in queues:
                limits = self.declared.get(queue)
                if limits is not None and not limits.empty:
                    _flow.write_limits(conn, queue, limits, set_by=_flow.CODE)
                else:
                    _flow.clear_code_limits(conn, queue)

    def schema_created(self) -> None:
        self._schema_seen = True

    def check_schema(self) -> None:
        """Raise :class:`SchemaMissingError` if the job tables do not exist.

        A database that cannot be reached is not reported here: the worker's loop backs off
        and reconnects (the check runs again at the next ``run``).
        """
        if self._schema_seen:
            return
        try:
            with suppress_instrumentation():
                present = has_schema(self.engine)
        except sa.exc.SQLAlchemyError:
            return
        if not present:
            raise missing_schema(self.engine)
        self._schema_seen = True

    # -- waking this process's workers ---------------------------------------------------------
    def add_waker(self, wake: Callable[[str, float], None]) -> None:
        """Call ``wake(queue, delay)`` (a worker's bound method, held weakly) on :meth:`wake`."""
        self._wakers.add(weakref.WeakMethod(wake))

    def remove_waker(self, wake: Callable[[str, float], None]) -> None:
        self._wakers.discard(weakref.WeakMethod(wake))  # equal to the one added

    def wake(self, queue: str, delay: float) -> None:
        """Wake this process's idle workers of ``queue`` (an in-process event: no SQL)."""
        for ref in list(self._wakers):
            wake = ref()
            if wake is not None:
                wake(queue, delay)

    # -- one attempt now (fn.run) --------------------------------------------------------------
    def run_now(self, definition: Definition, job_id: str) -> JobState:
        return self._run.run(definition, job_id)

    async def run_now_async(self, definition: Definition, job_id: str) -> JobState:
        return await self._run.run_async(definition, job_id)

    # -- schedules and maintenance -------------------------------------------------------------
    def run_schedules(
        self, definitions: Sequence[Definition], *, now: float | None = None
    ) -> tuple[list[str], float | None]:
        """Enqueue the due periods of ``definitions``; (ids, seconds until the next)."""
        if not definitions:
            return [], None
        enqueued, next_in = run_schedules(self.writer, self.telemetry, definitions, now=now)
        for queue in {q for q, _ in enqueued}:
            self.wake(queue, 0.0)
        return [job_id for _, job_id in enqueued], next_in

    def pruner(self, owner: str, age: float) -> Pruner:
        """A retention pruner for a worker."""
        return Pruner(self.writer, self.telemetry, owner=owner, age=age)

    def renew(self, owner: str, leases: Sequence[tuple[str, int]]) -> set[str]:
        with suppress_instrumentation(), self.writer.begin() as conn:
            return _claim.renew(conn, owner=owner, leases=leases)

    def fail_exhausted(self, limit: int = 100) -> int:
        """Fail running jobs whose last allowed attempt's lease expired; how many."""
        failed = 0
        if self.autocommit is not None:  # PostgreSQL: one statement when there is none
            with suppress_instrumentation(), self.autocommit.connect() as conn:
                if not _claim.exhausted_expired(conn, limit=1, lock=False):
                    return 0
        with suppress_instrumentation(), self.writer.begin() as conn:
            for row in _claim.exhausted_expired(conn, limit=limit):
                job = job_from_row(row)
                transition = self.runner.lease_expired(job)
                if _claim.finish(conn, owner=row.lease_owner, transitions=[transition]):
                    failed += 1
        return failed

    # -- the worker cycle ----------------------------------------------------------------------
    def complete(self, owner: str, done: Sequence[Attempt]) -> list[Attempt]:
        """Apply finished attempts (fenced) in one transaction and settle them."""
        return self.cycle(owner, done)[0]

    def cycle(
        self,
        owner: str,
        done: Sequence[Attempt],
        *,
        queues: Sequence[str] = (),
        limit: int = 0,
        takeover: bool = False,
        late: Sequence[Attempt] = (),
    ) -> tuple[list[Attempt], float | None, bool]:
        """Apply finished attempts and claim up to ``limit`` more, in one transaction.

        ``takeover`` also claims running jobs whose lease expired; ``late``: results of
        attempts that timed out, offered to the fence (which rejects them) and recorded as
        lost. Returns the new attempts, when fewer than ``limit`` were ready the seconds
        until the earliest waiting job is due (None: none waits), and whether a flow limit
        held back ready jobs. Spans of finished attempts are closed (and new ones opened)
        only after the commit.
        """
        applied: set[str] = set()
        only_claims = not done and not late
        with suppress_instrumentation(), self._transaction(only_claims=only_claims) as c:
            if late:
                _reject_late(c, owner, late)
            transitions = [a.transition for a in done if a.transition is not None]
            if transitions:
                applied = _claim.finish(c, owner=owner, transitions=transitions)
                _mark_cancelled(c, [a for a in done if a.job.id not in applied])
                for reason, lost in _lost_by_reason(done, applied).items():
                    _claim.record_lost(c, owner=owner, lost=lost, reason=reason)
                self._followups.insert(c, [a for a in done if a.job.id in applied])
            rows, next_in, flow = self._claim_rows(c, owner, queues, limit, takeover)
        counts: Counts = Counter()
        for attempt in done:
            self.runner.settle(attempt, applied=attempt.job.id in applied, counts=counts)
        attempts = [self.runner.begin(row._mapping, owner, counts) for row in rows]
        self.telemetry.add_counts(counts)
        for attempt in late:
            self.telemetry.late_rejected(attempt.job.name, attempt.job.queue)
        if flow is not None:
            self._report_flow(flow, rows, attempts)
        return attempts, next_in, bool(flow is not None and flow.held)

    def _claim_rows(
        self,
        conn: sa.Connection,
        owner: str,
        queues: Sequence[str],
        limit: int,
        takeover: bool,
    ) -> tuple[list[Any], float | None, _flow.FlowClaim | None]:
        """Expired leases (``takeover``), then the plain claim of unlimited queues and the
        limited claim (:mod:`otelkit.jobs._flow`): the database decides which queue is
        limited; the queues found limited last time only choose which claim goes first."""
        rows: list[Any] = []
        if not limit:
            return rows, None, None
        if takeover:
            rows = _claim.claim_expired(conn, owner=owner, queues=queues, limit=limit)
        mine = frozenset(queues)
        plain_first = bool(mine - self._limited)
        if plain_first and limit > len(rows):
            rows += _claim.claim_batch(conn, owner=owner, queues=queues, limit=limit - len(rows))
        if len(rows) >= limit:
            return rows, None, None
        flow = _flow.claim(conn, owner=owner, queues_=queues, limit=limit - len(rows))
        rows += flow.rows
        self._limited = (self._limited - mine) | flow.limited
        unlimited = mine - flow.limited
        if not plain_first and unlimited and limit > len(rows):  # a limit was removed
            rows += _claim.claim_batch(conn, owner=owner, queues=queues, limit=limit - len(rows))
        next_in = None
        if len(rows) < limit:
            if unlimited:
                next_in = _claim.next_due(conn, queues=queues)
            if flow.wake_in is not None:
                next_in = flow.wake_in if next_in is None else min(next_in, flow.wake_in)
        return rows, next_in, flow

    def _report_flow(
        self, flow: _flow.FlowClaim, rows: Sequence[Any], attempts: Sequence[Attempt]
    ) -> None:
        """Count held claims; mark attempts that start after being held by a limit."""
        for queue, reason in flow.held.items():
            self.telemetry.throttled(queue, reason)
        if not flow.holds:
            return
        for row, attempt in zip(rows, attempts, strict=True):
            hold = flow.holds.get(row.queue)
            if hold is not None and row.run_after <= hold.throttled_at:
                self.telemetry.held(attempt.span, hold.reason, row.updated_at - row.run_after)

    def _transaction(
        self, *, only_claims: bool
    ) -> contextlib.AbstractContextManager[sa.Connection]:
        """A write transaction; on PostgreSQL, claims alone run in autocommit mode instead
        (each claim is one atomic statement: no BEGIN/COMMIT round trips before a job starts)."""
        if only_claims and self.autocommit is not None:
            return self.autocommit.connect()
        return self.writer.begin()

    def close(self) -> None:
        self.keeper.close()
        self.producer.close()


def _reject_late(conn: sa.Connection, owner: str, late: Sequence[Attempt]) -> None:
    stale = [a.transition for a in late if a.transition is not None]
    if not stale:
        return
    late_ok = _claim.finish(conn, owner=owner, transitions=stale, recheck=False)
    rejected = [(a.job.id, a.job.attempt) for a in late if a.job.id not in late_ok]
    _claim.record_lost(conn, owner=owner, lost=rejected, reason="timed out: late result rejected")


def _mark_cancelled(conn: sa.Connection, rejected: Sequence[Attempt]) -> None:
    """Tell a cancel from a lost lease by the row itself: the function may never have asked
    ``job.cancel_requested()``, and its probe's "no longer ours" could also be a takeover."""
    if rejected:
        cancelled = _claim.cancelled_during(conn, [(a.job.id, a.job.attempt) for a in rejected])
        for a in rejected:
            a.cancelled = a.job.id in cancelled


def _lost_by_reason(done: Sequence[Attempt], applied: set[str]) -> dict[str, list[tuple[str, int]]]:
    """The attempts whose result the fence rejected, by the reason recorded in the history."""
    lost: dict[str, list[tuple[str, int]]] = {}
    for a in done:
        if a.job.id not in applied:
            reason = _claim.CANCELLED_REASON if a.cancelled else "lease lost: result rejected"
            lost.setdefault(reason, []).append((a.job.id, a.job.attempt))
    return lost
