"""otelkit._sdk: each shortcut through SDK internals works, and can be forced off."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

import otelkit
from otelkit import _sdk


def _values(reader: InMemoryMetricReader) -> list[object]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        getattr(point, "value", None)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        for point in metric.data.data_points
    ]


def test_a_reset_forgets_recorded_values_and_instruments_go_on_recording() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    counter = provider.get_meter("t").create_counter("things")
    counter.add(5)
    assert _values(reader) == [5]
    assert _sdk.reset_metric_state(provider) is not _sdk.FALLBACKS_FORCED
    counter.add(2)
    assert _values(reader) == ([7] if _sdk.FALLBACKS_FORCED else [2])
    provider.shutdown()


def test_the_environment_variable_forces_the_public_fallback() -> None:
    code = "import otelkit._sdk as s; print(s.METRIC_RESET_OK, s.FALLBACKS_FORCED)"
    env = {**os.environ, "OTELKIT_SDK_FALLBACKS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == ["False", "True"], out.stderr


def test_the_environment_variable_may_force_named_shortcuts_only() -> None:
    code = (
        "from otelkit._sdk import FALLBACKS_FORCED, METRIC_RESET_OK, logs\n"
        "print(FALLBACKS_FORCED, logs.READABLE_COPY_OK, logs.FAST_LOG_RECORDS_OK,"
        " METRIC_RESET_OK)"
    )
    env = {**os.environ, "OTELKIT_SDK_FALLBACKS": "readable_copy, reset_metric_state"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == ["False", "False", "True", "False"], out.stderr


_FORK_PROGRAM = """
import os
from opentelemetry import metrics
import otelkit

tel = otelkit.configure(service_name="seam-host", relay=True, exporter="console",
                        metric_interval=3600, coalesce_window=False)
counter = metrics.get_meter("seam").create_counter("seam.things")
counter.add(5, {"who": "parent"})
pid = os.fork()
if pid == 0:
    counter.add(7, {"who": "child"})
    tel.shutdown()
    os._exit(0)
