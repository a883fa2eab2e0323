"""What the preloader wrote into the cache, and when each entry is due for refresh or expiry.

Every write is an :class:`Written` record with its expiry time. One time-ordered heap holds
the next event of each record: first its refresh point (``refresh_ahead`` of the TTL before
expiry), then, if it was not refreshed, its expiry. A preloaded record (reason ``related``
or ``refresh``) ends either *used* (served to a reader) or *wasted* (expired, replaced or
evicted first); demand loads are neither. Not thread-safe: the preloader holds its lock.
"""

from __future__ import annotations

import heapq
import itertools

__all__ = ["Entries", "Written"]

_REFRESH = 0
_EXPIRE = 1


class Written:
    """One value the preloader wrote: why, until when, and whether a reader got it."""

    __slots__ = ("expires_at", "key", "reason", "used")

    def __init__(self, key: str, expires_at: float, reason: str, used: bool) -> None:
        self.key = key
        self.expires_at = expires_at
        self.reason = reason
        self.used = used

    @property
    def preloaded(self) -> bool:
        """Written ahead of demand (related prefetch or refresh)."""
        return self.reason != "demand"


class Entries:
    """The records of live entries and their refresh/expiry timeline."""

    def __init__(self, *, ttl: float, lead: float) -> None:
        self.ttl = ttl
        self.lead = lead
        self._written: dict[str, Written] = {}
        self._heap: list[tuple[float, int, int, Written]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._written)

    def live(self, key: str, now: float) -> bool:
        """True when the preloader wrote ``key`` and the entry has not expired."""
        record = self._written.get(key)
        return record is not None and record.expires_at > now

    def wrote(self, key: str, now: float, reason: str, used: bool) -> str | None:
        """Record a write; return the reason of a replaced preload that was never used."""
        wasted = self._end(key)
        record = Written(key, now + self.ttl, reason, used)
        self._written[key] = record
        self._push(record.expires_at - self.lead, _REFRESH, record)
        return wasted

    def hit(self, key: str) -> str | None:
        """A reader got ``key`` from the cache: the reason if that is a preload's first use."""
        record = self._written.get(key)
        if record is None or record.used or not record.preloaded:
            return None
        record.used = True
        return record.reason

    def missed(self, key: str, now: float) -> str | None:
        """A reader missed ``key``: a live unused preload was evicted, return its reason."""
        record = self._written.get(key)
        if record is None or record.expires_at <= now:
            return None
        return self._end(key)

    def forget(self, key: str) -> str | None:
        """Drop ``key``'s record (invalidated); the reason if it was an unused preload."""
        return self._end(key)

    def due(self, now: float, horizon: float) -> tuple[list[Written], list[str]]:
        """Records to refresh (due before ``now + horizon``) and reasons of wasted preloads.

        Each returned refresh candidate also gets its expiry scheduled, so a record whose
        refresh is skipped or fails still ends (as used or wasted) when it expires.
        """
        refresh: list[Written] = []
        wasted: list[str] = []
        early: list[tuple[float, int, int, Written]] = []
        heap = self._heap
        while heap and heap[0][0] <= now + horizon:
            item = heapq.heappop(heap)
            when, _, kind, record = item
            if self._written.get(record.key) is not record:
                continue  # replaced or forgotten meanwhile
            if kind == _REFRESH:
                refresh.append(record)
                self._push(record.expires_at, _EXPIRE, record)
            elif when > now:
                early.append(item)  # expiry is never counted ahead of time
            else:
                del self._written[record.key]
                if record.preloaded and not record.used:
                    wasted.append(record.reason)
        for item in early:
            heapq.heappush(heap, item)
        return refresh, wasted

    def refreshable(self, record: Written, now: float) -> bool:
        """True while ``record`` is current and at least half the refresh lead is left.

        A reload started later could finish after the entry expired, and readers would
        wait for it: such a record is left to expire instead.
        """
        return self._written.get(record.key) is record and now <= record.expires_at - self.lead / 2

    def _end(self, key: str) -> str | None:
        record = self._written.pop(key, None)
        if record is not None and record.preloaded and not record.used:
            return record.reason
        return None

    def _push(self, when: float, kind: int, record: Written) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), kind, record))
        if len(self._heap) > 4 * len(self._written) + 64:
            self._heap = [item for item in self._heap if self._written.get(item[3].key) is item[3]]
            heapq.heapify(self._heap)
