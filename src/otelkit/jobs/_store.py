"""JobStore: the jobs table, the decorator that registers job functions, and workers."""

from __future__ import annotations

import dataclasses
import os
import random
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, overload

import sqlalchemy as sa
from opentelemetry import metrics, trace

from otelkit._clock import REAL_CLOCK, Clock
from otelkit._errors import report_internal_error
from otelkit._validate import check_str
from otelkit.jobs import _admin, _flow
from otelkit.jobs._admin import JobTransition
from otelkit.jobs._backend import Backend
from otelkit.jobs._decorator import JobFunction, define
from otelkit.jobs._definition import Definition
from otelkit.jobs._engine import make_engine
from otelkit.jobs._limits import Limits, QueueLimits, WaitReason, check_limits
from otelkit.jobs._model import Backoff, Job, JobState
from otelkit.jobs._queues import check_known, paused_queues, set_paused
from otelkit.jobs._retention import DEFAULT_RETENTION
from otelkit.jobs._schedule import Schedule, make_schedule
from otelkit.jobs._scheduler import JobSchedule, list_schedules
from otelkit.jobs._schema import (
    create_schema,
    db_now,
    jobs,
    require_schema,
)
from otelkit.jobs._telemetry import GaugeSnapshot, JobTelemetry, TraceMode

if TYPE_CHECKING:
    from otelkit.jobs._worker import Worker

__all__ = ["JobStore", "JobTransition"]

R = TypeVar("R")
_c = jobs.c
_GAUGE_CACHE_SECONDS = 1.0


