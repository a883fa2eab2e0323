"""``configure()`` scrubs by default: log bodies and attributes, span attributes, events and
status, the resource, bridged key-values, in one process and in relay children."""

from __future__ import annotations

import io
import logging
import multiprocessing
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk._logs import ReadableLogRecord

import otelkit
from otelkit.errors import InvalidOptionError
from otelkit.scrubbing import SCRUBBED_ATTRIBUTE, ScrubbingOptions
from otelkit.testing import wait_until

from . import children

CARD = children.CARD
CARD2 = "4111-1111-1111-1111"


@pytest.fixture
def tel() -> Iterator[otelkit.Telemetry]:
    telemetry = otelkit.configure(
        service_name="scrub",
        exporter="memory",
        coalesce_window=False,
        resource_attributes={"deploy.api_key": "abc", "team": "core"},
    )
    yield telemetry
    telemetry.shutdown()


def _logs(tel: otelkit.Telemetry) -> list[ReadableLogRecord]:
    assert tel.memory is not None
    tel.force_flush()
    return list(tel.memory.logs.get_finished_logs())


def _log(tel: otelkit.Telemetry, start: str) -> ReadableLogRecord:
    return next(r for r in _logs(tel) if str(r.log_record.body).startswith(start))


def _redactions(tel: otelkit.Telemetry) -> dict[tuple[str, str], int]:
    assert tel.memory is not None
    data = tel.memory.metrics.get_metrics_data()
    out: dict[tuple[str, str], int] = {}
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == "otelkit.scrub.redactions":
                    for point in metric.data.data_points:
                        attrs = point.attributes or {}
                        out[(str(attrs["signal"]), str(attrs["rule"]))] = int(point.value)
    return out


def test_log_bodies_attributes_and_exception_messages_are_scrubbed(
    tel: otelkit.Telemetry,
) -> None:
    log = logging.getLogger("scrub.test")
    log.warning("card %s declined", CARD, extra={"api_key": "k-1", "user": "ada"})
    try:
        raise ValueError(f"card {CARD} declined")
    except ValueError:
        log.exception("payment failed")
    record = _log(tel, "card ")
    assert record.log_record.body == "card [scrubbed: credit card] declined"
    attributes = record.log_record.attributes or {}
    assert attributes["api_key"] == "[scrubbed: sensitive key]"
    assert attributes["user"] == "ada"
    assert set(attributes[SCRUBBED_ATTRIBUTE]) == {  # type: ignore[arg-type]
        "body: credit card",
        "api_key: sensitive key",
    }
    failure = _log(tel, "payment failed").log_record.attributes or {}
    assert failure["exception.message"] == "card [scrubbed: credit card] declined"
    assert CARD not in str(failure["exception.stacktrace"])
    assert _redactions(tel)[("logs", "credit card")] >= 3


def test_span_attributes_events_and_status_are_scrubbed(tel: otelkit.Telemetry) -> None:
    tracer = trace.get_tracer("scrub.test")
    with (
        pytest.raises(ValueError, match="declined"),
        tracer.start_as_current_span("charge", attributes={"password": "pw", "n": 1}),
    ):
        raise ValueError(f"card {CARD} declined")
    assert tel.memory is not None
    tel.force_flush()
    span = tel.memory.spans.get_finished_spans()[0]
    attributes = dict(span.attributes or {})
    assert attributes["password"] == "[scrubbed: sensitive key]"
    assert attributes["n"] == 1
    assert span.status.description == "ValueError: card [scrubbed: credit card] declined"
    event = span.events[0]
    assert (event.attributes or {})["exception.message"] == "card [scrubbed: credit card] declined"
    assert CARD not in str((event.attributes or {})["exception.stacktrace"])
    listing = set(attributes[SCRUBBED_ATTRIBUTE])  # type: ignore[arg-type]
    assert "password: sensitive key" in listing
    assert "event exception: exception.message: credit card" in listing
    assert "status: credit card" in listing
    assert all(CARD not in entry and entry != "pw" for entry in listing)
    assert _redactions(tel)[("spans", "sensitive key")] == 1


