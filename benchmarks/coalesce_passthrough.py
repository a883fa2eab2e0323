"""What coalescing costs when nothing repeats, on the pipeline users run.

Each side is a fresh process that calls ``otelkit.configure(endpoint=...)`` as a user does,
exporting OTLP/HTTP with gzip to a receiver in another process, then makes ``--ops``
operations, each a span (create, end) and a stdlib ``log.warning(...)`` inside it, every
span name and message distinct, in bursts of ``--burst`` with a ``--pause`` between
bursts; the cost is the process's CPU time (user + sys, every thread) from the first
operation to the end of the flush, divided by the operations. Ours: ``configure()``'s
defaults (log coalescing on, window 10 s) plus ``coalesce_spans`` for every span; baseline:
the same with ``coalesce_window=False`` and no ``coalesce_spans``. The sides alternate and
each is repeated (medians). Every run prints emitted = exported + counted drops for the
log records. Target: ratio <= 1.05.

With the defaults (``max_keys`` 10,000, window 10 s) windows open at up to 1,000 a second
per signal, whatever the traffic; beyond that new keys pass through as overflow, so the
share of operations that open windows depends on the rate (``--burst``/``--pause``).

    .venv/bin/python benchmarks/coalesce_passthrough.py [--ops N] [--burst B] [--pause S]
        [--repeats R]
"""

from __future__ import annotations

import argparse
import logging
import time

from _export_common import add_run_arguments, compare, measure_side, passed_on


def side(args: argparse.Namespace) -> None:
    from opentelemetry import trace

    import otelkit

    if args.side == "ours":
        tel = otelkit.configure(
            service_name="bench", endpoint=args.endpoint, coalesce_spans=lambda span: True
        )
    else:
        tel = otelkit.configure(service_name="bench", endpoint=args.endpoint, coalesce_window=False)
    tracer = trace.get_tracer("bench")
    log = logging.getLogger("shop.checkout")

    def warm_up() -> None:
        with tracer.start_as_current_span("warm-up"):
            log.warning("warm-up")

    def work() -> None:
        for first in range(0, args.ops, args.burst):
            for i in range(first, min(first + args.burst, args.ops)):
                with tracer.start_as_current_span(f"op {i}"):
                    log.warning("event %d happened", i)
            if args.pause:
                time.sleep(args.pause)

    measure_side(warm_up, work, tel.force_flush, tel, "logs", args.ops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_run_arguments(parser, "ops", 20_000, 500, ("baseline", "ours"))
    args = parser.parse_args()
    if args.side:
        side(args)
        return
    passed = passed_on(args, "ops")
    names = {
        "baseline": "baseline (configure(coalesce_window=False))",
        "ours": "ours (configure() defaults + coalesce_spans)",
    }
    compare(
        "coalesce_passthrough",
        __file__,
        "logs",
        passed,
        args.repeats,
        sides=("baseline", "ours"),
        describe=names.get,
    )


if __name__ == "__main__":
    main()
