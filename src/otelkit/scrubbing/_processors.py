"""Scrubbing processors: they wrap the processor they hand records on to.

:class:`ScrubbingSpanProcessor` and :class:`ScrubbingLogRecordProcessor` sit in front of
everything else in a process (coalescing, sampling, batching, the relay), so that no later
stage, and no coalescing key, sees a value the rules match.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import Status

from otelkit._errors import report_internal_error
from otelkit.scrubbing._options import ScrubbingOptions
from otelkit.scrubbing._scrubber import SCRUBBED_ATTRIBUTE, Notes, Scrubber, listing

__all__ = [
    "ScrubbingLogRecordProcessor",
    "ScrubbingSpanProcessor",
    "scrub_relay_entry",
    "scrub_resource",
]


def _make_scrubber(options: ScrubbingOptions | None, scrubber: Scrubber | None) -> Scrubber:
    # ``_scrubber``: configure() shares one Scrubber between its processors and the relay.
    return scrubber if scrubber is not None else Scrubber(options)


class ScrubbingLogRecordProcessor(LogRecordProcessor):
    """Scrub each log record's body and attributes, then hand it to ``downstream``.

    A record with something scrubbed gets :data:`~otelkit.scrubbing.SCRUBBED_ATTRIBUTE`.
    Never raises: a record that cannot be scrubbed is dropped and counted as an internal
    error, never sent unscrubbed.
    """

    def __init__(
        self,
        downstream: LogRecordProcessor,
        options: ScrubbingOptions | None = None,
        *,
        _scrubber: Scrubber | None = None,
    ) -> None:
        self._downstream = downstream
        self._scrubber = _make_scrubber(options, _scrubber)

    @property
    def downstream(self) -> LogRecordProcessor:
        """The wrapped processor."""
        return self._downstream

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Scrub ``log_record`` in place and forward it. Never raises."""
        try:
            record = log_record.log_record
            notes: Notes = []
            scrubber = self._scrubber
            body = record.body
            if body is not None:
                new_body = scrubber.value(body, "body", notes)
            attributes = record.attributes
            new_attributes = scrubber.attributes(attributes, notes) if attributes else None
            if notes:
                if body is not None:
                    record.body = new_body
                merged = dict(new_attributes if new_attributes is not None else attributes or {})
                merged[SCRUBBED_ATTRIBUTE] = listing(notes)
                record.attributes = merged
                scrubber.count("logs", notes)
        except Exception as exc:  # noqa: BLE001 - fail closed: never send it unscrubbed
            report_internal_error("scrub.logs", exc)
            return
        self._downstream.on_emit(log_record)

    def shutdown(self) -> None:
        """Shut the downstream processor down."""
        self._downstream.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the downstream processor."""
        return self._downstream.force_flush(timeout_millis)


class ScrubbingSpanProcessor(SpanProcessor):
    """Scrub each ended span's attributes, event attributes and status description, then
    hand it to ``downstream`` (a span with something scrubbed as a scrubbed copy, built
    through the SDK's public ``ReadableSpan``). Never raises."""

    def __init__(
        self,
        downstream: SpanProcessor,
        options: ScrubbingOptions | None = None,
        *,
        _scrubber: Scrubber | None = None,
    ) -> None:
        self._downstream = downstream
        self._scrubber = _make_scrubber(options, _scrubber)

    @property
    def downstream(self) -> SpanProcessor:
        """The wrapped processor."""
        return self._downstream

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Forward to the downstream processor."""
        self._downstream.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """Forward ``span``, scrubbed. Never raises (a span that cannot be scrubbed is
        dropped and counted as an internal error)."""
        try:
            scrubbed = self.scrub(span)
        except Exception as exc:  # noqa: BLE001 - fail closed
            report_internal_error("scrub.spans", exc)
            return
        self._downstream.on_end(scrubbed)

    def scrub(self, span: ReadableSpan) -> ReadableSpan:
        """``span`` itself when nothing in it matches a rule, else a scrubbed copy."""
        scrubber = self._scrubber
        notes: Notes = []
        attributes = span.attributes
        new_attributes = scrubber.attributes(attributes, notes) if attributes else None
        events = span.events
        new_events: list[Event] | None = None
        for i, event in enumerate(events):
            if not event.attributes:
                continue
            scrubbed = scrubber.attributes(event.attributes, notes, prefix=f"event {event.name}: ")
            if scrubbed is not None:
                if new_events is None:
                    new_events = list(events)
                new_events[i] = Event(event.name, scrubbed, event.timestamp)
        status = span.status
        description = status.description
        new_status = status
        if description:
            text = scrubber.text(description, "status", notes)
            if text is not description:
                new_status = Status(status.status_code, text)
        if not notes:
            return span
        merged = dict(new_attributes if new_attributes is not None else attributes or {})
        merged[SCRUBBED_ATTRIBUTE] = listing(notes)
        scrubber.count("spans", notes)
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=merged,
            events=new_events if new_events is not None else events,
            links=span.links,
            kind=span.kind,
            status=new_status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def shutdown(self) -> None:
        """Shut the downstream processor down."""
        self._downstream.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the downstream processor."""
        return self._downstream.force_flush(timeout_millis)


def scrub_resource(resource: Resource, scrubber: Scrubber) -> Resource:
    """``resource`` with its attributes scrubbed (itself when nothing matched)."""
    notes: Notes = []
    scrubbed = scrubber.attributes(resource.attributes, notes)
    if scrubbed is None:
        return resource
    scrubbed[SCRUBBED_ATTRIBUTE] = listing(notes)
    scrubber.count("resource", notes)
    return Resource(scrubbed, resource.schema_url)


def scrub_relay_entry(scrubber: Scrubber, entry: tuple[Any, ...]) -> tuple[Any, ...]:
    """A relay child's log entry (``otelkit.relay``'s tuple: body at 4, attributes at 5)
    scrubbed before it is buffered."""
    notes: Notes = []
    body = entry[4]
    new_body = scrubber.value(body, "body", notes) if body is not None else None
    attributes: Mapping[str, Any] | None = entry[5]
    new_attributes = scrubber.attributes(attributes, notes) if attributes else None
    if not notes:
        return entry
    merged = dict(new_attributes if new_attributes is not None else attributes or {})
    merged[SCRUBBED_ATTRIBUTE] = listing(notes)
    scrubber.count("logs", notes)
    return (*entry[:4], new_body, merged, *entry[6:])
