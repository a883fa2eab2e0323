"""The pytest plugin costs nothing until a test uses one of its fixtures.

Installing otelkit puts the plugin into every pytest run of every project that has it, so
these run in fresh interpreters: what the plugin alone imports and installs, and a real
pytest session with and without a fixture.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Imports pytest (whose own imports of the standard library install hooks), records every
# process hook installed from there on, then imports the plugin (as pytest does through
# the entry point) and prints what it loaded and installed.
_PROBE = """
import atexit, json, os, signal, sys
import pytest
hooks = []
for owner, name in ((os, "register_at_fork"), (atexit, "register"), (signal, "signal")):
    real = getattr(owner, name)
    def record(*args, _real=real, _name=name, **kwargs):
        hooks.append(_name)
        return _real(*args, **kwargs)
    setattr(owner, name, record)
import {module}
heavy = sorted(
    m for m in sys.modules
    if m.startswith(("opentelemetry", "google.protobuf", "otelkit._telemetry"))
)
print(json.dumps({{"heavy": heavy, "hooks": hooks}}))
"""


def probe(module: str) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, list[str]] = json.loads(done.stdout)
    return result


def test_importing_the_plugin_loads_no_sdk_and_installs_no_process_hook() -> None:
    assert probe("otelkit._pytest_plugin") == {"heavy": [], "hooks": []}


def test_the_probe_sees_what_the_test_helpers_load() -> None:
    # The probe itself works: the helpers the fixtures hand out do load the SDK and protobuf.
    heavy = probe("otelkit.testing")["heavy"]
    assert "opentelemetry.sdk" in heavy
    assert "google.protobuf" in heavy


def test_the_entry_point_is_the_plugin_module() -> None:
    from importlib.metadata import entry_points

    (plugin,) = [ep for ep in entry_points(group="pytest11") if ep.name == "otelkit"]
    assert plugin.value == "otelkit._pytest_plugin"


_SESSION_TEST = """
import sys

def test_without_fixtures():
    assert "otelkit._pytest_plugin" in sys.modules  # the plugin is loaded...
    assert "opentelemetry.sdk" not in sys.modules  # ...and nothing heavy with it
    assert "google.protobuf" not in sys.modules
    assert "otelkit._telemetry" not in sys.modules

def test_with_a_fixture(fake_clock):
    fake_clock.advance(1.0)
    assert fake_clock.monotonic() > 0
"""


def test_a_pytest_session_loads_the_sdk_only_for_a_test_that_asks(tmp_path: Path) -> None:
    (tmp_path / "test_probe.py").write_text(_SESSION_TEST)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_probe.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
