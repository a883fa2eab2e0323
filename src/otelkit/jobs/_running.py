"""Running claimed attempts and stopping them: the worker's :class:`Executor`.

Sync functions run in a thread pool (``concurrency`` slots; a sync attempt abandoned after
its timeout keeps its thread but gives up its slot) or, for ``concurrency=1`` without a
timeout, in the loop thread itself; async functions run in one event-loop thread. Finished
attempts wait in the executor until the worker takes them to commit (:meth:`take_done`);
timed-out ones' late results are offered to the fence (:meth:`take_late`). The worker
owns the condition both wait on: the executor notifies it whenever an attempt comes back
or a sync attempt's deadline is set.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from otelkit._threads import start_daemon
from otelkit.jobs._attempt import Attempt
from otelkit.jobs._execute import Runner

__all__ = ["Executor"]

_STRAGGLERS = 32  # extra job threads for sync attempts abandoned after their timeout


class Executor:
    """Runs the attempts a worker claims, ``concurrency`` at a time, and hands them back.

    ``cond`` guards the executor's state (its lock is re-entrant, so the worker may hold it
    around several calls) and is notified when an attempt is handed back. ``timeout``: the
    worker's default execution timeout of functions that set none.
    """

    def __init__(
        self,
        runner: Runner,
        *,
        concurrency: int,
        timeout: float | None,
        cond: threading.Condition,
    ) -> None:
        self._runner = runner
        self._concurrency = concurrency
        self._timeout = timeout
        self._cond = cond
        self._done: list[Attempt] = []
        self._late: list[Attempt] = []
        self._in_flight: dict[Attempt, Future[Any]] = {}
        self._deadlines: dict[Attempt, tuple[float, float]] = {}  # sync: (deadline, seconds)
        self._timed_out: set[int] = set()
        self._abandoned: set[int] = set()
        self._slot_freed: set[int] = set()
        self._pending_sync: deque[tuple[Attempt, Future[Any]]] = deque()
        self._inline: deque[tuple[Attempt, Future[Any]]] = deque()
        self._sync_running = 0
        self._pool: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None

    # -- what the worker reads and takes -------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Attempts in hand: running, waiting for a slot, or finished and not committed."""
        return len(self._in_flight)

    @property
    def has_done(self) -> bool:
        """Finished attempts wait to be committed."""
        return bool(self._done)

    @property
    def has_results(self) -> bool:
        """Finished attempts or late results wait to be committed."""
        return bool(self._done or self._late)

    def take_done(self) -> list[Attempt]:
        """The finished attempts to commit (they stay in flight until :meth:`committed`)."""
        with self._cond:
            done, self._done = self._done, []
        return done

    def take_late(self) -> list[Attempt]:
        """The late results of timed-out attempts, to offer to the fence."""
        with self._cond:
            late, self._late = self._late, []
        return late

    def give_back(self, done: Sequence[Attempt], late: Sequence[Attempt]) -> None:
        """The commit of ``done`` and ``late`` failed: keep them for the next one."""
        with self._cond:
            self._done[:0] = done
            self._late[:0] = late

    def committed(self, done: Sequence[Attempt]) -> None:
        """``done`` is stored: no longer in hand."""
        with self._cond:
            for attempt in done:
                self._in_flight.pop(attempt, None)

    # -- timeouts -------------------------------------------------------------------------------
    def _timeout_of(self, attempt: Attempt) -> float | None:
        definition = attempt.definition
        if definition is not None and definition.timeout is not None:
            return definition.timeout
        return self._timeout

    def next_deadline(self) -> float | None:
        """The monotonic time the first running sync attempt's timeout passes (None: none)."""
        with self._cond:
            return min((due for due, _ in self._deadlines.values()), default=None)

    def expire_timeouts(self, now: float) -> None:
        """Abandon sync attempts past their timeout: each is recorded as a ``TimeoutError``
        (retried per its policy) at the next commit, its lease is no longer renewed and its
        slot is free; its thread's late result is rejected."""
        with self._cond:
            for attempt, (due, seconds) in list(self._deadlines.items()):
                if due > now:
                    continue
                del self._deadlines[attempt]
                future = self._in_flight.pop(attempt, None)
                if future is None:
                    continue
                self._timed_out.add(id(attempt))
                self._slot_freed.add(id(attempt))
                self._sync_running -= 1
                timed_out = self._runner.timed_out(attempt, seconds)
                self._in_flight[timed_out] = future  # its slot is freed by the next commit
                self._done.append(timed_out)
            self._start_pending()

    # -- running attempts ----------------------------------------------------------------------
    def submit(self, attempt: Attempt) -> None:
        """Start ``attempt`` (or queue it for a free slot, or for :meth:`run_inline`)."""
        definition = attempt.definition
        future: Future[Any]
        if definition is not None and definition.is_async:
            future = asyncio.run_coroutine_threadsafe(self._run_async(attempt), self._event_loop())
        elif self._concurrency == 1 and self._timeout_of(attempt) is None:
            future = Future()  # run in the loop thread: no hand-off for one-at-a-time workers
            self._inline.append((attempt, future))
        else:
            future = Future()  # started by _start_pending when one of `concurrency` slots is free
            with self._cond:
                self._in_flight[attempt] = future
                self._pending_sync.append((attempt, future))
                self._start_pending()
            return
        with self._cond:
            self._in_flight[attempt] = future

    def _start_pending(self) -> None:
        """Start queued sync attempts while fewer than ``concurrency`` run.

        The thread pool is larger than ``concurrency``: a sync attempt abandoned after its
        timeout keeps its thread until the function returns, but gives up its slot.
        """
        with self._cond:
            while self._pending_sync and self._sync_running < self._concurrency:
                attempt, future = self._pending_sync.popleft()
                if not future.set_running_or_notify_cancel():
                    continue  # cancelled at shutdown before it started
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        self._concurrency + _STRAGGLERS, thread_name_prefix="otelkit-job"
                    )
                self._sync_running += 1
                self._pool.submit(self._run_pooled, attempt, future)

    def _run_pooled(self, attempt: Attempt, future: Future[Any]) -> None:
        try:
            self._run_sync(attempt)
        finally:
            future.set_result(None)
            with self._cond:
                if id(attempt) in self._slot_freed:
                    self._slot_freed.discard(id(attempt))
                else:
                    self._sync_running -= 1
                self._start_pending()

    def run_inline(self, stopping: Callable[[], bool]) -> None:
        """Run the sync attempts queued for the loop thread (concurrency 1) until none is
        left or ``stopping()``."""
        while self._inline and not stopping():
            attempt, future = self._inline.popleft()
            if future.set_running_or_notify_cancel():
                try:
                    self._run_sync(attempt, inline=True)
                finally:
                    future.set_result(None)

    def _run_sync(self, attempt: Attempt, *, inline: bool = False) -> None:
        seconds = None if inline else self._timeout_of(attempt)
        if seconds is not None:
            with self._cond:
                self._deadlines[attempt] = (time.monotonic() + seconds, seconds)
                self._cond.notify_all()  # the loop's wait now ends at this deadline too
        try:
            self._runner.invoke_sync(attempt)
        except BaseException:
            if inline:  # an interrupt in the loop thread (second Ctrl-C) stops the worker
                raise
            # in a job thread: invoke_sync already released the job; the thread carries on
        finally:
            self._hand_back(attempt)

    async def _run_async(self, attempt: Attempt) -> None:
        try:
            await self._runner.invoke_async(attempt, timeout=self._timeout_of(attempt))
        except BaseException:  # noqa: BLE001 - released by invoke_async (cancellation at shutdown)
            pass
        finally:
            self._hand_back(attempt)

    def _hand_back(self, attempt: Attempt) -> None:
        with self._cond:
            self._deadlines.pop(attempt, None)
            if id(attempt) in self._timed_out:
                self._timed_out.discard(id(attempt))
                self._late.append(attempt)  # fenced at the next commit: rejected, recorded
                self._cond.notify_all()
                return
            if id(attempt) in self._abandoned:
                return  # released at shutdown; its late result is not applied
            self._done.append(attempt)
            self._cond.notify_all()

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = start_daemon(loop.run_forever, name="otelkit-jobs-async")
            self._loop, self._loop_thread = loop, thread
        return self._loop

    # -- stopping ------------------------------------------------------------------------------
    def shutdown(self, *, grace: float, flush: Callable[[], bool], poll: float) -> None:
        """Release what has not started, give running attempts ``grace`` seconds, then
        release (async: cancel) the rest. ``flush()`` commits what was handed back (False:
        the database failed); ``poll`` bounds each wait."""
        runner = self._runner
        with self._cond:
            for attempt, future in list(self._in_flight.items()):
                if not attempt.started and future.cancel():
                    runner.release(attempt, "worker stopping before the job started")
                    self._done.append(attempt)
        deadline = time.monotonic() + grace
        while self._in_flight and time.monotonic() < deadline:
            flush()
            with self._cond:
                if self._in_flight and not self._done:
                    left = deadline - time.monotonic()
                    self._cond.wait(max(0.0, min(poll, left)))
        with self._cond:
            pending = [(a, f) for a, f in self._in_flight.items() if a not in self._done]
        for attempt, future in pending:
            definition = attempt.definition
            if definition is not None and definition.is_async and future.cancel():
                continue  # cancellation releases it inside the task
            with self._cond:
                self._abandoned.add(id(attempt))
                released = copy.copy(attempt)
                runner.release(released, "worker stopped before the job finished")
                self._in_flight.pop(attempt, None)
                self._in_flight[released] = future
                self._done.append(released)
        cancel_deadline = time.monotonic() + min(5.0, max(grace, 1.0))
        while self._in_flight and time.monotonic() < cancel_deadline:
            if not flush():
                continue
            with self._cond:
                if self._in_flight and not self._done:
                    self._cond.wait(0.05)

    def close(self) -> None:
        """Stop the thread pool and the event-loop thread."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if self._loop is not None and self._loop_thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join(timeout=5.0)
            if not self._loop.is_running():
                self._loop.close()
            self._loop = self._loop_thread = None
