"""The preloader: cache-aside reads that warm hot and related keys ahead of demand.

One core serves both kinds of callers. :meth:`Preloader._begin` does everything a read
needs under one lock (cache lookup, access record, single-flight bookkeeping, related
prefetch); :meth:`Preloader._complete` does everything a finished load needs. ``get`` and
``aget`` differ only in how they run the loader and how they wait for the shared result.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import math
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Generic, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import MeterProvider

from otelkit._clock import REAL_CLOCK, Clock, TimerHandle
from otelkit._errors import report_internal_error
from otelkit._version import __version__
from otelkit.preload._batch import RefreshBatch
from otelkit.preload._entries import Entries
from otelkit.preload._loading import (
    ErrorLog,
    Flight,
    Loader,
    LoaderRegistry,
    is_async_callable,
    run_awaitable,
)
from otelkit.preload._metrics import PreloadMetrics
from otelkit.preload._options import check_key, check_related
from otelkit.preload._scores import Popularity
from otelkit.preload._settings import Settings
from otelkit.preload.cache import Cache

__all__ = ["Preloader"]

V = TypeVar("V")

_NEW, _RUNNING, _CLOSED = "new", "running", "closed"
_ADAPT_RATE = 0.1


class Preloader(Generic[V]):
    """Reads through ``cache``, loading misses once, prefetching related keys and refreshing
    hot keys shortly before their entries expire.

    See ``docs/preload.md`` for the options, the scoring and the metrics. Call
    :meth:`start` (or use ``with`` / ``async with``) before reading, :meth:`close` after.
    """

    def __init__(
        self,
        cache: Cache[V],
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
        for method in ("get", "set", "delete"):
            if not callable(getattr(cache, method, None)):
                raise TypeError(
                    f"Preloader: cache must have get(key), set(key, value, *, ttl) and "
                    f"delete(key) methods (an otelkit.preload.Cache); {cache!r} lacks {method}()"
                )
        s = Settings.resolve(
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
        self._cache = cache
        self._s = s
        self._clock = clock or REAL_CLOCK
        self._lock = threading.Lock()
        self._state = _NEW
        self._threshold = s.threshold
        self._pop = Popularity(
            half_life=s.half_life, max_keys=s.max_keys, max_related=s.max_related
        )
        self._entries = Entries(ttl=s.ttl, lead=s.ttl * s.refresh_ahead)
        self._loaders: LoaderRegistry[V] = LoaderRegistry()
        self._flights: dict[str, Flight[V]] = {}
        self._background = 0  # related and refresh loads in flight
        self._errors = ErrorLog(window=max(60.0, s.ttl), max_keys=s.max_keys)
        self._executor = executor
        self._owns_executor = executor is None
        self._home: asyncio.AbstractEventLoop | None = None  # where async loaders run
        self._remote: set[concurrent.futures.Future[None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: TimerHandle | None = None
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(
            "otelkit.preload", __version__
        )
        self._metrics = PreloadMetrics(
            meter_provider, tracked_keys=self._pop.__len__, threshold=lambda: self._threshold
        )

    # ----------------------------------------------------------------- public API

    @property
    def threshold(self) -> float:
        """The score a key needs to be preloaded now (moves when ``adaptive``)."""
        return self._threshold

    def register(self, key: str, loader: Loader[V]) -> None:
        """Use ``loader(key)`` to load exactly ``key`` (for refresh and related prefetch)."""
        self._register(check_key("Preloader.register", key), loader, prefix=False)

    def register_prefix(self, prefix: str, loader: Loader[V]) -> None:
        """Use ``loader(key)`` for every key starting with ``prefix`` (longest prefix wins)."""
        self._register(check_key("Preloader.register_prefix", prefix, "prefix"), loader, True)

    def get(self, key: str, loader: Loader[V] | None = None, related: Iterable[str] = ()) -> V:
        """The cached value of ``key``, else load it (once, however many readers wait).

        ``loader(key)`` (sync or async) defaults to the one registered for the key.
        ``related`` keys are remembered and prefetched when their loaders are known.
        """
        flight, value, lead = self._begin("Preloader.get", key, loader, related)
        if flight is None:
            return value  # type: ignore[return-value]
        if lead:
            self._run_sync(flight)
        return flight.future.result()

    async def aget(
        self, key: str, loader: Loader[V] | None = None, related: Iterable[str] = ()
    ) -> V:
        """:meth:`get` for async callers; a sync loader runs in a worker thread."""
        loop = asyncio.get_running_loop()
        if self._home is None or self._home.is_closed():
            self._home = loop
        flight, value, lead = self._begin("Preloader.aget", key, loader, related)
        if flight is None:
            return value  # type: ignore[return-value]
        if lead:
            # A task of its own: one reader's cancellation must not abort a shared load.
            task = loop.create_task(self._run_async(flight))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(asyncio.wrap_future(flight.future))

    def invalidate(self, key: str) -> None:
        """Delete ``key`` from the cache; an unused preload of it counts as wasted."""
        check_key("Preloader.invalidate", key)
        self._cache.delete(key)
        with self._lock:
            wasted = self._entries.forget(key)
            self._adapt(0, wasted is not None)
        if wasted:
            self._metrics.wasted(wasted)

    def hot_keys(self, limit: int = 10) -> list[tuple[str, float]]:
        """The ``limit`` most popular keys and their decayed scores, hottest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"Preloader.hot_keys: limit must be an int >= 0, got {limit!r}")
        with self._lock:
            return self._pop.top(limit, self._clock.monotonic())

    def score(self, key: str) -> float:
        """The decayed popularity score of ``key`` now (0.0 when not tracked)."""
        check_key("Preloader.score", key)
        with self._lock:
            return self._pop.score(key, self._clock.monotonic())

    def start(self) -> Preloader[V]:
        """Start the background refresher (idempotent); returns ``self``."""
        with self._lock:
            if self._state == _CLOSED:
                raise RuntimeError("Preloader: start() after close(); create a new Preloader")
            if self._state == _RUNNING:
                return self
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self._s.concurrency, thread_name_prefix="otelkit-preload"
                )
            self._state = _RUNNING
        self._arm()
        return self

    def close(self) -> None:
        """Stop refreshing and prefetching; wait for background loads that already run.

        Reads keep working afterwards as plain cache-aside reads. Idempotent.
        """
        with self._lock:
            if self._state == _CLOSED:
                return
            self._state = _CLOSED
            timer, self._timer = self._timer, None
            remote = list(self._remote)
        if timer is not None:
            timer.cancel()
        for future in remote:
            future.cancel()
        if self._owns_executor and self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            stranded = [f for f in self._flights.values() if f.reason != "demand"]
        for flight in stranded:  # queued loads that will never run now
            self._settle(flight, None, RuntimeError("the preloader was closed"))
        self._metrics.close()

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

    # ------------------------------------------------------------------ the core

    def _register(self, key: str, loader: Loader[V], prefix: bool) -> None:
        if not callable(loader):
            raise TypeError(f"Preloader.register: loader must be callable, got {loader!r}")
        with self._lock:
            (self._loaders.add_prefix if prefix else self._loaders.add)(key, loader)

    def _loader_for(self, key: str) -> Loader[V] | None:
        tracked = self._pop.peek(key)
        if tracked is not None and tracked.loader is not None:
            return tracked.loader  # type: ignore[return-value]
        return self._loaders.find(key)

    def _begin(
        self, owner: str, key: str, loader: Loader[V] | None, related: Iterable[str]
    ) -> tuple[Flight[V] | None, V | None, bool]:
        """Everything a read does before waiting: returns (flight, cached value, lead)."""
        check_key(owner, key)
        if loader is not None and not callable(loader):
            raise TypeError(f"{owner}: loader must be callable or None, got {loader!r}")
        related_keys = check_related(owner, related)
        if self._state == _NEW:
            raise RuntimeError(f"{owner}: call start() first (or use 'with Preloader(...)')")
        value = self._cache_get(key)
        now = self._clock.monotonic()
        used = wasted = None
        lead = False
        prefetch: list[Flight[V]] = []
        with self._lock:
            flight = None if value is not None else self._flights.get(key)
            chosen = loader
            if value is None and flight is None and chosen is None:
                chosen = self._loader_for(key)
                if chosen is None:
                    raise ValueError(
                        f"{owner}: no loader for key {key!r}: pass loader= or register() one"
                    )
            tracked, _ = self._pop.touch(key, now)
            if loader is not None:
                tracked.loader = loader
            for other in related_keys:
                self._pop.relate(tracked, other)
            if value is not None:
                used = self._entries.hit(key)
            else:
                wasted = self._entries.missed(key, now)
                if flight is None:
                    assert chosen is not None
                    flight = self._flights[key] = Flight(key, chosen, "demand")
                    lead = True
                else:
                    flight.joined = True
            self._adapt(used is not None, wasted is not None)
            if (
                tracked.related
                and self._state == _RUNNING
                and self._pop.score(key, now) >= self._threshold
            ):
                prefetch = self._plan_related(tracked.related, now)
        self._metrics.request(value is not None)
        if used:
            self._metrics.used(used)
        if wasted:
            self._metrics.wasted(wasted)
        for planned in prefetch:
            self._launch(planned)
        return flight, value, lead

    def _plan_related(self, related: dict[str, None], now: float) -> list[Flight[V]]:
        planned: list[Flight[V]] = []
        for other in reversed(related):  # the most recently related first
            if self._background >= self._s.concurrency:
                break
            if (
                other in self._flights
                or self._entries.live(other, now)
                or self._errors.backing_off(other, now)
            ):
                continue
            loader = self._loader_for(other)
            if loader is not None:
                planned.append(self._open_flight(other, loader, "related"))
        return planned

    def _open_flight(self, key: str, loader: Loader[V], reason: str) -> Flight[V]:
        flight = self._flights[key] = Flight(key, loader, reason)
        self._background += 1
        return flight

    def _adapt(self, used: int, wasted: int) -> None:
        """Raise the threshold on waste, lower it on use (under the lock).

        The steps are sized so that it settles where wasted / (used + wasted) equals
        ``target_waste``.
        """
        if not self._s.adaptive or not (used or wasted):
            return
        target = self._s.target_waste
        step = _ADAPT_RATE * ((1.0 - target) * wasted - target * used)
        low, high = self._s.threshold_range
        self._threshold = min(high, max(low, self._threshold * math.exp(step)))

    def _cache_get(self, key: str) -> V | None:
        try:
            return self._cache.get(key)
        except Exception as exc:  # noqa: BLE001 - a broken cache degrades to a miss
            report_internal_error("preload.cache", exc)
            return None

    def _run_sync(self, flight: Flight[V]) -> None:
        """Run ``flight``'s loader on this thread (an async loader on its own loop)."""
        started = self._clock.monotonic()
        token = otel_context.attach(flight.batch.context) if flight.batch else None
        try:
            value = flight.loader(flight.key)
            if inspect.isawaitable(value):
                value = run_awaitable(value, self._home, flight.key)
        except BaseException as exc:
            self._complete(flight, None, exc, started)
            if not isinstance(exc, Exception):
                raise
        else:
            self._complete(flight, value, None, started)
        finally:
            if token is not None:
                otel_context.detach(token)

    async def _run_async(self, flight: Flight[V]) -> None:
        """Run ``flight``'s loader on this loop (a sync loader in a worker thread)."""
        started = self._clock.monotonic()
        token = otel_context.attach(flight.batch.context) if flight.batch else None
        try:
            if is_async_callable(flight.loader):
                value = await flight.loader(flight.key)  # type: ignore[misc]
            else:
                loop = asyncio.get_running_loop()
                value = await loop.run_in_executor(None, flight.loader, flight.key)
                if inspect.isawaitable(value):
                    value = await value
        except BaseException as exc:
            self._complete(flight, None, exc, started)
            if not isinstance(exc, Exception):
                raise
        else:
            self._complete(flight, value, None, started)
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
        except Exception as exc:  # noqa: BLE001 - e.g. executor shut down: fail the load
            self._complete(flight, None, exc, self._clock.monotonic())

    def _forget_remote(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._remote.discard(future)

    def _complete(
        self, flight: Flight[V], value: Any, error: BaseException | None, started: float
    ) -> None:
        """Everything a finished load does: store, account, adapt, wake the readers."""
        key, reason, ok = flight.key, flight.reason, error is None
        stored = False
        if ok and value is not None:
            try:
                self._cache.set(key, value, ttl=self._s.ttl)
                stored = True
            except Exception as exc:  # noqa: BLE001 - the reader still gets its value
                report_internal_error("preload.cache", exc)
        now = self._clock.monotonic()
        wasted = None
        used = should_log = False
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
                if reason != "demand":
                    self._background -= 1
            if stored:
                used = flight.joined and reason != "demand"
                wasted = self._entries.wrote(key, now, reason, used)
                self._errors.succeeded(key)
                self._adapt(used, wasted is not None)
            elif error is not None:
                should_log = self._errors.failed(key, now)
        self._metrics.load(reason, ok, now - started)
        if used:
            self._metrics.used(reason)
        if wasted:
            self._metrics.wasted(wasted)
        if should_log and error is not None:
            self._errors.log(key, reason, error)
        if flight.batch is not None:
            flight.batch.done(ok)
        self._settle(flight, value, error)

    def _settle(self, flight: Flight[V], value: Any, error: BaseException | None) -> None:
        with self._lock:
            if self._flights.get(flight.key) is flight:
                del self._flights[flight.key]
                if flight.reason != "demand":
                    self._background -= 1
        try:
            if error is None:
                flight.future.set_result(value)
            else:
                flight.future.set_exception(error)
        except concurrent.futures.InvalidStateError:
            pass  # already failed by close()

    # --------------------------------------------------------------- the refresher

    def _arm(self) -> None:
        with self._lock:
            if self._state != _RUNNING:
                return
        # Never call the clock under our lock: FakeClock.advance runs _tick under its own.
        handle = self._clock.call_later(self._s.refresh_interval, self._tick)
        with self._lock:
            if self._state != _RUNNING:
                handle.cancel()
            else:
                self._timer = handle

    def _tick(self) -> None:
        try:
            self._refresh_due()
        except Exception as exc:  # noqa: BLE001 - the refresher must survive any failure
            report_internal_error("preload.refresh", exc)
        finally:
            self._arm()

    def _refresh_due(self) -> None:
        """Reload the hot entries due for refresh (one batch, one span); end expired ones."""
        now = self._clock.monotonic()
        interval = self._s.refresh_interval
        launch: list[Flight[V]] = []
        skipped = 0
        with self._lock:
            if self._state != _RUNNING:
                return
            due, wasted = self._entries.due(now, interval)
            self._adapt(0, len(wasted))
            for record in due:
                key = record.key
                if key in self._flights:
                    continue
                loader = self._loader_for(key)
                if (
                    loader is None
                    or self._pop.score(key, now) < self._threshold
                    or self._errors.backing_off(key, now)
                ):
                    skipped += 1  # gone cold (or failing): left to expire
                elif self._background >= self._s.concurrency:
                    self._entries.retry(record, now + interval)
                else:
                    launch.append(self._open_flight(key, loader, "refresh"))
        for reason in wasted:
            self._metrics.wasted(reason)
        if launch:
            batch = RefreshBatch(self._tracer, len(launch), skipped)
            for flight in launch:
                flight.batch = batch
                self._launch(flight)
