"""``fn.run(job_id)``: claim one given job, run it here, store the outcome.

Two short transactions: the fenced claim (``RETURNING`` the row the attempt needs), then
the worker's own completion (``cycle``: the fenced transition, follow-ups, a lost attempt
recorded in the history, the span closed), so the guarantees are the worker's.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from opentelemetry.instrumentation.utils import suppress_instrumentation

from otelkit.jobs import _claim
from otelkit.jobs._attempt import Attempt
from otelkit.jobs._definition import Definition
from otelkit.jobs._execute import Runner
from otelkit.jobs._model import Job, JobNotFoundError, JobNotReadyError, JobState, LeaseLostError
from otelkit.jobs._schema import require_schema

__all__ = ["RunNow", "new_owner", "outcome"]

_host: tuple[int, str] | None = None


def new_owner(kind: str) -> str:
    """A lease-owner id unique to this worker instance (or this one ``fn.run`` call)."""
    global _host
    pid = os.getpid()
    if _host is None or _host[0] != pid:  # hostname looked up once per process
        _host = (pid, f"{socket.gethostname()}:{pid}")
    return f"{_host[1]}:{kind}:{os.urandom(4).hex()}"


def outcome(attempt: Attempt) -> JobState:
    """The state an attempt ended in; ``LeaseLostError`` if its result was rejected, with a
    message that says whether the job was cancelled or taken over."""
    if attempt.transition is not None and attempt.applied:
        return attempt.transition.to
    job_id = attempt.job.id
    if attempt.cancelled:
        raise LeaseLostError(
            f"job {job_id!r} was cancelled (store.cancel) while this attempt ran: its result "
            f"was discarded and the job stays cancelled; store.retry({job_id!r}) queues it again"
        )
    raise LeaseLostError(
        f"job {job_id!r}: lease lost (another worker took the job over, or ended it after the "
        "lease expired); result rejected"
    )


class RunNow:
    """Runs given jobs now, in the calling thread (or event loop), with full tracking."""

    def __init__(
        self,
        writer: sa.Engine,
        runner: Runner,
        *,
        get_job: Callable[[str], Job | None],
        cycle: Callable[[str, Sequence[Attempt]], Any],
        reject_late: Callable[[str, Attempt], Any],
    ) -> None:
        self._writer = writer
        self._runner = runner
        self._get_job = get_job
        self._cycle = cycle
        self._reject_late = reject_late

    def run(self, definition: Definition, job_id: str) -> JobState:
        """Claim, run and complete one job in this thread; its new state."""
        owner = new_owner("run")
        attempt = self.claim(definition, job_id, owner)
        if definition.timeout is not None and not definition.is_async:
            return self._run_limited(owner, attempt, definition.timeout)
        try:
            self._runner.invoke_sync(attempt)
        finally:
            self.complete(owner, attempt)
        return outcome(attempt)

    def _run_limited(self, owner: str, attempt: Attempt, seconds: float) -> JobState:
        """A sync function with a timeout runs on a thread of its own (a thread cannot be
        stopped): past ``seconds`` the attempt is recorded as timed out (retried per its
        policy) and this call returns; the function's late result, when it comes, is
        offered to the fence, rejected and recorded, as a worker's would be."""
        lock = threading.Lock()
        state = {"finished": False, "abandoned": False}

        def call() -> None:
            try:
                self._runner.invoke_sync(attempt)
            finally:
                with lock:
                    state["finished"] = True
                    late = state["abandoned"]
                if late:
                    self._reject_late(owner, attempt)

        thread = threading.Thread(target=call, name=f"otelkit-job-{attempt.job.id}", daemon=True)
        thread.start()
        thread.join(seconds)
        with lock:
            state["abandoned"] = not state["finished"]
        if not state["abandoned"]:
            thread.join()
            self.complete(owner, attempt)
            return outcome(attempt)
        timed_out = self._runner.timed_out(attempt, seconds)
        self.complete(owner, timed_out)
        return outcome(timed_out)

    async def run_async(self, definition: Definition, job_id: str) -> JobState:
        """Like :meth:`run`, awaiting an async function in the running loop."""
        owner = new_owner("run")
        attempt = await asyncio.to_thread(self.claim, definition, job_id, owner)
        try:
            await self._runner.invoke_async(attempt)
        finally:
            await asyncio.to_thread(self.complete, owner, attempt)
        return outcome(attempt)

    def claim(self, definition: Definition, job_id: str, owner: str) -> Attempt:
        """Claim the job (fenced, leased on the database clock) and open its span."""
        with (
            suppress_instrumentation(),
            require_schema(self._writer),
            self._writer.begin() as conn,
        ):
            row = _claim.claim_by_id(conn, owner=owner, job_id=job_id)
            if row is not None and row.name != definition.name:
                raise ValueError(  # rolls the claim back
                    f"job {job_id!r} belongs to {row.name!r}, not to {definition.name!r}"
                )
        if row is None:
            job = self._get_job(job_id)
            if job is None:
                raise JobNotFoundError(f"no job with id {job_id!r}")
            held = job.state is JobState.RUNNING
            raise JobNotReadyError(
                f"job {job_id!r} is {job.state.value}"
                + (f" under a valid lease of {job.lease_owner}" if held else "")
            )
        return self._runner.begin(row._mapping, owner)

    def complete(self, owner: str, attempt: Attempt) -> None:
        """Apply the attempt's transition (fenced) and its follow-ups, then close its span
        and record metrics.

        If storing the outcome fails, the lease is no longer renewed (it expires and the
        job is taken over) and the span is closed; the error propagates.
        """
        try:
            self._cycle(owner, [attempt])
        except BaseException:
            self._runner.abandon(attempt)
            raise
