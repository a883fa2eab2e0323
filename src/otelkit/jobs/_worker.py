"""Worker: claims batches of ready jobs, runs them (threads for sync, an event loop for async),
and applies their transitions in group commits.

The loop thread does all claiming and completing; job threads and tasks only run user code
and hand finished attempts back. Completions that pile up while a transaction is in flight
are committed together, so many short jobs cost far fewer transactions than jobs.
"""

from __future__ import annotations

import math
import random
import signal
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

from otelkit._errors import report_internal_error
from otelkit.jobs._attempt import Attempt, check_timeout
from otelkit.jobs._retention import DEFAULT_RETENTION, check_retention
from otelkit.jobs._running import Executor
from otelkit.jobs._runnow import new_owner
from otelkit.jobs._wakeup import Listener

if TYPE_CHECKING:
    from otelkit.jobs._store import JobStore

__all__ = ["Worker"]

_SWEEP_EVERY = 5.0  # seconds between sweeps for exhausted jobs with expired leases
_TAKEOVER_EVERY = 1.0  # seconds between claims of running jobs whose lease expired
_MAX_PAUSE = 30.0  # cap of the reconnect backoff
_POLL = 1.0  # default seconds between polls without notifications (SQLite, listener down)
_LISTEN_POLL = 15.0  # default fallback poll while the LISTEN connection is up
_PRUNE_EVERY = 60.0  # seconds between pruning runs of one worker (retention)


