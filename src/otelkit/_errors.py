"""Internal errors: contained, counted, and logged at most once per window.

Principle: instrumentation never hurts the host application. A hot path (``on_emit``,
``on_end``, a logging call, a metric callback) catches its own failures and hands them to
:func:`report_internal_error`, which counts every one and logs a key at most once per
``_LOG_INTERVAL`` seconds on the ``otelkit`` logger.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

__all__ = ["internal_error_counts", "report_internal_error"]

_log = logging.getLogger("otelkit")
_LOG_INTERVAL = 60.0
_lock = threading.Lock()
_counts: Counter[str] = Counter()
_last_logged: dict[str, float] = {}
_reporting = threading.local()


def report_internal_error(component: str, exc: BaseException) -> None:
    """Count an error of ``component`` and log it unless logged within the interval."""
    key = f"{component}:{type(exc).__name__}"
    now = time.monotonic()
    with _lock:
        _counts[component] += 1
        last = _last_logged.get(key)
        should_log = last is None or now - last >= _LOG_INTERVAL
        if should_log:
            _last_logged[key] = now
    # A log record may flow back into the failing pipeline: never recurse.
    if should_log and not getattr(_reporting, "active", False):
        _reporting.active = True
        try:
            _log.warning(
                "otelkit %s failed (%s: %s); further errors of this kind are counted "
                "and logged at most every %.0f s",
                component,
                type(exc).__name__,
                exc,
                _LOG_INTERVAL,
            )
        except Exception:  # noqa: BLE001 - logging itself is broken: nothing more to do
            pass
        finally:
            _reporting.active = False


def internal_error_counts() -> dict[str, int]:
    """A snapshot of how many internal errors each component has contained."""
    with _lock:
        return dict(_counts)
