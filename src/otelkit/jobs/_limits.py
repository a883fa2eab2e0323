"""Flow-control values users see: the limits of a queue, a rate, and why a ready job waits.

Limits belong to a queue and live in the database (``otelkit_job_queues``), so every
worker of every machine reads the same values at claim time. Code declares them
(``@store.job(limits=...)``, :meth:`JobStore.declare_limits`); an operator may override
them at runtime (:meth:`JobStore.set_limits`, ``otelkit jobs limits set``) until reset.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from otelkit.errors import InvalidOptionError, OptionTypeError

__all__ = [
    "KEY_MAX",
    "Limits",
    "QueueLimits",
    "Rate",
    "WaitReason",
    "check_limit_key",
    "check_limits",
    "key_of",
    "parse_rate",
]

KEY_MAX = 200
"""Longest limit key (characters)."""

Reason = Literal["paused", "concurrency", "key_concurrency", "rate", "key_rate"]


def _count(where: str, option: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOptionError(
            f"{where}: {option} must be a whole number >= 1, got {value!r} ({type(value).__name__})"
        )
    if value < 1:
        raise InvalidOptionError(
            f"{where}: {option} must be >= 1, got {value!r} (to stop a queue use "
            "store.pause(queue); for no limit leave it None)"
        )
    return value


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` job starts in any window of ``per`` seconds (a sliding window,
    read on the database's clock): ``Rate(20, per=1.0)`` or
    ``Rate(100, per=timedelta(minutes=1))``."""

    limit: int
    per: float | timedelta = 1.0

    def __post_init__(self) -> None:
        _count("Rate", "limit", self.limit)
        per = self.per.total_seconds() if isinstance(self.per, timedelta) else self.per
        if isinstance(per, bool) or not isinstance(per, int | float):
            raise InvalidOptionError(
                f"Rate: per must be seconds (a number) or a timedelta, got {self.per!r}"
            )
        if not math.isfinite(per) or per <= 0:
            raise InvalidOptionError(
                f"Rate: per (the period) must be finite and greater than 0 seconds, "
                f"got {self.per!r}"
            )
        object.__setattr__(self, "per", float(per))

    @property
    def seconds(self) -> float:
        """The period in seconds."""
        return float(self.per)  # type: ignore[arg-type]  # normalised in __post_init__

    def __str__(self) -> str:
        return f"{self.limit}/{_seconds_text(self.seconds)}"


def _seconds_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Limits:
    """Flow limits of one queue, held across every worker and machine.

    ``concurrency``: at most this many of the queue's jobs run at once. ``key_concurrency``:
    at most this many run at once per limit key (``@store.job(limit_key=...)`` or
    ``enqueue(limit_key=...)``; jobs without a key count only toward the queue).
    ``rate``/``key_rate``: at most ``Rate.limit`` starts per ``Rate.per`` seconds for the
    queue / per key. ``fair``: claims rotate between keys even without a key limit (any key
    limit implies it), so a small tenant's jobs start promptly behind another's backlog.
    A job held by a limit waits (it is never failed); None means no limit.
    """

    concurrency: int | None = None
    key_concurrency: int | None = None
    rate: Rate | None = None
    key_rate: Rate | None = None
    fair: bool = False

    def __post_init__(self) -> None:
        check_limits("Limits", self)

    @property
    def empty(self) -> bool:
        """True when nothing is limited and claims do not rotate between keys."""
        return self == Limits()

    @property
    def keyed(self) -> bool:
        """Whether claims rank jobs by key (a key limit, or ``fair``)."""
        return self.fair or self.key_concurrency is not None or self.key_rate is not None

    def describe(self) -> str:
        """One line: ``concurrency=3 key_concurrency=1 rate=20/1s`` (``none``: no limit)."""
        parts = [
            f"{name}={value}"
            for name, value in (
                ("concurrency", self.concurrency),
                ("key_concurrency", self.key_concurrency),
                ("rate", self.rate),
                ("key_rate", self.key_rate),
            )
            if value is not None
        ]
        if self.fair and self.key_concurrency is None and self.key_rate is None:
            parts.append("fair")
        return " ".join(parts) or "none"


