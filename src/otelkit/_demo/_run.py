"""``otelkit demo``: every capability working together, in the terminal and in Jaeger."""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import IO

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagate import inject
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import otelkit
from otelkit._config import resolve_settings
from otelkit._demo._cache import CacheComparison, compare_caching
from otelkit._demo._jobs import DemoJobs, build_store, run_queue
from otelkit._demo._report import (
    JAEGER_TRACE_URL,
    DemoSummary,
    export_notice,
    find_job_traces,
    progress_line,
    render_job_trace,
    scrubbed_figures,
    summary_table,
)
from otelkit._demo._worker import flaky_upstream, worker_main
from otelkit.errors import InvalidOptionError
from otelkit.sampling import SamplingOptions

__all__ = ["DemoOptions", "run_demo"]

DEFAULT_ENDPOINT = "http://localhost:4318"


@dataclass(frozen=True)
class DemoOptions:
    """How long and how wide the demo runs, and where its telemetry goes."""

    duration: float = 20.0
    workers: int = 2
    db: str | None = None
    endpoint: str | None = None
    orders: int = 40
    min_seconds: float = 4.0
    sampling: float | None = None
    """Tail sampling with this probability (``None``: off)."""

    def __post_init__(self) -> None:
        if not 1.0 <= self.duration <= 600:
            raise InvalidOptionError(
                f"--duration must be within 1 and 600 seconds, got {self.duration}"
            )
        if not 1 <= self.workers <= 16:
            raise InvalidOptionError(f"--workers must be within 1 and 16, got {self.workers}")
        if self.endpoint not in (None, "", "none"):
            resolve_settings(endpoint=self.endpoint)  # raises ValueError naming the endpoint
        if self.db is not None:
            from otelkit.jobs._engine import make_url

            make_url(self.db, option="--db")  # raises ValueError giving the accepted forms
        if self.sampling is not None:
            SamplingOptions(probability=self.sampling).validated()


class _Tee(SpanProcessor, LogRecordProcessor):
    """Copies what the host exports (its own and relayed records) for the terminal."""

    def __init__(self, first: object, second: object) -> None:
        self._first, self._second = first, second

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._first.on_start(span, parent_context=parent_context)  # type: ignore[attr-defined]

    def on_end(self, span: ReadableSpan) -> None:
        self._first.on_end(span)  # type: ignore[attr-defined]
        self._second.on_end(span)  # type: ignore[attr-defined]

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self._first.on_emit(log_record)  # type: ignore[attr-defined]
        self._second.on_emit(log_record)  # type: ignore[attr-defined]

    def shutdown(self) -> None:
        self._first.shutdown()  # type: ignore[attr-defined]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self._first.force_flush(timeout_millis))  # type: ignore[attr-defined]


def _collector_answers(endpoint: str) -> bool:
    from otelkit._unreachable import refusing

    return not refusing([endpoint], 0.3)


def _relay_drops(telemetry: otelkit.Telemetry) -> int:
    stats = telemetry.relay_host.stats if telemetry.relay_host else {}
    return stats.get("dropped_logs", 0) + stats.get("dropped_spans", 0)


def run_demo(options: DemoOptions, out: IO[str] | None = None) -> DemoSummary:
    """Run the demo and return its figures (printing progress, summary and traces to ``out``)."""
    out = out or sys.stdout
    started = time.monotonic()
    endpoint = options.endpoint
    if endpoint is None and _collector_answers(DEFAULT_ENDPOINT):
        endpoint = DEFAULT_ENDPOINT
    elif endpoint in ("", "none"):
        endpoint = None  # explicitly: draw traces in the terminal
    exporter = "otlp" if endpoint else "memory"
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    with tempfile.TemporaryDirectory(prefix="otelkit-demo-") as tmp:
        db_url = options.db or f"sqlite:///{os.path.join(tmp, 'jobs.db')}"
        telemetry = otelkit.configure(
            service_name="otelkit-demo",
            exporter=exporter,
            endpoint=endpoint,
            relay=True,
            metric_interval=2.0,
            sampling=None
            if options.sampling is None
            else SamplingOptions(probability=options.sampling),
        )
        if exporter == "otlp":
            telemetry._span_switch.delegate = _Tee(
                telemetry._span_switch.delegate, SimpleSpanProcessor(spans)
            )
            telemetry._log_switch.delegate = _Tee(
                telemetry._log_switch.delegate, SimpleLogRecordProcessor(logs)
            )
        else:
            assert telemetry.memory is not None
            spans, logs = telemetry.memory.spans, telemetry.memory.logs
        relay_stats = telemetry.relay_host.stats if telemetry.relay_host else {}
        summary = DemoSummary(workers=options.workers)
        if telemetry.sampler is not None:
            summary.sampling = options.sampling
            telemetry.sampler.add_decision_listener(summary.count_job_decision)
        try:
            summary = _run(options, db_url, out, telemetry, summary)
        finally:
            telemetry.shutdown(timeout=10)
        counts = telemetry.export_counts()
        summary.logs_exported, summary.logs_failed = counts["logs"]
        summary.spans_exported, summary.spans_failed = counts["traces"]
        summary.endpoint = endpoint
        summary.relay_dropped = relay_stats.get("dropped_logs", 0) + relay_stats.get(
            "dropped_spans", 0
        )
        summary.relay_records = relay_stats.get("logs", 0) + relay_stats.get("spans", 0)
        summary.relay_metric_points = relay_stats.get("metric_points", 0)
        summary.drops = dict(telemetry.dropped())
        summary.seconds = time.monotonic() - started
    finished = spans.get_finished_spans()
    records = logs.get_finished_logs()
    summary.scrubbed_example, summary.scrubbed_records = scrubbed_figures(finished, records)
    if summary.sampled_out:  # the copy for the terminal is taken before tail sampling
        gone = summary.sampled_out
        finished = tuple(s for s in finished if s.context is None or s.context.trace_id not in gone)
    print(summary_table(summary), file=out)
    # Jaeger links only when the Collector accepted every span batch: a link to a trace
    # that never arrived is worse than none. Otherwise the traces are drawn here.
    links = exporter == "otlp" and summary.spans_exported > 0 and summary.spans_failed == 0
    if exporter == "otlp" and not links:
        print(f"\n{export_notice(summary)}", file=out)
    for title, key in (("the retried job", "flaky"), ("the failed job", "doomed")):
        job_id = summary.trace_ids.get(key)
        if job_id is None:
            continue
        traces = find_job_traces(finished, job_id)
        if not traces:
            continue
        print(file=out)
        if links:
            for spans_of_trace in traces:
                if not any(s.kind is SpanKind.CONSUMER for s in spans_of_trace):
                    continue  # the enqueue's trace: the links are to the attempts
                trace_id = spans_of_trace[0].context.trace_id
                print(f"{title}: {JAEGER_TRACE_URL.format(trace_id=f'{trace_id:032x}')}", file=out)
        else:
            print(render_job_trace(f"{title} ({key}):", traces, records), file=out)
    out.flush()
    return summary


