"""A registered job function and its options (what ``@store.job`` records)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otelkit.jobs._limits import Limits
from otelkit.jobs._model import Backoff, Job
from otelkit.jobs._schedule import Schedule

__all__ = ["Definition"]


@dataclass(frozen=True)
class Definition:
    """A registered job function and its options."""

    fn: Callable[[Job], Any]
    name: str
    queue: str
    max_attempts: int
    lease: float
    backoff: Backoff
    timeout: float | None = None
    """Seconds an attempt may run before it is abandoned (``TimeoutError``); None: no limit."""
    schedule: Schedule | None = None
    """For a periodic job: when its periods start (the scheduler enqueues one job each)."""
    limits: Limits | None = None
    """Flow limits this function declares for its queue."""
    limit_key: Callable[[Any], Any] | None = None
    """The function of a job's data giving its limit key (per-key limits, fair claims)."""

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)
