"""Settings for ``configure()``: every option resolved once, argument > OTEL_* env > default.

Nothing here touches OpenTelemetry globals; :func:`resolve_settings` either returns a
complete, validated :class:`Settings` or raises ``ValueError`` naming the bad option, so a
bad call never leaves a half-installed pipeline behind.
"""

from __future__ import annotations

import logging
import os
import re
import urllib.parse
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from otelkit._validate import check_non_negative, check_positive
from otelkit.errors import InvalidOptionError
from otelkit.sampling._options import SamplingOptions, resolve_sampling
from otelkit.scrubbing._options import ScrubbingOptions, resolve_scrubbing

__all__ = ["SIGNALS", "ExportTarget", "Settings", "resolve_settings"]

Signal = Literal["traces", "metrics", "logs"]
SIGNALS: tuple[Signal, ...] = ("traces", "metrics", "logs")
PROTOCOLS = ("grpc", "http/protobuf")
EXPORTERS = ("otlp", "console", "memory", "none")
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
COMPRESSIONS = ("gzip", "none")
_DEFAULT_ENDPOINTS = {"grpc": "http://localhost:4317", "http/protobuf": "http://localhost:4318"}
_UNSET: Any = object()


@dataclass(frozen=True)
class ExportTarget:
    """Where and how one signal is exported over OTLP."""

    endpoint: str
    protocol: str
    headers: Mapping[str, str]
    timeout: float
    compression: str


@dataclass(frozen=True)
class Settings:
    """The resolved configuration; ``sources`` tells where each value came from."""

    service_name: str
    service_version: str | None
    environment: str | None
    resource_attributes: Mapping[str, Any]
    exporter: str
    targets: Mapping[str, ExportTarget]
    logging_level: int | None
    sampler: str
    sample_ratio: float
    metric_interval: float
    shutdown_timeout: float
    disabled: bool
    coalesce_window: float | None
    relay: bool
    scrubbing: ScrubbingOptions | None = field(default_factory=lambda: ScrubbingOptions())
    """``None`` when scrubbing is off."""
    sampling: SamplingOptions | None = None
    """``None`` when tail sampling is off (the default)."""
    sources: Mapping[str, str] = field(default_factory=dict)


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value is not None and value.strip() else None


class _Resolver:
    """Picks argument > environment > default, remembering the source of each option."""

    def __init__(self) -> None:
        self.sources: dict[str, str] = {}

    def pick(self, option: str, argument: Any, env_names: tuple[str, ...], default: Any) -> Any:
        if argument is not _UNSET and argument is not None:
            self.sources[option] = "argument"
            return argument
        for name in env_names:
            value = _env(name)
            if value is not None:
                self.sources[option] = name
                return value
        self.sources[option] = "default"
        return default


def _choice(option: str, value: Any, accepted: tuple[str, ...]) -> str:
    normalised = str(value).strip().lower()
    if normalised not in accepted:
        raise InvalidOptionError(
            f"otelkit.configure: {option}={value!r} is not supported; "
            f"accepted values: {', '.join(accepted)}"
        )
    return normalised


def _positive_float(
    option: str, value: Any, *, scale: float = 1.0, allow_zero: bool = False
) -> float:
    if isinstance(value, str):  # from the environment
        try:
            value = float(value)
        except ValueError:
            raise InvalidOptionError(
                f"otelkit.configure: {option}={value!r} is not a number"
            ) from None
    check = check_non_negative if allow_zero else check_positive
    return check("otelkit.configure", option, value) * scale


_ACCEPTED_ENDPOINT = "expected a URL with a scheme, such as http://localhost:4318"
_MISSPELT_SCHEME = re.compile(r"^(https?)(?::/?|//)(?!/)", re.IGNORECASE)


