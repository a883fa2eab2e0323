"""Context shortcuts: whether instrumentation is suppressed, read and set without importing
``opentelemetry-instrumentation``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from otelkit._sdk._check import checked

if TYPE_CHECKING:
    from opentelemetry.context import Context

__all__ = ["SUPPRESSION_OK", "instrumentation_enabled", "suppress_instrumentation"]


# The key opentelemetry-instrumentation sets beside the API's, for older instrumentations.
_PLAIN_SUPPRESSION_KEY = "suppress_instrumentation"


def _suppression_key() -> str | None:
    from opentelemetry import context as context_api

    key = getattr(context_api, "_SUPPRESS_INSTRUMENTATION_KEY", None)
    return key if isinstance(key, str) else None


def _enabled_shortcut(key: str) -> Callable[[Context], bool]:
    def instrumentation_enabled(context: Context) -> bool:
        return not (context.get(key) or context.get(_PLAIN_SUPPRESSION_KEY))

    return instrumentation_enabled


def _suppressing(key: str) -> Callable[[], contextlib.AbstractContextManager[None]]:
    from opentelemetry import context as context_api

    @contextlib.contextmanager
    def suppress_instrumentation() -> Iterator[None]:
        ctx = context_api.set_value(key, True)
        token = context_api.attach(context_api.set_value(_PLAIN_SUPPRESSION_KEY, True, ctx))
        try:
            yield
        finally:
            context_api.detach(token)

    return suppress_instrumentation


def _check_suppression() -> bool:
    """The API still defines the key ``suppress_instrumentation()`` sets; compared with
    ``is_instrumentation_enabled`` itself when ``opentelemetry.instrumentation.utils`` is
    already imported (importing it only for this costs ~20 ms of start-up; the seam's tests
    compare the two on every supported release)."""
    key = _suppression_key()
    if key is None:
        return False
    utils = sys.modules.get("opentelemetry.instrumentation.utils")
    if utils is None:
        return True
    from opentelemetry.context import get_current

    fast = _enabled_shortcut(key)
    if fast(get_current()) is not utils.is_instrumentation_enabled():
        return False
    with utils.suppress_instrumentation():
        if fast(get_current()) or utils.is_instrumentation_enabled():
            return False
    with _suppressing(key)():
        return utils.is_instrumentation_enabled() is False


SUPPRESSION_OK = checked("instrumentation_enabled", _check_suppression)
"""Whether :data:`instrumentation_enabled` reads the API's suppression key itself."""


if SUPPRESSION_OK:
    _KEY = _suppression_key() or ""
    instrumentation_enabled: Callable[[Context], bool] = _enabled_shortcut(_KEY)
    suppress_instrumentation: Callable[[], contextlib.AbstractContextManager[None]] = _suppressing(
        _KEY
    )
else:
    from opentelemetry.instrumentation import utils as _utils

    def instrumentation_enabled(context: Context) -> bool:
        return _utils.is_instrumentation_enabled()  # reads the current one: what callers pass

    suppress_instrumentation = _utils.suppress_instrumentation
"""``instrumentation_enabled(context)`` and ``with suppress_instrumentation():`` as
``opentelemetry.instrumentation.utils``'s functions of those names (the same context keys),
without importing that package (and ``wrapt``) when the shortcut is on.
``instrumentation_enabled(context)`` takes the current context, which a caller reads once
for all it needs from it (a logging call: also the active span)."""
