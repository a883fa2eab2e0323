"""A bounded buffer that, when full, gives up the least severe, oldest item first.

Items are kept in one FIFO per severity class. When the buffer is full, an append evicts the
oldest item of the lowest non-empty class that is not above the new item's class; when every
buffered item is more severe than the new one, the new item itself is refused. So an ERROR is
never lost while a DEBUG or INFO item is buffered.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

__all__ = ["CLASS_ERROR", "CLASS_INFO", "SeverityBuffer", "severity_class"]

T = TypeVar("T")

CLASSES = 6  # TRACE, DEBUG, INFO, WARN, ERROR, FATAL
CLASS_INFO = 2
CLASS_ERROR = 4


def severity_class(severity_number: int) -> int:
    """OTel severity number (1-24, 0 unspecified) to class 0-5; unspecified counts as INFO."""
    if severity_number <= 0:
        return CLASS_INFO
    return min((severity_number - 1) >> 2, CLASSES - 1)


class SeverityBuffer(Generic[T]):
    """Thread-safe, bounded; ``append`` is O(1) and never blocks on anything but its lock."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._queues: list[deque[T]] = [deque() for _ in range(CLASSES)]
        self.size = 0
        """How many items are buffered now."""
        self.lock = threading.Lock()
        self.appended = 0
        """Items offered so far (kept or not)."""
        self.evicted = 0
        """Items given up to make room (including refused new items)."""

    def __len__(self) -> int:
        return self.size

    def append(self, item: T, cls: int) -> T | None:
        """Add ``item`` of class ``cls``; return the item given up to make room (or ``None``).

        The returned item may be ``item`` itself when everything buffered is more severe.
        """
        with self.lock:
            self.appended += 1
            if self.size < self.capacity:
                self._queues[cls].append(item)
                self.size += 1
                return None
            self.evicted += 1
            for lower in range(cls + 1):
                queue = self._queues[lower]
                if queue:
                    victim = queue.popleft()
                    self._queues[cls].append(item)
                    return victim
            return item

    def take(self, limit: int) -> list[T]:
        """Remove and return up to ``limit`` items, most severe class first, oldest first."""
        out: list[T] = []
        with self.lock:
            for queue in reversed(self._queues):
                room = limit - len(out)
                if room <= 0:
                    break
                if len(queue) <= room:
                    out += queue
                    queue.clear()
                else:
                    popleft = queue.popleft
                    out += [popleft() for _ in range(room)]
            self.size -= len(out)
        return out

    def reset_after_fork(self) -> None:
        """Fresh lock and no items: a lock copied by fork may be held by a thread that is gone."""
        self.lock = threading.Lock()
        for queue in self._queues:
            queue.clear()
        self.size = 0
        self.appended = 0
        self.evicted = 0