def _endpoint(option: str, value: str) -> str:
    """A validated endpoint URL; ``ValueError`` naming ``option`` and the fix otherwise.

    A scheme is required: ``localhost:4317`` would otherwise be taken for OTLP/HTTP to
    the gRPC port, and ``http//host:4318`` for a host called ``http``.
    """
    text = value.strip()
    if "://" not in text:
        misspelt = _MISSPELT_SCHEME.match(text)
        if misspelt:
            fix = f"{misspelt.group(1).lower()}://{text[misspelt.end() :]}"
            problem = "has a malformed scheme"
        else:
            fix = f"http://{text}"
            problem = "has no scheme"
        raise InvalidOptionError(
            f"otelkit.configure: {option}={value!r} {problem}; write {fix!r} (http:// or https://)"
        )
    parsed = urllib.parse.urlsplit(text)
    try:
        port = parsed.port
    except ValueError:
        port = -1
    if parsed.scheme not in ("http", "https") or not parsed.hostname or port == -1:
        raise InvalidOptionError(
            f"otelkit.configure: {option}={value!r} is not a valid endpoint; {_ACCEPTED_ENDPOINT}"
        )
    return text.rstrip("/") if parsed.path in ("", "/") else text


_OTLP_PORTS = {4317: "grpc", 4318: "http/protobuf"}


def _port_contradiction(option: str, url: str, protocol: str) -> str | None:
    """A warning when ``url``'s port is the well-known port of the other OTLP protocol."""
    parsed = urllib.parse.urlsplit(url)
    expected = _OTLP_PORTS.get(parsed.port or 0)
    if expected is None or expected == protocol:
        return None
    other_port = 4318 if parsed.port == 4317 else 4317
    host = f"[{parsed.hostname}]" if ":" in (parsed.hostname or "") else parsed.hostname
    fixed = parsed._replace(netloc=f"{host}:{other_port}", path="").geturl()
    return (
        f"otelkit.configure: {option}={url!r} is port {parsed.port}, the OTLP {expected} "
        f"port, but the protocol is {protocol}; use {fixed} or protocol={expected!r}"
    )


def parse_headers(option: str, value: str | Mapping[str, str]) -> dict[str, str]:
    """Parse ``k1=v1,k2=v2`` (values URL-encoded, as OTEL_EXPORTER_OTLP_HEADERS) or a mapping."""
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, str):
        items = []
        for part in value.split(","):
            if not part.strip():
                continue
            key, sep, val = part.partition("=")
            if not sep or not key.strip():
                raise InvalidOptionError(
                    f"otelkit.configure: {option} has a malformed entry {part!r}; "
                    "expected comma-separated key=value pairs"
                )
            items.append((urllib.parse.unquote(key.strip()), urllib.parse.unquote(val.strip())))
    else:
        raise InvalidOptionError(f"otelkit.configure: {option} must be a string or a mapping")
    headers: dict[str, str] = {}
    for key, val in items:
        if not isinstance(key, str) or not isinstance(val, str) or not key:
            raise InvalidOptionError(f"otelkit.configure: {option} keys and values must be strings")
        headers[key.lower()] = val
    return headers


