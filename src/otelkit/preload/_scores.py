"""Decayed popularity of keys: O(1) per access, coldest-key eviction without a scan.

Every access adds 1 to a key's score and the score halves every ``half_life`` seconds:
``score(now) = sum(2 ** -((now - t_i) / half_life))`` over the key's accesses ``t_i``. So
frequency adds up and recency weighs more: one access now (1.0) outranks one access a
half-life ago (0.5), and four accesses a half-life ago (2.0) outrank one access now.

Decay is lazy. Each key stores one number, its *level* ``log2(score) + t / half_life``
taken at its last access. Because every score decays at the same rate, levels never
change between accesses and they order keys exactly as their decayed scores do, at any
time. An access recomputes one level (O(1)); reading a score is one power of two.

Levels only grow, so the coldest key is found with a lazy min-heap: each key has one heap
item holding a level that is at most its current level. Eviction pops the smallest item;
if its key was accessed since, it is pushed back with the current level and the next is
tried. Every access makes at most one item stale, so eviction costs amortised
O(log n) and no access ever scans the keys.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterator

__all__ = ["Popularity", "Tracked"]


class Tracked:
    """One tracked key: its level, its related keys and an attached loader (opaque)."""

    __slots__ = ("key", "level", "loader", "related")

    def __init__(self, key: str, level: float) -> None:
        self.key = key
        self.level = level
        self.loader: object = None
        # An insertion-ordered set of related keys; the oldest goes first when full.
        self.related: dict[str, None] = {}


class Popularity:
    """Bounded, decayed access scores of keys (not thread-safe: callers hold a lock)."""

    def __init__(self, *, half_life: float, max_keys: int, max_related: int) -> None:
        self._half_life = half_life
        self._max_keys = max_keys
        self._max_related = max_related
        self._entries: dict[str, Tracked] = {}
        self._heap: list[tuple[float, int, Tracked]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def peek(self, key: str) -> Tracked | None:
        """The tracked entry of ``key`` without recording an access."""
        return self._entries.get(key)

    def touch(self, key: str, now: float, weight: float = 1.0) -> tuple[Tracked, str | None]:
        """Record an access; return the key's entry and the key evicted to make room."""
        base = now / self._half_life
        entry = self._entries.get(key)
        if entry is not None:
            decayed = 2.0 ** (entry.level - base)
            entry.level = base + math.log2(decayed + weight)
            return entry, None
        evicted = self._evict_coldest() if len(self._entries) >= self._max_keys else None
        entry = Tracked(key, base + math.log2(weight))
        self._entries[key] = entry
        heapq.heappush(self._heap, (entry.level, next(self._seq), entry))
        return entry, evicted

    def relate(self, entry: Tracked, related: str) -> None:
        """Remember ``related`` as read together with ``entry``'s key (bounded, newest kept)."""
        if self._max_related == 0 or related == entry.key:
            return
        links = entry.related
        links.pop(related, None)
        links[related] = None
        if len(links) > self._max_related:
            del links[next(iter(links))]

    def score(self, key: str, now: float) -> float:
        """The decayed score of ``key`` at ``now`` (0.0 when not tracked)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return float(2.0 ** (entry.level - now / self._half_life))

    def discard(self, key: str) -> None:
        """Stop tracking ``key`` (its heap item is dropped lazily)."""
        if (
            self._entries.pop(key, None) is not None
            and len(self._heap) > 2 * len(self._entries) + 64
        ):
            self._compact()

    def top(self, limit: int, now: float) -> list[tuple[str, float]]:
        """The ``limit`` hottest keys with their scores, hottest first (O(n log limit))."""
        base = now / self._half_life
        best = heapq.nlargest(limit, self._entries.values(), key=lambda e: e.level)
        return [(e.key, float(2.0 ** (e.level - base))) for e in best]

    def _evict_coldest(self) -> str | None:
        heap = self._heap
        while heap:
            level, _, entry = heap[0]
            if self._entries.get(entry.key) is not entry:
                heapq.heappop(heap)  # discarded or replaced: an orphan item
            elif entry.level > level:
                # Accessed since this item was pushed: re-file it at its current level.
                heapq.heapreplace(heap, (entry.level, next(self._seq), entry))
            else:
                heapq.heappop(heap)
                del self._entries[entry.key]
                return entry.key
        return None

    def _compact(self) -> None:
        self._heap = [(e.level, next(self._seq), e) for e in self._entries.values()]
        heapq.heapify(self._heap)
