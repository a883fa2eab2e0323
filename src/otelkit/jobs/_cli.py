"""``otelkit jobs worker|list|show|retry|cancel|pause|resume|limits|purge|web``: run and inspect
jobs from a shell."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from otelkit.jobs._decorator import JobFunction
from otelkit.jobs._definition import Definition
from otelkit.jobs._engine import make_url
from otelkit.jobs._limits import Limits, QueueLimits, parse_rate
from otelkit.jobs._model import Job, JobState
from otelkit.jobs._schema import jobs as jobs_table
from otelkit.jobs._store import JobStore

__all__ = ["register"]

_DB_ENV = "OTELKIT_JOBS_DB"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_FINAL = [s.value for s in JobState if s.is_final]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``jobs`` command and its subcommands to the ``otelkit`` parser."""
    # Long by nature: one declaration per subcommand and option, read top to bottom as the
    # command's reference (each subcommand's behaviour lives in its own function below).
    jobs = subparsers.add_parser("jobs", help="run and inspect otelkit jobs")
    sub = jobs.add_subparsers(dest="jobs_command", metavar="SUBCOMMAND", required=True)
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument(
        "--db",
        default=os.environ.get(_DB_ENV),
        help=f"database URL or SQLite file (default: ${_DB_ENV})",
    )

    worker = sub.add_parser("worker", parents=[db], help="run a worker for job functions")
    worker.add_argument(
        "--import",
        dest="imports",
        action="append",
        required=True,
        metavar="MODULE",
        help="module defining @store.job functions (repeatable)",
    )
    worker.add_argument(
        "--queue", action="append", help="queue to serve (repeatable; default: all)"
    )
    worker.add_argument("--concurrency", type=int, default=4, help="jobs at once (default 4)")
    worker.add_argument("--batch", type=int, help="jobs per claim (default: concurrency)")
    worker.add_argument(
        "--until-idle",
        action="store_true",
        help="exit once no job is ready and none is running (default: run until SIGTERM)",
    )
    worker.add_argument(
        "--retention",
        default="7d",
        help="delete finished jobs older than this, like 12h or 30d, or 'off' (default 7d)",
    )
    worker.set_defaults(func=_worker)

    listing = sub.add_parser("list", parents=[db], help="list jobs, most recently updated first")
    listing.add_argument("--state", action="append", choices=[s.value for s in JobState])
    listing.add_argument("--queue")
    listing.add_argument("--name")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=_list)

    show = sub.add_parser("show", parents=[db], help="one job: fields, errors and history")
    show.add_argument("job_id")
    show.set_defaults(func=_show)

    for name, verb in (
        ("retry", "queue failed or cancelled jobs again"),
        ("cancel", "cancel jobs"),
    ):
        action = sub.add_parser(name, parents=[db], help=verb)
        action.add_argument("job_ids", nargs="+", metavar="JOB_ID")
        action.set_defaults(func=_operate, operation=name)

    for name, verb in (("pause", "stop claiming jobs of queues"), ("resume", "resume queues")):
        action = sub.add_parser(name, parents=[db], help=verb)
        action.add_argument("queues", nargs="+", metavar="QUEUE")
        action.set_defaults(func=_pause, operation=name)

    limits = sub.add_parser("limits", parents=[db], help="show or change queues' flow limits")
    limits_sub = limits.add_subparsers(dest="limits_command", metavar="ACTION")
    limits.set_defaults(func=_limits, limits_command="show")
    # --db after the action too; its default stays the one read above (a subcommand's
    # default would otherwise replace a --db given before the action)
    db_after = argparse.ArgumentParser(add_help=False)
    db_after.add_argument("--db", default=argparse.SUPPRESS, help="as above")
    show_limits = limits_sub.add_parser("show", parents=[db_after], help="the limits in force")
    show_limits.add_argument("queue", nargs="?")
    set_limits = limits_sub.add_parser(
        "set",
        parents=[db_after],
        help="set a queue's limits now for every worker (unset options: no limit)",
    )
    set_limits.add_argument("queue")
    set_limits.add_argument("--concurrency", type=int, help="jobs of the queue running at once")
    set_limits.add_argument("--key-concurrency", type=int, help="jobs per key running at once")
    set_limits.add_argument("--rate", help="starts per period for the queue, like 20/1s or 600/m")
    set_limits.add_argument("--key-rate", help="starts per period for each key, like 5/1s")
    set_limits.add_argument("--fair", action="store_true", help="rotate claims between keys")
    reset_limits = limits_sub.add_parser(
        "reset", parents=[db_after], help="drop an operator's limits (back to what code declares)"
    )
    reset_limits.add_argument("queue")

    purge = sub.add_parser("purge", parents=[db], help="delete old final jobs and their history")
    purge.add_argument("--older-than", default="7d", help="age like 30m, 12h, 7d (default 7d)")
    purge.add_argument("--state", action="append", choices=_FINAL)
    purge.set_defaults(func=_purge)

    from otelkit.jobs.web._cli import add_parser as add_web_parser

    add_web_parser(sub, [db], _web)


