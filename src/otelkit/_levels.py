"""stdlib ``logging`` levels as OpenTelemetry severity numbers, on every supported release.

``opentelemetry.instrumentation.log_utils.std_to_otel`` exists in recent releases only; this
is the same mapping (the tests compare the two where both exist), without a private name.
"""

from __future__ import annotations

import traceback
from typing import Any

from opentelemetry._logs import SeverityNumber
from opentelemetry.util.types import AnyValue

__all__ = ["EMIT_TAKES_EXCEPTION", "exception_attributes", "exception_keywords", "std_to_otel"]

# The OpenTelemetry logs data model's mapping of stdlib levels (10 DEBUG .. 50 FATAL, each
# band's next three numbers its 2, 3 and 4, the rest of the band 4), as
# ``opentelemetry.instrumentation.log_utils.std_to_otel`` has it in recent releases; older
# releases keep it in ``opentelemetry-instrumentation-logging``'s handler module, which
# imports the instrumentor machinery (wrapt) that a relay child does not load.
_BANDS = (
    SeverityNumber.DEBUG,
    SeverityNumber.INFO,
    SeverityNumber.WARN,
    SeverityNumber.ERROR,
    SeverityNumber.FATAL,
)


def _mapping() -> dict[int, SeverityNumber]:
    table: dict[int, SeverityNumber] = {}
    for band, first in enumerate(_BANDS):
        for offset in range(10):
            table[10 * (band + 1) + offset] = SeverityNumber(first.value + min(offset, 3))
    return table


_STD_TO_OTEL = _mapping()


def std_to_otel(levelno: int) -> SeverityNumber:
    """A stdlib ``logging`` level number as an OpenTelemetry severity number."""
    if levelno < 10:
        return SeverityNumber.UNSPECIFIED
    if levelno > 53:
        return SeverityNumber.FATAL4
    return _STD_TO_OTEL[levelno]


def _emit_takes_exception() -> bool:
    import inspect

    from opentelemetry._logs import Logger

    return "exception" in inspect.signature(Logger.emit).parameters


EMIT_TAKES_EXCEPTION = _emit_takes_exception()
"""Whether the API's ``Logger.emit`` has an ``exception`` keyword (newer releases; the SDK
then writes the ``exception.*`` attributes)."""


def exception_attributes(exception: BaseException) -> dict[str, AnyValue]:
    """``exception.*`` attributes of ``exception``, as newer SDKs write them for
    ``Logger.emit(exception=...)``."""
    kind = type(exception)
    module = kind.__module__
    return {
        "exception.type": f"{module}.{kind.__qualname__}"
        if module and module != "builtins"
        else kind.__qualname__,
        "exception.message": str(exception),
        "exception.stacktrace": "".join(
            traceback.format_exception(kind, exception, exception.__traceback__)
        ),
    }


def exception_keywords(
    exception: BaseException | None, attributes: dict[str, AnyValue]
) -> dict[str, Any]:
    """The keyword arguments of ``Logger.emit`` that carry ``exception`` on this API: the
    ``exception`` keyword where it exists, else its attributes added to ``attributes``
    (those already set win, as in the SDK)."""
    if EMIT_TAKES_EXCEPTION:
        return {"exception": exception}
    if exception is not None:
        for key, value in exception_attributes(exception).items():
            attributes.setdefault(key, value)
    return {}