def _resource_attributes(option: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return parse_headers(option, value)  # same k=v,k=v grammar, URL-encoded
    if not isinstance(value, Mapping):
        raise InvalidOptionError(f"otelkit.configure: {option} must be a mapping of str to values")
    for key, val in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidOptionError(
                f"otelkit.configure: {option} key {key!r} is not a non-empty string"
            )
        if not isinstance(val, (str, bool, int, float, list, tuple)):
            raise InvalidOptionError(
                f"otelkit.configure: {option}[{key!r}] has type {type(val).__name__}; "
                "accepted: str, bool, int, float or a sequence of those"
            )
    return dict(value)


def _logging_level(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidOptionError(
            "otelkit.configure: logging_level must be a level name, number or None"
        )
    if isinstance(value, int):
        return value
    name = str(value).strip().upper()
    if name in ("NONE", "OFF"):
        return None
    level = logging.getLevelName(name)
    if not isinstance(level, int):
        raise InvalidOptionError(
            f"otelkit.configure: logging_level={value!r} is not a logging level; accepted: "
            "DEBUG, INFO, WARNING, ERROR, CRITICAL, a number, or None to disable the bridge"
        )
    return level


def _option_name(option: str, source: str) -> str:
    """How to name an option in a message: the environment variable it came from, if any."""
    return source if source not in ("argument", "default") else option


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def resolve_settings(
    *,
    service_name: Any = _UNSET,
    service_version: Any = _UNSET,
    environment: Any = _UNSET,
    resource_attributes: Any = _UNSET,
    endpoint: Any = _UNSET,
    protocol: Any = _UNSET,
    headers: Any = _UNSET,
    exporter: Any = _UNSET,
    logging_level: Any = _UNSET,
    sampler: Any = _UNSET,
    sample_ratio: Any = _UNSET,
    metric_interval: Any = _UNSET,
    shutdown_timeout: Any = _UNSET,
    coalesce_window: Any = _UNSET,
    relay: Any = _UNSET,
    scrubbing: Any = _UNSET,
    sampling: Any = _UNSET,
) -> Settings:
    """Resolve every option (argument > environment > default) and validate it."""
    r = _Resolver()
    disabled = _flag(_env("OTEL_SDK_DISABLED") or "false")

    exporter_value = _choice(
        "exporter", r.pick("exporter", exporter, ("OTELKIT_EXPORTER",), "otlp"), EXPORTERS
    )
    base_protocol = r.pick("protocol", protocol, ("OTEL_EXPORTER_OTLP_PROTOCOL",), "http/protobuf")
    base_protocol = _choice("protocol", base_protocol, PROTOCOLS)
    timeout_ms = r.pick("timeout", _UNSET, ("OTEL_EXPORTER_OTLP_TIMEOUT",), 10_000)
    compression = r.pick("compression", _UNSET, ("OTEL_EXPORTER_OTLP_COMPRESSION",), "gzip")
    base_headers = r.pick("headers", headers, ("OTEL_EXPORTER_OTLP_HEADERS",), {})
    base_headers_parsed = parse_headers("headers", base_headers)
    base_endpoint = r.pick("endpoint", endpoint, ("OTEL_EXPORTER_OTLP_ENDPOINT",), None)

    targets: dict[str, ExportTarget] = {}
    port_warnings: list[str] = []
    for signal in SIGNALS:
        up = signal.upper()
        sig_protocol = _choice(
            f"OTEL_EXPORTER_OTLP_{up}_PROTOCOL",
            _env(f"OTEL_EXPORTER_OTLP_{up}_PROTOCOL") or base_protocol,
            PROTOCOLS,
        )
        # Per-signal env endpoints are used as they are; a base endpoint gets /v1/<signal>
        # appended for OTLP/HTTP (the spec's rule). An explicit argument counts as a base.
        own = _env(f"OTEL_EXPORTER_OTLP_{up}_ENDPOINT") if endpoint in (_UNSET, None) else None
        if own is not None:
            endpoint_option = f"OTEL_EXPORTER_OTLP_{up}_ENDPOINT"
            url = checked = _endpoint(endpoint_option, own)
        else:
            endpoint_option = _option_name("endpoint", r.sources["endpoint"])
            checked = _endpoint(endpoint_option, base_endpoint or _DEFAULT_ENDPOINTS[sig_protocol])
            url = f"{checked}/v1/{signal}" if sig_protocol == "http/protobuf" else checked
        r.sources[f"{signal}_endpoint"] = (
            endpoint_option if own is not None else r.sources["endpoint"]
        )
        contradiction = _port_contradiction(endpoint_option, checked, sig_protocol)
        if contradiction is not None and contradiction not in port_warnings:
            port_warnings.append(contradiction)
        sig_headers = dict(base_headers_parsed)
        if (own_headers := _env(f"OTEL_EXPORTER_OTLP_{up}_HEADERS")) is not None:
            sig_headers.update(parse_headers(f"OTEL_EXPORTER_OTLP_{up}_HEADERS", own_headers))
        sig_timeout = _env(f"OTEL_EXPORTER_OTLP_{up}_TIMEOUT") or timeout_ms
        sig_compression = _env(f"OTEL_EXPORTER_OTLP_{up}_COMPRESSION") or compression
        targets[signal] = ExportTarget(
            endpoint=url,
            protocol=sig_protocol,
            headers=sig_headers,
            timeout=_positive_float("OTEL_EXPORTER_OTLP_TIMEOUT (ms)", sig_timeout, scale=1e-3),
            compression=_choice("OTEL_EXPORTER_OTLP_COMPRESSION", sig_compression, COMPRESSIONS),
        )

    if exporter_value == "otlp":
        for text in port_warnings:
            warnings.warn(text, UserWarning, stacklevel=3)

    sampler_value = r.pick(
        "sampler", sampler, ("OTEL_TRACES_SAMPLER",), None
    )  # default depends on sample_ratio below
    ratio_value = r.pick("sample_ratio", sample_ratio, ("OTEL_TRACES_SAMPLER_ARG",), None)
    if sampler_value is None:
        sampler_value = (
            "parentbased_always_on" if ratio_value is None else "parentbased_traceidratio"
        )
    sampler_name = _choice("sampler", sampler_value, SAMPLERS)
    ratio = (
        1.0
        if ratio_value is None
        else _positive_float("sample_ratio", ratio_value, allow_zero=True)
    )
    if ratio > 1.0:
        raise InvalidOptionError(
            f"otelkit.configure: sample_ratio={ratio_value!r} must be within [0, 1]"
        )

    resource_env = r.pick(
        "resource_attributes", resource_attributes, ("OTEL_RESOURCE_ATTRIBUTES",), {}
    )
    attrs = _resource_attributes("resource_attributes", resource_env)
    name = r.pick("service_name", service_name, ("OTEL_SERVICE_NAME",), None)
    if name is None:
        name = attrs.get("service.name") or "unknown_service"
    if not isinstance(name, str) or not name.strip():
        raise InvalidOptionError("otelkit.configure: service_name must be a non-empty string")
    version = r.pick("service_version", service_version, (), attrs.get("service.version"))
    env_name = r.pick("environment", environment, (), attrs.get("deployment.environment.name"))
    for option, value in (("service_version", version), ("environment", env_name)):
        if value is not None and not isinstance(value, str):
            raise InvalidOptionError(f"otelkit.configure: {option} must be a string")

    level = _logging_level(
        r.pick("logging_level", logging_level, ("OTELKIT_LOGGING_LEVEL",), "INFO")
    )
    interval_ms = r.pick("metric_interval", _UNSET, ("OTEL_METRIC_EXPORT_INTERVAL",), None)
    if metric_interval is not _UNSET and metric_interval is not None:
        interval = _positive_float("metric_interval", metric_interval)
        r.sources["metric_interval"] = "argument"
    elif interval_ms is not None:
        interval = _positive_float("OTEL_METRIC_EXPORT_INTERVAL (ms)", interval_ms, scale=1e-3)
    else:
        interval = 60.0
    stop_timeout = _positive_float(
        "shutdown_timeout",
        r.pick("shutdown_timeout", shutdown_timeout, ("OTELKIT_SHUTDOWN_TIMEOUT",), 3.0),
    )
    window_value = r.pick("coalesce_window", coalesce_window, ("OTELKIT_COALESCE_WINDOW",), 10.0)
    window = (
        None
        if window_value is False or str(window_value).lower() in ("0", "0.0", "off", "none")
        else _positive_float("coalesce_window", window_value)
    )
    relay_value = r.pick("relay", relay, ("OTELKIT_RELAY_HOST",), False)
    if not isinstance(relay_value, (bool, str)):
        raise InvalidOptionError("otelkit.configure: relay must be True or False")

    scrubbing_value = r.pick("scrubbing", scrubbing, ("OTELKIT_SCRUBBING",), True)
    scrub = resolve_scrubbing(scrubbing_value, _option_name("scrubbing", r.sources["scrubbing"]))
    sampling_value = r.pick("sampling", sampling, ("OTELKIT_SAMPLING",), False)
    sample = resolve_sampling(sampling_value, _option_name("sampling", r.sources["sampling"]))

    return Settings(
        service_name=name,
        service_version=version,
        environment=env_name,
        resource_attributes=attrs,
        exporter=exporter_value,
        targets=targets,
        logging_level=level,
        sampler=sampler_name,
        sample_ratio=ratio,
        metric_interval=interval,
        shutdown_timeout=stop_timeout,
        disabled=disabled,
        coalesce_window=window,
        relay=_flag(relay_value),
        scrubbing=scrub,
        sampling=sample,
        sources=r.sources,
    )
