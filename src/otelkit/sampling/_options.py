"""``SamplingOptions``: what ``configure(sampling=...)`` accepts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from otelkit._validate import check_on_off, check_positive, check_positive_int
from otelkit.errors import InvalidOptionError, OptionTypeError

__all__ = ["SamplingOptions", "resolve_sampling"]

_WHERE = "otelkit.configure: sampling"


@dataclass(frozen=True)
class SamplingOptions:
    """Tail sampling of local trace trees (``configure(sampling=SamplingOptions(...))``).

    When a local root span ends, its tree (the spans below it that ended in this process or
    were relayed to it, and the log records emitted in them) is kept whole if any of its
    spans is an error or the root lasted at least ``duration_threshold`` seconds; any other
    tree is kept with ``probability``, decided from the trace id (every process using the
    same probability decides a trace the same way).
    """

    probability: float = 0.1
    """The share of the other trees that is kept, within [0, 1]."""
    duration_threshold: float = 1.0
    """Seconds: a tree whose root lasted at least this long is kept."""
    max_hold: float = 30.0
    """Seconds a tree's spans and logs wait for its root; then they pass unsampled."""
    max_held: int = 10_000
    """Spans and log records waiting at most; beyond, the oldest tree passes unsampled."""

    def validated(self) -> SamplingOptions:
        """``self`` if every option is usable; ``InvalidOptionError`` naming the bad one."""
        probability = self.probability
        if isinstance(probability, bool) or not isinstance(probability, int | float):
            raise OptionTypeError(f"{_WHERE} probability must be a number, got {probability!r}")
        if not 0.0 <= probability <= 1.0:
            raise InvalidOptionError(
                f"{_WHERE} probability={probability!r} must be within [0, 1] "
                "(0 keeps only failed and slow trees, 1 keeps everything)"
            )
        check_positive(_WHERE, "duration_threshold", self.duration_threshold)
        check_positive(_WHERE, "max_hold", self.max_hold)
        check_positive_int(_WHERE, "max_held", self.max_held)
        return self


def resolve_sampling(value: Any, option: str = "sampling") -> SamplingOptions | None:
    """``value`` (an argument or ``OTELKIT_SAMPLING``) as options, ``None`` for off (the
    default): ``True`` or ``"on"`` means ``SamplingOptions()``."""
    if value is None or value is False:
        return None
    if value is True:
        return SamplingOptions()
    if isinstance(value, str):
        on = check_on_off(
            "otelkit.configure", option, value, instead="pass SamplingOptions(...) to configure()"
        )
        return SamplingOptions() if on else None
    if not isinstance(value, SamplingOptions):
        raise OptionTypeError(
            "otelkit.configure: sampling must be True, False or otelkit.SamplingOptions(...), "
            f"got {type(value).__name__}"
        )
    return value.validated()
