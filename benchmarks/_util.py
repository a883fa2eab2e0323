"""Shared helpers for the benchmark scripts: timing subprocesses and the ratio line."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from typing import Any


def run_python(code: str, *args: str, timeout: float = 120) -> float:
    """Wall time in seconds of ``python -c code args`` (raises if it fails)."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code, *args],
        check=True,
        timeout=timeout,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    """The median of ``values``."""
    return statistics.median(values)


def ratio_line(name: str, ours: float, baseline: float, unit: str, digits: int = 3) -> str:
    """The last line every benchmark prints."""
    return (
        f"{name}: ratio={ours / baseline:.{digits}f} "
        f"(ours={ours:.{digits}f} {unit}, baseline={baseline:.{digits}f} {unit})"
    )


def installed_bytecode() -> dict[str, str]:
    """Compile otelkit's modules to bytecode, as an install would, and return an environment
    for child processes that uses it.

    The SDK's modules in site-packages come with bytecode; with PYTHONDONTWRITEBYTECODE set
    (as on some machines) an editable otelkit would be compiled from source in every fresh
    process, which no installed copy pays. Start-up comparisons must not charge us for that.
    """
    import compileall
    import os
    from pathlib import Path

    import otelkit

    package = Path(otelkit.__file__).parent
    compileall.compile_dir(str(package), quiet=1)
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def noop_providers() -> tuple[Any, Any]:
    """A TracerProvider (batch processor) and a MeterProvider (periodic reader, 1 s) whose
    exporters accept everything and send nothing: full SDK work, no I/O."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        MetricExporter,
        MetricExportResult,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class NoSpans(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    class NoMetrics(MetricExporter):
        def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kw: Any) -> Any:
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return True

        def shutdown(self, timeout_millis: float = 30_000, **kw: Any) -> None:
            pass

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(NoSpans()))
    reader = PeriodicExportingMetricReader(NoMetrics(), export_interval_millis=1000)
    return tracer_provider, MeterProvider(metric_readers=[reader])


def ignoring_processors() -> tuple[Any, Any]:
    """A span processor and a log record processor that drop everything they are given (so
    only the pipeline in front of them does work)."""
    from opentelemetry.sdk._logs import LogRecordProcessor
    from opentelemetry.sdk.trace import SpanProcessor

    class IgnoreSpans(SpanProcessor):
        def on_end(self, span: Any) -> None:
            pass

    class IgnoreLogs(LogRecordProcessor):
        def on_emit(self, log_record: Any) -> None:
            pass

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    return IgnoreSpans(), IgnoreLogs()
