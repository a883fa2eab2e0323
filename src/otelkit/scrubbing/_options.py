"""``ScrubbingOptions`` and ``ScrubMatch``: what ``configure(scrubbing=...)`` accepts."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from otelkit._validate import check_on_off
from otelkit.errors import InvalidOptionError, OptionTypeError

__all__ = ["ScrubMatch", "ScrubbingOptions", "resolve_scrubbing"]

_WHERE = "otelkit.configure"


@dataclass(frozen=True)
class ScrubMatch:
    """What a scrubbing rule found, as a :attr:`ScrubbingOptions.callback` sees it."""

    location: str
    """Where: ``"body"``, an attribute's key, ``"status"``, or ``"event <name>: <key>"``."""
    rule: str
    """The rule's name: ``"credit card"``, ``"sensitive key"``, an extra pattern's name, ..."""
    text: str
    """The text the rule would replace (the whole value, as text, for a sensitive key)."""


@dataclass(frozen=True)
class ScrubbingOptions:
    """How telemetry is scrubbed (``configure(scrubbing=ScrubbingOptions(...))``).

    The defaults stay on; these options add to them.
    """

    extra_patterns: Mapping[str, str] | Sequence[str] = ()
    """More secret shapes to replace inside string values: regular expressions, or a mapping
    of rule name to regular expression (a plain sequence names each ``"custom"``). A
    ``(?P<secret>...)`` group limits the replacement to that part of the match."""
    extra_keys: Sequence[str] = ()
    """More sensitive attribute names: regular expressions searched case-insensitively."""
    safe_keys: Sequence[str] = ()
    """Attribute keys never scrubbed, neither by name nor by content (exact names)."""
    callback: Callable[[ScrubMatch], bool] | None = None
    """Called for each match; returning ``True`` keeps the original text. A callback that
    raises is counted and its match stays scrubbed."""

    def named_patterns(self) -> tuple[tuple[str, str], ...]:
        """``extra_patterns`` as ``(name, pattern)`` pairs."""
        if isinstance(self.extra_patterns, Mapping):
            return tuple((str(k), str(v)) for k, v in self.extra_patterns.items())
        return tuple(("custom", str(p)) for p in self.extra_patterns)


def _check_pattern(option: str, pattern: object) -> None:
    if not isinstance(pattern, str) or not pattern:
        raise OptionTypeError(
            f"{_WHERE}: scrubbing {option} must hold non-empty regular expressions, got {pattern!r}"
        )
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise InvalidOptionError(
            f"{_WHERE}: scrubbing {option} {pattern!r} is not a valid regular expression "
            f"({exc}); fix it, or escape it with re.escape() to match it literally"
        ) from None
    if compiled.match(""):
        raise InvalidOptionError(
            f"{_WHERE}: scrubbing {option} {pattern!r} matches the empty string, so it "
            "would scrub everything; make it match at least one character"
        )


def _sequence(option: str, value: object) -> tuple[Any, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise OptionTypeError(
            f"{_WHERE}: scrubbing {option} must be a list of strings, got {value!r}"
        )
    return tuple(value)


def resolve_scrubbing(value: Any, option: str = "scrubbing") -> ScrubbingOptions | None:
    """``value`` (an argument or ``OTELKIT_SCRUBBING``) as options, or ``None`` for off.

    ``True``/``None`` mean the defaults; ``False`` means off; a string is ``on``/``off``.
    Every pattern is compiled here, so a bad one fails ``configure()``, not a log call.
    """
    if value is None or value is True:
        return ScrubbingOptions()
    if value is False:
        return None
    if isinstance(value, str):
        on = check_on_off(
            _WHERE, option, value, instead="pass ScrubbingOptions(...) to configure()"
        )
        return ScrubbingOptions() if on else None
    if not isinstance(value, ScrubbingOptions):
        raise OptionTypeError(
            f"{_WHERE}: scrubbing must be True, False or otelkit.ScrubbingOptions(...), "
            f"got {type(value).__name__}"
        )
    if isinstance(value.extra_patterns, Mapping):
        for name, pattern in value.extra_patterns.items():
            if not isinstance(name, str) or not name.strip():
                raise OptionTypeError(
                    f"{_WHERE}: scrubbing extra_patterns names must be non-empty strings, "
                    f"got {name!r}"
                )
            _check_pattern("extra_patterns", pattern)
    else:
        for pattern in _sequence("extra_patterns", value.extra_patterns):
            _check_pattern("extra_patterns", pattern)
    for pattern in _sequence("extra_keys", value.extra_keys):
        _check_pattern("extra_keys", pattern)
    for key in _sequence("safe_keys", value.safe_keys):
        if not isinstance(key, str):
            raise OptionTypeError(f"{_WHERE}: scrubbing safe_keys must be strings, got {key!r}")
    if value.callback is not None and not callable(value.callback):
        raise OptionTypeError(
            f"{_WHERE}: scrubbing callback must be a function (ScrubMatch) -> bool, "
            f"got {type(value.callback).__name__}"
        )
    return value