# -- handlers ------------------------------------------------------------------------------
def _store(args: argparse.Namespace) -> JobStore:
    if not args.db:
        raise ValueError(f"--db is required (or set ${_DB_ENV})")
    inspecting = args.jobs_command != "worker"
    url = make_url(args.db, option="--db")
    sqlite_file = url.database if url.get_backend_name() == "sqlite" else None
    if inspecting and sqlite_file and not os.path.exists(sqlite_file):
        # Opening it would create an empty file: report instead, leave nothing behind.
        raise ValueError(f"no job store at {url.database}: the file does not exist")
    store = JobStore(args.db, gauges=not inspecting)
    if inspecting and not sa.inspect(store.engine).has_table(jobs_table.name):
        store.close()
        raise ValueError(
            f"{args.db} has no otelkit job tables yet (store.create_schema() or "
            "`otelkit jobs worker` creates them)"
        )
    return store


@contextlib.contextmanager
def _session(args: argparse.Namespace) -> Iterator[JobStore]:
    store = _store(args)
    try:
        yield store
    finally:
        store.close()


def _fail(args: argparse.Namespace, exc: BaseException) -> int:
    print(f"otelkit jobs {args.jobs_command}: {exc}", file=sys.stderr)
    return 2


def _worker(args: argparse.Namespace) -> int:
    try:
        definitions, stores = _import_jobs(args.imports)
        if args.concurrency < 1 or (args.batch is not None and args.batch < 1):
            raise ValueError("--concurrency and --batch must be >= 1")
        retention = None if args.retention == "off" else _duration(args.retention, "--retention")
    except (ImportError, ValueError) as exc:
        return _fail(args, exc)
    try:
        telemetry = _configure_telemetry()
        store = _worker_store(args, stores)
        for definition in definitions:
            if definition.name not in store.functions:
                store._backend.register(definition)
        store.create_schema()
        worker = store.worker(
            queues=args.queue,
            concurrency=args.concurrency,
            batch=args.batch,
            retention=retention,
        )
    except (ValueError, TypeError) as exc:
        return _fail(args, exc)
    names = ", ".join(sorted(d.name for d in definitions))
    print(f"otelkit jobs worker {worker.id}: queues {', '.join(worker.queues)}; jobs {names}")
    sys.stdout.flush()
    try:
        worker.run(until_idle=args.until_idle)
    except KeyboardInterrupt:  # a second signal: jobs in hand were released
        print(f"otelkit jobs worker {worker.id}: interrupted", file=sys.stderr)
        return 130
    finally:
        store.close()
        if telemetry is not None:
            telemetry.shutdown()
    why = " (no job left to run)" if args.until_idle else ""
    attempts = f"{worker.processed} attempt{'' if worker.processed == 1 else 's'}"
    print(f"otelkit jobs worker {worker.id}: stopped after {attempts}{why}")
    return 0


def _worker_store(args: argparse.Namespace, stores: list[JobStore]) -> JobStore:
    """The module's own store when it is the one asked for (so jobs that enqueue follow-ups
    and its gauges use the same database), else a new store for ``--db``."""
    if not args.db:
        if len(stores) == 1:
            return stores[0]
        raise ValueError(
            f"--db is required (or set ${_DB_ENV}): the modules define {len(stores)} JobStores"
        )
    wanted = make_url(args.db, option="--db").render_as_string(hide_password=False)
    for store in stores:
        if store.engine.url.render_as_string(hide_password=False) == wanted:
            return store
    return _store(args)


def _import_jobs(modules: Sequence[str]) -> tuple[list[Definition], list[JobStore]]:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    found: dict[str, Definition] = {}
    stores: list[JobStore] = []
    for name in modules:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, JobFunction):
                found.setdefault(value.name, value.definition)
            elif isinstance(value, JobStore) and value not in stores:
                stores.append(value)
                for definition in value.functions.values():
                    found.setdefault(definition.name, definition)
    if not found:
        raise ValueError(f"no @store.job functions found in {', '.join(modules)}")
    return list(found.values()), stores


