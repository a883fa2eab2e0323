"""CPU per span on the pipeline users run: ``otelkit.configure()`` against the SDK's
standard pipeline, both exporting OTLP/HTTP with gzip to a receiver in another process.

Each side is a fresh process that creates ``--spans`` spans (distinct names, two
attributes, ended at once) in bursts of ``--burst`` with a ``--pause`` between bursts, then
flushes; its cost is the process's CPU time (user + sys, every thread) from the first span
to the end of the flush, divided by the spans. The sides:

- ours: ``otelkit.configure(endpoint=...)`` as a user calls it, spans from
  ``opentelemetry.trace.get_tracer``;
- baseline: the SDK's standard pipeline, ``TracerProvider`` -> ``BatchSpanProcessor`` ->
  ``OTLPSpanExporter(compression=gzip)``;
- floor: a ``TracerProvider`` with no processor (the SDK's own span creation, printed
  beside).

Every run prints emitted = exported (what the receiver decoded) + counted drops + uncounted.
Target: ratio <= 0.65.

    .venv/bin/python benchmarks/spans_export_cost.py [--spans N] [--burst B] [--pause S]
        [--repeats R]
"""

from __future__ import annotations

import argparse
import functools
import time
from typing import Any

from _export_common import add_run_arguments, compare, measure_side, passed_on


def _workload(tracer: Any, spans: int, burst: int, pause: float) -> None:
    for start in range(0, spans, burst):
        for i in range(start, min(start + burst, spans)):
            with tracer.start_as_current_span(f"op {i}") as span:
                span.set_attribute("shop.order", i)
                span.set_attribute("shop.region", "eu-west")
        if pause:
            time.sleep(pause)


def side(args: argparse.Namespace) -> None:
    tel = None
    flush: Any = None
    if args.side == "floor":
        from opentelemetry.sdk.trace import TracerProvider

        tracer = TracerProvider(shutdown_on_exit=False).get_tracer("bench")
    elif args.side == "baseline":
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
        exporter = OTLPSpanExporter(
            endpoint=f"{args.endpoint}/v1/traces", compression=Compression.Gzip
        )
        provider.add_span_processor(BatchSpanProcessor(exporter))
        tracer = provider.get_tracer("bench")
        flush = provider.force_flush
    else:
        from opentelemetry import trace

        import otelkit

        tel = otelkit.configure(service_name="bench", endpoint=args.endpoint)
        tracer = trace.get_tracer("bench")
        flush = tel.force_flush
    work = functools.partial(_workload, tracer, args.spans, args.burst, args.pause)
    warm_up = functools.partial(_workload, tracer, 1, 1, 0)
    measure_side(warm_up, work, flush, tel, "spans", args.spans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_run_arguments(parser, "spans", 20_000, 1000, ("floor", "baseline", "ours"))
    args = parser.parse_args()
    if args.side:
        side(args)
        return
    passed = passed_on(args, "spans")
    names = {
        "floor": "floor (SDK span creation, no processor)",
        "baseline": "baseline (SDK TracerProvider -> BatchSpanProcessor -> OTLPSpanExporter)",
        "ours": "ours (otelkit.configure())",
    }
    compare("spans_export_cost", __file__, "spans", passed, args.repeats, describe=names.get)


if __name__ == "__main__":
    main()
