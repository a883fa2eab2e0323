"""Relay children for the scrubbing tests (spawned: imported by module name)."""

from __future__ import annotations

import io
import logging

from opentelemetry import trace

import otelkit

CARD = "4000-0000-0000-0002"


def stdlib_child() -> None:
    otelkit.configure(service_name="scrub-child")
    log = logging.getLogger("child")
    tracer = trace.get_tracer("child")
    with tracer.start_as_current_span("child span", attributes={"password": "pw"}):
        log.warning("child card %s declined", CARD, extra={"api_key": "k-1"})
        try:
            raise ValueError(f"child card {CARD} declined")
        except ValueError:
            log.exception("child failure")
            trace.get_current_span().record_exception(ValueError(f"card {CARD}"))


def structlog_child() -> None:
    import structlog

    from otelkit.bridges import StructlogProcessor

    otelkit.configure(service_name="scrub-child")
    structlog.configure(
        processors=[StructlogProcessor(), structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(file=io.StringIO()),
    )
    structlog.get_logger().warning("structlog child", card=CARD, password="pw")


def loguru_child() -> None:
    from loguru import logger

    from otelkit.bridges import LoguruSink

    otelkit.configure(service_name="scrub-child")
    logger.remove()
    logger.add(LoguruSink(), format="{message}")
    logger.bind(token="t-1", note=f"card {CARD}").warning("loguru child")
