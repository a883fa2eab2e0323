"""The API log record of a record that arrived through the relay.

In the core, not in the relay: otelkit's batch processor queues such a record without the
copy it makes of every other one (its context is the relay's own, nobody else holds it),
and the core imports no capability.
"""

from __future__ import annotations

from opentelemetry._logs import LogRecord

__all__ = ["RelayedLogRecord"]

_new = object.__new__


class RelayedLogRecord(LogRecord):
    """An API ``LogRecord`` that arrived through the relay: the same fields, and a cheap
    shallow copy (the SDK's ``BatchLogRecordProcessor`` copies every record it queues, and
    ``copy.copy`` through ``__reduce_ex__`` cost the host several microseconds a record)."""

    __slots__ = ()

    def __copy__(self) -> RelayedLogRecord:
        twin = _new(RelayedLogRecord)
        twin.__dict__.update(self.__dict__)  # every field, also any a processor added
        return twin
