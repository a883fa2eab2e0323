"""The public names of ``otelkit.relay``."""

from __future__ import annotations

import subprocess
import sys

import otelkit.relay


def _isort_style(names: list[str]) -> list[str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions."""
    return sorted(names, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))


def test_all_is_sorted_and_every_name_resolves_with_a_docstring() -> None:
    assert otelkit.relay.__all__ == _isort_style(otelkit.relay.__all__)
    for name in otelkit.relay.__all__:
        value = getattr(otelkit.relay, name)
        assert value is not None
        if name != "RELAY_ENV":
            assert value.__doc__, name
    assert otelkit.relay.RELAY_ENV == "OTELKIT_RELAY"


def test_importing_the_child_side_leaves_the_host_and_its_protobuf_classes_alone() -> None:
    code = (
        "import sys, otelkit.relay\n"
        "print(sorted(m for m in ('otelkit.relay._host', 'otelkit.relay._decode',"
        " 'opentelemetry.proto.collector.logs.v1.logs_service_pb2') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
