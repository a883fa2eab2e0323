"""The preloader's options, checked once and frozen."""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass

from otelkit._clock import Clock
from otelkit.errors import InvalidOptionError, OptionTypeError
from otelkit.preload._options import check_count, check_fraction, check_positive

__all__ = ["Settings"]

_OWNER = "Preloader"


@dataclass(frozen=True)
class Settings:
    """Validated preloader options (see :class:`otelkit.preload.Preloader`)."""

    ttl: float
    half_life: float
    threshold: float
    max_keys: int
    concurrency: int
    refresh_ahead: float
    refresh_interval: float
    max_related: int
    adaptive: bool
    target_waste: float
    threshold_range: tuple[float, float]

    @classmethod
    def resolve(
        cls,
        *,
        ttl: object,
        half_life: object,
        threshold: object,
        max_keys: object,
        concurrency: object,
        refresh_ahead: object,
        refresh_interval: object,
        max_related: object,
        adaptive: object,
        target_waste: object,
        threshold_range: object,
        executor: object,
        clock: object,
    ) -> Settings:
        """Check every option; raise ``ValueError``/``TypeError`` naming the first bad one."""
        start = check_positive(_OWNER, "threshold", threshold)
        if not isinstance(adaptive, bool):
            raise OptionTypeError(f"{_OWNER}: adaptive must be a bool, got {adaptive!r}")
        if clock is not None and not isinstance(clock, Clock):
            raise OptionTypeError(
                f"{_OWNER}: clock must be an otelkit Clock or None, got {clock!r}"
            )
        if executor is not None and not isinstance(executor, concurrent.futures.Executor):
            raise OptionTypeError(
                f"{_OWNER}: executor must be a concurrent.futures.Executor or None, "
                f"got {executor!r}"
            )
        settings = cls(
            ttl=check_positive(_OWNER, "ttl", ttl),
            half_life=check_positive(_OWNER, "half_life", half_life),
            threshold=start,
            max_keys=check_count(_OWNER, "max_keys", max_keys, 1),
            concurrency=check_count(_OWNER, "concurrency", concurrency, 1),
            refresh_ahead=check_fraction(_OWNER, "refresh_ahead", refresh_ahead),
            refresh_interval=check_positive(_OWNER, "refresh_interval", refresh_interval),
            max_related=check_count(_OWNER, "max_related", max_related, 0),
            adaptive=adaptive,
            target_waste=check_fraction(_OWNER, "target_waste", target_waste),
            threshold_range=_check_range(threshold_range, start),
        )
        lead = settings.ttl * settings.refresh_ahead
        if settings.refresh_interval >= lead:
            raise InvalidOptionError(
                f"{_OWNER}: refresh_interval ({settings.refresh_interval!r} s) must be shorter "
                f"than the refresh lead ttl * refresh_ahead ({lead!r} s), or refreshes would "
                "come too late"
            )
        return settings


def _check_range(value: object, threshold: float) -> tuple[float, float]:
    if value is None:
        return (threshold / 10.0, threshold * 10.0)
    if not isinstance(value, tuple) or len(value) != 2:
        raise OptionTypeError(
            f"{_OWNER}: threshold_range must be a (low, high) tuple or None, got {value!r}"
        )
    low = check_positive(_OWNER, "threshold_range[0]", value[0])
    high = check_positive(_OWNER, "threshold_range[1]", value[1])
    if not low <= threshold <= high:
        raise InvalidOptionError(
            f"{_OWNER}: threshold_range must contain threshold: need {low!r} <= {threshold!r} "
            f"<= {high!r}"
        )
    return (low, high)
