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


def every_rule_child(texts: list[str]) -> None:
    """Each text as a log body, an attribute value, a span attribute and an exception
    message (log record and span event), from a relay child."""
    otelkit.configure(service_name="scrub-child", coalesce_window=False)
    emit_every_place(texts)


def emit_every_place(texts: list[str]) -> None:
    """Each text, numbered ``#i``, in every place a secret can hide."""
    log = logging.getLogger("every.rule")
    log.setLevel(logging.INFO)
    tracer = trace.get_tracer("every.rule")
    for i, text in enumerate(texts):
        with tracer.start_as_current_span(f"#{i}", attributes={"detail": text}) as span:
            log.warning("#%d body %s", i, text, extra={"detail": text})
            try:
                raise ValueError(text)
            except ValueError as exc:
                log.exception("#%d failed", i)
                span.record_exception(exc)
