"""The job-trace workload of the sampling test and benchmark: 1,000 job traces, 5 % failed,
5 % slow, each a CONSUMER root with two children and two log records."""

from __future__ import annotations

import logging
import random

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

N_TRACES = 1000
SPANS_PER_TRACE = 3
LOGS_PER_TRACE = 2
SLOW_SECONDS = 2.0  # a slow job's root lasts this long (the threshold is 1 s)


def run_jobs(seed: int = 7) -> dict[str, set[int]]:
    """Emit the workload through the global providers; ``{"failed": ids, "slow": ids,
    "plain": ids}`` of the trace ids."""
    rng = random.Random(seed)
    kinds = ["failed"] * 50 + ["slow"] * 50 + ["plain"] * (N_TRACES - 100)
    rng.shuffle(kinds)
    tracer = trace.get_tracer("jobs.workload")
    log = logging.getLogger("jobs.workload")
    log.setLevel(logging.INFO)  # the root logger's WARNING would drop the INFO records
    out: dict[str, set[int]] = {"failed": set(), "slow": set(), "plain": set()}
    start = 1_700_000_000 * 10**9
    for n, kind in enumerate(kinds):
        t0 = start + n * 10**7
        root = tracer.start_span("process emails", kind=SpanKind.CONSUMER, start_time=t0)
        with trace.use_span(root, end_on_exit=False):
            with tracer.start_as_current_span("render", start_time=t0):
                log.info("rendering job %d", n)
            with tracer.start_as_current_span("send", start_time=t0) as send:
                if kind == "failed":
                    send.set_status(Status(StatusCode.ERROR, "smtp refused"))
                    log.error("job %d failed", n)
                else:
                    log.info("job %d sent", n)
        root.end(end_time=t0 + int((SLOW_SECONDS if kind == "slow" else 0.01) * 10**9))
        out[kind].add(root.get_span_context().trace_id)
    return out
