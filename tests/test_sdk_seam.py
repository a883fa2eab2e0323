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
