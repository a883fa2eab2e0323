"""The worker's execution half: running claimed attempts and stopping them.

Sync functions run in a thread pool (``concurrency`` slots; a sync attempt abandoned after
its timeout keeps its thread but gives up its slot) or, for ``concurrency=1`` without a
timeout, in the loop thread itself; async functions run in one event-loop thread. Finished
attempts are handed back to the loop (``_done``), timed-out ones' late results are offered
to the fence (``_late``). The loop half (claiming, committing, waiting) is
:class:`otelkit.jobs.Worker`, which inherits this; both share the state declared here,
guarded by ``_cond``.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from otelkit._threads import start_daemon
from otelkit.jobs._backend import Backend
from otelkit.jobs._execute import Attempt

__all__ = ["Execution"]

_STRAGGLERS = 32  # extra job threads for sync attempts abandoned after their timeout


class Execution:
    """Running and stopping attempts (a base of :class:`~otelkit.jobs.Worker`)."""

    concurrency: int
    _backend: Backend
    _cond: threading.Condition
    _stopping: bool
    _timeout: float | None
    _done: list[Attempt]
    _late: list[Attempt]
    _in_flight: dict[Attempt, Future[Any]]
    _deadlines: dict[Attempt, tuple[float, float]]  # sync: (deadline, seconds)
    _timed_out: set[int]
    _abandoned: set[int]
    _slot_freed: set[int]
    _pending_sync: deque[tuple[Attempt, Future[Any]]]
    _inline: deque[tuple[Attempt, Future[Any]]]
    _sync_running: int
    _executor: ThreadPoolExecutor | None
    _loop: asyncio.AbstractEventLoop | None
    _loop_thread: threading.Thread | None

    def _init_execution(self) -> None:
        self._deadlines = {}
        self._timed_out = set()
        self._late = []
        self._pending_sync = deque()
        self._sync_running = 0
        self._slot_freed = set()
        self._done = []
        self._in_flight = {}
        self._abandoned = set()
        self._executor = None
        self._loop = None
        self._loop_thread = None
        self._inline = deque()

    def _flush_done(self) -> bool:
        raise NotImplementedError

    def _poll_interval(self) -> float:
        raise NotImplementedError

    # -- timeouts -------------------------------------------------------------------------------
    def _timeout_of(self, attempt: Attempt) -> float | None:
        definition = attempt.definition
        if definition is not None and definition.timeout is not None:
            return definition.timeout
        return self._timeout

    def _expire_timeouts(self, now: float) -> None:
        """Abandon sync attempts past their timeout (caller holds the lock): each is recorded
        as a ``TimeoutError`` (retried per its policy) at the next commit, its lease is no
        longer renewed and its slot is free; its thread's late result is rejected."""
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
            timed_out = self._backend.runner.timed_out(attempt, seconds)
            self._in_flight[timed_out] = future  # its slot is freed by the next commit
            self._done.append(timed_out)
        self._start_pending()

    # -- running attempts ----------------------------------------------------------------------
    def _submit(self, attempt: Attempt) -> None:
        definition = attempt.definition
        future: Future[Any]
        if definition is not None and definition.is_async:
            future = asyncio.run_coroutine_threadsafe(self._run_async(attempt), self._event_loop())
        elif self.concurrency == 1 and self._timeout_of(attempt) is None:
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
        """Start queued sync attempts while fewer than ``concurrency`` run (holds the lock).

        The thread pool is larger than ``concurrency``: a sync attempt abandoned after its
        timeout keeps its thread until the function returns, but gives up its slot.
        """
        with self._cond:
            while self._pending_sync and self._sync_running < self.concurrency:
                attempt, future = self._pending_sync.popleft()
                if not future.set_running_or_notify_cancel():
                    continue  # cancelled at shutdown before it started
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        self.concurrency + _STRAGGLERS, thread_name_prefix="otelkit-job"
                    )
                self._sync_running += 1
                self._executor.submit(self._run_pooled, attempt, future)

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

    def _run_inline(self) -> None:
        """Run the sync attempts queued for the loop thread (concurrency 1)."""
        while self._inline and not self._stopping:
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
            self._backend.runner.invoke_sync(attempt)
        except BaseException:
            if inline:  # an interrupt in the loop thread (second Ctrl-C) stops the worker
                raise
            # in a job thread: invoke_sync already released the job; the thread carries on
        finally:
            self._hand_back(attempt)

    async def _run_async(self, attempt: Attempt) -> None:
        try:
            await self._backend.runner.invoke_async(attempt, timeout=self._timeout_of(attempt))
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
    def _shutdown(self, *, grace: float) -> None:
        runner = self._backend.runner
        with self._cond:
            for attempt, future in list(self._in_flight.items()):
                if not attempt.started and future.cancel():
                    runner.release(attempt, "worker stopping before the job started")
                    self._done.append(attempt)
        deadline = time.monotonic() + grace
        while self._in_flight and time.monotonic() < deadline:
            self._flush_done()
            with self._cond:
                if self._in_flight and not self._done:
                    left = deadline - time.monotonic()
                    self._cond.wait(max(0.0, min(self._poll_interval(), left)))
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
            if not self._flush_done():
                continue
            with self._cond:
                if self._in_flight and not self._done:
                    self._cond.wait(0.05)

    def _close_runtimes(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self._loop is not None and self._loop_thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join(timeout=5.0)
            if not self._loop.is_running():
                self._loop.close()
            self._loop = self._loop_thread = None
