"""Checks of caller-supplied options, shared by every public entry point.

Each check returns the value it accepted (converted where that is harmless, e.g. an int
given for a float) or raises :class:`~otelkit.errors.OptionTypeError` /
:class:`~otelkit.errors.InvalidOptionError` with a message of the form
``"<where>: <option> <problem>, got <value>"``. ``where`` names the call the caller made
(``"otelkit.configure"``, ``"store.job"``) so the message points at their own code.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any, TypeVar

from otelkit.errors import InvalidOptionError, OptionTypeError

__all__ = [
    "check_bool",
    "check_callable",
    "check_choice",
    "check_fraction",
    "check_instance",
    "check_non_negative",
    "check_positive",
    "check_positive_int",
    "check_str",
]

T = TypeVar("T")


def _got(value: object) -> str:
    return f"got {value!r} ({type(value).__name__})"


def check_bool(where: str, option: str, value: object) -> bool:
    """``value`` if it is a bool."""
    if not isinstance(value, bool):
        raise OptionTypeError(f"{where}: {option} must be True or False, {_got(value)}")
    return value


def check_callable(where: str, option: str, value: T) -> T:
    """``value`` if it is callable."""
    if not callable(value):
        raise OptionTypeError(f"{where}: {option} must be callable, {_got(value)}")
    return value


def check_str(where: str, option: str, value: object, *, empty: bool = False) -> str:
    """``value`` if it is a str (non-empty unless ``empty``)."""
    if not isinstance(value, str):
        raise OptionTypeError(f"{where}: {option} must be a str, {_got(value)}")
    if not empty and not value:
        raise InvalidOptionError(f"{where}: {option} must not be empty")
    return value


def _number(where: str, option: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OptionTypeError(f"{where}: {option} must be a number of seconds, {_got(value)}")
    if math.isnan(value) or math.isinf(value):
        raise InvalidOptionError(f"{where}: {option} must be finite, got {value!r}")
    return float(value)


def check_positive(where: str, option: str, value: object) -> float:
    """``value`` as a float if it is a finite number > 0."""
    number = _number(where, option, value)
    if number <= 0:
        raise InvalidOptionError(f"{where}: {option} must be greater than 0, got {value!r}")
    return number


def check_non_negative(where: str, option: str, value: object) -> float:
    """``value`` as a float if it is a finite number >= 0."""
    number = _number(where, option, value)
    if number < 0:
        raise InvalidOptionError(f"{where}: {option} must be 0 or more, got {value!r}")
    return number


def check_fraction(where: str, option: str, value: object) -> float:
    """``value`` as a float if it is a number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OptionTypeError(f"{where}: {option} must be a number, {_got(value)}")
    if not 0 < value < 1:
        raise InvalidOptionError(
            f"{where}: {option} must be between 0 and 1 (exclusive), got {value!r}"
        )
    return float(value)


def check_positive_int(where: str, option: str, value: object, *, minimum: int = 1) -> int:
    """``value`` if it is an int >= ``minimum`` (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionTypeError(f"{where}: {option} must be an int, {_got(value)}")
    if value < minimum:
        raise InvalidOptionError(f"{where}: {option} must be {minimum} or more, got {value!r}")
    return value


def check_choice(where: str, option: str, value: object, choices: Collection[str]) -> str:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        allowed = ", ".join(repr(choice) for choice in sorted(choices))
        raise InvalidOptionError(f"{where}: {option} must be one of {allowed}, got {value!r}")
    return str(value)


def check_instance(where: str, option: str, value: object, kind: type[Any], what: str) -> Any:
    """``value`` if it is an instance of ``kind`` (``what`` describes it for the message)."""
    if not isinstance(value, kind):
        raise OptionTypeError(f"{where}: {option} must be {what}, {_got(value)}")
    return value


_ON = ("1", "true", "yes", "on", "default")
_OFF = ("0", "false", "no", "off", "none")


def check_on_off(where: str, option: str, value: str, *, instead: str) -> bool:
    """``value`` (from the environment) as on (``True``) or off; ``instead`` names what
    else the option accepts where it is an argument."""
    text = value.strip().lower()
    if text in _ON:
        return True
    if text in _OFF:
        return False
    raise InvalidOptionError(
        f"{where}: {option}={value!r} is not supported; accepted: on, off (or {instead})"
    )