def _configure_telemetry() -> Any:
    try:
        import otelkit

        configure = otelkit.configure
    except (ImportError, AttributeError):  # a build without the configure() entry point
        return None
    return configure()


def _list(args: argparse.Namespace) -> int:
    try:
        with _session(args) as store:
            jobs = store.list_jobs(
                states=args.state, queue=args.queue, name=args.name, limit=args.limit
            )
            periodic = store.schedules()
            waiting = store.wait_reasons(jobs)
    except ValueError as exc:
        return _fail(args, exc)
    header = ("ID", "NAME", "QUEUE", "STATE", "ATTEMPT", "RUN AFTER", "UPDATED", "LAST ERROR")
    rows: list[tuple[str, ...]] = [header]
    rows += [
        (
            job.id,
            job.name,
            job.queue,
            job.state.value,
            f"{job.attempt}/{job.max_attempts}",
            _when(job.run_after),
            _when(job.updated_at),
            _short(f"{job.errors[-1].type}: {job.errors[-1].message}" if job.errors else ""),
        )
        for job in jobs
    ]
    if waiting:  # ready jobs that a paused queue or a flow limit holds back
        rows = [(*header, "WAITING ON")] + [
            (*row, _short(str(waiting.get(job.id, "")), 70))
            for row, job in zip(rows[1:], jobs, strict=True)
        ]
    print(_table(rows) if jobs else "no jobs")
    if periodic:
        table = [("SCHEDULE", "QUEUE", "WHEN", "CATCH UP", "LAST PERIOD", "LAST TICK")]
        table += [
            (s.name, s.queue, s.spec, s.catch_up, _when(s.last_period), _when(s.last_tick))
            for s in periodic
        ]
        print()
        print(_table(table))
    return 0


def _show(args: argparse.Namespace) -> int:
    try:
        with _session(args) as store:
            job = store.get(args.job_id)
            history = store.transitions(args.job_id)
            waiting = None if job is None else store.wait_reasons([job]).get(job.id)
    except ValueError as exc:
        return _fail(args, exc)
    if job is None:
        print(f"otelkit jobs show: no job with id {args.job_id!r}", file=sys.stderr)
        return 1
    fields = _fields(job)
    if job.limit_key is not None:
        fields.append(("limit key", job.limit_key))
    if waiting is not None:
        fields.append(("waiting on", waiting.message))
    print(_table(fields))
    if job.errors:
        print("\nerrors (oldest first):")
        for error in job.errors:
            at = _when(datetime.fromtimestamp(error.at, tz=timezone.utc), precise=True)
            trace = f"  trace {error.trace_id}" if error.trace_id else ""
            print(f"  attempt {error.attempt} at {at}{trace}")
            print(f"    {error.type}: {error.message}")
            for line in error.traceback.rstrip().splitlines():
                print(f"    {line}")
    rows = [("TIME (UTC)", "FROM", "TO", "ATTEMPT", "WORKER", "ERROR")]
    rows += [
        (
            _when(t.at, precise=True),
            t.from_state or "-",
            t.to_state,
            str(t.attempt),
            t.worker or "-",
            _short(t.error or ""),
        )
        for t in history
    ]
    print("\nhistory:")
    print(_table(rows, indent="  "))
    return 0


def _fields(job: Job) -> list[tuple[str, str]]:
    lease = "-"
    if job.state is JobState.RUNNING and job.lease_owner:
        lease = f"{job.lease_owner} until {_when(job.lease_expires)}"
    return [
        ("id", job.id),
        ("name", job.name),
        ("queue", job.queue),
        ("state", job.state.value),
        ("attempt", f"{job.attempt} of {job.max_attempts}"),
        ("priority", str(job.priority)),
        ("data", _json(job.data)),
        ("result", _json(job.result)),
        ("trace", job.trace_id or "-"),
        ("created", _when(job.created_at)),
        ("updated", _when(job.updated_at)),
        ("run after", _when(job.run_after)),
        ("finished", _when(job.finished_at)),
        ("lease", lease),
    ]


