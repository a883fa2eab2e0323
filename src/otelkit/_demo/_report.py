"""What the demo shows: a live progress line, the summary table and its two traces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from otelkit._console import render_trace
from otelkit.scrubbing import SCRUBBED_ATTRIBUTE

__all__ = [
    "DemoSummary",
    "export_notice",
    "find_job_traces",
    "progress_line",
    "render_job_trace",
    "scrubbed_figures",
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
    scrubbed_example: str | None = None
    """A scrubbed exception message (the failed job's card number)."""
    scrubbed_records: int = 0
    """Spans and log records with something scrubbed."""
    sampling: float | None = None
    """The tail sampling probability (None: sampling off)."""
    job_decisions: dict[tuple[str, str], int] = field(default_factory=dict)
    """Job attempt traces by (decision, reason), when sampling is on."""

    sampled_out: set[int] = field(default_factory=set)
    """Trace ids of which a local tree was sampled out and none kept."""
    _kept: set[int] = field(default_factory=set)

    def count_job_decision(self, root: ReadableSpan, decision: str, reason: str) -> None:
        """A tail sampler's decision listener: counts the job attempts' trees and
        remembers which traces were sampled out (never linked or drawn)."""
        if root.context is not None:
            trace_id = root.context.trace_id
            if decision == "kept":
                self._kept.add(trace_id)
                self.sampled_out.discard(trace_id)
            elif trace_id not in self._kept:
                self.sampled_out.add(trace_id)
        if root.kind is SpanKind.CONSUMER and root.name.startswith("process "):
            key = (decision, reason)
            self.job_decisions[key] = self.job_decisions.get(key, 0) + 1


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
        ("scrubbed", _scrubbed_text(s)),
        (
            "cache hit ratio",
            f"{s.plain_hit_ratio:.0%} without preloading -> {s.preloaded_hit_ratio:.0%} with "
            f"({s.cache_reads} reads)",
        ),
    ]
    if s.sampling is not None:
        rows.append(("tail sampling", _sampling_text(s)))
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


def _scrubbed_text(s: DemoSummary) -> str:
    if not s.scrubbed_records:
        return "nothing matched a rule"
    example = f'"{s.scrubbed_example}", ' if s.scrubbed_example else ""
    return f"{example}{s.scrubbed_records} spans and log records scrubbed before export"


def _sampling_text(s: DemoSummary) -> str:
    d = s.job_decisions
    total = sum(d.values())
    kept = {reason: n for (decision, reason), n in d.items() if decision == "kept"}
    dropped = sum(n for (decision, _), n in d.items() if decision == "dropped")
    return (
        f"kept {sum(kept.values())} of {total} job traces: {kept.get('error', 0)} failed, "
        f"{kept.get('slow', 0)} slow, {kept.get('probability', 0)} by trace id "
        f"(probability {s.sampling:g}); {dropped} sampled out"
    )


def scrubbed_figures(
    spans: Sequence[ReadableSpan], logs: Sequence[ReadableLogRecord]
) -> tuple[str | None, int]:
    """A scrubbed exception message (if any) and how many spans and log records had
    something scrubbed."""
    example: str | None = None
    count = 0
    for span in spans:
        if SCRUBBED_ATTRIBUTE in (span.attributes or {}):
            count += 1
            for event in span.events:
                message = (event.attributes or {}).get("exception.message")
                if example is None and "[scrubbed: " in str(message):
                    example = f"{(event.attributes or {}).get('exception.type')}: {message}"
    for record in logs:
        if SCRUBBED_ATTRIBUTE in (record.log_record.attributes or {}):
            count += 1
    return example, count


def _drops_text(drops: dict[tuple[str, str], int]) -> str:
    if not drops:
        return "nothing (worker buffers, relay, batch queues, exports)"
    parts = [f"{signal} {reason} {n}" for (signal, reason), n in sorted(drops.items())]
    return f"{sum(drops.values())}: " + ", ".join(parts)


def find_job_traces(spans: Sequence[ReadableSpan], job_id: str) -> list[list[ReadableSpan]]:
    """The enqueue trace of ``job_id`` first (when it was kept), then one trace per attempt
    linked to it."""
    send = next(
        (
            s
            for s in spans
            if s.kind is SpanKind.PRODUCER
            and (s.attributes or {}).get("messaging.message.id") == job_id
        ),
        None,
    )
    by_trace: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        if span.context is not None:
            by_trace.setdefault(span.context.trace_id, []).append(span)
    # Tail sampling may have kept a failed attempt's trace and not its enqueue's.
    send_trace = send.context.trace_id if send is not None and send.context is not None else None
    traces = [by_trace[send_trace]] if send_trace is not None else []
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
        if attempt.context.trace_id != send_trace:
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
