"""Human-readable terminal output: traces as indented trees with durations, logs as lines.

The SDK's console exporters dump JSON; a person wants to see which span ran inside which
and how long each took. :func:`render_trace` draws one trace (with its log lines beneath
the span they belong to); the processors below print as work finishes.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import IO, Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from otelkit.coalesce._common import (
    COUNT_ATTRIBUTE,
    FIRST_TIMESTAMP_ATTRIBUTE,
    LAST_TIMESTAMP_ATTRIBUTE,
)

__all__ = [
    "ConsoleLogExporter",
    "ConsoleMetricExporter",
    "ConsoleTraceExporter",
    "console_verbosity",
    "render_log_line",
    "render_trace",
]

_MAX_HELD_SPANS = 10_000
VERBOSITY_ENV = "OTELKIT_CONSOLE_VERBOSITY"
VERBOSITIES = ("brief", "normal", "full")
"""``brief``: names, kinds, durations, status; ``normal`` (default): also span attributes,
events and links, each value cut at 60 characters; ``full``: nothing cut, and log records'
attributes too."""
_CUT = 60
_COALESCE_PREFIX = "otelkit.coalesce."


def console_verbosity(value: str | None = None) -> str:
    """``value``, else ``OTELKIT_CONSOLE_VERBOSITY``, else ``normal``; ``0``/``1``/``2``
    stand for the three levels. ``ValueError`` for anything else."""
    raw = value if value is not None else os.environ.get(VERBOSITY_ENV, "")
    text = raw.strip().lower() or "normal"
    text = {"0": "brief", "1": "normal", "2": "full"}.get(text, text)
    if text not in VERBOSITIES:
        raise ValueError(
            f"otelkit: {VERBOSITY_ENV}={raw!r} is not supported; accepted values: "
            "brief (0), normal (1), full (2)"
        )
    return text


def _seconds_text(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _duration(span: ReadableSpan) -> str:
    if span.start_time is None or span.end_time is None:
        return "?"
    return _seconds_text((span.end_time - span.start_time) / 1e9)


def _severity(record: ReadableLogRecord) -> str:
    text = record.log_record.severity_text
    return (text or "LOG").upper()


def _clock(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def _value(value: Any, cut: bool) -> str:
    text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return text if not cut or len(text) <= _CUT else text[: _CUT - 1] + "…"


def _attributes(attributes: Any, verbosity: str, skip: str | None = None) -> str:
    """`` {k=v, ...}`` (empty when there are none, or at ``brief``)."""
    if verbosity == "brief" or not attributes:
        return ""
    cut = verbosity != "full"
    items = [
        f"{key}={_value(val, cut)}"
        for key, val in attributes.items()
        if skip is None or not key.startswith(skip)
    ]
    return f"  {{{', '.join(items)}}}" if items else ""


def _origin(resource: Resource | None) -> str:
    """``  [service pid N]`` for a record from another process (relayed from a child)."""
    attrs = resource.attributes if resource is not None else {}
    pid = attrs.get("process.pid")
    if pid is None or pid == os.getpid():
        return ""
    return f"  [{attrs.get('service.name', 'unknown_service')} pid {pid}]"


def _coalesced(attrs: Any) -> str:
    """``  (x67 over 3.0 ms)``: a summary's count and the real span of its occurrences."""
    count = attrs.get(COUNT_ATTRIBUTE)
    if count is None:
        return ""
    first, last = attrs.get(FIRST_TIMESTAMP_ATTRIBUTE), attrs.get(LAST_TIMESTAMP_ATTRIBUTE)
    if isinstance(first, int) and isinstance(last, int) and last > first:
        return f"  (x{count} over {_seconds_text((last - first) / 1e9)})"
    return f"  (x{count})"


def render_log_line(
    record: ReadableLogRecord, verbosity: str = "normal", *, origin: bool = True
) -> str:
    """One log record as ``HH:MM:SS.mmm LEVEL scope: body``, then a coalescing summary's
    count and span, the record's attributes (``full`` only) and its process if not ours."""
    ts = record.log_record.timestamp or record.log_record.observed_timestamp or 0
    scope = record.instrumentation_scope.name if record.instrumentation_scope else ""
    attrs = record.log_record.attributes or {}
    extra = _coalesced(attrs)
    if verbosity == "full":
        extra += _attributes(attrs, verbosity, skip=_COALESCE_PREFIX)
    if origin:
        extra += _origin(record.resource)
    return f"{_clock(ts)} {_severity(record):<5} {scope}: {record.log_record.body!s}{extra}"


def _span_line(span: ReadableSpan, verbosity: str) -> str:
    status = ""
    if span.status.status_code is StatusCode.ERROR:
        status = "  ERROR" + (f": {span.status.description}" if span.status.description else "")
    kind = span.kind.name.lower()
    attrs = _attributes(span.attributes, verbosity, skip=_COALESCE_PREFIX)
    coalesced = _coalesced(span.attributes or {})
    return (
        f"{span.name} [{kind}] {_duration(span)}{status}{coalesced}{attrs}{_origin(span.resource)}"
    )


