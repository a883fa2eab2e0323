"""The preloader's own argument checks (cache keys); numbers and counts use
``otelkit._validate``."""

from __future__ import annotations

from collections.abc import Iterable

from otelkit.errors import OptionTypeError

__all__ = ["check_key", "check_related"]


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