def _run(
    options: DemoOptions,
    db_url: str,
    out: IO[str],
    telemetry: otelkit.Telemetry,
    summary: DemoSummary,
) -> DemoSummary:
    started = time.monotonic()
    jobs = build_store(db_url, queue=run_queue(shared=options.db is not None))
    jobs.prepare()
    try:
        return _run_jobs(options, jobs, db_url, out, telemetry, summary, started)
    finally:
        jobs.cleanup()  # a shared database keeps none of the demo's jobs or tables


def _run_jobs(
    options: DemoOptions,
    jobs: DemoJobs,
    db_url: str,
    out: IO[str],
    telemetry: otelkit.Telemetry,
    summary: DemoSummary,
    started: float,
) -> DemoSummary:
    for i in range(options.orders):
        jobs.order.enqueue(data={"order": i})
    summary.trace_ids["flaky"] = jobs.flaky.enqueue(data={"sku": "A-17"})
    summary.trace_ids["doomed"] = jobs.doomed.enqueue(data={"card": "4000-0000-0000-0002"})
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    emitted = ctx.Value("q", 0)
    host_stop = threading.Event()
    cache = CacheComparison()
    tracer = trace.get_tracer("otelkit.demo")
    processes = []
    with tracer.start_as_current_span("demo run") as root:
        carrier: dict[str, str] = {}
        inject(carrier)
        for index in range(options.workers):
            proc = ctx.Process(
                target=worker_main,
                args=(index, db_url, carrier, stop, emitted, jobs.queue),
                name=f"demo-worker-{index}",
            )
            proc.start()
            processes.append(proc)
        threads = [
            threading.Thread(target=flaky_upstream, args=(host_stop, emitted), daemon=True),
            threading.Thread(target=compare_caching, args=(host_stop, cache), daemon=True),
        ]
        for thread in threads:
            thread.start()
        tty = out.isatty()
        last_print = 0.0
        try:
            while True:
                elapsed = time.monotonic() - started
                counts = jobs.counts()
                done = all(
                    counts[s] == 0 for s in ("queued", "running", "retrying")
                ) and elapsed >= min(options.min_seconds, options.duration)
                if tty or elapsed - last_print >= 2.0 or done:
                    line = progress_line(
                        elapsed,
                        counts,
                        emitted.value,
                        telemetry.export_counts()["logs"][0],
                        _relay_drops(telemetry),
                    )
                    print(("\r" + line) if tty else line, end="" if tty else "\n", file=out)
                    out.flush()
                    last_print = elapsed
                if done or elapsed >= options.duration:
                    break
                time.sleep(0.25)
        finally:
            if tty:
                print(file=out)
            stop.set()
            host_stop.set()
            for proc in processes:
                proc.join(15)
                if proc.is_alive():
                    proc.terminate()
                    proc.join(5)
            for thread in threads:
                thread.join(5)
        root.set_attribute("otelkit.demo.workers", options.workers)
    summary.jobs = {k: v for k, v in jobs.counts().items() if v}
    summary.logs_emitted = emitted.value
    summary.cache_reads = cache.reads
    summary.plain_hit_ratio = cache.plain_hit_ratio
    summary.preloaded_hit_ratio = cache.preloaded_hit_ratio
    return summary