def _beneath(span: ReadableSpan, records: Sequence[ReadableLogRecord], verbosity: str) -> list[str]:
    """The lines under a span: its links, then its events and log records by time."""
    lines: list[str] = []
    if verbosity != "brief":
        for link in span.links:
            ctx = link.context
            attrs = _attributes(link.attributes, verbosity)
            lines.append(f"↗ link to trace {ctx.trace_id:032x} span {ctx.span_id:016x}{attrs}")
    timed: list[tuple[int, str]] = []
    if verbosity != "brief":
        for event in span.events:
            attrs = _attributes(event.attributes, verbosity)
            timed.append((event.timestamp, f"◆ {_clock(event.timestamp)} {event.name}{attrs}"))
    for record in records:
        ts = record.log_record.timestamp or record.log_record.observed_timestamp or 0
        own = _origin(record.resource) != _origin(span.resource)  # not the span's again
        timed.append((ts, "· " + render_log_line(record, verbosity, origin=own)))
    timed.sort(key=lambda item: item[0])
    return lines + [text for _, text in timed]


def render_trace(
    spans: Sequence[ReadableSpan],
    logs: Iterable[ReadableLogRecord] = (),
    *,
    ids: bool = True,
    verbosity: str = "normal",
) -> str:
    """Draw the spans of one trace as a tree, each span's log lines beneath it.

    Spans whose parent is not among ``spans`` are drawn as roots. Children are ordered by
    start time. ``ids=False`` leaves out trace ids (for stable snapshots); ``verbosity``
    is one of :data:`VERBOSITIES`.
    """
    by_id = {span.context.span_id: span for span in spans if span.context is not None}
    children: dict[int | None, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        children[parent if parent in by_id else None].append(span)
    for group in children.values():
        group.sort(key=lambda s: s.start_time or 0)
    logs_by_span: dict[int, list[ReadableLogRecord]] = defaultdict(list)
    for record in logs:
        span_id = record.log_record.span_id
        if span_id:
            logs_by_span[span_id].append(record)

    lines: list[str] = []
    roots = children[None]
    if ids and roots and roots[0].context is not None:
        lines.append(f"trace {roots[0].context.trace_id:032x}")

    def draw(span: ReadableSpan, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        lines.append(prefix + branch + _span_line(span, verbosity))
        inner = prefix + ("" if top else ("   " if last else "│  "))
        span_id = span.context.span_id if span.context is not None else 0
        kids = children.get(span_id, [])
        for text in _beneath(span, logs_by_span.get(span_id, []), verbosity):
            lines.append(inner + ("│  " if kids else "   ") + text)
        for i, kid in enumerate(kids):
            draw(kid, inner, i == len(kids) - 1, False)

    for root in roots:
        draw(root, "", True, True)
    return "\n".join(lines)


class ConsoleTraceExporter(SpanExporter):
    """Prints each local trace tree once its local root has been exported (bounded memory).

    Meant to sit behind a ``BatchSpanProcessor``: rendering and writing happen on the
    processor's worker thread, never in the application's ``span.end()``.
    """

    def __init__(self, out: IO[str] | None = None, *, verbosity: str | None = None) -> None:
        self._out = out
        self._verbosity = console_verbosity(verbosity)
        self._lock = threading.Lock()
        self._held: dict[int, list[ReadableSpan]] = defaultdict(list)
        self._held_count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        trees: list[list[ReadableSpan]] = []
        with self._lock:
            for span in spans:
                if span.context is None:
                    continue
                trace_id = span.context.trace_id
                if span.parent is None or span.parent.is_remote:  # a local root
                    tree = [*self._held.pop(trace_id, []), span]
                    self._held_count -= len(tree) - 1
                    trees.append(tree)
                elif self._held_count >= _MAX_HELD_SPANS:
                    trees.append([span])  # bounded: print orphans rather than hold without limit
                else:
                    self._held[trace_id].append(span)
                    self._held_count += 1
        for tree in trees:
            self._write(render_trace(tree, verbosity=self._verbosity))
        return SpanExportResult.SUCCESS

    def _write(self, text: str) -> None:
        out = self._out or sys.stderr
        try:
            out.write(text + "\n")
            out.flush()
        except (OSError, ValueError):  # closed stream at exit: nothing to do
            pass

    def shutdown(self) -> None:
        with self._lock:
            pending = list(self._held.values())
            self._held.clear()
            self._held_count = 0
        for tree in pending:
            self._write(render_trace(tree, verbosity=self._verbosity))

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class ConsoleLogExporter(LogRecordExporter):
    """Writes each log record as one readable line."""

    def __init__(self, out: IO[str] | None = None, *, verbosity: str | None = None) -> None:
        self._out = out
        self._verbosity = console_verbosity(verbosity)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        out = self._out or sys.stderr
        try:
            out.write("".join(render_log_line(r, self._verbosity) + "\n" for r in batch))
            out.flush()
        except (OSError, ValueError):
            return LogRecordExportResult.FAILURE
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _point_value(point: Any) -> str:
    if hasattr(point, "value"):
        return str(point.value)
    if hasattr(point, "count") and hasattr(point, "sum"):
        return f"count={point.count} sum={point.sum:.4g}"
    return "?"


class ConsoleMetricExporter(MetricExporter):
    """Writes one line per metric point: ``name{attr=value} = value``."""

    def __init__(self, out: IO[str] | None = None) -> None:
        super().__init__(preferred_temporality={}, preferred_aggregation={})
        self._out = out

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        lines = []
        for rm in metrics_data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.data.data_points:
                        attrs = ",".join(
                            f"{k}={v!s}" for k, v in sorted((point.attributes or {}).items())
                        )
                        lines.append(f"metric {metric.name}{{{attrs}}} = {_point_value(point)}")
        out = self._out or sys.stderr
        try:
            out.write("".join(line + "\n" for line in lines))
        except (OSError, ValueError):
            return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass
