"""Python bytecode instructions per span + logging call, with and without coalescing.

A deterministic companion to ``coalesce_passthrough.py`` (whose timings move a few per
cent between runs): the same operation (a span around a stdlib ``logging`` call, every
name and message distinct) counted with ``sys.settrace`` opcode events, through the
coalescing processors and through the same pipeline without them. Downstream of both are
processors that do nothing, so only the calling thread's instructions are counted. Two
cases: every operation opens a window (``max_keys`` never reached), and ``max_keys``
windows are open (new keys pass as overflow). It counts Python instructions only: not the
work inside C calls, the garbage collector or memory traffic. A plain function that replaces
a C call can raise the count and still cost less (``coalesce_steps.py``: a log record's
snapshot, more work in a function, takes less than one ``operator.attrgetter`` call), so
judge time in ``coalesce_passthrough``.

    .venv/bin/python benchmarks/coalesce_bytecodes.py [--ops N]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from types import FrameType
from typing import Any

from _util import ignoring_processors
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from otelkit.coalesce import CoalescingLogRecordProcessor, CoalescingSpanProcessor

_loggers = itertools.count()


def operation_counter(*, coalesce: bool, max_keys: int) -> Any:
    """A callable(first, count) running ``count`` operations; returns bytecodes per op."""
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    span_processor: SpanProcessor
    log_processor: LogRecordProcessor
    span_processor, log_processor = ignoring_processors()
    if coalesce:
        meters = MeterProvider(shutdown_on_exit=False)
        span_processor = CoalescingSpanProcessor(
            span_processor, meter_provider=meters, max_keys=max_keys
        )
        log_processor = CoalescingLogRecordProcessor(
            log_processor, meter_provider=meters, max_keys=max_keys
        )
    tracer_provider.add_span_processor(span_processor)
    logger_provider.add_log_record_processor(log_processor)
    tracer = tracer_provider.get_tracer("bench")
    logger = logging.getLogger(f"bench.bytecodes.{next(_loggers)}")
    logger.propagate = False
    logger.addHandler(LoggingHandler(logger_provider=logger_provider))

    def run(first: int, count: int) -> float:
        executed = 0

        def trace(frame: FrameType, event: str, arg: object) -> Any:
            nonlocal executed
            frame.f_trace_opcodes = True
            if event == "opcode":
                executed += 1
            return trace

        sys.settrace(trace)
        try:
            for i in range(first, first + count):
                with tracer.start_as_current_span(f"op {i}"):
                    logger.warning("event %d happened", i)
        finally:
            sys.settrace(None)
        return executed / count

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=500, help="operations counted per case")
    args = parser.parse_args()
    if args.ops < 1:
        parser.error("--ops must be >= 1")
    baseline = operation_counter(coalesce=False, max_keys=1)
    full = operation_counter(coalesce=True, max_keys=1)
    opening = operation_counter(coalesce=True, max_keys=10**9)
    for run in (baseline, full, opening):
        run(0, 100)  # warm up; for ``full`` this opens the one window max_keys allows
    base = baseline(1_000, args.ops)
    cases = [
        ("max_keys windows open", full(1_000, args.ops)),
        ("opening", opening(1_000, args.ops)),
    ]
    for name, ours in cases:
        print(f"{name}: +{ours - base:.0f} bytecodes/op ({ours:.0f} vs {base:.0f})")
    ours = cases[-1][1]  # whole instructions: ratio_line would print the ratio as digits=0
    print(
        f"coalesce_bytecodes: ratio={ours / base:.3f} "
        f"(ours={ours:.0f} bytecodes/op, baseline={base:.0f} bytecodes/op)"
    )


if __name__ == "__main__":
    main()
