"""``@store.job``: a job function that can enqueue itself and run one given job now."""

from __future__ import annotations

import asyncio
import functools
import keyword
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from otelkit.errors import InvalidOptionError
from otelkit.jobs._attempt import check_timeout
from otelkit.jobs._definition import Definition
from otelkit.jobs._enqueue import Item, Options, items_of, make_options, unique_key_of
from otelkit.jobs._handle import EnqueuedJob
from otelkit.jobs._limits import Limits, check_limit_key, check_limits
from otelkit.jobs._model import Backoff, Job, JobState

if TYPE_CHECKING:
    from otelkit.jobs._produce import Producer
    from otelkit.jobs._store import JobStore

__all__ = ["JobFunction", "default_name", "define"]

R = TypeVar("R")
_RunAfter = datetime | timedelta | float | None


def define(
    fn: Callable[[Job], Any],
    *,
    name: str | None,
    queue: str,
    max_attempts: int,
    lease: float,
    backoff: Backoff | None,
    timeout: float | timedelta | None = None,
    limits: Limits | None = None,
    limit_key: Callable[[Any], Any] | None = None,
) -> Definition:
    """Validate the decorator's options; a :class:`Definition`."""
    if not callable(fn):
        raise TypeError(
            "store.job: decorate a function (use @store.job or @store.job(name=..., ...)), "
            f"got {type(fn).__name__}"
        )
    if name is None:
        name = default_name(fn)
    if not isinstance(name, str) or not name or len(name) > 200:
        raise ValueError(f"store.job: name must be a non-empty str (<= 200 chars), got {name!r}")
    if not isinstance(queue, str) or not queue or len(queue) > 200:
        raise ValueError(f"store.job: queue must be a non-empty str (<= 200 chars), got {queue!r}")
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError(f"store.job: max_attempts must be an int >= 1, got {max_attempts!r}")
    if (
        isinstance(lease, bool)
        or not isinstance(lease, (int, float))
        or not math.isfinite(lease)
        or lease <= 0
    ):
        raise ValueError(f"store.job: lease must be a number of seconds > 0, got {lease!r}")
    if backoff is not None and not isinstance(backoff, Backoff):
        raise TypeError(f"store.job: backoff must be an otelkit.jobs.Backoff, got {backoff!r}")
    timeout = check_timeout(timeout, option="store.job: timeout")
    if limits is not None:
        check_limits(f"store.job({name!r})", limits)
    if limit_key is not None and not callable(limit_key):
        raise InvalidOptionError(
            f"store.job({name!r}): limit_key must be a function of a job's data returning its "
            f"key (e.g. lambda data: data['tenant']), got {type(limit_key).__name__}; to give "
            "a key per job use fn.enqueue(data, limit_key='...')"
        )
    return Definition(
        fn=fn,
        name=name,
        queue=queue,
        max_attempts=max_attempts,
        lease=float(lease),
        backoff=backoff or Backoff(),
        timeout=timeout,
        limits=limits,
        limit_key=limit_key,
    )


def default_name(fn: Callable[..., Any]) -> str:
    """``module.qualname``, with the importable name of the module for ``__main__``.

    A worker process finds a function by this name, so it must name a module the worker can
    import: a script ``thumbs.py`` run as ``python thumbs.py`` defines ``thumbs.<function>``
    (``python -m pkg.mod``: ``pkg.mod.<function>``). Where ``__main__`` has no importable
    name (an interactive session, ``python -c``, a file like ``my-jobs.py``) there is no
    default: ``ValueError`` asks for ``name=``.
    """
    module = getattr(fn, "__module__", None) or "__main__"
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
    if module == "__main__":
        main_name = _main_module_name()
        if main_name is None:
            raise ValueError(
                f"store.job: {qualname} is defined in __main__ (an interactive session, "
                "python -c, or a script whose file name is not a module name), which no "
                "worker process can import, so a worker could never run its jobs; pass "
                "name=... (and register the same function under that name in the module "
                "the worker imports: otelkit jobs worker --import MODULE), or define it in "
                "a module"
            )
        module = main_name
    return f"{module}.{qualname}"


def _main_module_name() -> str | None:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    spec_name = getattr(spec, "name", None)
    if isinstance(spec_name, str) and spec_name and spec_name != "__main__":
        return spec_name  # python -m pkg.mod
    path = getattr(main, "__file__", None)
    if isinstance(path, str) and path:
        stem = Path(path).stem
        if stem.isidentifier() and not keyword.iskeyword(stem):
            return stem
    return None


def _one(
    where: str,
    data: Any,
    id: str | None,
    unique_key: str | None,
    unique: bool,
    limit_key: str | int | None,
    run_after: _RunAfter,
    priority: int,
    unique_for: timedelta | float | None,
) -> tuple[Item, Options]:
    """The item and options of a single ``enqueue``/``aenqueue`` call, checked."""
    item = Item(
        data=data,
        id=id,
        unique_key=unique_key_of(where, data, unique_key, unique),
        limit_key=check_limit_key(where, limit_key),
    )
    options = make_options(where, run_after=run_after, priority=priority, unique_for=unique_for)
    return item, options


