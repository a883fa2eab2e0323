"""CPU per log record in a relay child: ``otelkit.configure()`` in a child of a relay host
against the SDK's standard pipeline in that child, both ending in OTLP/HTTP (gzip) at a
receiver in another process.

Each side is a fresh process (the child) that makes ``--records`` logging calls of the relay
record shape (``log.info("record %d from %s", i, ..., extra={2 attributes})``) in bursts of
``--burst`` with a ``--pause`` between them, then flushes; its cost is the child process's
CPU time (user + sys, every thread: the logging calls and the thread that encodes and
sends) from the first call to the end of the flush, divided by the calls. The sides:

- ours: the child calls ``otelkit.configure(service_name=...)`` and finds its host through
  ``OTELKIT_RELAY``; the host is ``otelkit.configure(relay=True)`` in another process
  (``_relay_common.HostProcess``), exporting OTLP/HTTP to the receiver;
- baseline: the SDK's standard pipeline in the child, ``LoggingHandler`` ->
  ``LoggerProvider`` -> ``BatchLogRecordProcessor`` -> ``OTLPLogExporter(compression=gzip)``;
- floor: the same calls into a handler that does nothing (printed beside).

Every run prints emitted = exported (what the receiver decoded) + counted drops +
uncounted. Target: ratio <= 0.30.

    .venv/bin/python benchmarks/relay_child_cost.py [--records N] [--burst B] [--pause S]
        [--repeats R]
"""

from __future__ import annotations

import argparse
import logging
import os
import time

from _export_common import (
    Measure,
    add_run_arguments,
    compare,
    install_floor,
    passed_on,
    sdk_log_pipeline,
    side_result,
)
from _relay_common import HostProcess, info_logger, log_many


def _workload(log: logging.Logger, records: int, burst: int, pause: float) -> None:
    for start in range(0, records, burst):
        log_many(log, start, min(burst, records - start), "child-1")
        if pause:
            time.sleep(pause)


def side(args: argparse.Namespace) -> None:
    log = info_logger("bench.child")
    host = None
    if args.side == "floor":
        install_floor()
        flush = None
    elif args.side == "baseline":
        provider, handler = sdk_log_pipeline(args.endpoint, "bench-child")
        logging.getLogger().addHandler(handler)
        flush = provider.force_flush
    else:
        import otelkit
        from otelkit.relay import RELAY_ENV

        host = HostProcess(args.endpoint)
        os.environ[RELAY_ENV] = host.env_value
        tel = otelkit.configure(service_name="bench-child")
        flush = tel.force_flush
    log.info("warm-up")
    if flush is not None:
        flush()
    with Measure() as measured:
        _workload(log, args.records, args.burst, args.pause)
        if flush is not None:
            flush()
    dropped = host.close() if host is not None else 0  # the host exports the rest first
    side_result(measured, args.records, dropped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_run_arguments(parser, "records", 50_000, 1000, ("floor", "baseline", "ours"))
    args = parser.parse_args()
    if args.side:
        side(args)
        return
    names = {
        "floor": "floor (logging into a no-op handler)",
        "baseline": "baseline (SDK LoggingHandler -> BatchLogRecordProcessor -> OTLPLogExporter)",
        "ours": "ours (otelkit.configure() in a relay child)",
    }
    compare(
        "relay_child_cost",
        __file__,
        "logs",
        passed_on(args, "records"),
        args.repeats,
        describe=names.get,
    )


if __name__ == "__main__":
    main()
