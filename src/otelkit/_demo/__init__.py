"""``otelkit demo``: one command that shows every capability working together.

A host configures otelkit with a relay and log coalescing, runs a SQLite (or PostgreSQL) job
store, spawns worker processes that run ``@store.job`` functions, floods its logs with a
flaky upstream's warning, and warms a cache with a Preloader; it ends with a summary table and
the traces of a retried and a failed job (in the terminal, or as Jaeger links when a
Collector answers).
"""

from otelkit._demo._cli import register
from otelkit._demo._run import DemoOptions, run_demo

__all__ = ["DemoOptions", "register", "run_demo"]
