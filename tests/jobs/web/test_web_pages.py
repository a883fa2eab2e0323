"""The dashboard's pages over a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from otelkit.jobs import Job, JobState


def _ids_in(body: str) -> list[str]:
    return re.findall(r'<td class="id"><a href="[^"]*">([^<]+)</a>', body)


def _inline(statement: str, parameters: object) -> str:
    """The statement with SQLite's positional parameters written in (to read its OFFSETs)."""
    if not isinstance(parameters, (tuple, list)):
        return statement
    parts = statement.split("?")
    values = [str(v) for v in parameters] + [""] * len(parts)
    return "".join(part + values[i] for i, part in enumerate(parts[:-1])) + parts[-1]


@pytest.fixture
def shop(traced_store, failing_job):
    """A store with two queues: ``billing`` (a job function that always fails) and ``mail``."""
    ship = traced_store.job(name="ship", queue="mail")(lambda job: "sent")
    return traced_store, failing_job(traced_store), ship


def test_the_queues_page_counts_each_state_and_shows_paused_queues(shop, dashboard, serve) -> None:
    store, charge, ok = shop
    failed = charge.enqueue({"card": "4000"})
    charge.run(failed)
    ok.enqueue()
    ok.enqueue(run_after=timedelta(hours=1))
    store.pause("mail")
    body = serve(dashboard(store)).client().get("/").body
    billing = re.search(r'<tr data-queue="billing".*?</tr>', body, re.S)
    mail = re.search(r'<tr data-queue="mail".*?</tr>', body, re.S)
    assert billing and mail
    assert re.search(r'count-failed">\s*<a[^>]*>1</a>', billing.group(0))
    assert re.search(r'count-ready">\s*<a[^>]*>1</a>', mail.group(0))
    assert re.search(r'count-scheduled">\s*<a[^>]*>1</a>', mail.group(0))
    assert '<td class="queue-state">paused</td>' in mail.group(0)
    assert '<td class="queue-state">active</td>' in billing.group(0)
    # One attempt started and one failed in the last minutes; the mail jobs never ran.
    assert re.search(r'"n activity-started">1<.*"n activity-failed">1<', billing.group(0), re.S)
    assert re.search(r'"n activity-started">0<.*"n activity-failed">0<', mail.group(0), re.S)
    assert "FLOW CONTROL" not in body  # the marked place for limits is a template comment


def test_the_queues_fragment_is_the_table_alone(traced_store, dashboard, serve) -> None:
    store = traced_store
    store.job(name="ship", queue="mail")(lambda job: "sent").enqueue()
    client = serve(dashboard(store, refresh_seconds=2)).client()
    page = client.get("/").body
    assert 'data-refresh-url="/?fragment=1" data-refresh-ms="2000"' in page
    fragment = client.get("/?fragment=1").body
    assert fragment.lstrip().startswith('<table id="queues">') and "<html" not in fragment


def test_the_jobs_page_filters_by_state_queue_name_and_error_text(shop, dashboard, serve) -> None:
    store, charge, ok = shop
    declined = charge.enqueue({"card": "4000"})
    charge.run(declined)
    other = charge.enqueue({"card": "5100"})
    charge.run(other)
    shipped = ok.enqueue()
    ok.run(shipped)
    client = serve(dashboard(store)).client()
    assert set(_ids_in(client.get("/jobs?state=failed").body)) == {declined, other}
    assert _ids_in(client.get("/jobs?state=failed&q=CARD+4000").body) == [declined]
    assert _ids_in(client.get("/jobs?queue=mail").body) == [shipped]
    assert _ids_in(client.get("/jobs?name=charge&state=succeeded").body) == []
    assert set(_ids_in(client.get("/jobs").body)) == {declined, other, shipped}
    bad = client.get("/jobs?state=exploded")
    assert bad.status == 400 and "unknown state &#39;exploded&#39;" in bad.body


def test_error_search_treats_percent_and_underscore_as_text(traced_store, dashboard, serve) -> None:
    store = traced_store

    @store.job(name="odd", queue="q", max_attempts=1)
    def odd(job: Job) -> None:
        raise RuntimeError(job.data)

    first, second = odd.enqueue("100% sure"), odd.enqueue("1000 sure")
    odd.run(first)
    odd.run(second)
    client = serve(dashboard(store)).client()
    assert _ids_in(client.get("/jobs?q=100%25").body) == [first]
    assert _ids_in(client.get("/jobs?q=_").body) == []