def check_limits(where: str, limits: object) -> Limits:
    """``limits`` if it is a valid :class:`Limits` (each field checked, naming it)."""
    if not isinstance(limits, Limits):
        raise OptionTypeError(
            f"{where}: limits must be an otelkit.jobs.Limits, got {type(limits).__name__}"
        )
    for option in ("concurrency", "key_concurrency"):
        value = getattr(limits, option)
        if value is not None:
            _count(where, option, value)
    for option in ("rate", "key_rate"):
        value = getattr(limits, option)
        if value is not None and not isinstance(value, Rate):
            raise OptionTypeError(
                f"{where}: {option} must be an otelkit.jobs.Rate such as Rate(20, per=1.0), "
                f"got {value!r}"
            )
    if not isinstance(limits.fair, bool):
        raise OptionTypeError(f"{where}: fair must be True or False, got {limits.fair!r}")
    return limits


def check_limit_key(where: str, value: object) -> str | None:
    """A limit key as stored: a str (an int is turned into one) of at most 200 characters."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidOptionError(
            f"{where}: limit_key must be a str (or an int), got {type(value).__name__} "
            f"{_short(value)}; return e.g. the tenant id as a str"
        )
    if not value or len(value) > KEY_MAX:
        raise InvalidOptionError(
            f"{where}: limit_key must be 1 to {KEY_MAX} characters, got {len(value)}"
        )
    return value


def key_of(where: str, job: str, key_fn: Callable[[Any], object], data: Any) -> str | None:
    """Apply a job's key function to ``data``; an :class:`InvalidOptionError` naming the job
    and the option when it raises or returns something that cannot be a key."""
    try:
        value = key_fn(data)
    except Exception as exc:
        raise InvalidOptionError(
            f"{where}: the limit_key function of job {job!r} raised {type(exc).__name__}: "
            f"{exc} (for data {_short(data)}); nothing was enqueued"
        ) from exc
    try:
        return check_limit_key(f"{where}: the limit_key function of job {job!r}", value)
    except InvalidOptionError as exc:
        raise InvalidOptionError(f"{exc}; nothing was enqueued") from None


def _short(value: object) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


@dataclass(frozen=True)
class QueueLimits:
    """The limits in force for one queue, as stored in the database."""

    queue: str
    limits: Limits
    set_by: Literal["code", "operator"]
    """``code``: declared by a job function or ``declare_limits`` (a worker's start writes
    them); ``operator``: set at runtime (``set_limits``, the CLI), kept until reset."""
    updated_at: datetime | None
    running: int
    """Jobs of the queue running now (a snapshot)."""
    throttled_at: datetime | None
    """When a claim was last held back by one of these limits (None: never)."""
    throttled_reason: str | None


@dataclass(frozen=True)
class WaitReason:
    """Why a ready job is not running: the binding limit, in words."""

    reason: Reason
    """``paused``, ``concurrency``, ``key_concurrency``, ``rate`` or ``key_rate``."""
    message: str
    """For people: ``"concurrency: 3 of 3 running in queue 'emails'"``."""
    retry_in: float | None = None
    """For a rate: seconds until the window lets one more start (None: when a slot frees)."""

    def __str__(self) -> str:
        return self.message


def parse_rate(text: str, option: str) -> Rate:
    """``"20/1s"``, ``"100/m"``, ``"5/2h"`` as a :class:`Rate` (the CLI's form)."""
    limit, sep, period = text.strip().partition("/")
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if not sep:
            raise ValueError
        unit = period[-1:] if period[-1:] in units else "s"
        number = period[: -1 if period[-1:] in units else None] or "1"
        count, seconds = int(limit), float(number) * units[unit]
    except (ValueError, IndexError):
        raise InvalidOptionError(
            f"{option} must look like 20/1s, 100/m or 5/2h (starts per period), got {text!r}"
        ) from None
    try:
        return Rate(count, per=seconds)
    except InvalidOptionError as exc:
        raise InvalidOptionError(f"{option}: {exc}") from None
