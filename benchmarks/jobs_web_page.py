"""jobs_web_page: the dashboard's failed-jobs page with 1,000,000 jobs vs with 1,000.

Two fresh PostgreSQL databases (created and dropped here) get the job tables and rows
bulk-loaded by the database itself (``INSERT ... SELECT`` over ``generate_series``, history
triggers off while loading): 5 % failed (each with an error and a traceback), 2 % queued,
the rest succeeded, over 5 queues and 7 job names; then ``ANALYZE``. Each database is served
by ``otelkit.jobs.web.app`` under uvicorn on loopback, and a keep-alive HTTP client times
``GET /jobs?state=failed`` (50 rows, rendered) ``REQUESTS`` times after a warm-up, the two
servers' requests alternated; the p50s are compared (ours: 1,000,000 jobs, baseline: 1,000 jobs; target ratio <= 2). The second
page of the failed jobs (keyset cursor), a page deep in the middle of them, the unfiltered
jobs page and the queues page are reported too, for the large table.

Environment: ``OTELKIT_BENCH_POSTGRES_URL`` (else ``OTELKIT_TEST_POSTGRES_URL``, else
``postgresql://postgres@127.0.0.1:5432/postgres``), ``REQUESTS`` (default 60), ``LARGE``
(default 1000000).
"""

from __future__ import annotations

import http.client
import os
import re
import statistics
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa
from jobs_throughput import _Database

REQUESTS = int(os.environ.get("REQUESTS", "60"))
LARGE = int(os.environ.get("LARGE", "1000000"))
SMALL = 1000
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/billing.py", line 42, in charge\n'
    "    gateway.charge(card, amount)\n"
    "ValueError: card declined"
)

_LOAD = """
INSERT INTO otelkit_jobs (id, name, queue, status, data, result, priority, attempt,
  max_attempts, lease_seconds, run_after, created_at, updated_at, finished_at, errors,
  last_error)
SELECT 'job-' || lpad(i::text, 8, '0'), 'bench.job' || (i % 7), 'q' || (i % 5), s.status,
  jsonb_build_object('n', i, 'card', '4000-' || i), NULL, 0, 1, 3, 30.0,
  t.at, t.at, t.at + 1.0, CASE WHEN s.status = 'queued' THEN NULL ELSE t.at + 1.0 END,
  CASE WHEN s.status = 'failed' THEN jsonb_build_array(jsonb_build_object(
    'attempt', 1, 'type', 'ValueError', 'message', 'card 4000-' || i || ' declined',
    'traceback', CAST(:traceback AS text), 'at', t.at + 1.0,
    'trace_id', md5('trace' || i)))
  ELSE '[]'::jsonb END,
  CASE WHEN s.status = 'failed' THEN 'ValueError: card 4000-' || i || ' declined' END
FROM generate_series(1, CAST(:n AS integer)) AS i
CROSS JOIN LATERAL (SELECT CASE WHEN i % 20 = 0 THEN 'failed' WHEN i % 50 = 1 THEN 'queued'
  ELSE 'succeeded' END AS status) AS s
CROSS JOIN LATERAL (SELECT EXTRACT(EPOCH FROM now())::float8 - (CAST(:n AS integer) - i) * 0.5
  AS at) AS t
"""


def _load(url: sa.URL, rows: int) -> None:
    from otelkit.jobs import JobStore
    from otelkit.jobs._schema import jobs

    store = JobStore(url.render_as_string(hide_password=False), gauges=False)
    store.create_schema()
    store.close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        # Indexes built once after the load are much faster than maintained row by row.
        for index in jobs.indexes:
            index.drop(conn)
        conn.exec_driver_sql("ALTER TABLE otelkit_jobs DISABLE TRIGGER USER")
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
        conn.execute(sa.text(_LOAD), {"n": rows, "traceback": TRACEBACK})
        conn.exec_driver_sql("ALTER TABLE otelkit_jobs ENABLE TRIGGER USER")
        for index in jobs.indexes:
            index.create(conn)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE otelkit_jobs")
    engine.dispose()


