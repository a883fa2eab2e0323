"""A missing optional dependency names the extra that installs it, for every extra.

Each case runs in a fresh interpreter where the dependency cannot be imported
(``sys.modules[name] = None`` makes ``import name`` raise ``ModuleNotFoundError``, as when
the package is not installed) and prints the message of the error the user gets.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# extra -> (modules made unimportable, code that uses the feature, exception class printed)
CASES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "async": (
        ("greenlet",),
        """
        import asyncio
        from otelkit.jobs import JobStore
        store = JobStore("jobs.sqlite3", gauges=False)
        store.create_schema()
        thumbnail = store.job(name="thumbs.thumbnail")(lambda job: None)
        asyncio.run(thumbnail.aenqueue({"path": "a.png"}))
        """,
        "MissingDependencyError",
    ),
    "postgres": (
        ("psycopg",),
        """
        from otelkit.jobs import JobStore
        JobStore("postgresql://postgres@127.0.0.1:5432/postgres")
        """,
        "ValueError",
    ),
    "redis": (
        ("redis", "redis.asyncio"),
        """
        from otelkit.preload import RedisCache
        RedisCache(object())
        """,
        "MissingDependencyError",
    ),
    "structlog": (
        ("structlog",),
        """
        from otelkit.bridges import StructlogProcessor
        StructlogProcessor()
        """,
        "MissingDependencyError",
    ),
    "loguru": (
        ("loguru",),
        """
        from otelkit.bridges import LoguruSink
        LoguruSink()
        """,
        "MissingDependencyError",
    ),
    "celery": (
        ("celery", "celery.signals"),
        """
        import otelkit.celery
        otelkit.celery.instrument(object())
        """,
        "MissingDependencyError",
    ),
    "rq": (
        ("rq",),
        """
        import otelkit.rq
        """,
        "MissingDependencyError",
    ),
    "web": (
        ("starlette",),
        """
        from otelkit.jobs.web import app
        """,
        "MissingDependencyError",
    ),
    "test": (
        ("rotel",),
        """
        from otelkit.testing import OtlpSink, RotelCollector
        RotelCollector(OtlpSink())
        """,
        "RuntimeError",
    ),
}
# Extras that only build or check the project: no code of otelkit imports them at run time.
BUILD_ONLY = {"docs"}


def _run(modules: tuple[str, ...], code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    hide = "".join(f"sys.modules[{name!r}] = None\n" for name in modules)
    script = (
        "import sys\n"
        + hide
        + "try:\n"
        + textwrap.indent(textwrap.dedent(code), "    ")
        + "except Exception as exc:\n"
        + "    print(type(exc).__name__, exc, sep=': ')\n"
        + "else:\n"
        + "    print('no error')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_every_extra_has_a_case() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = set(pyproject["project"]["optional-dependencies"])
    assert extras - BUILD_ONLY == set(CASES)


@pytest.mark.parametrize("extra", sorted(CASES))
def test_a_missing_dependency_names_its_extra(extra: str, tmp_path: Path) -> None:
    modules, code, error = CASES[extra]
    result = _run(modules, code, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith(f"{error}: "), result.stdout
    assert f"pip install 'otelkit[{extra}]'" in result.stdout


def test_the_error_is_an_import_error_of_the_otelkit_family() -> None:
    import otelkit
    from otelkit._extras import require

    with pytest.raises(ImportError, match=r"pip install 'otelkit\[demo\]'") as caught:
        require("otelkit_no_such_module", extra="demo", needed_by="the test")
    assert isinstance(caught.value, otelkit.MissingDependencyError)
    assert isinstance(caught.value, otelkit.OtelkitError)
    assert caught.value.name == "otelkit_no_such_module"
