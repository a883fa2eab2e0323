"""How every shortcut of the seam is switched on: its self-check, or the environment."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

__all__ = ["FALLBACKS_FORCED", "checked"]

_logger = logging.getLogger("otelkit")

_FORCED = {part.strip() for part in os.environ.get("OTELKIT_SDK_FALLBACKS", "").lower().split(",")}

FALLBACKS_FORCED = bool(_FORCED & {"1", "true", "yes"})
"""Whether ``OTELKIT_SDK_FALLBACKS`` asks for the public-API path everywhere (it may also
name shortcuts, comma-separated, to force only theirs: how their gain is measured)."""


def checked(name: str, check: Callable[[], bool]) -> bool:
    """Whether shortcut ``name`` may be used: ``check()`` passed (an exception counts as a
    failure) and fallbacks are not forced. Says so once at debug level when it is off."""
    if FALLBACKS_FORCED or name in _FORCED:
        _logger.debug("otelkit: SDK shortcut %s off (OTELKIT_SDK_FALLBACKS)", name)
        return False
    try:
        ok = bool(check())
    except Exception:  # noqa: BLE001 - any surprise means: use the public path
        ok = False
    if not ok:
        _logger.debug("otelkit: SDK shortcut %s failed its self-check; public API used", name)
    return ok
