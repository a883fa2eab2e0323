"""stdlib ``logging`` levels as OpenTelemetry severity numbers, on every supported release.

``opentelemetry.instrumentation.log_utils.std_to_otel`` exists in recent releases only; this
is the same mapping (the tests compare the two where both exist), without a private name.
"""

from __future__ import annotations

from opentelemetry._logs import SeverityNumber

__all__ = ["std_to_otel"]

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
