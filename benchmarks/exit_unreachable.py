"""exit_unreachable: wall time of a process that configures, emits 100 spans and 100 logs
and exits while nothing listens on the endpoint — otelkit vs the plain SDK set up the usual
way (batch processors, OTLP/HTTP exporters, providers shut down at exit).

Target: ours <= 3 s and ratio <= 0.4.    Run: .venv/bin/python benchmarks/exit_unreachable.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import median, ratio_line, run_python

OURS = """
import logging, sys
import otelkit
from opentelemetry import trace
otelkit.configure(service_name="bench", endpoint=sys.argv[1])
tracer = trace.get_tracer("bench")
for i in range(100):
    with tracer.start_as_current_span("work"):
        logging.getLogger("bench").warning("record %d", i)
"""

BASELINE = """
import logging, sys
from opentelemetry import trace, _logs, metrics
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
base = sys.argv[1]
tp = TracerProvider(); tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=base + "/v1/traces")))
trace.set_tracer_provider(tp)
lp = LoggerProvider(); lp.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=base + "/v1/logs")))
_logs.set_logger_provider(lp)
metrics.set_meter_provider(MeterProvider(metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=base + "/v1/metrics"))]))
logging.getLogger().addHandler(LoggingHandler(logger_provider=lp))
tracer = trace.get_tracer("bench")
for i in range(100):
    with tracer.start_as_current_span("work"):
        logging.getLogger("bench").warning("record %d", i)
"""


def main(repeats: int = 3) -> None:
    from otelkit._testsupport import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    ours, base = [], []
    for i in range(repeats):
        ours.append(run_python(OURS, endpoint))
        base.append(run_python(BASELINE, endpoint))
        print(f"run {i + 1}: ours={ours[-1]:.2f} s baseline={base[-1]:.2f} s", flush=True)
    print(ratio_line("exit_unreachable", median(ours), median(base), "s", digits=2))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
