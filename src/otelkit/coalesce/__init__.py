"""Coalescing at the source: the first record of a key leaves at once, repeats are counted.

``CoalescingLogRecordProcessor`` and ``CoalescingSpanProcessor`` wrap the exporting
processor; ``attributes_key`` builds a key from attribute values (the other keys are named by
a string: ``"message"``, ``"call_site"``, ``"name"``). A summary record carries the
``*_ATTRIBUTE`` names below. See ``docs/coalescing.md``.
"""

from otelkit.coalesce._common import (
    COUNT_ATTRIBUTE,
    FIRST_TIMESTAMP_ATTRIBUTE,
    LAST_TIMESTAMP_ATTRIBUTE,
    WINDOW_ATTRIBUTE,
)
from otelkit.coalesce._keys import attributes_key
from otelkit.coalesce._logs import CoalescingLogRecordProcessor
from otelkit.coalesce._spans import CoalescingSpanProcessor

__all__ = [
    "COUNT_ATTRIBUTE",
    "FIRST_TIMESTAMP_ATTRIBUTE",
    "LAST_TIMESTAMP_ATTRIBUTE",
    "WINDOW_ATTRIBUTE",
    "CoalescingLogRecordProcessor",
    "CoalescingSpanProcessor",
    "attributes_key",
]
