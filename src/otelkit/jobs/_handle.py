"""What ``fn.enqueue(...)`` returns: the job's id (a ``str``), whether it was a duplicate,
and a way to wait for the job's final state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator
from typing import Any

from otelkit._validate import check_positive
from otelkit.jobs._model import Job, JobNotFoundError

__all__ = ["EnqueuedJob"]

_FIRST_POLL = 0.005
_MAX_POLL = 0.25  # seconds between polls once the job has run for a while


class EnqueuedJob(str):
    """The id of an enqueued job (it *is* that ``str``), plus what the enqueue learnt.

    ``duplicate`` is true when a job holding the same unique key already existed: no job was
    added, and this is the existing job's id. :meth:`wait` (or ``await``) blocks until the
    job is final and returns its :class:`Job` snapshot (state, ``result``, errors).
    """

    duplicate: bool
    _get: Callable[[str], Job | None]

    def __new__(
        cls, job_id: str, *, duplicate: bool, get: Callable[[str], Job | None]
    ) -> EnqueuedJob:
        handle = super().__new__(cls, job_id)
        handle.duplicate = duplicate
        handle._get = get
        return handle

    @property
    def id(self) -> str:
        """The job's id (a plain ``str``)."""
        return str(self)

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (e.g. to another process) as the id
        return (str, (str(self),))

    def __repr__(self) -> str:
        return f"EnqueuedJob({str(self)!r}, duplicate={self.duplicate})"

    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job is final (succeeded, failed or cancelled); its snapshot.

        Polls the store (every 5 ms at first, backing off to 250 ms). Raises
        ``TimeoutError`` after ``timeout`` seconds (None: no limit) and
        :class:`~otelkit.jobs.JobNotFoundError` if the job was deleted meanwhile.
        """
        deadline = _deadline("EnqueuedJob.wait", timeout)
        pause = _FIRST_POLL
        while True:
            job = self._final()
            if job is not None:
                return job
            pause = _sleep_for(deadline, pause, timeout, self)
            time.sleep(pause)

    async def wait_async(self, timeout: float | None = None) -> Job:
        """:meth:`wait` for async code: the polls run in a thread, the loop never blocks."""
        deadline = _deadline("EnqueuedJob.wait_async", timeout)
        pause = _FIRST_POLL
        while True:
            job = await asyncio.to_thread(self._final)
            if job is not None:
                return job
            pause = _sleep_for(deadline, pause, timeout, self)
            await asyncio.sleep(pause)

    def __await__(self) -> Generator[Any, None, Job]:
        """``await handle``: :meth:`wait_async` without a time limit."""
        return self.wait_async().__await__()

    def _final(self) -> Job | None:
        job = self._get(str(self))
        if job is None:
            raise JobNotFoundError(f"job {str(self)!r} no longer exists (deleted or pruned)")
        return job if job.state.is_final else None


def _deadline(where: str, timeout: float | None) -> float | None:
    if timeout is None:
        return None
    return time.monotonic() + check_positive(where, "timeout", timeout)


def _sleep_for(deadline: float | None, pause: float, timeout: float | None, job: str) -> float:
    """The next pause (backing off), or ``TimeoutError`` once the deadline passed."""
    if deadline is None:
        return min(pause * 2, _MAX_POLL)
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"job {str(job)!r} was not final within {timeout} s")
    return min(pause * 2, _MAX_POLL, left)