class JobFunction(Generic[R]):
    """A function registered as a job: call it directly, or enqueue it and let a worker run it.

    ``R`` is what the function returns (a coroutine for ``async def`` functions).
    """

    def __init__(self, store: JobStore, definition: Definition) -> None:
        self._store = store
        self.definition = definition
        functools.update_wrapper(self, definition.fn)

    @property
    def name(self) -> str:
        """The job name stored in each row (default: ``module.qualname``)."""
        return self.definition.name

    @property
    def queue(self) -> str:
        """The queue this function's jobs go to."""
        return self.definition.queue

    def __call__(self, job: Job) -> R:
        """Call the function directly (no store, no tracking)."""
        result: R = self.definition.fn(job)
        return result

    def enqueue(
        self,
        data: Any = None,
        *,
        id: str | None = None,
        run_after: _RunAfter = None,
        priority: int = 0,
        unique_key: str | None = None,
        unique: bool = False,
        unique_for: timedelta | float | None = None,
        limit_key: str | int | None = None,
        connection: Any = None,
        session: Any = None,
    ) -> EnqueuedJob:
        """Store a new job for this function; its id (an :class:`EnqueuedJob`, a ``str``).

        ``data`` must be JSON-serialisable; ``id`` defaults to a random hex id (a duplicate
        raises ``ValueError``); ``run_after`` is an aware datetime, a timedelta or seconds
        from now (database clock); higher ``priority`` runs first.

        Unique jobs: with ``unique_key="..."`` (or ``unique=True``: the key is the data), no
        second job of this function with that key is added while one waits or runs (with
        ``unique_for``: while one was enqueued in the same period of that many seconds,
        aligned on the epoch, unless it failed or was cancelled); the result is then the
        existing job's id with ``duplicate`` set.

        ``limit_key``: the job's key for its queue's per-key limits and fair claims
        (default: the function's ``limit_key`` applied to ``data``).

        ``connection`` (a SQLAlchemy ``Connection`` in a transaction) or ``session`` (an
        ORM ``Session``): insert in the caller's transaction, so the job exists only if the
        caller commits.
        """
        where = f"{self.name}.enqueue"
        item, options = _one(
            where, data, id, unique_key, unique, limit_key, run_after, priority, unique_for
        )
        return self._producer().enqueue(
            where, self.definition, [item], options, connection=connection, session=session
        )[0]

    async def aenqueue(
        self,
        data: Any = None,
        *,
        id: str | None = None,
        run_after: _RunAfter = None,
        priority: int = 0,
        unique_key: str | None = None,
        unique: bool = False,
        unique_for: timedelta | float | None = None,
        limit_key: str | int | None = None,
        connection: Any = None,
        session: Any = None,
    ) -> EnqueuedJob:
        """:meth:`enqueue` for async code, through an async driver (psycopg async or
        aiosqlite: ``pip install 'otelkit[async]'``); the event loop never blocks on the
        database. ``connection``/``session``: an ``AsyncConnection``/``AsyncSession``."""
        where = f"{self.name}.aenqueue"
        item, options = _one(
            where, data, id, unique_key, unique, limit_key, run_after, priority, unique_for
        )
        handles = await self._producer().aenqueue(
            where, self.definition, [item], options, connection=connection, session=session
        )
        return handles[0]

    def enqueue_many(
        self,
        items: Iterable[Any],
        *,
        run_after: _RunAfter = None,
        priority: int = 0,
        unique: bool = False,
        unique_keys: Sequence[str | None] | None = None,
        unique_for: timedelta | float | None = None,
        connection: Any = None,
        session: Any = None,
    ) -> list[EnqueuedJob]:
        """Store one job per item of ``items`` (each the ``data``) in one statement.

        The options are those of :meth:`enqueue`, but keys are per item: ``unique_keys`` is
        a list of one key per item, in the order of ``items`` (a str, or None for an item
        without one); ``unique=True``: each item's data is its key.
        """
        where = f"{self.name}.enqueue_many"
        return self._producer().enqueue(
            where,
            self.definition,
            items_of(where, list(items), unique=unique, unique_keys=unique_keys),
            make_options(where, run_after=run_after, priority=priority, unique_for=unique_for),
            connection=connection,
            session=session,
        )

    async def aenqueue_many(
        self,
        items: Iterable[Any],
        *,
        run_after: _RunAfter = None,
        priority: int = 0,
        unique: bool = False,
        unique_keys: Sequence[str | None] | None = None,
        unique_for: timedelta | float | None = None,
        connection: Any = None,
        session: Any = None,
    ) -> list[EnqueuedJob]:
        """:meth:`enqueue_many` for async code (see :meth:`aenqueue`)."""
        where = f"{self.name}.aenqueue_many"
        return await self._producer().aenqueue(
            where,
            self.definition,
            items_of(where, list(items), unique=unique, unique_keys=unique_keys),
            make_options(where, run_after=run_after, priority=priority, unique_for=unique_for),
            connection=connection,
            session=session,
        )

    def _producer(self) -> Producer:
        return self._store._backend.producer

    def run(self, job_id: str) -> JobState:
        """Run the given job now in this thread, with full tracking; its new state.

        The job must be queued or retrying (``run_after`` is ignored) or running under an
        expired lease. A failure of the function is recorded (``retrying``/``failed``), not
        raised; ``KeyboardInterrupt``/``SystemExit`` release the job and propagate.
        Raises ``JobNotFoundError``, ``JobNotReadyError``, or ``LeaseLostError`` if the
        lease was lost before the attempt ended (its message says when that was because
        the job was cancelled).
        """
        if self.definition.is_async and _loop_running():
            raise RuntimeError(
                f"{self.name}.run() cannot start an event loop inside a running one; "
                "use await fn.run_async(job_id)"
            )
        return self._store._backend.run_now(self.definition, job_id)

    async def run_async(self, job_id: str) -> JobState:
        """Like :meth:`run`, awaited; cancellation releases the job and propagates."""
        return await self._store._backend.run_now_async(self.definition, job_id)

    def __repr__(self) -> str:
        return f"<JobFunction {self.name!r} queue={self.queue!r}>"


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
