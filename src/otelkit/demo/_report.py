"""What the demo shows: a live progress line, the summary table and its two traces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from otelkit._console import render_trace

__all__ = [
    "DemoSummary",
    "export_notice",
    "find_job_traces",
    "progress_line",
    "render_job_trace",
    "summary_table",
]

JAEGER_TRACE_URL = "http://localhost:16686/trace/{trace_id}"


@dataclass
class DemoSummary:
    """The figures the demo ends with."""

    seconds: float = 0.0
    workers: int = 0
    jobs: dict[str, int] = field(default_factory=dict)
    logs_emitted: int = 0
    logs_exported: int = 0
    logs_failed: int = 0
    spans_exported: int = 0
    spans_failed: int = 0
    endpoint: str | None = None
    """The Collector exported to (None: drawn in the terminal)."""
    relay_dropped: int = 0
    relay_records: int = 0
    relay_metric_points: int = 0
    drops: dict[tuple[str, str], int] = field(default_factory=dict)
    """Records the host's pipeline dropped, by (signal, reason), workers' buffers included."""
    cache_reads: int = 0
    plain_hit_ratio: float = 0.0
    preloaded_hit_ratio: float = 0.0
    trace_ids: dict[str, str] = field(default_factory=dict)


def progress_line(
    elapsed: float, jobs: dict[str, int], emitted: int, exported: int, dropped: int
) -> str:
    """One status line: jobs by state, log records emitted vs exported, relay drops."""
    states = " ".join(f"{state}={count}" for state, count in sorted(jobs.items()) if count)
    return (
        f"[{elapsed:5.1f} s] jobs: {states or '-'} | log records emitted {emitted} "
        f"exported {exported} | relay drops {dropped}"
    )


def summary_table(s: DemoSummary) -> str:
    """The end-of-run table."""
    jobs = ", ".join(f"{state} {count}" for state, count in sorted(s.jobs.items()) if count)
    if s.logs_exported:
        ratio = s.logs_emitted / s.logs_exported
        logs = f"{s.logs_emitted} emitted -> {s.logs_exported} exported (coalescing {ratio:.0f}:1)"
    else:
        logs = f"{s.logs_emitted} emitted -> none exported"
    if s.logs_failed:
        logs += f", {s.logs_failed} failed to export"
    rows = [
        ("jobs by final state", jobs or "none"),
        ("log records", logs),
        (
            "relay",
            f"{s.relay_records} records and {s.relay_metric_points} metric points from "
            f"workers, {s.relay_dropped} dropped in their buffers",
        ),
        ("dropped anywhere", _drops_text(s.drops)),
        (
            "cache hit ratio",
            f"{s.plain_hit_ratio:.0%} without preloading -> {s.preloaded_hit_ratio:.0%} with "
            f"({s.cache_reads} reads)",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    title = f"otelkit demo: {s.workers} worker processes, {s.seconds:.1f} s"
    lines = [title, "-" * len(title)]
    lines += [f"{name.ljust(width)}  {value}" for name, value in rows]
    return "\n".join(lines)


def export_notice(s: DemoSummary) -> str:
    """Why there are no Jaeger links: the Collector accepted nothing, or not everything."""
    if s.spans_exported == 0:
        return (
            f"Nothing was exported: no Collector accepted the telemetry sent to {s.endpoint} "
            "(start one with `docker compose up -d`, check it with `otelkit doctor`). "
            "No Jaeger links; the traces, drawn here instead:"
        )
    return (
        f"The Collector at {s.endpoint} accepted {s.spans_exported} of "
        f"{s.spans_exported + s.spans_failed} spans; which traces arrived whole is unknown, "
        "so no Jaeger links. The traces, drawn here instead:"
    )


def _drops_text(drops: dict[tuple[str, str], int]) -> str:
    if not drops:
        return "nothing (worker buffers, relay, batch queues, exports)"
    parts = [f"{signal} {reason} {n}" for (signal, reason), n in sorted(drops.items())]
    return f"{sum(drops.values())}: " + ", ".join(parts)


def find_job_traces(spans: Sequence[ReadableSpan], job_id: str) -> list[list[ReadableSpan]]:
    """The enqueue trace of ``job_id`` first, then one trace per attempt linked to it."""
    send = next(
        (
            s
            for s in spans
            if s.kind is SpanKind.PRODUCER
            and (s.attributes or {}).get("messaging.message.id") == job_id
        ),
        None,
    )
    if send is None or send.context is None:
        return []
    by_trace: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        if span.context is not None:
            by_trace.setdefault(span.context.trace_id, []).append(span)
    traces = [by_trace[send.context.trace_id]]
    attempts = [
        s
        for s in spans
        if s.kind is SpanKind.CONSUMER
        and s.context is not None
        and (s.attributes or {}).get("messaging.message.id") == job_id
    ]
    attempts.sort(key=lambda s: s.start_time or 0)
    for attempt in attempts:
        assert attempt.context is not None
        if attempt.context.trace_id != send.context.trace_id:
            traces.append(by_trace[attempt.context.trace_id])
    return traces


def render_job_trace(
    title: str, traces: list[list[ReadableSpan]], logs: Sequence[ReadableLogRecord]
) -> str:
    """The traces of one job drawn as trees, log lines beneath their spans."""
    lines = [title]
    for spans in traces:
        trace_ids = {s.context.trace_id for s in spans if s.context is not None}
        own_logs = [r for r in logs if r.log_record.trace_id in trace_ids]
        lines.append(render_trace(spans, own_logs, verbosity="brief"))  # the story, short
    return "\n".join(lines)
