"""The preloader's state machine: what a read, a finished load and a refresher tick change.

No threads, loops, timers or cache calls live here: :class:`PreloadCore` only updates state
under one lock and says which loads to run. ``Preloader.get`` and ``Preloader.aget`` share it
and differ only in how they call the cache (sync or async, see ``_cache_io``), run a loader
and wait for it; the refresher asks it what is due.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from opentelemetry.metrics import MeterProvider

from otelkit._clock import Clock
from otelkit.errors import InvalidOptionError, OptionTypeError
from otelkit.preload._entries import Entries, Written
from otelkit.preload._loading import ErrorLog, Flight, Loader, LoaderRegistry
from otelkit.preload._metrics import PreloadMetrics
from otelkit.preload._options import check_key, check_related
from otelkit.preload._scores import Popularity
from otelkit.preload._settings import Settings

__all__ = ["PreloadCore", "Read"]

V = TypeVar("V")

_ADAPT_RATE = 0.01
_log = logging.getLogger("otelkit.preload")


class Read(Generic[V]):
    """What a read found: a cached value, or a flight to lead (run) or to wait for."""

    __slots__ = ("flight", "lead", "prefetch", "value")

    def __init__(
        self, value: V | None, flight: Flight[V] | None, lead: bool, prefetch: list[Flight[V]]
    ) -> None:
        self.value = value
        self.flight = flight
        self.lead = lead
        self.prefetch = prefetch


class PreloadCore(Generic[V]):
    """Popularity, live entries, flights and the adaptive threshold, under one lock."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        meter_provider: MeterProvider | None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = PreloadMetrics(
            meter_provider, tracked_keys=self.tracked_keys, threshold=lambda: self.threshold
        )
        self.lock = threading.Lock()
        self.prefetching = False  # related and refresh loads allowed (the preloader runs)
        self.threshold = settings.threshold
        s = settings
        self._pop = Popularity(
            half_life=s.half_life, max_keys=s.max_keys, max_related=s.max_related
        )
        self._entries = Entries(ttl=s.ttl, lead=s.ttl * s.refresh_ahead)
        self._loaders: LoaderRegistry[V] = LoaderRegistry()
        self._flights: dict[str, Flight[V]] = {}
        self._background = 0  # related and refresh loads in flight
        self._waiting: deque[Written] = deque()  # due for refresh, waiting for a worker
        self._errors = ErrorLog(window=max(60.0, s.ttl), max_keys=s.max_keys)
        self._no_loader: list[str] = []  # related keys the current read found no loader for
        self._warned_no_loader = False

    def tracked_keys(self) -> int:
        """How many keys' popularity is tracked."""
        return len(self._pop)

    def register(self, key: str, loader: Loader[V], prefix: bool) -> None:
        """Register a loader for a key or a key prefix."""
        if not callable(loader):
            raise OptionTypeError(f"Preloader.register: loader must be callable, got {loader!r}")
        with self.lock:
            (self._loaders.add_prefix if prefix else self._loaders.add)(key, loader)

    def hot_keys(self, limit: int) -> list[tuple[str, float]]:
        """The hottest keys and their scores."""
        with self.lock:
            return self._pop.top(limit, self.clock.monotonic())

    def score(self, key: str) -> float:
        """The decayed score of one key."""
        with self.lock:
            return self._pop.score(key, self.clock.monotonic())

    def invalidated(self, key: str) -> None:
        """Forget the entry of a key deleted from the cache."""
        with self.lock:
            wasted = self._entries.forget(key)
            self._adapt(0, wasted is not None)
        if wasted:
            self.metrics.wasted(wasted)

    def background_flights(self) -> list[Flight[V]]:
        """Related and refresh loads not finished yet."""
        with self.lock:
            return [f for f in self._flights.values() if f.reason != "demand"]

    @staticmethod
    def check_read(
        owner: str, key: str, loader: Loader[V] | None, related: Iterable[str]
    ) -> tuple[str, ...]:
        """Refuse a bad read before the cache is asked; the related keys."""
        check_key(owner, key)
        if loader is not None and not callable(loader):
            raise OptionTypeError(f"{owner}: loader must be callable or None, got {loader!r}")
        return check_related(owner, related)

    def begin(
        self,
        owner: str,
        key: str,
        loader: Loader[V] | None,
        related_keys: tuple[str, ...],
        value: V | None,
    ) -> Read[V]:
        """Everything a read does after the cache lookup found ``value`` (``None``: a miss)
        and before it waits: record, join or open a flight."""
        now = self.clock.monotonic()
        used = wasted = None
        lead = False
        prefetch: list[Flight[V]] = []
        with self.lock:
            flight = None if value is not None else self._flights.get(key)
            chosen = loader
            if value is None and flight is None and chosen is None:
                chosen = self._loader_for(key)
                if chosen is None:  # refused before anything is recorded
                    raise InvalidOptionError(
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
            if tracked.related and self.prefetching and self._pop.score(key, now) >= self.threshold:
                prefetch = self._plan_related(tracked.related, now)
            no_loader, self._no_loader = self._no_loader, []
        self.metrics.request(value is not None)
        if no_loader:
            self._skip_without_loader(key, no_loader)
        if used:
            self.metrics.used(used)
        if wasted:
            self.metrics.wasted(wasted)
        return Read(value, flight, lead, prefetch)

    def complete(
        self,
        flight: Flight[V],
        value: Any,
        error: BaseException | None,
        started: float,
        stored: bool,
    ) -> tuple[list[Flight[V]], int]:
        """Everything a finished load does once its value was ``stored`` (or not) in the
        cache: account, adapt, wake the readers.

        A finished background load frees a worker: returns the queued refreshes it may
        start now, as :meth:`due_refreshes` does.
        """
        key, reason, ok = flight.key, flight.reason, error is None
        now = self.clock.monotonic()
        wasted = None
        used = should_log = False
        follow: tuple[list[Flight[V]], int] = ([], 0)
        with self.lock:
            self._close_flight(flight)
            if stored:
                used = flight.joined and reason != "demand"
                wasted = self._entries.wrote(key, now, reason, used)
                self._errors.succeeded(key)
                self._adapt(used, wasted is not None)
            elif error is not None:
                should_log = self._errors.failed(key, now)
            if reason != "demand" and self._waiting and self.prefetching:
                follow = self._start_waiting(now)
        self.metrics.load(reason, ok, now - started)
        if used:
            self.metrics.used(reason)
        if wasted:
            self.metrics.wasted(wasted)
        if should_log and error is not None:
            self._errors.log(key, reason, error)
        self.settle(flight, value, error)
        return follow

    def settle(self, flight: Flight[V], value: Any, error: BaseException | None) -> None:
        """Hand the outcome to every waiting reader (at most once)."""
        with self.lock:
            self._close_flight(flight)
        try:
            if error is None:
                flight.future.set_result(value)
            else:
                flight.future.set_exception(error)
        except concurrent.futures.InvalidStateError:
            pass  # already failed by close()

    def due_refreshes(self) -> tuple[list[Flight[V]], int]:
        """Queue the entries due for refresh and open flights for as many as workers allow.

        Returns the refresh flights to launch and how many queued entries were skipped
        because they went cold (or their loads fail, or no worker got free in time).
        Expired entries end here (as used or wasted).
        """
        now = self.clock.monotonic()
        with self.lock:
            if not self.prefetching:
                return [], 0
            due, wasted = self._entries.due(now, self.settings.refresh_interval)
            self._adapt(0, len(wasted))
            self._waiting.extend(due)
            launch, skipped = self._start_waiting(now)
        for reason in wasted:
            self.metrics.wasted(reason)
        return launch, skipped

    def _start_waiting(self, now: float) -> tuple[list[Flight[V]], int]:
        """Open refresh flights for queued entries while workers are free (under the lock)."""
        launch: list[Flight[V]] = []
        skipped = 0
        waiting = self._waiting
        while waiting and self._background < self.settings.concurrency:
            record = waiting.popleft()
            key = record.key
            if key in self._flights:
                continue
            loader = self._loader_for(key)
            if (
                loader is None
                or not self._entries.refreshable(record, now)
                or self._pop.score(key, now) < self.threshold
                or self._errors.backing_off(key, now)
            ):
                skipped += 1  # gone cold, failing or too late: left to expire
            else:
                launch.append(self._open_flight(key, loader, "refresh"))
        return launch, skipped

    def _close_flight(self, flight: Flight[V]) -> None:
        if self._flights.get(flight.key) is flight:
            del self._flights[flight.key]
            if flight.reason != "demand":
                self._background -= 1

    def _loader_for(self, key: str) -> Loader[V] | None:
        tracked = self._pop.peek(key)
        if tracked is not None and tracked.loader is not None:
            return tracked.loader  # type: ignore[return-value]
        return self._loaders.find(key)

    def _plan_related(self, related: dict[str, None], now: float) -> list[Flight[V]]:
        planned: list[Flight[V]] = []
        for other in reversed(related):  # the most recently related first
            if self._background >= self.settings.concurrency:
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
            else:
                self._no_loader.append(other)
        return planned

    def _skip_without_loader(self, key: str, related: list[str]) -> None:
        """Related keys not prefetched for want of a loader: counted, logged the first time."""
        self.metrics.skipped("no_loader", len(related))
        if not self._warned_no_loader:
            self._warned_no_loader = True
            _log.warning(
                "Preloader: related key %r (of %r) has no loader, so it is not prefetched; "
                "register() or register_prefix() one. Further skips are counted in "
                "otelkit.preload.skipped{reason=no_loader}, not logged.",
                related[0],
                key,
            )

    def _open_flight(self, key: str, loader: Loader[V], reason: str) -> Flight[V]:
        flight = self._flights[key] = Flight(key, loader, reason)
        self._background += 1
        return flight

    def _adapt(self, used: int, wasted: int) -> None:
        """Raise the threshold on waste, lower it on use (under the lock).

        The steps are sized so that it settles where wasted / (used + wasted) equals
        ``target_waste``.
        """
        if not self.settings.adaptive or not (used or wasted):
            return
        target = self.settings.target_waste
        step = _ADAPT_RATE * ((1.0 - target) * wasted - target * used)
        low, high = self.settings.threshold_range
        self.threshold = min(high, max(low, self.threshold * math.exp(step)))
