"""Without an SDK (nothing configured) the bridges do nothing and never raise; importing
otelkit or otelkit.bridges imports neither structlog nor loguru."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

NO_SDK = textwrap.dedent(
    """
    import io, sys
    import structlog
    from loguru import logger
    from opentelemetry import _logs
    from otelkit.bridges import LoguruSink, StructlogProcessor

    processor = StructlogProcessor()
    out = io.StringIO()
    structlog.configure(
        processors=[processor, structlog.processors.KeyValueRenderer()],
        logger_factory=structlog.PrintLoggerFactory(file=out),
    )
    structlog.get_logger().warning("no sdk", thing=object(), n=1)
    try:
        raise ValueError("x")
    except ValueError:
        structlog.get_logger().exception("still no sdk")
    sink = LoguruSink()
    logger.remove()
    logger.add(sink, catch=False)
    logger.info("no sdk {here}")
    logger.bind(a=object()).error("no sdk either")
    assert "event='no sdk'" in out.getvalue(), out.getvalue()
    assert (processor.failed, sink.failed) == (0, 0)
    _logs.set_logger_provider(_logs.NoOpLoggerProvider())  # an explicit no-op provider
    structlog.get_logger().info("no-op provider")
    logger.info("no-op provider")
    assert (processor.failed, sink.failed) == (0, 0)
    print("ok")
    """
)

IMPORTS = textwrap.dedent(
    """
    import sys
    import otelkit, otelkit.bridges
    otelkit.configure(service_name="light", exporter="none")
    print(sorted(m for m in ("structlog", "loguru") if m in sys.modules))
    """
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_"))}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )


def test_logging_through_the_bridges_without_an_sdk_never_raises() -> None:
    result = _run(NO_SDK)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert "Traceback" not in result.stderr


def test_importing_otelkit_and_its_bridges_imports_neither_library() -> None:
    result = _run(IMPORTS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
