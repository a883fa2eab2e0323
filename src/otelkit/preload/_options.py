"""Checks of public arguments: each failure names the option and what it accepts."""

from __future__ import annotations

import math
from collections.abc import Iterable

from otelkit.errors import InvalidOptionError, OptionTypeError

__all__ = ["check_count", "check_fraction", "check_key", "check_positive", "check_related"]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_positive(owner: str, name: str, value: object) -> float:
    """A finite number > 0."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:  # type: ignore[arg-type,operator]
        raise InvalidOptionError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_fraction(owner: str, name: str, value: object) -> float:
    """A number strictly between 0 and 1."""
    if not _is_number(value) or not 0 < value < 1:  # type: ignore[operator]
        raise InvalidOptionError(
            f"{owner}: {name} must be a number between 0 and 1 (exclusive), got {value!r}"
        )
    return float(value)  # type: ignore[arg-type]


def check_count(owner: str, name: str, value: object, minimum: int) -> int:
    """An int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidOptionError(f"{owner}: {name} must be an int >= {minimum}, got {value!r}")
    return value


def check_key(owner: str, key: object, what: str = "key") -> str:
    """A cache key: a str."""
    if not isinstance(key, str):
        raise OptionTypeError(f"{owner}: {what} must be a str, got {type(key).__name__}")
    return key


def check_related(owner: str, related: object) -> tuple[str, ...]:
    """An iterable of str keys (a lone str is refused: it would iterate characters)."""
    if isinstance(related, (str, bytes)) or not isinstance(related, Iterable):
        raise OptionTypeError(
            f"{owner}: related must be an iterable of str keys (e.g. a tuple), "
            f"got {type(related).__name__}"
        )
    keys = tuple(related)
    for key in keys:
        check_key(owner, key, "every related key")
    return keys
