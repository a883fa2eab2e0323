"""Periodic jobs: when each period starts (cron or a fixed interval), and the policy for
periods missed while no scheduler ran.

A :class:`Schedule` is pure arithmetic on epoch seconds; :mod:`otelkit.jobs._scheduler`
turns due periods into rows, exactly once each, guaranteed by a unique key on
``(schedule, period_start)`` in the jobs table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter  # type: ignore[import-untyped]

__all__ = ["GRACE", "CatchUp", "Schedule", "make_schedule"]

CatchUp = Literal["once", "skip"]
GRACE = 60.0
"""At most this many seconds between ticks count as schedulers running (no downtime)."""
_MAX_ON_TIME = 1000  # periods enqueued per tick at most (a sub-second interval after a stall)


@dataclass(frozen=True)
class Schedule:
    """When a periodic job's periods start."""

    cron: str | None
    every: float | None
    timezone: str
    catch_up: CatchUp

    @property
    def spec(self) -> str:
        """How the schedule reads in listings: ``cron '*/5 * * * *' Europe/Paris`` or
        ``every 30s``."""
        if self.cron is not None:
            return f"cron '{self.cron}' {self.timezone}"
        assert self.every is not None
        return f"every {self.every:g}s"

    def latest(self, now: float) -> float:
        """The start (epoch seconds) of the period ``now`` is in."""
        if self.every is not None:
            return math.floor(now / self.every) * self.every
        assert self.cron is not None
        zone = ZoneInfo(self.timezone)
        moment = datetime.fromtimestamp(now, zone)
        prev: datetime = croniter(self.cron, moment).get_prev(datetime)
        following: datetime = croniter(self.cron, prev).get_next(datetime)
        if following.timestamp() <= now:  # ``now`` is exactly on a start
            prev = following
        return prev.timestamp()

    def _after(self, start: float) -> float:
        if self.every is not None:
            return start + self.every
        assert self.cron is not None
        moment = datetime.fromtimestamp(start, ZoneInfo(self.timezone))
        following: datetime = croniter(self.cron, moment).get_next(datetime)
        return following.timestamp()

    def next_start(self, now: float) -> float:
        """The start of the next period after ``now``."""
        return self._after(self.latest(now))

    def due(self, last: float | None, now: float, last_tick: float | None = None) -> list[float]:
        """Period starts to enqueue at ``now``; ``last``: the latest period already decided,
        ``last_tick``: when a scheduler last ran (both None for a new schedule).

        While schedulers keep running (the last tick at most ``min(GRACE, 10 periods)``
        ago) every period since ``last`` is enqueued, so a stalled tick leaves no gap.
        After downtime (or for a new schedule) the missed periods are not all run:
        ``catch_up="once"`` enqueues one job, for the latest period; ``"skip"`` enqueues the
        latest period only if it started at most one period (and ``GRACE``) ago.
        """
        latest = self.latest(now)
        if last is not None and latest <= last:
            return []
        length = self._after(latest) - latest
        if (
            last is not None
            and last_tick is not None
            and now - last_tick <= min(GRACE, 10 * length)
        ):
            starts = [latest]
            start = latest
            while len(starts) < _MAX_ON_TIME:
                start = self._before(start)
                if start <= last:
                    break
                starts.append(start)
            return starts[::-1]
        if self.catch_up == "once" or now - latest <= min(GRACE, length):
            return [latest]
        return []

    def _before(self, start: float) -> float:
        if self.every is not None:
            return start - self.every
        return self.latest(start - 1e-3)


def make_schedule(
    *,
    cron: str | None,
    every: timedelta | float | None,
    tz: str,
    catch_up: str,
    option: str = "store.periodic",
) -> Schedule:
    """Validate the options of a periodic job (``ValueError`` naming the bad one)."""
    if (cron is None) == (every is None):
        raise ValueError(f"{option}: pass exactly one of cron='...' or every=timedelta(...)")
    seconds: float | None = None
    if cron is not None:
        if not isinstance(cron, str) or not croniter.is_valid(cron):
            raise ValueError(
                f"{option}: cron must be a valid cron expression such as '*/5 * * * *' "
                f"(minute hour day-of-month month day-of-week), got {cron!r}"
            )
    else:
        value = every.total_seconds() if isinstance(every, timedelta) else every
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ValueError(
                f"{option}: every must be a positive timedelta (or seconds > 0), got {every!r}"
            )
        seconds = float(value)
    if not isinstance(tz, str) or not tz:
        raise ValueError(f"{option}: timezone must be an IANA zone name, got {tz!r}")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{option}: unknown timezone {tz!r}; use an IANA zone name such as 'UTC' or "
            "'Europe/Paris'"
        ) from None
    if catch_up not in ("once", "skip"):
        raise ValueError(f"{option}: catch_up must be 'once' or 'skip', got {catch_up!r}")
    return Schedule(cron=cron, every=seconds, timezone=tz, catch_up=catch_up)  # type: ignore[arg-type]


def iso(epoch: float) -> str:
    """An epoch time as ISO 8601 in UTC (the period a scheduled job is for)."""
    text = datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")
