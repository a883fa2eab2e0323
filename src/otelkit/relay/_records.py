"""SDK log records for relayed data: the SDK's constructors, or the same fields set directly.

The host hands each relayed record to its processors as a ``ReadWriteLogRecord``. The SDK's
constructors clean every attribute value and apply the attribute limits; for a record whose
attributes come off the wire as plain scalars with non-empty keys, within the count limit and
with no value length limit, that work changes nothing, and it was most of what relaying a
record cost the host. :func:`build_log_records` then sets the fields the constructors would
set (``otelkit._sdk.logs``, whose self-check at import compares it with the constructors:
otherwise every record takes the constructors), and the tests compare both paths field by
field on random records.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.sdk._logs import LogRecordLimits, ReadWriteLogRecord

from otelkit._relayed import RelayedLogRecord
from otelkit._sdk.logs import FAST_LOG_RECORDS_OK, fast_log_records

__all__ = [
    "FAST_OK",
    "LogFields",
    "RelayedLogRecord",
    "build_log_records",
]

LogFields = tuple[Any, ...]
"""A decoded log record: ``(timestamp, observed_timestamp, context, trace_id, span_id,
trace_flags, severity_text, severity_number, body, attributes, event_name,
dropped_attributes, resource, scope, plain)``; ``plain`` says the attributes may skip the
SDK's cleaning and limits."""


def build_log_records(
    rows: Iterable[LogFields], limits: LogRecordLimits
) -> list[ReadWriteLogRecord]:
    """A ``ReadWriteLogRecord`` (over a :class:`RelayedLogRecord`) for each row, in one
    loop: without re-validation for a plain row when the seam's shortcut passed its
    self-check (``otelkit._sdk.logs``), else through the SDK's constructors."""
    return fast_log_records(RelayedLogRecord, rows, limits)


FAST_OK = FAST_LOG_RECORDS_OK
"""Whether :func:`build_log_records` may skip the constructors (the seam's self-check)."""