# What an operator action found instead of a state it accepts, in plain words.
_FOUND = {
    JobState.QUEUED: "it is queued and has not run yet",
    JobState.RUNNING: "it is running now",
    JobState.RETRYING: "it is waiting for its next attempt",
    JobState.SUCCEEDED: "it already succeeded",
    JobState.FAILED: "it already failed",
    JobState.CANCELLED: "it was already cancelled",
}
_ACCEPTS = {
    "retry": "only failed or cancelled jobs can be retried",
    "cancel": "only queued, retrying or running jobs can be cancelled",
}


def _operate(args: argparse.Namespace) -> int:
    failures = 0
    past = {"retry": "queued again", "cancel": "cancelled"}[args.operation]
    try:
        with _session(args) as store:
            action = store.retry if args.operation == "retry" else store.cancel
            for job_id in args.job_ids:
                if action(job_id):
                    print(f"{args.operation}: {job_id} {past}")
                    continue
                failures += 1
                job = store.get(job_id)
                if job is None:
                    reason = "there is no job with this id"
                else:
                    reason = f"{_FOUND[job.state]}; {_ACCEPTS[args.operation]}"
                print(f"{args.operation}: {job_id} left as it is: {reason}", file=sys.stderr)
    except ValueError as exc:
        return _fail(args, exc)
    return 1 if failures else 0


def _pause(args: argparse.Namespace) -> int:
    pausing = args.operation == "pause"
    try:
        with _session(args) as store:
            for queue in args.queues:
                changed = store.pause(queue) if pausing else store.resume(queue)
                state = "paused" if pausing else "running"
                print(f"{args.operation}: {queue} {state}" + ("" if changed else " (already)"))
            print(f"paused queues: {', '.join(store.paused_queues()) or 'none'}")
    except ValueError as exc:
        return _fail(args, exc)
    return 0


def _limits(args: argparse.Namespace) -> int:
    try:
        with _session(args) as store:
            if args.limits_command == "set":
                limits = Limits(
                    concurrency=args.concurrency,
                    key_concurrency=args.key_concurrency,
                    rate=None if args.rate is None else parse_rate(args.rate, "--rate"),
                    key_rate=None
                    if args.key_rate is None
                    else parse_rate(args.key_rate, "--key-rate"),
                    fair=args.fair,
                )
                changed = store.set_limits(args.queue, limits)
                print(
                    f"limits: {args.queue} {limits.describe()}" + ("" if changed else " (already)")
                )
            elif args.limits_command == "reset":
                limits = store.reset_limits(args.queue)
                print(f"limits: {args.queue} reset to the code's: {limits.describe()}")
            found = store.limits(getattr(args, "queue", None))
    except ValueError as exc:
        return _fail(args, exc)
    print(_limits_table(found) if found else "no queue has limits")
    return 0


def _limits_table(found: Sequence[QueueLimits]) -> str:
    rows = [("QUEUE", "LIMITS", "SET BY", "RUNNING", "LAST HELD BACK")]
    rows += [
        (
            q.queue,
            q.limits.describe(),
            q.set_by,
            str(q.running),
            "-" if q.throttled_at is None else f"{_when(q.throttled_at)} ({q.throttled_reason})",
        )
        for q in found
    ]
    return _table(rows)


def _web(args: argparse.Namespace, serve: Any) -> int:
    try:
        with _session(args) as store:
            code: int = serve(args, store)
    except ValueError as exc:
        return _fail(args, exc)
    return code


def _purge(args: argparse.Namespace) -> int:
    try:
        older = _duration(args.older_than)
        with _session(args) as store:
            deleted = store.purge(older_than=older, states=args.state or _FINAL)
    except ValueError as exc:
        return _fail(args, exc)
    print(f"purged {deleted} jobs last updated more than {args.older_than} ago")
    return 0


# -- formatting ----------------------------------------------------------------------------
def _duration(text: str, option: str = "--older-than") -> timedelta:
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"{option} must look like 30m, 12h or 7d, got {text!r}")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def _when(value: datetime | None, *, precise: bool = False) -> str:
    """UTC, ISO 8601 with its zone: ``2026-11-22T16:02:11Z`` (``precise``: milliseconds)."""
    if value is None:
        return "-"
    text = value.astimezone(timezone.utc).isoformat(
        timespec="milliseconds" if precise else "seconds"
    )
    return text.removesuffix("+00:00") + "Z"


def _json(value: Any) -> str:
    """A stored JSON value, printed as JSON."""
    return json.dumps(value, ensure_ascii=False)


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(rows: Sequence[Sequence[str]], indent: str = "") -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        indent
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
