"""``python serve_uvicorn.py PORT [WORKERS]``: uvicorn ``--workers`` with the master as relay host.

The recipe of docs/prefork.md: the master configures the relay before uvicorn starts its
(spawned) workers, which inherit OTELKIT_RELAY; it shuts otelkit down after uvicorn has
joined every worker.
"""

from __future__ import annotations

import sys

import uvicorn

import otelkit

if __name__ == "__main__":
    telemetry = otelkit.configure(relay=True)  # service name, endpoint: OTEL_* environment
    uvicorn.run(
        "asgi_app:app",
        host="127.0.0.1",
        port=int(sys.argv[1]),
        workers=int(sys.argv[2]) if len(sys.argv) > 2 else 2,
        log_level="warning",
    )
    telemetry.shutdown()
