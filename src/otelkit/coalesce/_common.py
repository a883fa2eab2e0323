"""What both coalescing processors share: the summary attributes, option checks, the
deadline arithmetic and downstream calls of ``force_flush``/``shutdown``."""

from __future__ import annotations

from typing import Any, Protocol

from otelkit._clock import REAL_CLOCK
from otelkit._errors import report_internal_error
from otelkit.coalesce._window import Summary
from otelkit.errors import OptionTypeError

__all__ = [
    "COUNT_ATTRIBUTE",
    "FIRST_TIMESTAMP_ATTRIBUTE",
    "LAST_TIMESTAMP_ATTRIBUTE",
    "WINDOW_ATTRIBUTE",
    "flush_downstream",
    "remaining_millis",
    "require_methods",
    "shutdown_downstream",
    "summary_attributes",
]

COUNT_ATTRIBUTE = "otelkit.coalesce.count"
WINDOW_ATTRIBUTE = "otelkit.coalesce.window"
FIRST_TIMESTAMP_ATTRIBUTE = "otelkit.coalesce.first_timestamp"
LAST_TIMESTAMP_ATTRIBUTE = "otelkit.coalesce.last_timestamp"


class _Flushable(Protocol):
    def force_flush(self, timeout_millis: int = 30000) -> bool: ...

    def shutdown(self) -> None: ...


def summary_attributes(summary: Summary[Any]) -> dict[str, int | float]:
    """The ``otelkit.coalesce.*`` attributes of a summary (timestamps in ns since epoch)."""
    return {
        COUNT_ATTRIBUTE: summary.count,
        WINDOW_ATTRIBUTE: summary.window,
        FIRST_TIMESTAMP_ATTRIBUTE: summary.first_time_ns,
        LAST_TIMESTAMP_ATTRIBUTE: summary.last_time_ns,
    }


def require_methods(option: str, value: object, methods: tuple[str, ...], kind: str) -> None:
    """``TypeError`` unless ``value`` has every method in ``methods``."""
    missing = [name for name in methods if not callable(getattr(value, name, None))]
    if missing:
        raise OptionTypeError(
            f"{option} must be a {kind} (with {', '.join(methods)}); "
            f"{type(value).__name__} lacks {', '.join(missing)}"
        )


def remaining_millis(deadline: float) -> int:
    """Milliseconds left until ``deadline`` (a ``REAL_CLOCK.monotonic()`` value), >= 0."""
    return max(0, int((deadline - REAL_CLOCK.monotonic()) * 1000))


def flush_downstream(downstream: _Flushable, deadline: float, component: str) -> bool:
    """``downstream.force_flush`` with what is left until ``deadline``; never raises."""
    try:
        return bool(downstream.force_flush(remaining_millis(deadline)))
    except Exception as exc:  # noqa: BLE001 - report, do not raise into the caller
        report_internal_error(component + ".downstream", exc)
        return False


def shutdown_downstream(downstream: _Flushable, component: str) -> None:
    """``downstream.shutdown()``; never raises."""
    try:
        downstream.shutdown()
    except Exception as exc:  # noqa: BLE001 - report, do not raise into the caller
        report_internal_error(component + ".downstream", exc)
