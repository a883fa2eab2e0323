"""The ``demo`` subcommand of ``otelkit``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register"]


def _positive_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _run(args: argparse.Namespace) -> int:
    from otelkit._demo._run import DemoOptions, run_demo

    try:
        options = DemoOptions(
            duration=args.duration,
            workers=args.workers,
            db=args.db,
            endpoint=args.endpoint,
            sampling=args.sampling,
        )
    except ValueError as exc:
        print(f"otelkit demo: {exc}", file=sys.stderr)
        return 2
    try:
        run_demo(options)
    except ValueError as exc:  # a database the store refuses (no driver, no such host...)
        print(f"otelkit demo: {exc}", file=sys.stderr)
        return 2
    return 0


def register(subparsers: Any) -> None:
    """Add ``demo`` to the ``otelkit`` command's subparsers."""
    parser = subparsers.add_parser(
        "demo", help="run every capability together and show the result (under 30 s)"
    )
    parser.add_argument(
        "--duration", type=_positive_float, default=20.0, help="upper bound in seconds (default 20)"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--db", help="job store URL (default: SQLite in a temporary directory)")
    parser.add_argument(
        "--endpoint",
        help="OTLP/HTTP endpoint; by default http://localhost:4318 when a Collector answers "
        "there, else traces are drawn in the terminal ('none' forces the terminal)",
    )
    parser.add_argument(
        "--sampling",
        type=_positive_float,
        metavar="P",
        help="tail-sample job traces: keep every failed or slow one and a share P of the rest "
        "(e.g. 0.1); the summary says how many were kept and why",
    )
    parser.set_defaults(func=_run)
