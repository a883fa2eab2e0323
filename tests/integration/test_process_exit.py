"""Exit paths of a real process: atexit flush, SIGTERM flush, bounded exit when unreachable."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from otelkit._testsupport import free_port
from otelkit.testing import OtlpSink, wait_until

CHILD = textwrap.dedent(
    """
    import logging, os, signal, sys, time
    import otelkit
    from opentelemetry import trace
    mode, endpoint = sys.argv[1], sys.argv[2]
    if mode == "own-handler":
        signal.signal(signal.SIGTERM, lambda *a: None)
    otelkit.configure(service_name="exit-test", endpoint=endpoint, metric_interval=3600)
    tracer = trace.get_tracer("exit")
    for i in range(100):
        with tracer.start_as_current_span(f"span-{i}"):
            logging.getLogger("exit").warning("record %d", i)
    if mode == "own-handler":
        print(signal.getsignal(signal.SIGTERM).__name__, flush=True)
    if mode == "sigterm":
        print("ready", flush=True)
        time.sleep(60)
    if mode == "handler-after-configure":
        calls = []
        signal.signal(signal.SIGTERM, lambda *a: calls.append(1))
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 1.5  # a re-delivery came every 0.1 s, 20 and more times
        while time.monotonic() < deadline:
            time.sleep(0.01)
        print(len(calls), flush=True)
    if mode == "os-exit":
        os._exit(3)
    if mode == "fork-os-exit":
        pid = os.fork()
        if pid == 0:
            with tracer.start_as_current_span("in-child"):
                logging.getLogger("exit").warning("from the child")
            os._exit(0)
        os.waitpid(pid, 0)
    """
)


def _run(mode: str, endpoint: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, endpoint],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_normal_exit_flushes_everything(otlp_sink: OtlpSink) -> None:
    proc = _run("exit", otlp_sink.endpoint)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert len(otlp_sink.spans()) == 100
    assert len(otlp_sink.logs()) == 100


def test_sigterm_flushes_then_terminates_as_before(otlp_sink: OtlpSink) -> None:
    proc = _run("sigterm", otlp_sink.endpoint)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM
    assert len(otlp_sink.spans()) == 100
    assert len(otlp_sink.logs()) == 100


def test_an_application_sigterm_handler_is_left_alone(otlp_sink: OtlpSink) -> None:
    proc = _run("own-handler", otlp_sink.endpoint)
    out, _ = proc.communicate(timeout=30)
    assert out.strip() == "<lambda>"


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_exit_is_bounded_when_nothing_listens(protocol: str) -> None:
    port = free_port()
    child = CHILD.replace(
        "endpoint=endpoint, metric_interval=3600",
        f'endpoint=endpoint, protocol="{protocol}", metric_interval=3600, shutdown_timeout=3',
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child, "exit", f"http://127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # shutdown_timeout=3 bounds the flush; the interpreter's own start and exit fit well
    # inside the rest. The SDK's usual set-up takes several times as long here.
    _, err = proc.communicate(timeout=8)
    assert proc.returncode == 0
    assert "telemetry still queued was not exported" in err


def test_an_application_handler_installed_after_configure_runs_once_per_sigterm(
    otlp_sink: OtlpSink,
) -> None:
    proc = _run("handler-after-configure", otlp_sink.endpoint)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip() == "1"


def test_os_exit_still_delivers_what_the_process_recorded(otlp_sink: OtlpSink) -> None:
    proc = _run("os-exit", otlp_sink.endpoint)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err  # the exit status is the caller's
    assert len(otlp_sink.spans()) == 100
    assert len(otlp_sink.logs()) == 100


def test_a_fork_child_leaving_through_os_exit_delivers_its_own_records_once(
    otlp_sink: OtlpSink,
) -> None:
    proc = _run("fork-os-exit", otlp_sink.endpoint)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    names = [span.name for _, span in otlp_sink.spans()]
    assert names.count("in-child") == 1
    assert len(names) == 101  # the parent's 100 once: the child exported none of them
    assert len(otlp_sink.logs()) == 101


def test_wait_until_is_bounded() -> None:
    with pytest.raises(TimeoutError):
        wait_until(lambda: False, timeout=0.05)
