"""A relay child for the sampling test (spawned: imported by module name)."""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

import otelkit


def jobs_child() -> None:
    """Ten job trees: the third and the seventh fail."""
    otelkit.configure(service_name="sampling-child")
    tracer = trace.get_tracer("child")
    log = logging.getLogger("child.jobs")
    log.setLevel(logging.INFO)
    for n in range(10):
        with (
            tracer.start_as_current_span(f"job {n}"),
            tracer.start_as_current_span(f"step {n}") as step,
        ):
            log.warning("job %d step", n)
            if n in (2, 6):
                step.set_status(Status(StatusCode.ERROR, "failed"))
