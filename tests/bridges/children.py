"""Relay children for the bridge tests: spawned processes that ``otelkit.configure()`` and
log through structlog or loguru (imported by ``multiprocessing`` spawn by module name)."""

from __future__ import annotations

import io

from opentelemetry import trace

import otelkit


def structlog_child(tag: str) -> None:
    import structlog

    from otelkit.bridges import StructlogProcessor

    otelkit.configure(service_name="child")
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            StructlogProcessor(),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(file=io.StringIO()),
    )
    log = structlog.get_logger()
    with trace.get_tracer("child").start_as_current_span(f"{tag} span"):
        log.warning(f"{tag} event", order={"id": 7}, items=["a", "b"], user="ada")
        try:
            raise ValueError("bad row")
        except ValueError:
            log.exception(f"{tag} failure")
    # no flush: the exit flush delivers


def loguru_child(tag: str) -> None:
    from loguru import logger

    from otelkit.bridges import LoguruSink

    otelkit.configure(service_name="child")
    logger.remove()
    logger.add(LoguruSink(), format="{message}")
    with trace.get_tracer("child").start_as_current_span(f"{tag} span"):
        logger.bind(order={"id": 7}, user="ada").warning("{} event {{braces}}", tag)
        try:
            raise ValueError("bad row")
        except ValueError:
            logger.exception(f"{tag} failure")
