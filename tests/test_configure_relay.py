"""configure(relay=True) in a host, configure() in its children: records arrive once."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap

import pytest
from opentelemetry import trace

import otelkit
from otelkit.testing import wait_until

CHILD = textwrap.dedent(
    """
    import logging, sys
    import otelkit
    from opentelemetry import trace
    otelkit.configure(service_name="kid")
    with trace.get_tracer("kid").start_as_current_span("child-work"):
        logging.getLogger("kid").warning("from the child")
    heavy = sorted(m for m in ("grpc", "requests") if m in sys.modules)
    print(",".join(heavy) or "light", flush=True)
    """
)


@pytest.fixture
def host() -> otelkit.Telemetry:
    telemetry = otelkit.configure(service_name="host", exporter="memory", relay=True)
    yield telemetry
    telemetry.shutdown()
    assert "OTELKIT_RELAY" not in os.environ


def _bodies(telemetry: otelkit.Telemetry) -> list[str]:
    return [str(r.log_record.body) for r in telemetry.memory.logs.get_finished_logs()]


def test_a_subprocess_child_exports_through_the_relay_without_network_libraries(
    host: otelkit.Telemetry,
) -> None:
    assert os.environ["OTELKIT_RELAY"] == host.relay_host.env_value
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "light"
    wait_until(lambda: "from the child" in _bodies(host), timeout=10)
    assert _bodies(host).count("from the child") == 1
    record = next(
        r for r in host.memory.logs.get_finished_logs() if r.log_record.body == "from the child"
    )
    assert record.resource.attributes["service.name"] == "kid"
    wait_until(lambda: host.memory.spans.get_finished_spans(), timeout=10)
    span = host.memory.spans.get_finished_spans()[0]
    assert span.name == "child-work"
    assert record.log_record.trace_id == span.context.trace_id


def _forked_child() -> None:
    import logging

    logging.getLogger("forked").warning("from a forked child")


def test_a_forked_child_exports_through_the_relay_without_a_call_of_its_own(
    host: otelkit.Telemetry,
) -> None:
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_forked_child)
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    wait_until(lambda: "from a forked child" in _bodies(host), timeout=10)
    assert _bodies(host).count("from a forked child") == 1
    record = next(
        r
        for r in host.memory.logs.get_finished_logs()
        if r.log_record.body == "from a forked child"
    )
    assert record.resource.attributes["process.pid"] == proc.pid


def test_host_spans_and_child_spans_share_a_trace_when_context_is_passed(
    host: otelkit.Telemetry,
) -> None:
    from opentelemetry.propagate import inject

    with trace.get_tracer("host").start_as_current_span("parent-work") as parent:
        carrier: dict[str, str] = {}
        inject(carrier)
    child = CHILD.replace(
        'with trace.get_tracer("kid").start_as_current_span("child-work"):',
        "from opentelemetry.propagate import extract\n"
        f"with trace.get_tracer('kid').start_as_current_span('child-work', context=extract({carrier!r})):",
    )
    subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=60, check=True)
    wait_until(
        lambda: any(s.name == "child-work" for s in host.memory.spans.get_finished_spans()),
        timeout=10,
    )
    span = next(s for s in host.memory.spans.get_finished_spans() if s.name == "child-work")
    assert span.context.trace_id == parent.get_span_context().trace_id
    assert span.parent.span_id == parent.get_span_context().span_id
