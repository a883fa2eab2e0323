"""``otelkit jobs web``: serve the dashboard with uvicorn (127.0.0.1 unless a token is set)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any

from otelkit.jobs.web._security import TOKEN_ENV, check_bind, resolve_token

__all__ = ["WEB_EXTRA", "add_parser"]

WEB_EXTRA = "pip install 'otelkit[web]'"


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
    run: Any,
) -> None:
    """Add ``web`` to the ``otelkit jobs`` subcommands; ``run(args, serve)`` opens the store."""
    web = sub.add_parser(
        "web",
        parents=parents,
        help="serve the jobs dashboard (queues, jobs, traces; retry, cancel, pause)",
        description=(
            f"Serve the jobs dashboard. It listens on 127.0.0.1 unless ${TOKEN_ENV} is set: "
            "with a token it may listen anywhere and every request must carry the token."
        ),
    )
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    web.add_argument("--port", type=int, default=8465, help="port (default 8465)")
    web.add_argument(
        "--trace-url",
        default=None,
        help="link to a trace, with {trace_id} in it "
        "(default: Jaeger's http://localhost:16686/trace/{trace_id})",
    )
    web.add_argument(
        "--read-only", action="store_true", help="offer and accept no action (only pages)"
    )
    web.add_argument(
        "--demo",
        action="store_true",
        help="serve a temporary SQLite store filled with demo jobs (no --db needed)",
    )
    web.set_defaults(func=lambda args: _demo(args) if args.demo else run(args, serve))


def _missing_extra(exc: ImportError) -> int:
    print(
        f"otelkit jobs web: {exc.name} is not installed; install it with: {WEB_EXTRA}",
        file=sys.stderr,
    )
    return 2


def _demo(args: argparse.Namespace) -> int:
    try:
        from otelkit.jobs.web._demo import demo_store
    except ImportError as exc:
        return _missing_extra(exc)
    try:  # before the demo jobs run: a refusal should come at once
        check_bind(args.host, resolve_token(None))
    except ValueError as exc:
        print(f"otelkit jobs web: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="otelkit-jobs-web-") as tmp:
        print("otelkit jobs web: running demo jobs into a temporary store ...", flush=True)
        store = demo_store(os.path.join(tmp, "jobs.sqlite3"))
        try:
            return serve(args, store)
        finally:
            store.close()


def serve(args: argparse.Namespace, store: Any) -> int:
    """Build the app for ``store`` and serve it until interrupted."""
    try:
        import uvicorn

        from otelkit.jobs.web._app import DEFAULT_TRACE_URL, app
    except ImportError as exc:
        return _missing_extra(exc)
    token = resolve_token(None)
    check_bind(args.host, token)
    application = app(
        store, trace_url=args.trace_url or DEFAULT_TRACE_URL, read_only=args.read_only, token=token
    )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    mode = " (read-only)" if args.read_only else ""
    print(f"otelkit jobs web: http://{shown}:{args.port}/{mode}", flush=True)
    uvicorn.run(application, host=args.host, port=args.port, log_level="warning")
    return 0