os.waitpid(pid, 0)
tel.shutdown()
"""


def _run_fork_program(**env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL", "OTELKIT"))}
    result = subprocess.run(
        [sys.executable, "-c", _FORK_PROGRAM],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_a_fork_child_relays_only_its_own_values() -> None:
    lines = [line for line in _run_fork_program().splitlines() if "seam.things" in line]
    # The parent's value once (had the child kept it, the host would print it twice).
    assert [line for line in lines if "who=parent" in line] == [
        "metric seam.things{who=parent} = 5"
    ]
    assert [line for line in lines if "who=child" in line] == ["metric seam.things{who=child} = 7"]


def test_with_the_fallback_a_fork_childs_metrics_are_muted_and_a_warning_says_so() -> None:
    err = _run_fork_program(OTELKIT_SDK_FALLBACKS="1")
    lines = [line for line in err.splitlines() if "seam.things" in line]
    assert any("who=parent" in line and line.endswith("= 5") for line in lines), lines
    assert not any("who=child" in line for line in lines), lines
    assert "cannot give a forked child fresh metric state" in err


# --- Private names of the OpenTelemetry packages stay inside otelkit._sdk ----------------

_SRC = Path(otelkit.__file__).parent
# The logs signal's published homes: its API, SDK and exporters live in underscore modules
# (the logs signal is still in development upstream); these module paths are its public,
# documented interface and are allowed. Anything inside them that starts with "_" is not.
_PUBLIC_UNDERSCORE_MODULES = frozenset(
    {
        "opentelemetry._logs",
        "opentelemetry.sdk._logs",
        "opentelemetry.sdk._logs.export",
        "opentelemetry.exporter.otlp.proto.common._log_encoder",
        "opentelemetry.exporter.otlp.proto.http._log_exporter",
        "opentelemetry.exporter.otlp.proto.grpc._log_exporter",
    }
)
_OTEL_NAMES = (
    "opentelemetry",
    "trace",
    "context",
    "context_api",
    "otel_context",
    "metrics",
    "_logs",
    "propagation",
)
_PRIVATE_ATTRIBUTES = frozenset(
    {
        # Private names of the OTel SDK/API that otelkit has used or could be tempted to use.
        "_dict",
        "_RUNTIME_CONTEXT",
        "_SPAN_KEY",
        "_SUPPRESS_INSTRUMENTATION_KEY",
        "_TRACER_PROVIDER_SET_ONCE",
        "_LOGGER_PROVIDER_SET_ONCE",
        "_METER_PROVIDER_SET_ONCE",
        "_done",
        "_internal",
        "_encode_span",
        "_batch_processor",
        "_attributes",
        "_measurement_consumer",
        "_metric_readers",
        "_export_lock",
        "_current_context",
        "_on_ending",
        "_span_processor",
        "_active_span_processor",
        "_resource",
        "_instrumentation_scope",
        "_context",
        "_name",
        "_events",
        "_links",
        "_status",
        "_immutable",
        "_parent",
        "_start_time",
        "_end_time",
        "_kind",
    }
)


def _private_otel_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        modules: list[str] = []
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        for module in modules:
            if not module.startswith("opentelemetry"):
                continue
            private = [part for part in module.split(".") if part.startswith("_")]
            if private and module not in _PUBLIC_UNDERSCORE_MODULES:
                found.append(f"{path.name}:{node.lineno} import {module}")
            found += [
                f"{path.name}:{node.lineno} {module}.{name}"
                for name in names
                if name[0] == "_" and f"{module}.{name}" not in _PUBLIC_UNDERSCORE_MODULES
            ]
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            base = node.value
            if isinstance(base, ast.Name) and base.id in {"self", "cls"}:
                continue  # otelkit's own objects
            otel_base = isinstance(base, ast.Name) and base.id in _OTEL_NAMES
            if node.attr in _PRIVATE_ATTRIBUTES or (otel_base and not node.attr.startswith("__")):
                found.append(f"{path.name}:{node.lineno} .{node.attr}")
        if isinstance(node, ast.Constant) and node.value in _PRIVATE_ATTRIBUTES:
            found.append(f"{path.name}:{node.lineno} {node.value!r}")  # getattr(x, "_dict")
    return found


def test_no_private_opentelemetry_name_is_used_outside_the_seam() -> None:
    offenders: dict[str, list[str]] = {}
    for path in sorted(_SRC.rglob("*.py")):
        relative = path.relative_to(_SRC).as_posix()
        if relative.startswith("_sdk/"):
            continue
        uses = _private_otel_uses(path)
        if uses:
            offenders[relative] = uses
    assert offenders == {}


def test_the_checker_finds_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from opentelemetry import context, trace\n"
        "from opentelemetry.trace.propagation import _SPAN_KEY\n"
        "from opentelemetry.exporter.otlp.proto.common._internal import trace_encoder\n"
        "from opentelemetry.sdk._logs import LoggerProvider\n"
        "trace._TRACER_PROVIDER_SET_ONCE._done = False\n"
        "x = context._SUPPRESS_INSTRUMENTATION_KEY\n"
        "y = record.attributes._dict\n"
        "z = getattr(context, '_RUNTIME_CONTEXT', None)\n"
    )
    uses = _private_otel_uses(sample)
    assert [use.split(" ", 1)[0] for use in uses].count("sample.py:2") == 1
    assert any("import opentelemetry.exporter.otlp.proto.common._internal" in u for u in uses)
    assert not any(u.startswith("sample.py:4") for u in uses)
    assert {".\u005fdone", "._TRACER_PROVIDER_SET_ONCE", "._SUPPRESS_INSTRUMENTATION_KEY"} <= {
        u.split(" ", 1)[1] for u in uses
    }
    assert any(u.endswith("._dict") for u in uses)
    assert any("'_RUNTIME_CONTEXT'" in u for u in uses)


# --- Each shortcut agrees with the public path it replaces ------------------------------


def test_every_shortcut_passes_its_self_check_on_this_sdk_unless_forced_off() -> None:
    from otelkit._sdk import context, logs, providers, transport

    flags = {
        "readable_copy": logs.READABLE_COPY_OK,
        "fast_log_records": logs.FAST_LOG_RECORDS_OK,
        "set_global_providers": providers.GLOBALS_RESET_OK,
        "reset_metric_state": _sdk.METRIC_RESET_OK,
        "instrumentation_enabled": context.SUPPRESSION_OK,
    }
    assert flags == dict.fromkeys(flags, not _sdk.FALLBACKS_FORCED)
    # The SDK's OTLP/HTTP exporters hand bytes to a client of their own from 1.4x on; before,
    # they post through their own session, and otelkit exports through their export().
    has_client = transport.exporters_have_a_client()
    senders = {signal: transport.http_sender_ok(signal) for signal in ("logs", "spans")}
    senders["gzip_level"] = transport.gzip_level_ok()
    assert senders == dict.fromkeys(senders, has_client and not _sdk.FALLBACKS_FORCED)


def test_the_readable_copy_is_the_public_construction() -> None:
    from opentelemetry._logs import LogRecord
    from opentelemetry.sdk._logs import ReadWriteLogRecord

    from otelkit._sdk.logs import _readable_copy_public, readable_copy

    for resource in (Resource.create({"service.name": "s"}), None):
        record = ReadWriteLogRecord(LogRecord(body="copy", attributes={"a": 1}))
        record.resource = resource  # a None resource must become Resource.create({})
        ours, public = readable_copy(record), _readable_copy_public(record)
        assert vars(ours.log_record) == vars(public.log_record)
        assert ours.to_json() == public.to_json()


def test_the_suppression_shortcut_and_the_instrumentation_package_agree() -> None:
    from opentelemetry import context as context_api
    from opentelemetry.instrumentation.utils import (
        is_instrumentation_enabled,
        suppress_instrumentation,
    )

    from otelkit._sdk import context as seam

    key = seam._suppression_key()
    assert key is not None  # the API still defines the key the instrumentation package sets
    shortcuts = (seam.instrumentation_enabled, seam._enabled_shortcut(key))
    readers = [is_instrumentation_enabled]  # the shortcuts read the context they are given
    readers += [lambda s=s: s(context_api.get_current()) for s in shortcuts]
    assert {reader() for reader in readers} == {True}
    for suppressing in (suppress_instrumentation, seam.suppress_instrumentation):
        with suppressing():
            assert {reader() for reader in readers} == {False}
    token = context_api.attach(context_api.set_value("suppress_instrumentation", True))
    try:  # the plain key older instrumentations set
        assert {reader() for reader in readers} == {False}
    finally:
        context_api.detach(token)
    assert {reader() for reader in readers} == {True}


def test_configure_imports_the_instrumentation_package_only_for_the_fallback() -> None:
    code = (
        "import sys, otelkit\n"
        "otelkit.configure(service_name='t', exporter='none')\n"
        "print('opentelemetry.instrumentation.utils' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == str(_sdk.FALLBACKS_FORCED), out.stderr


def test_the_severity_mapping_is_the_apis_where_the_api_has_one() -> None:
    from otelkit._levels import std_to_otel

    try:
        from opentelemetry.instrumentation.log_utils import std_to_otel as api
    except ImportError:  # older releases
        from opentelemetry.instrumentation.logging.handler import std_to_otel as api
    assert [std_to_otel(n) for n in range(-5, 70)] == [api(n) for n in range(-5, 70)]


_RECONFIGURE_PROGRAM = """
from opentelemetry import trace, _logs
import otelkit
tracer = trace.get_tracer("early")
first = otelkit.configure(service_name="one", exporter="console")
tp1 = trace.get_tracer_provider()
first.shutdown()
second = otelkit.configure(service_name="two", exporter="console")
with trace.get_tracer("late").start_as_current_span("after-reconfigure"):
    pass
print(trace.get_tracer_provider() is tp1, type(trace.get_tracer_provider()).__name__)
second.shutdown()
"""


def test_a_reconfiguration_replaces_the_global_providers_on_both_paths() -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL", "OTELKIT"))}
    for forced in ("", "1"):
        out = subprocess.run(
            [sys.executable, "-c", _RECONFIGURE_PROGRAM],
            env={**environ, "OTELKIT_SDK_FALLBACKS": forced},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert "after-reconfigure" in out.stdout + out.stderr
        same, kind = out.stdout.split()[-2:]
        assert (same, kind) == (
            ("False", "TracerProvider") if not forced else ("True", "_ForwardingTracerProvider")
        )