class JobStore:
    """Jobs in a SQL database (a SQLite file, or PostgreSQL for many workers and machines).

    ``url_or_engine`` is a SQLAlchemy URL (``postgresql://`` uses psycopg 3), a SQLite file
    path, or an Engine. Register functions with :meth:`job`, enqueue with
    ``fn.enqueue(...)``, and run them with :meth:`worker`. Spans and metrics go to the
    given (or global) providers; ``trace_mode="parent"`` makes each attempt's span a child
    of the enqueue span instead of linking to it.
    """

    def __init__(
        self,
        url_or_engine: str | os.PathLike[str] | sa.Engine,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        trace_mode: TraceMode = "link",
        max_errors: int = 25,
        gauges: bool = True,
    ) -> None:
        if trace_mode not in ("link", "parent"):
            raise ValueError(f"JobStore: trace_mode must be 'link' or 'parent', got {trace_mode!r}")
        if isinstance(max_errors, bool) or not isinstance(max_errors, int) or max_errors < 1:
            raise ValueError(f"JobStore: max_errors must be an int >= 1, got {max_errors!r}")
        self._engine = make_engine(url_or_engine)
        self._clock = clock or REAL_CLOCK
        self._telemetry = JobTelemetry(
            tracer_provider=tracer_provider, meter_provider=meter_provider, trace_mode=trace_mode
        )
        self._backend = Backend(
            self._engine,
            self._telemetry,
            self._clock,
            rng=rng or random.Random(),
            max_errors=max_errors,
            get=self.get,
        )
        self._writer = self._backend.writer
        self._registry = self._backend.registry
        self._gauge_cache: tuple[float, GaugeSnapshot | None] | None = None
        self._closed = False
        if gauges:
            self._telemetry.observe(self._gauge_snapshot)
        # A forked child must not reuse the parent's pooled connections.
        engine_ref = weakref.ref(self._engine)

        def after_fork() -> None:
            engine = engine_ref()
            if engine is not None:
                engine.dispose(close=False)

        os.register_at_fork(after_in_child=after_fork)

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (for your own queries on the same database)."""
        return self._engine

    @property
    def functions(self) -> dict[str, Definition]:
        """Registered job functions by name (a copy)."""
        return dict(self._registry)

    def create_schema(self) -> None:
        """Create the tables, indexes and history triggers if they do not exist yet.

        Call it once before the store is used (it is idempotent; ``otelkit jobs worker``
        calls it). A store used before raises :class:`SchemaMissingError` saying so.
        """
        create_schema(self._engine)
        self._backend.schema_created()

    def close(self) -> None:
        """Stop lease renewal and gauge queries, and close pooled connections."""
        self._closed = True
        self._backend.close()
        self._engine.dispose()

    async def aclose(self) -> None:
        """:meth:`close` for async applications: first closes the async connections that
        ``aenqueue`` opened in the running event loop (call it before the loop ends)."""
        await self._backend.producer.aclose()
        self.close()

    # -- registration ----------------------------------------------------------------------
    @overload
    def job(self, fn: Callable[[Job], R], /) -> JobFunction[R]: ...

    @overload
    def job(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        max_attempts: int = 5,
        lease: float = 30.0,
        backoff: Backoff | None = None,
        timeout: float | timedelta | None = None,
        limits: Limits | None = None,
        limit_key: Callable[[Any], str | int | None] | None = None,
    ) -> Callable[[Callable[[Job], R]], JobFunction[R]]: ...

    def job(
        self,
        fn: Callable[[Job], R] | None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        max_attempts: int = 5,
        lease: float = 30.0,
        backoff: Backoff | None = None,
        timeout: float | timedelta | None = None,
        limits: Limits | None = None,
        limit_key: Callable[[Any], str | int | None] | None = None,
    ) -> JobFunction[R] | Callable[[Callable[[Job], R]], JobFunction[R]]:
        """Register a job function: ``@store.job`` or ``@store.job(name=..., queue=...)``.

        The function takes a :class:`Job` (sync or ``async def``). ``name`` defaults to
        ``module.qualname``; ``max_attempts`` counts every start (including takeovers after a
        lost lease); ``lease`` is how long a worker owns a running attempt before another may
        take it over (renewed every ``lease / 2`` while it runs); ``backoff`` spaces retries;
        ``timeout`` (seconds) abandons an attempt that runs longer (async: cancelled; sync:
        recorded as timed out, its late result rejected) as a ``TimeoutError``, retried.

        Flow control: ``limits`` (a :class:`~otelkit.jobs.Limits`) declares the limits of
        this function's queue, held across every worker (see :meth:`declare_limits`);
        ``limit_key`` is a function of a job's data returning its key (a str or int, e.g.
        the tenant; None: no key) for per-key limits and fair claims.
        """

        register = self._registrar(
            None,
            name=name,
            queue=queue,
            max_attempts=max_attempts,
            lease=lease,
            backoff=backoff,
            timeout=timeout,
            limits=limits,
            limit_key=limit_key,
        )
        if fn is None:
            return register
        return register(fn)

    def periodic(
        self,
        *,
        cron: str | None = None,
        every: timedelta | float | None = None,
        timezone: str = "UTC",
        catch_up: str = "once",
        name: str | None = None,
        queue: str = "default",
        max_attempts: int = 5,
        lease: float = 30.0,
        backoff: Backoff | None = None,
        timeout: float | timedelta | None = None,
    ) -> Callable[[Callable[[Job], R]], JobFunction[R]]:
        """Register a periodic job: ``@store.periodic(cron="0 3 * * *", timezone=...)`` or
        ``@store.periodic(every=timedelta(minutes=5))``.

        Workers serving its queue enqueue one job per period (exactly once across all
        workers and machines: a unique key on (schedule, period start)); each is a normal
        job (retries, lease, telemetry) whose ``data`` is ``{"period": "<ISO start, UTC>"}``.
        ``every`` periods are aligned on the epoch; ``cron`` reads in ``timezone``.
        ``catch_up`` after downtime: ``"once"`` runs the missed periods once, ``"skip"``
        waits for the next period. The other options are those of :meth:`job`.
        """
        schedule = make_schedule(cron=cron, every=every, tz=timezone, catch_up=catch_up)

        return self._registrar(
            schedule,
            name=name,
            queue=queue,
            max_attempts=max_attempts,
            lease=lease,
            backoff=backoff,
            timeout=timeout,
        )

    def _registrar(
        self, schedule: Schedule | None, **options: Any
    ) -> Callable[[Callable[[Job], R]], JobFunction[R]]:
        """What ``@store.job``/``@store.periodic`` apply to a function: its definition
        checked (``options`` as :func:`define` takes them), registered, wrapped."""

        def register(f: Callable[[Job], R]) -> JobFunction[R]:
            definition = define(f, **options)
            if schedule is not None:
                definition = dataclasses.replace(definition, schedule=schedule)
            self._backend.register(definition)
            return JobFunction(self, definition)

        return register

    def schedule_due(self, *, now: datetime | None = None) -> list[str]:
        """Enqueue the due periods of every periodic job now; the ids enqueued.

        Workers call this at each period start; call it yourself to enqueue without a
        worker. ``now`` (an aware datetime) replaces the database's clock (for tests).
        """
        if now is not None and now.tzinfo is None:
            raise ValueError("schedule_due: now must be a timezone-aware datetime")
        definitions = [d for d in self._registry.values() if d.schedule is not None]
        with require_schema(self._engine):
            ids, _ = self._backend.run_schedules(
                definitions, now=None if now is None else now.timestamp()
            )
        return ids

    def schedules(self) -> list[JobSchedule]:
        """The schedules of periodic jobs stored in the database (by any process), by name."""
        with require_schema(self._engine):
            return list_schedules(self._engine)

    def worker(
        self,
        *,
        queues: Sequence[str] | None = None,
        concurrency: int = 4,
        batch: int | None = None,
        poll_interval: float | None = None,
        shutdown_timeout: float = 30.0,
        timeout: float | timedelta | None = None,
        listen: bool = True,
        retention: timedelta | None = DEFAULT_RETENTION,
    ) -> Worker:
        """A worker running this store's registered functions (see :class:`Worker`).

        ``timeout``: the default execution timeout of functions that set none. ``listen``
        (PostgreSQL): wake on ``NOTIFY`` instead of waiting for the next poll.
        ``poll_interval`` (default: 1 s, or 15 s while listening) bounds every idle wait.
        ``retention``: finished jobs (and their history) last updated longer ago are
        deleted by the worker when idle, in bounded batches, one pruner at a time across
        workers (None: keep them).
        """
        from otelkit.jobs._worker import Worker

        return Worker(
            self,
            queues=queues,
            concurrency=concurrency,
            batch=batch,
            poll_interval=poll_interval,
            shutdown_timeout=shutdown_timeout,
            timeout=timeout,
            listen=listen,
            retention=retention,
        )

    # -- gauges ------------------------------------------------------------------------------
    def _gauge_snapshot(self) -> GaugeSnapshot | None:
        if self._closed:
            return None
        now_mono = self._clock.monotonic()
        cached = self._gauge_cache
        if cached is not None and now_mono - cached[0] < _GAUGE_CACHE_SECONDS:
            return cached[1]
        snapshot: GaugeSnapshot | None = None
        try:
            snapshot = _admin.gauges(self._engine)
        except Exception as exc:  # noqa: BLE001 - a metric callback never raises
            report_internal_error("jobs.gauges", exc)
        self._gauge_cache = (now_mono, snapshot)
        return snapshot

    # -- queries and operator actions --------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        with require_schema(self._engine):
            return _admin.get(self._engine, job_id)

    def count_by_state(self, *, queue: str | None = None) -> dict[JobState, int]:
        """How many jobs are in each state (every state present, zeros included), optionally
        for one queue: one grouped query, not a listing."""
        with require_schema(self._engine):
            counts, _ = _admin.gauges(self._engine)
        totals = dict.fromkeys(JobState, 0)
        for (job_queue, status), count in counts.items():
            if queue is None or job_queue == queue:
                totals[JobState(status)] += count
        return totals

    def list_jobs(
        self,
        *,
        states: Iterable[JobState | str] | None = None,
        queue: str | None = None,
        name: str | None = None,
        limit: int = 50,
    ) -> list[Job]:
        """Jobs, most recently updated first, optionally filtered by state, queue and name."""
        with require_schema(self._engine):
            return _admin.list_jobs(
                self._engine, states=states, queue=queue, name=name, limit=limit
            )

    def transitions(self, job_id: str) -> list[JobTransition]:
        """A job's state changes, oldest first (``lost`` rows: rejected late results)."""
        with require_schema(self._engine):
            return _admin.transitions(self._engine, job_id)

    def retry(self, job_id: str) -> bool:
        """Queue a ``failed`` or ``cancelled`` job again with fresh attempts (errors kept)."""
        with require_schema(self._engine):
            return _admin.operate(
                self._writer,
                job_id,
                ("failed", "cancelled"),
                status="queued",
                attempt=0,
                run_after=db_now(),
                finished_at=None,
            )

    def cancel(self, job_id: str) -> bool:
        """Cancel a job that has not finished; a running attempt's result will be rejected."""
        with require_schema(self._engine):
            return _admin.operate(
                self._writer,
                job_id,
                ("queued", "retrying", "running"),
                status="cancelled",
                finished_at=db_now(),
            )

    def pause(self, queue: str) -> bool:
        """Stop workers (of every process and machine) claiming jobs of ``queue``; running
        attempts finish. Whether it was running before. An unknown queue raises
        :class:`~otelkit.errors.InvalidOptionError`."""
        with require_schema(self._engine):
            return set_paused(
                self._writer, "store.pause", queue, paused=True, registered=self._queue_names()
            )

    def resume(self, queue: str) -> bool:
        """Let workers claim jobs of ``queue`` again (and wake them); whether it was paused."""
        with require_schema(self._engine):
            changed = set_paused(
                self._writer, "store.resume", queue, paused=False, registered=self._queue_names()
            )
        if changed:
            self._backend.wake(queue, 0.0)
        return changed

    def paused_queues(self) -> list[str]:
        """The queues paused now (by any process), sorted."""
        with require_schema(self._engine):
            return paused_queues(self._engine)

    # -- flow limits -------------------------------------------------------------------------
    def declare_limits(self, queue: str, limits: Limits) -> None:
        """Declare in code the flow limits of ``queue`` (as ``@store.job(limits=...)``
        does): every worker serving the queue stores them in the database when it starts,
        and removes code limits that are no longer declared. Limits an operator set at
        runtime (:meth:`set_limits`) win until :meth:`reset_limits`."""
        where = "store.declare_limits"
        name = check_str(where, "queue", queue)
        self._backend.declare(where, name, check_limits(where, limits))

    def set_limits(self, queue: str, limits: Limits) -> bool:
        """Set the flow limits of ``queue`` now, for every worker (their next claim reads
        them), overriding what code declares until :meth:`reset_limits`; ``Limits()``
        lifts every limit. Whether anything changed. An unknown queue raises
        :class:`~otelkit.errors.InvalidOptionError`."""
        where = "store.set_limits"
        check_limits(where, limits)
        with require_schema(self._engine), self._writer.begin() as conn:
            name = check_known(conn, where, queue, self._queue_names())
            changed = _flow.write_limits(conn, name, limits, set_by=_flow.OPERATOR)
        self._backend.wake(name, 0.0)
        return changed

    def reset_limits(self, queue: str) -> Limits:
        """Drop an operator's limits of ``queue``: back to those this process's code
        declares for it (none if it declares none; a worker's start writes its own
        declaration again). The limits now in force."""
        where = "store.reset_limits"
        limits = self._backend.declared.get(queue, Limits())
        with require_schema(self._engine), self._writer.begin() as conn:
            name = check_known(conn, where, queue, self._queue_names())
            _flow.write_limits(conn, name, limits, set_by=_flow.CODE, reset=True)
        self._backend.wake(name, 0.0)
        return limits

    def limits(self, queue: str | None = None) -> list[QueueLimits]:
        """The flow limits stored in the database (what every worker's claim reads), for
        every limited queue or just ``queue``, by queue name, with the jobs running now
        and the last time a claim was held back."""
        with require_schema(self._engine):
            return _flow.read_limits(self._engine, queue)

    def wait_reasons(self, jobs: Iterable[Job]) -> dict[str, WaitReason]:
        """Why ready jobs wait, by job id: for each of ``jobs`` that is queued or retrying,
        due, and held by a paused queue or a flow limit binding now (one query per queue
        involved). Jobs absent from the result wait only for a free worker (or are not
        ready)."""
        with require_schema(self._engine):
            return _flow.wait_reasons(self._engine, jobs)

    def wait_reason(self, job_id: str) -> WaitReason | None:
        """Why the job ``job_id`` waits though it is ready (see :meth:`wait_reasons`)."""
        job = self.get(job_id)
        if job is None:
            return None
        return self.wait_reasons([job]).get(job.id)

    def _queue_names(self) -> set[str]:
        return {d.queue for d in self._registry.values()}

    def purge(
        self,
        *,
        older_than: timedelta = timedelta(days=7),
        states: Iterable[JobState | str] = _admin.FINAL_STATES,
    ) -> int:
        """Delete final jobs (and their history) last updated more than ``older_than`` ago."""
        with require_schema(self._engine):
            return _admin.purge(self._writer, older_than=older_than, states=states)