@pytest.mark.parametrize("states", ["", "queued", "queued,cancelled"])
def test_pages_walk_every_job_newest_first_by_keyset_without_offset(
    states, traced_store, dashboard, serve
) -> None:
    store = traced_store
    fn = store.job(name="n", queue="q")(lambda job: None)
    ids = fn.enqueue_many([{"i": i} for i in range(23)])
    # One statement enqueued them all: equal change times, so the id breaks the ties; five
    # changed later come first, and four are cancelled (another state, changed later still).
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE otelkit_jobs SET updated_at = updated_at + 60 WHERE id IN :few"
            ).bindparams(sa.bindparam("few", expanding=True)),
            {"few": ids[:5]},
        )
    for job_id in ids[10:14]:
        store.cancel(job_id)
    chosen = states.split(",") if states else [s.value for s in JobState]
    with store.engine.connect() as conn:
        expected = list(
            conn.execute(
                sa.text(
                    "SELECT id FROM otelkit_jobs WHERE status IN :states "
                    "ORDER BY updated_at DESC, id DESC"
                ).bindparams(sa.bindparam("states", expanding=True)),
                {"states": chosen},
            ).scalars()
        )
    statements: list[str] = []
    sa.event.listen(
        store.engine, "before_cursor_execute", lambda *a: statements.append(_inline(a[2], a[3]))
    )
    client = serve(dashboard(store, page_size=10)).client()
    seen: list[str] = []
    path = f"/jobs?state={states}" if states else "/jobs"
    pages = 0
    while path:
        body = client.get(path).body
        seen += _ids_in(body)
        pages += 1
        nxt = re.search(r'href="([^"]+)" id="next-page"', body)
        path = html.unescape(nxt.group(1)) if nxt else ""
    assert seen == expected and len(set(seen)) == len(seen)
    assert pages == -(-len(expected) // 10)
    assert len(expected) == {"": 23, "queued": 19, "queued,cancelled": 23}[states]
    # SQLAlchemy's SQLite dialect writes "LIMIT ? OFFSET ?" with 0 bound: no row skipped.
    assert all(offset == "0" for s in statements for offset in re.findall(r"OFFSET (\w+)", s))


def test_a_bad_cursor_is_a_clear_400(traced_store, dashboard, serve) -> None:
    response = serve(dashboard(traced_store)).client().get("/jobs?after=%%%")
    assert response.status == 400 and "invalid page cursor" in response.body


def test_the_job_page_shows_attempts_tracebacks_trace_links_and_history(
    traced_store, failed, dashboard, serve
) -> None:
    store, job_id = traced_store, failed
    job = store.get(job_id)
    assert job is not None and job.errors[0].trace_id
    client = serve(dashboard(store, trace_url="https://traces.example/t/{trace_id}?x=1")).client()
    body = client.get(f"/jobs/{job_id}").body
    assert '<td class="state state-failed" id="job-state">failed</td>' in body
    assert "ValueError: card 4000 declined" in body
    assert "raise ValueError(f&#34;card {job.data[&#39;card&#39;]} declined&#34;)" in body
    assert f'href="https://traces.example/t/{job.errors[0].trace_id}?x=1"' in body
    assert re.search(
        r"<td>-</td><td>queued</td>.*<td>queued</td><td>running</td>.*"
        r"<td>running</td><td>failed</td>",
        body,
        re.S,
    )
    assert 'id="retry"' in body and 'id="cancel"' not in body


def test_the_job_page_lists_follow_up_jobs(traced_store, dashboard, serve) -> None:
    store = traced_store
    after = store.job(name="after", queue="q")(lambda job: None)

    @store.job(name="first", queue="q")
    def first(job: Job) -> None:
        job.then(after, {"n": 1})
        job.then(after, {"n": 2})

    job_id = first.enqueue()
    first.run(job_id)
    body = serve(dashboard(store)).client().get(f"/jobs/{job_id}").body
    section = body.split('id="followups"', 1)[1].split("</ul>", 1)[0]
    assert section.count(">after</a>") == 2


def test_an_unknown_job_is_a_404_naming_it(traced_store, dashboard, serve) -> None:
    response = serve(dashboard(traced_store)).client().get("/jobs/nope")
    assert response.status == 404 and "No job has the id &#39;nope&#39;" in response.body


def test_the_schedules_page_shows_last_and_next_run(traced_store, dashboard, serve) -> None:
    store = traced_store
    store.periodic(every=timedelta(hours=1), name="hourly", queue="cron")(lambda job: None)
    store.schedule_due()
    body = serve(dashboard(store)).client().get("/schedules").body
    row = re.search(r"<td><a [^>]*>hourly</a></td>(.*?)</tr>", body, re.S)
    assert row
    cells = re.findall(r"<td>([^<]*)</td>", row.group(1))
    queue, spec, catch_up, last, following, _tick = cells
    assert (queue, spec, catch_up) == ("cron", "every 3600s", "once")
    assert last.endswith(":00:00Z") and following.endswith(":00:00Z") and following > last


def test_the_database_password_is_never_shown(pg_url, make_store, dashboard, serve) -> None:
    url = sa.make_url(pg_url).set(password="s3cret-pw")
    store = make_store(url.render_as_string(hide_password=False))
    body = serve(dashboard(store)).client().get("/").body
    assert "s3cret-pw" not in body and "***" in body


@pytest.mark.parametrize("verb", ["retry", "cancel"])
def test_bulk_actions_show_a_count_and_act_only_after_confirmation(
    verb, traced_store, failing_job, dashboard, serve
) -> None:
    store = traced_store
    charge = failing_job(store)
    ids = [charge.enqueue({"card": str(i)}) for i in range(3)]
    if verb == "retry":
        for job_id in ids:
            charge.run(job_id)
    client = serve(dashboard(store)).client()
    state = "failed" if verb == "retry" else "queued"
    confirm = client.get(f"/bulk?action={verb}&state={state}&queue=billing").body
    assert f"{verb.capitalize()} 3 jobs?" in confirm
    assert {store.get(i).state for i in ids} == {JobState(state)}  # nothing done yet
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', confirm))
    response = client.post("/actions/bulk", {k: html.unescape(v) for k, v in form.items()})
    assert response.status == 303 and "changed=3" in response.headers["location"]
    expected = JobState.QUEUED if verb == "retry" else JobState.CANCELLED
    assert {store.get(i).state for i in ids} == {expected}


def test_mounted_in_another_application_links_and_actions_follow_the_mount_path(
    traced_store, failed, dashboard, serve
) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    store, job_id = traced_store, failed
    host = Starlette(
        routes=[
            Route("/", lambda request: PlainTextResponse("the host application")),
            Mount("/ops/jobs", app=dashboard(store)),
        ]
    )
    client = serve(host).client()
    assert client.get("/").body == "the host application"
    page = client.get(f"/ops/jobs/jobs/{job_id}")
    assert page.status == 200
    assert 'href="/ops/jobs/static/style.css"' in page.body
    assert 'action="/ops/jobs/actions/retry"' in page.body
    assert "Path=/ops/jobs" in page.headers["set-cookie"]
    assert client.get("/ops/jobs/static/refresh.js").status == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.body).group(1)
    done = client.post("/ops/jobs/actions/retry", {"job": job_id, "csrf": csrf})
    assert done.status == 303
    assert done.headers["location"] == f"/ops/jobs/jobs/{job_id}?notice=retried"
    assert store.get(job_id).state is JobState.QUEUED


def test_bad_options_are_refused_naming_the_fix(sqlite_url, make_store, dashboard) -> None:
    from otelkit.errors import InvalidOptionError, OptionTypeError

    store = make_store(sqlite_url)
    with pytest.raises(InvalidOptionError, match=r"trace_url must contain \{trace_id\}"):
        dashboard(store, trace_url="http://localhost:16686/search")
    with pytest.raises(InvalidOptionError, match=r"trace_url may name only \{trace_id\}"):
        dashboard(store, trace_url="http://x/{trace}")
    with pytest.raises(InvalidOptionError, match=r"must be an http\(s\) URL"):
        dashboard(store, trace_url="javascript:alert(1)//{trace_id}")
    with pytest.raises(InvalidOptionError, match=r"page_size must be an int in 1\.\.500"):
        dashboard(store, page_size=0)
    with pytest.raises(OptionTypeError, match=r"store must be an otelkit\.jobs\.JobStore"):
        dashboard("jobs.sqlite3")
