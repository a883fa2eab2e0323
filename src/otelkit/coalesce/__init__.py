"""Coalescing at the source: the first record of a key leaves at once, repeats are counted.

``CoalescingLogRecordProcessor`` and ``CoalescingSpanProcessor`` wrap the exporting
processor; ``Coalescer`` is the engine they share (no OpenTelemetry types inside).
"""

from otelkit.coalesce._common import (
    COUNT_ATTRIBUTE,
    FIRST_TIMESTAMP_ATTRIBUTE,
    LAST_TIMESTAMP_ATTRIBUTE,
    WINDOW_ATTRIBUTE,
)
from otelkit.coalesce._keys import attributes_key, call_site_key, message_key, span_name_key
from otelkit.coalesce._window import EMIT, SUPPRESS, Coalescer, Decision, Summary
from otelkit.coalesce._logs import CoalescingLogRecordProcessor
from otelkit.coalesce._spans import CoalescingSpanProcessor

__all__ = [
    "COUNT_ATTRIBUTE",
    "EMIT",
    "FIRST_TIMESTAMP_ATTRIBUTE",
    "LAST_TIMESTAMP_ATTRIBUTE",
    "SUPPRESS",
    "WINDOW_ATTRIBUTE",
    "Coalescer",
    "CoalescingLogRecordProcessor",
    "CoalescingSpanProcessor",
    "Decision",
    "Summary",
    "attributes_key",
    "call_site_key",
    "message_key",
    "span_name_key",
]