def test_resource_attributes_are_scrubbed(tel: otelkit.Telemetry) -> None:
    assert tel.resource.attributes["deploy.api_key"] == "[scrubbed: sensitive key]"
    assert tel.resource.attributes["team"] == "core"
    assert tel.resource.attributes[SCRUBBED_ATTRIBUTE] == ("deploy.api_key: sensitive key",)


def test_structlog_and_loguru_key_values_are_scrubbed(tel: otelkit.Telemetry) -> None:
    import structlog
    from loguru import logger

    from otelkit.bridges import LoguruSink, StructlogProcessor

    structlog.configure(
        processors=[StructlogProcessor(), structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(file=io.StringIO()),
    )
    try:
        structlog.get_logger().warning("structlog event", card=CARD, password="pw")
    finally:
        structlog.reset_defaults()
    handler = logger.add(LoguruSink(), format="{message}")
    try:
        logger.bind(token="t-1", note=f"card {CARD}").warning("loguru event")
    finally:
        logger.remove(handler)
    s = _log(tel, "structlog event").log_record.attributes or {}
    assert (s["card"], s["password"]) == ("[scrubbed: credit card]", "[scrubbed: sensitive key]")
    lg = _log(tel, "loguru event").log_record.attributes or {}
    assert (lg["token"], lg["note"]) == (
        "[scrubbed: sensitive key]",
        "card [scrubbed: credit card]",
    )


def test_the_same_error_with_different_card_numbers_still_coalesces() -> None:
    tel = otelkit.configure(service_name="scrub", exporter="memory", coalesce_window=60)
    try:
        log = logging.getLogger("scrub.coalesce")
        for card in (CARD, CARD2, CARD, CARD2):
            log.error("card %s declined", card)
        tel.force_flush()  # ends the window: one summary
        assert tel.memory is not None
        records = [
            r for r in tel.memory.logs.get_finished_logs() if "declined" in str(r.log_record.body)
        ]
        assert len(records) == 2  # the first, and the summary of the four
        assert (records[1].log_record.attributes or {})["otelkit.coalesce.count"] == 4
        assert all(CARD not in str(r.log_record.body) for r in records)
    finally:
        tel.shutdown()


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_scrubbing_can_be_turned_off(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    options: dict[str, Any] = {}
    if how == "argument":
        options["scrubbing"] = False
    else:
        monkeypatch.setenv("OTELKIT_SCRUBBING", "off")
    tel = otelkit.configure(service_name="s", exporter="memory", coalesce_window=False, **options)
    try:
        logging.getLogger("scrub.off").warning("card %s", CARD)
        assert _log(tel, "card").log_record.body == f"card {CARD}"
    finally:
        tel.shutdown()


def test_configure_takes_scrubbing_options(monkeypatch: pytest.MonkeyPatch) -> None:
    tel = otelkit.configure(
        service_name="s",
        exporter="memory",
        coalesce_window=False,
        scrubbing=ScrubbingOptions(extra_patterns=[r"\bEMP-\d+\b"]),
    )
    try:
        logging.getLogger("scrub.opt").warning("EMP-42 and %s", CARD)
        assert _log(tel, "[scrubbed").log_record.body == (
            "[scrubbed: custom] and [scrubbed: credit card]"
        )
    finally:
        tel.shutdown()


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (ScrubbingOptions(extra_patterns=["(unclosed"]), "not a valid regular expression"),
        (ScrubbingOptions(extra_keys=["[a-"]), "not a valid regular expression"),
        (ScrubbingOptions(extra_patterns=[".*"]), "matches the empty string"),
        ("sometimes", "accepted: on, off"),
    ],
)
def test_bad_scrubbing_options_fail_configure(value: Any, words: str) -> None:
    with pytest.raises(InvalidOptionError, match=words):
        otelkit.configure(service_name="s", exporter="memory", scrubbing=value)


@pytest.fixture
def host() -> Iterator[otelkit.Telemetry]:
    telemetry = otelkit.configure(
        service_name="scrub-host", relay=True, exporter="memory", coalesce_window=False
    )
    yield telemetry
    telemetry.shutdown()


def _run(target: Callable[[], None]) -> None:
    process = multiprocessing.get_context("spawn").Process(target=target)
    process.start()
    process.join(60)
    assert process.exitcode == 0


