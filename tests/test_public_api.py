"""The public names: complete, sorted, documented."""

from __future__ import annotations

import importlib

import pytest

import otelkit

PUBLIC_MODULES = [
    "otelkit",
    "otelkit.testing",
    "otelkit.cli",
    "otelkit.preload",
    "otelkit.demo",
    "otelkit.jobs",
    "otelkit.relay",
    "otelkit.coalesce",
    "otelkit.bridges",
    "otelkit.gunicorn",
    "otelkit.asgi",
]


def test_top_level_exports_are_sorted_and_complete() -> None:
    assert otelkit.__all__ == sorted(otelkit.__all__)
    assert {"configure", "Telemetry", "flush", "current", "__version__"} <= set(otelkit.__all__)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_has_a_docstring(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__doc__
    for name in module.__all__:
        obj = getattr(module, name)
        if name.startswith("__") or isinstance(obj, str):
            continue
        assert getattr(obj, "__doc__", None), f"{module_name}.{name} has no docstring"
