"""The preloader: cache-aside reads that warm hot and related keys ahead of demand.

The state lives in :class:`~otelkit.preload._core.PreloadCore`; this module runs loads.
``get`` runs a missed key's loader on the reader's thread, ``aget`` in a task of the
reader's event loop; both then wait for the one shared result. The cache is called through
``_cache_io.CacheAccess``: a sync :class:`Cache` directly, an :class:`AsyncCache` awaited on
the reader's loop, so ``aget`` over an async cache never blocks the loop. Related and refresh loads
run in the background: async loaders on the loop async readers use, others on an executor
of ``concurrency`` threads. One timer of the injected clock drives the refresher.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import MeterProvider

from otelkit._clock import REAL_CLOCK, Clock, TimerHandle
from otelkit._errors import report_internal_error
from otelkit._version import __version__
from otelkit.errors import InvalidOptionError, OptionTypeError
from otelkit.preload._batch import RefreshBatch
from otelkit.preload._cache import AsyncCache, Cache
from otelkit.preload._cache_io import CacheAccess, check_cache
from otelkit.preload._core import PreloadCore, Read
from otelkit.preload._loading import Flight, Loader, is_async_callable, run_awaitable
from otelkit.preload._options import check_key
from otelkit.preload._settings import Settings

__all__ = ["Preloader"]

V = TypeVar("V")

_NEW, _RUNNING, _CLOSED = "new", "running", "closed"


class Preloader(Generic[V]):
    """Reads through ``cache`` (a :class:`Cache` or an :class:`AsyncCache`), loading each miss once, prefetching related keys and
    refreshing hot keys shortly before their entries expire.

    Options (keyword-only): ``ttl`` of written entries (s); ``half_life`` of popularity
    scores (s); ``threshold``, the score a key needs to be preloaded, which moves within
    ``threshold_range`` (default threshold / 10 to threshold * 10) when ``adaptive`` so
    that about ``target_waste`` of preloads go unused; ``max_keys`` tracked;
    ``concurrency``, background loads at once; ``refresh_ahead``, the fraction of the TTL
    left when a hot entry is reloaded; ``refresh_interval`` of the refresher (s);
    ``max_related`` keys remembered per key; ``executor`` for background loads (default:
    a thread pool of ``concurrency`` threads); ``clock``, ``tracer_provider`` and
    ``meter_provider`` default to the real clock and the OTel globals.

    Reads work in every state: the first read starts the preloader if :meth:`start` (or
    ``with`` / ``async with``) has not; after :meth:`close` reads go on as plain
    cache-aside reads, without prefetching or refreshing. See ``docs/preload.md``.
    """

    def __init__(
        self,
        cache: Cache[V] | AsyncCache[V],
        *,
        ttl: float = 60.0,
        half_life: float = 60.0,
        threshold: float = 1.0,
        max_keys: int = 10_000,
        concurrency: int = 4,
        refresh_ahead: float = 0.2,
        refresh_interval: float = 1.0,
        max_related: int = 16,
        adaptive: bool = True,
        target_waste: float = 0.1,
        threshold_range: tuple[float, float] | None = None,
        executor: concurrent.futures.Executor | None = None,
        clock: Clock | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        is_async = check_cache("Preloader", cache)
        settings = Settings.resolve(
            ttl=ttl,
            half_life=half_life,
            threshold=threshold,
            max_keys=max_keys,
            concurrency=concurrency,
            refresh_ahead=refresh_ahead,
            refresh_interval=refresh_interval,
            max_related=max_related,
            adaptive=adaptive,
            target_waste=target_waste,
            threshold_range=threshold_range,
            executor=executor,
            clock=clock,
        )
        self._clock = clock or REAL_CLOCK
        self._core: PreloadCore[V] = PreloadCore(settings, self._clock, meter_provider)
        self._cache: CacheAccess[V] = CacheAccess(cache, is_async, lambda: self._home)
        self._lock = self._core.lock
        self._state = _NEW
        self._executor = executor
        self._owns_executor = executor is None
        self._home: asyncio.AbstractEventLoop | None = None  # where async loaders run
        self._remote: set[concurrent.futures.Future[None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: TimerHandle | None = None
        self._local = threading.local()
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(
            "otelkit.preload", __version__
        )

    # ------------------------------------------------------------------ reading

    def get(self, key: str, loader: Loader[V] | None = None, related: Iterable[str] = ()) -> V:
        """The cached value of ``key``, else load it (once, however many readers wait).

        ``loader(key)`` (sync or async) defaults to the one registered for the key and is
        remembered for refreshes. ``related`` keys (read with this one) are remembered and
        prefetched when their loaders are known and this key is popular enough. A loader's
        exception reaches every reader waiting for that load; a failing cache does not
        raise (the read counts as a miss). Over an :class:`AsyncCache`, ``get`` needs the
        event loop of async readers running in another thread; inside a running loop it
        raises ``TypeError``: use ``aget`` there.
        """
        owner = "Preloader.get"
        related_keys = self._core.check_read(owner, key, loader, related)
        if self._cache.is_async:
            _refuse_inside_loop(owner)
        read = self._begin(owner, key, loader, related_keys, self._cache.get(key))
        if read.flight is None:
            return read.value  # type: ignore[return-value]
        if read.lead:
            self._run_sync(read.flight)
        return read.flight.future.result()

    async def aget(
        self, key: str, loader: Loader[V] | None = None, related: Iterable[str] = ()
    ) -> V:
        """:meth:`get` for async callers; a sync loader runs in a worker thread, an async
        cache is awaited (a sync cache is called directly: keep it quick)."""
        loop = asyncio.get_running_loop()
        self._adopt_loop(loop)
        owner = "Preloader.aget"
        related_keys = self._core.check_read(owner, key, loader, related)
        value = await self._cache.aget(key)
        read = self._begin(owner, key, loader, related_keys, value)
        if read.flight is None:
            return read.value  # type: ignore[return-value]
        if read.lead:
            # A task of its own: one reader's cancellation must not abort a shared load.
            task = loop.create_task(self._run_async(read.flight))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(asyncio.wrap_future(read.flight.future))

    def register(self, key: str, loader: Loader[V]) -> None:
        """Use ``loader(key)`` to load exactly ``key`` (for refresh and related prefetch)."""
        self._core.register(check_key("Preloader.register", key), loader, prefix=False)

    def register_prefix(self, prefix: str, loader: Loader[V]) -> None:
        """Use ``loader(key)`` for every key starting with ``prefix`` (longest prefix wins)."""
        check_key("Preloader.register_prefix", prefix, "prefix")
        self._core.register(prefix, loader, prefix=True)

    def invalidate(self, key: str) -> None:
        """Delete ``key`` from the cache; an unused preload of it counts as wasted.

        The cache's error propagates: an invalidation that did not happen is not hidden.
        """
        owner = "Preloader.invalidate"
        check_key(owner, key)
        if self._cache.is_async:
            _refuse_inside_loop(owner)
        self._cache.delete(key)
        self._core.invalidated(key)

    async def ainvalidate(self, key: str) -> None:
        """:meth:`invalidate` for async callers."""
        self._adopt_loop(asyncio.get_running_loop())
        check_key("Preloader.ainvalidate", key)
        await self._cache.adelete(key)
        self._core.invalidated(key)

    @property
    def threshold(self) -> float:
        """The score a key needs to be preloaded now (moves when ``adaptive``)."""
        return self._core.threshold

    def hot_keys(self, limit: int = 10) -> list[tuple[str, float]]:
        """The ``limit`` most popular keys and their decayed scores, hottest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidOptionError(
                f"Preloader.hot_keys: limit must be an int >= 0, got {limit!r}"
            )
        return self._core.hot_keys(limit)

    def score(self, key: str) -> float:
        """The decayed popularity score of ``key`` now (0.0 when not tracked)."""
        return self._core.score(check_key("Preloader.score", key))

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Preloader[V]:
        """Start prefetching and the background refresher (idempotent); returns ``self``."""
        with self._lock:
            if self._state == _CLOSED:
                raise RuntimeError("Preloader: start() after close(); create a new Preloader")
            if self._state == _RUNNING:
                return self
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self._core.settings.concurrency,
                    thread_name_prefix="otelkit-preload",
                )
            self._state = _RUNNING
            self._core.prefetching = True
        self._arm()
        return self

    def close(self) -> None:
        """Stop refreshing and prefetching; wait for background loads already running.

        Reads keep working afterwards, as plain cache-aside reads. Idempotent.
        """
        with self._lock:
            if self._state == _CLOSED:
                return
            self._state = _CLOSED
            self._core.prefetching = False
            timer, self._timer = self._timer, None
            remote = list(self._remote)
        if timer is not None:
            timer.cancel()
        for future in remote:
            future.cancel()
        if self._owns_executor and self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        for flight in self._core.background_flights():  # queued: they will never run
            self._core.settle(flight, None, RuntimeError("the preloader was closed"))
        self._core.metrics.close()

    def __enter__(self) -> Preloader[V]:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Preloader[V]:
        self._home = asyncio.get_running_loop()
        return self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        # close() waits for worker threads, which may need this loop: wait off the loop.
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    # ---------------------------------------------------------------- running loads

    def _adopt_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._home is None or self._home.is_closed():
            self._home = loop

    def _begin(
        self,
        owner: str,
        key: str,
        loader: Loader[V] | None,
        related_keys: tuple[str, ...],
        value: V | None,
    ) -> Read[V]:
        if self._state == _NEW:
            self.start()  # lazy start: a first read starts prefetching and the refresher
        read = self._core.begin(owner, key, loader, related_keys, value)
        for flight in read.prefetch:
            self._launch(flight)
        return read

    def _run_sync(self, flight: Flight[V]) -> None:
        """Run ``flight``'s loader on this thread (an async loader on a loop, see
        :func:`run_awaitable`)."""
        with self._loading(flight) as outcome:
            value = flight.loader(flight.key)
            if inspect.isawaitable(value):
                value = run_awaitable(value, self._home, flight.key)
            outcome.append(value)
            if value is not None:
                outcome.append(self._cache.set(flight.key, value, self._core.settings.ttl))

    async def _run_async(self, flight: Flight[V]) -> None:
        """Run ``flight``'s loader on this loop (a sync loader in a worker thread)."""
        with self._loading(flight) as outcome:
            if is_async_callable(flight.loader):
                value = await flight.loader(flight.key)  # type: ignore[misc]
            else:
                loop = asyncio.get_running_loop()
                value = await loop.run_in_executor(None, flight.loader, flight.key)
                if inspect.isawaitable(value):
                    value = await value
            outcome.append(value)
            if value is not None:
                outcome.append(await self._cache.aset(flight.key, value, self._core.settings.ttl))

    @contextlib.contextmanager
    def _loading(self, flight: Flight[V]) -> Iterator[list[object]]:
        """Around one loader call: its batch's trace context, its timing, its completion.

        The body appends the loaded value, then whether the cache stored it (nothing for
        ``None``, which is never cached). An ``Exception`` goes to the flight's readers
        (and is contained here); anything else (cancellation, exit) also propagates.
        """
        started = self._clock.monotonic()
        token = otel_context.attach(flight.batch.context) if flight.batch else None
        outcome: list[object] = []
        try:
            yield outcome
        except BaseException as exc:
            self._finish(flight, None, exc, started)
            if not isinstance(exc, Exception):
                raise
        else:
            self._finish(flight, outcome[0], None, started, stored=outcome[1:] == [True])
        finally:
            if token is not None:
                otel_context.detach(token)

    def _launch(self, flight: Flight[V]) -> None:
        """Start a background (related or refresh) load without waiting for it."""
        home = self._home
        try:
            if is_async_callable(flight.loader) and home is not None and home.is_running():
                remote = asyncio.run_coroutine_threadsafe(self._run_async(flight), home)
                with self._lock:
                    self._remote.add(remote)
                remote.add_done_callback(self._forget_remote)
            else:
                assert self._executor is not None
                self._executor.submit(self._run_sync, flight)
        except Exception as exc:  # noqa: BLE001 - e.g. the executor shut down: fail the load
            self._finish(flight, None, exc, self._clock.monotonic())

    def _finish(
        self,
        flight: Flight[V],
        value: object,
        error: BaseException | None,
        started: float,
        stored: bool = False,
    ) -> None:
        """Complete a load; start the queued refreshes its worker can take now."""
        follow, skipped = self._core.complete(flight, value, error, started, stored)
        self._start_batch(follow, skipped, flight.batch)
        if flight.batch is not None:
            flight.batch.done(error is None)

    def _forget_remote(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._remote.discard(future)

    # ---------------------------------------------------------------- the refresher

    def _arm(self) -> None:
        # Never call the clock under the lock: FakeClock.advance runs _tick under its own.
        with self._lock:
            if self._state != _RUNNING:
                return
        handle = self._clock.call_later(self._core.settings.refresh_interval, self._tick)
        with self._lock:
            if self._state != _RUNNING:
                handle.cancel()
            else:
                self._timer = handle

    def _start_batch(
        self, launch: list[Flight[V]], skipped: int, batch: RefreshBatch | None
    ) -> None:
        """Launch refresh flights as (part of) a batch: one span over the batch's loads."""
        if not launch:
            return
        if batch is None:
            batch = RefreshBatch(self._tracer)
        batch.add(len(launch), skipped)
        for flight in launch:
            flight.batch = batch
        queue: list[Flight[V]] | None = getattr(self._local, "queue", None)
        if queue is not None:
            # An executor ran a load inline and its end freed a worker: the outer loop below
            # launches the follow-ups, so chains of refreshes never deepen the stack.
            queue.extend(launch)
            return
        self._local.queue = queue = list(launch)
        try:
            while queue:
                self._launch(queue.pop())
        finally:
            self._local.queue = None

    def _tick(self) -> None:
        try:
            launch, skipped = self._core.due_refreshes()
            self._start_batch(launch, skipped, None)
        except Exception as exc:  # noqa: BLE001 - the refresher must survive any failure
            report_internal_error("preload.refresh", exc)
        finally:
            self._arm()


def _refuse_inside_loop(owner: str) -> None:
    """A sync call that would wait for an async cache on this thread's running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise OptionTypeError(
        f"{owner}: the cache is async and this was called inside a running event loop; "
        "use the async method (aget / ainvalidate) there"
    )
