"""otelkit._sdk: each shortcut through SDK internals works, and can be forced off."""

from __future__ import annotations

import os
import subprocess
import sys

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

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
    assert _sdk.reset_metric_state(provider) is True
    counter.add(2)
    assert _values(reader) == [2]
    provider.shutdown()


def test_the_environment_variable_forces_the_public_fallback() -> None:
    code = "import otelkit._sdk as s; print(s.METRIC_RESET_OK, s.FALLBACKS_FORCED)"
    env = {**os.environ, "OTELKIT_SDK_FALLBACKS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == ["False", "True"], out.stderr


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