def test_a_relay_child_scrubs_logs_spans_and_events_before_sending(
    host: otelkit.Telemetry,
) -> None:
    _run(children.stdlib_child)
    assert host.memory is not None
    wait_until(lambda: len(host.memory.spans.get_finished_spans()) >= 1, timeout=20)  # type: ignore[union-attr]
    wait_until(lambda: {"child failure"} <= {r.log_record.body for r in _logs(host)}, timeout=20)
    record = _log(host, "child card")
    assert record.log_record.body == "child card [scrubbed: credit card] declined"
    assert (record.log_record.attributes or {})["api_key"] == "[scrubbed: sensitive key]"
    failure = _log(host, "child failure").log_record.attributes or {}
    assert failure["exception.message"] == "child card [scrubbed: credit card] declined"
    span = host.memory.spans.get_finished_spans()[0]
    assert (span.attributes or {})["password"] == "[scrubbed: sensitive key]"
    assert (span.events[0].attributes or {})["exception.message"] == (
        "card [scrubbed: credit card]"
    )
    everything = repr([r.log_record for r in _logs(host)]) + repr(
        [(s.attributes, s.events) for s in host.memory.spans.get_finished_spans()]
    )
    assert CARD not in everything


@pytest.mark.parametrize("target", [children.structlog_child, children.loguru_child])
def test_a_relay_child_scrubs_bridged_key_values(
    host: otelkit.Telemetry, target: Callable[[], None]
) -> None:
    _run(target)
    wait_until(lambda: any("child" in str(r.log_record.body) for r in _logs(host)), timeout=20)
    attributes = (
        next(r for r in _logs(host) if "child" in str(r.log_record.body)).log_record.attributes
        or {}
    )
    values = {k: v for k, v in attributes.items() if k in ("card", "password", "token", "note")}
    assert values and all("[scrubbed: " in str(v) for v in values.values())
    assert CARD not in repr(attributes)


def _secrets() -> list[tuple[str, str]]:
    from .test_rules import RULE_CASES

    return [(text, secret) for text, secret, _, _ in RULE_CASES]


def _assert_every_place_scrubbed(
    logs: list[ReadableLogRecord], spans: list[Any], cases: list[tuple[str, str]]
) -> None:
    for i, (_, secret) in enumerate(cases):
        body = next(r for r in logs if str(r.log_record.body).startswith(f"#{i} body"))
        failed = next(r for r in logs if r.log_record.body == f"#{i} failed")
        span = next(s for s in spans if s.name == f"#{i}")
        places = {
            "body": body.log_record.body,
            "log attribute": (body.log_record.attributes or {})["detail"],
            "exception message": (failed.log_record.attributes or {})["exception.message"],
            "stack trace": (failed.log_record.attributes or {})["exception.stacktrace"],
            "span attribute": (span.attributes or {})["detail"],
            "span event": (span.events[0].attributes or {})["exception.message"],
        }
        for place, value in places.items():
            assert secret not in str(value), (place, value)
            assert "[scrubbed: " in str(value), (place, value)


def test_every_default_rule_in_every_place_in_one_process(tel: otelkit.Telemetry) -> None:
    cases = _secrets()
    children.emit_every_place([text for text, _ in cases])
    assert tel.memory is not None
    tel.force_flush()
    _assert_every_place_scrubbed(_logs(tel), list(tel.memory.spans.get_finished_spans()), cases)


def test_every_default_rule_in_every_place_from_a_relay_child(host: otelkit.Telemetry) -> None:
    cases = _secrets()
    process = multiprocessing.get_context("spawn").Process(
        target=children.every_rule_child, args=([text for text, _ in cases],)
    )
    process.start()
    process.join(60)
    assert process.exitcode == 0
    assert host.memory is not None
    wait_until(
        lambda: (
            len(host.memory.spans.get_finished_spans()) >= len(cases)  # type: ignore[union-attr]
            and len(_logs(host)) >= 2 * len(cases)
        ),
        timeout=20,
    )
    _assert_every_place_scrubbed(_logs(host), list(host.memory.spans.get_finished_spans()), cases)