class _Served:
    """The dashboard of one database under uvicorn on loopback, and a keep-alive client."""

    def __init__(self, url: sa.URL) -> None:
        import uvicorn

        from otelkit.jobs import JobStore
        from otelkit.jobs.web import app

        self.store = JobStore(url.render_as_string(hide_password=False), gauges=False)
        config = uvicorn.Config(
            app(self.store, refresh_seconds=0), host="127.0.0.1", port=0, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path: str) -> str:
        self.conn.request("GET", path, headers={"Accept": "text/html"})
        response = self.conn.getresponse()
        body = response.read().decode()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:300]}")
        return body

    def p50_ms(
        self, path: str, check: Callable[[str], None] | None = None, requests: int = REQUESTS
    ) -> float:
        for _ in range(min(5, requests)):  # warm: connections, compiled statements, templates
            body = self.get(path)
        if check is not None:
            check(body)
        return statistics.median(self.time_ms(path) for _ in range(requests))

    def time_ms(self, path: str) -> float:
        start = time.perf_counter()
        self.get(path)
        return (time.perf_counter() - start) * 1000

    def close(self) -> None:
        self.conn.close()
        self.server.should_exit = True
        self.thread.join(30)
        self.store.close()


def _fifty_rows(body: str) -> None:
    rows = len(re.findall(r'<tr class="state-failed">', body))
    if rows != 50:
        raise RuntimeError(f"the failed-jobs page shows {rows} rows, not 50")


def _next_page(body: str) -> str:
    match = re.search(r'href="([^"]+)" id="next-page"', body)
    if match is None:
        raise RuntimeError("no next page")
    return match.group(1).replace("&amp;", "&")


def _deep_cursor(url: sa.URL) -> str:
    """The cursor of a page halfway through the failed jobs (read here with OFFSET: the
    dashboard itself only walks there page by page)."""
    from otelkit.jobs.web._queries import encode_cursor

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        at, job_id = conn.execute(
            sa.text(
                "SELECT updated_at, id FROM otelkit_jobs WHERE status = 'failed' "
                "ORDER BY updated_at DESC, id DESC OFFSET :half LIMIT 1"
            ),
            {"half": LARGE // 40},
        ).one()
    engine.dispose()
    return encode_cursor(float(at), str(job_id))


def main() -> None:
    small, large = _Database(), _Database()
    try:
        started = time.perf_counter()
        _load(small.url, SMALL)
        _load(large.url, LARGE)
        print(f"loaded {SMALL} and {LARGE} jobs in {time.perf_counter() - started:.1f} s")
        figures: dict[str, float] = {}
        ours, baseline = _Served(large.url), _Served(small.url)
        try:
            # Both servers up at once, requests alternated: the machine's other work weighs
            # on both sides alike.
            page = "/jobs?state=failed"
            for served in (ours, baseline):
                for _ in range(5):
                    _fifty_rows(served.get(page))
            times: dict[str, list[float]] = {"ours": [], "baseline": []}
            for _ in range(REQUESTS):
                times["ours"].append(ours.time_ms(page))
                times["baseline"].append(baseline.time_ms(page))
            figures = {label: statistics.median(t) for label, t in times.items()}
            second = _next_page(ours.get(page))
            figures["second"] = ours.p50_ms(second, _fifty_rows)
            deep = f"{page}&after={_deep_cursor(large.url)}"
            figures["deep"] = ours.p50_ms(deep, _fifty_rows)
            figures["all"] = ours.p50_ms("/jobs")
            figures["queues"] = ours.p50_ms("/", requests=5)  # a full count: ~1 s each
        finally:
            ours.close()
            baseline.close()
        print(
            f"{LARGE} jobs: second failed page p50 {figures['second']:.1f} ms, a page halfway "
            f"through the failed jobs {figures['deep']:.1f} ms, all jobs (any state) "
            f"{figures['all']:.1f} ms, queues page {figures['queues']:.1f} ms"
        )
        ratio = figures["ours"] / figures["baseline"]
        print(
            f"jobs_web_page: ratio={ratio:.2f} (ours={figures['ours']:.1f} ms, "
            f"baseline={figures['baseline']:.1f} ms)"
        )
    finally:
        small.drop()
        large.drop()


if __name__ == "__main__":
    main()