class Worker:
    """Claims and runs jobs of a :class:`JobStore` until stopped.

    Obtain one with ``store.worker(queues=..., concurrency=..., batch=...)``.
    ``concurrency`` attempts run at once (sync functions in a thread pool, or in the loop
    thread itself when ``concurrency=1``; async functions in one event-loop thread); a claim
    asks for ``batch`` jobs (default: ``concurrency``) whenever fewer than ``concurrency``
    are in hand, in the same transaction that records the attempts just finished. Database errors
    (e.g. PostgreSQL restarting) pause the loop with exponential backoff; nothing is lost.

    The thread that calls :meth:`run` claims, commits and waits; an executor the worker
    owns runs the attempts and hands them back.
    """

    def __init__(
        self,
        store: JobStore,
        *,
        queues: Sequence[str] | None,
        concurrency: int,
        batch: int | None,
        poll_interval: float | None,
        shutdown_timeout: float,
        timeout: float | timedelta | None = None,
        listen: bool = True,
        retention: timedelta | None = DEFAULT_RETENTION,
    ) -> None:
        queues, batch, timeout = _check_options(
            store, queues, concurrency, batch, poll_interval, shutdown_timeout, timeout
        )
        self.id = new_owner("worker")
        """This worker's lease-owner id (host:pid:worker:random)."""
        self.queues = tuple(queues)
        self.concurrency = concurrency
        self.batch = batch
        self.processed = 0
        """Attempts this worker has finished (any outcome)."""
        self._store = store
        self._backend = store._backend
        self._poll = None if poll_interval is None else float(poll_interval)
        self._queue_set = frozenset(self.queues)
        self._listen = bool(listen) and store.engine.dialect.name == "postgresql"
        self._listener: Listener | None = None
        self._woken = False
        self._next_due = math.inf  # monotonic time the earliest known future job is due
        self._schedules = [
            d
            for d in store.functions.values()
            if d.schedule is not None and d.queue in self._queue_set
        ]
        self._next_tick = 0.0  # monotonic time of the next period start of a schedule
        self._grace = float(shutdown_timeout)
        self._cond = threading.Condition(threading.RLock())
        self._stopping = False
        self._failures = 0
        self._jitter = random.Random()
        self._last_sweep = 0.0
        age = check_retention("worker", retention)
        self._pruner = None if age is None else store._backend.pruner(self.id, age)
        self._last_prune = 0.0
        self._last_takeover = 0.0
        self._claimed = 0
        self._held = False  # the last claim left ready jobs to a flow limit
        self._runs = Executor(
            self._backend.runner, concurrency=concurrency, timeout=timeout, cond=self._cond
        )

    # -- public --------------------------------------------------------------------------------
    @property
    def listening(self) -> bool:
        """Whether this worker's ``LISTEN`` connection (PostgreSQL) is up right now."""
        return self._listener is not None and self._listener.connected

    def run(self, *, until_idle: bool = False) -> None:
        """Run until :meth:`stop` (or SIGTERM/SIGINT when called in the main thread).

        With ``until_idle=True`` it also returns as soon as no job is ready and none is in
        hand (jobs waiting for a future ``run_after`` are not waited for): a script's or a
        one-off's "drain the queue, then exit". On stop, jobs not started yet are released
        at once; running ones get ``shutdown_timeout`` seconds to finish, then are released
        (async ones cancelled). A second signal stops at once, releasing everything in hand.
        Raises :class:`~otelkit.jobs.SchemaMissingError` if the store has no job tables.
        """
        self._rearm()  # before the handlers: a signal from then on is never forgotten
        restore = self._install_signals()
        try:
            self._serve(until_idle=until_idle, timeout=None)
        finally:
            restore()

    def run_until_idle(self, *, timeout: float | None = 60.0) -> int:
        """Run until no job is ready and none is in hand; the number of attempts finished.

        Jobs waiting for a future ``run_after`` are not waited for. Raises ``TimeoutError``
        (after releasing what is in hand) if ``timeout`` seconds pass first.
        """
        before = self.processed
        self._rearm()
        self._serve(until_idle=True, timeout=timeout)
        return self.processed - before

    def stop(self) -> None:
        """Ask the loop to stop (thread-safe; returns at once)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    # -- loop ----------------------------------------------------------------------------------
    def _rearm(self) -> None:
        """Forget the stop that ended a previous run, so that this worker can run again."""
        with self._cond:
            self._stopping = False

    def _serve(self, *, until_idle: bool, timeout: float | None) -> None:
        self._backend.check_schema()  # a clear error, not a loop of logged database errors
        deadline = None if timeout is None else time.monotonic() + timeout
        clean = False
        self._sync_limits()
        self._start_wakeup()
        try:
            while True:
                if self._schedules and time.monotonic() >= self._next_tick:
                    self._tick()
                with self._cond:
                    if self._stopping:
                        break
                    done = self._runs.take_done()
                    busy = self._runs.in_flight - len(done)
                    asked = self.batch if busy < self.concurrency else 0
                    woken, self._woken = self._woken, False
                    if asked:
                        self._next_due = math.inf  # this claim learns the next one
                # a wake-up claims the new job at once; expired leases wait for a poll
                takeover = asked > 0 and not woken and self._due("_last_takeover", _TAKEOVER_EVERY)
                if not self._cycle(done, asked, takeover):
                    continue
                claimed = self._claimed
                self._runs.run_inline(lambda: self._stopping)
                if asked and claimed < asked and self._due("_last_sweep", _SWEEP_EVERY):
                    self._sweep()
                if asked and claimed < asked and self._due("_last_prune", _PRUNE_EVERY):
                    self._prune()
                with self._cond:
                    if (
                        until_idle
                        and claimed == 0
                        and not self._held  # ready jobs wait for a limit: not idle yet
                        and not self._runs.in_flight
                        and not self._runs.has_done
                    ):
                        break
                    if deadline is not None and time.monotonic() > deadline:
                        raise TimeoutError(f"worker: not idle within {timeout} s")
                    if self._runs.has_done or self._stopping:
                        continue
                    if asked and claimed == asked and self._runs.in_flight < self.concurrency:
                        continue  # more may be ready right now
                    self._idle(polling=claimed < asked or not asked)
            self._shutdown(grace=self._grace)
            clean = True
        finally:
            self._stop_wakeup()
            if not clean:  # an exception (e.g. a second Ctrl-C): release everything, no grace
                self._shutdown(grace=0.0)
            self._runs.close()

    def _shutdown(self, *, grace: float) -> None:
        self._runs.shutdown(grace=grace, flush=self._flush_done, poll=self._poll_interval())

    # -- waiting and waking ---------------------------------------------------------------------
    def _poll_interval(self) -> float:
        if self._poll is not None:
            return self._poll
        return _LISTEN_POLL if self.listening else _POLL

    def _idle(self, *, polling: bool) -> None:
        """Wait (caller holds the lock) until woken, a result is handed back, the earliest
        known job is due, a sync attempt's timeout passes, or (``polling``) the poll time."""
        poll_end = time.monotonic() + self._poll_interval() if polling else math.inf
        while not (self._woken or self._runs.has_results or self._stopping):
            now = time.monotonic()
            end = poll_end
            if polling:
                end = min(end, self._next_due)
            if self._schedules:
                end = min(end, self._next_tick)
            first = self._runs.next_deadline()
            if first is not None:
                if first <= now:
                    self._runs.expire_timeouts(now)
                    continue
                end = min(end, first)
            if end <= now:
                return
            self._cond.wait(None if end == math.inf else end - now)

    def _wake(self, queue: str, delay: float) -> None:
        """A job of ``queue`` became waiting, due in ``delay`` seconds (thread-safe)."""
        if queue not in self._queue_set:
            return
        with self._cond:
            if delay <= 0:
                self._woken = True
            else:
                self._next_due = min(self._next_due, time.monotonic() + delay)
            self._cond.notify_all()

    def _wake_all(self) -> None:
        """Poll now (the listener (re)connected: anything may have arrived meanwhile)."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def _start_wakeup(self) -> None:
        self._backend.add_waker(self._wake)
        if self._listen and self._listener is None:
            self._listener = Listener(
                self._store.engine.url,
                on_notify=self._wake,
                on_connect=self._wake_all,
                name=self.id,
            )

    def _stop_wakeup(self) -> None:
        self._backend.remove_waker(self._wake)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _tick(self) -> None:
        """Enqueue due periods of the periodic jobs; wake again at the next period start."""
        try:
            _, next_in = self._backend.run_schedules(self._schedules)
        except Exception as exc:  # noqa: BLE001 - database away: the next tick tries again
            report_internal_error("jobs.schedule", exc)
            self._next_tick = time.monotonic() + 1.0
            return
        wait = 60.0 if next_in is None else max(0.0, next_in)
        self._next_tick = time.monotonic() + min(wait, 60.0) + 0.002

    def _cycle(self, done: list[Attempt], asked: int, takeover: bool) -> bool:
        """Commit ``done`` and claim up to ``asked`` in one transaction; False on DB error."""
        self._claimed = 0
        late = self._runs.take_late()
        if not done and not asked and not late:
            return True
        try:
            attempts, next_in, held = self._backend.cycle(
                self.id, done, queues=self.queues, limit=asked, takeover=takeover, late=late
            )
        except Exception as exc:  # noqa: BLE001 - database away: keep them, back off, retry
            self._runs.give_back(done, late)
            self._db_failed("jobs.cycle", exc)
            return False
        if asked:
            self._held = held
        if next_in is not None:
            with self._cond:
                self._next_due = min(self._next_due, time.monotonic() + max(0.0, next_in))
        self._failures = 0
        with self._cond:
            self._runs.committed(done)
            self.processed += len(done)
        for attempt in attempts:
            self._runs.submit(attempt)
        self._claimed = len(attempts)
        return True

    def _sync_limits(self) -> None:
        """Store the limits the code declares for this worker's queues (see
        :meth:`JobStore.declare_limits`); a database away now is retried at the next run."""
        try:
            self._backend.sync_limits(self.queues)
        except Exception as exc:  # noqa: BLE001 - the claim still reads what is stored
            report_internal_error("jobs.limits", exc)

    def _flush_done(self) -> bool:
        return self._cycle(self._runs.take_done(), 0, False)

    def _due(self, attribute: str, every: float) -> bool:
        now = time.monotonic()
        if now - float(getattr(self, attribute)) < every:
            return False
        setattr(self, attribute, now)
        return True

    def _db_failed(self, component: str, exc: Exception) -> None:
        report_internal_error(component, exc)
        self._failures += 1
        pause = min(_MAX_PAUSE, 0.05 * 2 ** min(self._failures, 16))
        pause *= 0.5 + self._jitter.random() / 2
        with self._cond:
            self._cond.wait_for(lambda: self._stopping, timeout=pause)

    def _prune(self) -> None:
        """Delete one bounded run of old finished jobs (when idle; one pruner at a time)."""
        if self._pruner is None:
            return
        try:
            _, more = self._pruner.run()
        except Exception as exc:  # noqa: BLE001 - the next run tries again
            report_internal_error("jobs.prune", exc)
            return
        if more:  # a backlog: the next idle moment continues, not the next minute
            self._last_prune = time.monotonic() - _PRUNE_EVERY + 1.0

    def _sweep(self) -> None:
        try:
            self._backend.fail_exhausted()
        except Exception as exc:  # noqa: BLE001 - the next sweep tries again
            report_internal_error("jobs.sweep", exc)

    # -- stopping ------------------------------------------------------------------------------
    def _install_signals(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def handler(signum: int, frame: FrameType | None) -> None:
            if self._stopping:
                raise KeyboardInterrupt  # second signal: stop now, releasing what is in hand
            self.stop()

        for sig in previous:
            signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore


def _check_options(
    store: JobStore,
    queues: Sequence[str] | None,
    concurrency: int,
    batch: int | None,
    poll_interval: float | None,
    shutdown_timeout: float,
    timeout: float | timedelta | None,
) -> tuple[Sequence[str], int, float | None]:
    """The worker's options checked (``ValueError`` naming the bad one): ``(queues, batch,
    timeout in seconds)`` with their defaults filled in."""
    _positive_int("concurrency", concurrency)
    batch = concurrency if batch is None else batch
    _positive_int("batch", batch)

    timeout = check_timeout(timeout, option="worker: timeout")
    for option, value in (
        ("poll_interval", 0.0 if poll_interval is None else poll_interval),
        ("shutdown_timeout", shutdown_timeout),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"worker: {option} must be a number of seconds >= 0, got {value!r}")
    registry = store.functions
    if not registry:
        raise ValueError("worker: no job functions are registered on this store")
    if queues is None:
        queues = sorted({d.queue for d in registry.values()})
    elif isinstance(queues, str) or not all(isinstance(q, str) and q for q in queues) or not queues:
        raise ValueError(f"worker: queues must be a non-empty list of queue names, got {queues!r}")
    return queues, batch, timeout


def _positive_int(option: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"worker: {option} must be an int >= 1, got {value!r}")
