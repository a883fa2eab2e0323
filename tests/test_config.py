"""Option resolution: argument > OTEL_* environment > default, and clear errors."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from otelkit._config import resolve_settings
from otelkit.errors import OptionTypeError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("OTEL_", "OTELKIT_")):
            monkeypatch.delenv(name)


def test_defaults_follow_the_spec() -> None:
    s = resolve_settings()
    assert s.service_name == "unknown_service"
    assert s.exporter == "otlp"
    assert s.targets["traces"].endpoint == "http://localhost:4318/v1/traces"
    assert s.targets["logs"].protocol == "http/protobuf"
    assert s.targets["metrics"].timeout == 10.0
    assert s.sampler == "parentbased_always_on"
    assert s.metric_interval == 60.0
    assert s.shutdown_timeout == 3.0
    assert s.coalesce_window == 10.0


def test_environment_is_used_when_no_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%20ecret,x=1")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "5000")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=core,service.version=1.2")
    s = resolve_settings()
    assert s.service_name == "from-env"
    assert s.sources["service_name"] == "OTEL_SERVICE_NAME"
    assert s.targets["logs"].endpoint == "http://collector:4318/v1/logs"
    assert s.targets["traces"].headers == {"api-key": "s ecret", "x": "1"}
    assert s.targets["traces"].timeout == 2.5
    assert (s.sampler, s.sample_ratio) == ("traceidratio", 0.25)
    assert s.metric_interval == 5.0
    assert s.resource_attributes["team"] == "core"
    assert s.service_version == "1.2"


def test_argument_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    s = resolve_settings(service_name="from-arg", protocol="http/protobuf")
    assert s.service_name == "from-arg"
    assert s.sources["service_name"] == "argument"
    assert s.targets["traces"].protocol == "http/protobuf"


def test_per_signal_endpoint_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:5318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://logs:9999/custom")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc")
    s = resolve_settings()
    assert s.targets["logs"].endpoint == "http://logs:9999/custom"
    assert s.targets["traces"].endpoint == "http://base:5318/v1/traces"
    # gRPC endpoints carry no signal path
    assert s.targets["metrics"].endpoint == "http://base:5318"
    assert s.targets["metrics"].protocol == "grpc"


def test_grpc_default_endpoint_is_4317() -> None:
    s = resolve_settings(protocol="grpc")
    assert s.targets["traces"].endpoint == "http://localhost:4317"


def test_sample_ratio_alone_selects_parent_based_ratio() -> None:
    s = resolve_settings(sample_ratio=0.1)
    assert (s.sampler, s.sample_ratio) == ("parentbased_traceidratio", 0.1)


def test_sdk_disabled_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert resolve_settings().disabled is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"protocol": "thrift"},
            r"protocol='thrift' is not supported; accepted values: grpc, http/protobuf",
        ),
        (
            {"exporter": "zipkin"},
            r"exporter='zipkin' is not supported; accepted values: otlp, console",
        ),
        ({"endpoint": "http://:4318"}, r"endpoint='http://:4318' is not a valid endpoint"),
        ({"endpoint": "ftp://collector:21"}, r"is not a valid endpoint"),
        ({"endpoint": "http://collector:notaport"}, r"is not a valid endpoint"),
        ({"headers": "novalue"}, r"headers has a malformed entry 'novalue'"),
        ({"resource_attributes": {1: "x"}}, r"resource_attributes key 1 is not a non-empty string"),
        ({"resource_attributes": {"k": object()}}, r"resource_attributes\['k'\] has type object"),
        ({"sampler": "sometimes"}, r"sampler='sometimes' is not supported"),
        ({"sample_ratio": 2}, r"sample_ratio=2 must be within \[0, 1\]"),
        ({"shutdown_timeout": -1}, r"shutdown_timeout must be greater than 0, got -1"),
        ({"metric_interval": "soon"}, r"metric_interval='soon' is not a number"),
        ({"logging_level": "LOUD"}, r"logging_level='LOUD' is not a logging level"),
        ({"service_name": "  "}, r"service_name must be a non-empty string"),
    ],
)
def test_bad_input_names_the_option(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_settings(**kwargs)


def test_a_number_option_of_the_wrong_type_is_a_type_error() -> None:
    with pytest.raises(OptionTypeError, match="shutdown_timeout must be a number"):
        resolve_settings(shutdown_timeout=[5])


def test_bad_input_installs_nothing() -> None:
    import logging

    import otelkit

    before = (trace.get_tracer_provider(), otelkit.current(), list(logging.getLogger().handlers))
    with pytest.raises(ValueError, match="protocol"):
        otelkit.configure(exporter="memory", protocol="carrier-pigeon")
    after = (trace.get_tracer_provider(), otelkit.current(), list(logging.getLogger().handlers))
    assert after == before


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        (
            "localhost:4317",
            r"endpoint='localhost:4317' has no scheme; write 'http://localhost:4317'",
        ),
        (
            "http//localhost:4318",
            r"endpoint='http//localhost:4318' has a malformed scheme; write 'http://localhost:4318'",
        ),
        ("https:/collector:4318", r"malformed scheme; write 'https://collector:4318'"),
    ],
)
def test_an_endpoint_without_a_proper_scheme_is_refused_with_the_fix(
    endpoint: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_settings(endpoint=endpoint)


def test_an_environment_endpoint_without_a_scheme_is_named_by_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")
    with pytest.raises(ValueError, match=r"OTEL_EXPORTER_OTLP_ENDPOINT='collector:4318' has no"):
        resolve_settings()
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "logs:4318/v1/logs")
    with pytest.raises(ValueError, match=r"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT='logs:4318/v1/logs'"):
        resolve_settings()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"endpoint": "http://localhost:4317"},
            r"port 4317, the OTLP grpc port, but the protocol is http/protobuf; "
            r"use http://localhost:4318 or protocol='grpc'",
        ),
        (
            {"endpoint": "http://collector:4318", "protocol": "grpc"},
            r"port 4318, the OTLP http/protobuf port, but the protocol is grpc; "
            r"use http://collector:4317",
        ),
    ],
)
def test_a_port_that_contradicts_the_protocol_warns(kwargs: dict[str, str], message: str) -> None:
    with pytest.warns(UserWarning, match=message) as caught:
        resolve_settings(**kwargs)
    assert len(caught) == 1  # one warning, not one per signal


def test_the_usual_ports_do_not_warn() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_settings(endpoint="http://localhost:4318")
        resolve_settings(endpoint="http://localhost:4317", protocol="grpc")
        resolve_settings(endpoint="http://localhost:9999")
