"""The dashboard in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``,
driven with Selenium): find a failed job, read its traceback and trace link, retry it, watch
it succeed after a worker runs; pause a queue and see a worker skip it.

Screenshots go to the test's directory, and to ``docs/images/`` when
``OTELKIT_UPDATE_SCREENSHOTS=1`` (how the one in ``docs/jobs-web.md`` was made).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from otelkit.jobs import Job, JobState

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
DOCS_IMAGES = Path(__file__).resolve().parents[3] / "docs" / "images"
WAIT = 30.0  # seconds: the bound of every wait on the browser


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    """A headless Chromium with a fresh profile and no background traffic."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
        )
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1360,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def _screenshot(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    assert driver.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("OTELKIT_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMAGES / name)
    return path


def test_an_operator_finds_retries_and_pauses_in_a_real_browser(
    browser, sqlite_url, make_store, serve, tmp_path
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    from otelkit.jobs.web import app

    driver = browser
    # The queues table is replaced every 0.3 s: an element found there may go stale between
    # two calls, so its reads and clicks are retried until they land on a current one.
    wait = WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,))

    def text_is(css: str, expected: str) -> None:
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, css).text == expected)

    def click(css: str) -> None:
        def clicked(d) -> bool:
            d.find_element(By.CSS_SELECTOR, css).click()
            return True

        wait.until(clicked)

    store = make_store(sqlite_url, tracer_provider=TracerProvider())
    upstream_down = threading.Event()
    upstream_down.set()

    @store.job(name="inventory.sync", queue="billing", max_attempts=1)
    def sync(job: Job) -> dict[str, str]:
        if upstream_down.is_set():
            raise ConnectionError("inventory service reset the connection")
        return {"synced": job.data["sku"]}

    mail = store.job(name="mail.send", queue="mail")(lambda job: "sent")
    for n in range(4):
        mail.run(mail.enqueue({"to": f"user{n}@example.com"}))
    failed_id = sync.enqueue({"sku": "A-42"})
    worker = store.worker(queues=["billing", "mail"], concurrency=1)
    assert worker.run_until_idle(timeout=WAIT) == 1
    assert store.get(failed_id).state is JobState.FAILED
    served = serve(app(store, refresh_seconds=0.3))

    # Queues: the failed job is counted on its queue.
    driver.get(served.url + "/")
    text_is('tr[data-queue="billing"] td.count-failed', "1")

    # Jobs: filter the failed ones, open the one there is.
    driver.find_element(By.LINK_TEXT, "Jobs").click()
    Select(driver.find_element(By.ID, "filter-state")).select_by_value("failed")
    driver.find_element(By.ID, "apply-filter").click()
    wait.until(ec.url_contains("state=failed"))
    links = driver.find_elements(By.CSS_SELECTOR, "#jobs td.id a")
    assert [a.text for a in links] == [failed_id]
    links[0].click()

    # One job: its traceback and the link to its attempt's trace.
    wait.until(ec.text_to_be_present_in_element((By.ID, "job-state"), "failed"))
    traceback = driver.find_element(By.CSS_SELECTOR, "#attempt-1 pre.traceback").text
    assert "ConnectionError: inventory service reset the connection" in traceback
    assert 'raise ConnectionError("inventory service reset the connection")' in traceback
    trace_id = store.get(failed_id).errors[0].trace_id
    link = driver.find_element(By.CSS_SELECTOR, "#attempt-1 a.trace-link")
    assert link.get_attribute("href") == f"http://localhost:16686/trace/{trace_id}"
    _screenshot(driver, tmp_path, "jobs-web-job.png")

    # Retry it; once the upstream is back and a worker runs, it succeeds.
    driver.find_element(By.ID, "retry").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "notice"), "Queued again."))
    assert driver.find_element(By.ID, "job-state").text == "queued"
    upstream_down.clear()
    assert worker.run_until_idle(timeout=WAIT) == 1
    driver.refresh()
    wait.until(ec.text_to_be_present_in_element((By.ID, "job-state"), "succeeded"))
    assert '"synced": "A-42"' in driver.find_element(By.ID, "job-result").text

    # Pause the mail queue: a worker serving it leaves its new job alone.
    driver.get(served.url + "/")
    click('tr[data-queue="mail"] button.pause')
    wait.until(ec.text_to_be_present_in_element((By.ID, "notice"), "Queue paused"))
    text_is('tr[data-queue="mail"] td.queue-state', "paused")
    waiting = mail.enqueue({"to": "late@example.com"})
    assert worker.run_until_idle(timeout=WAIT) == 0
    assert store.get(waiting).state is JobState.QUEUED

    # The table refreshes in place (no reload): the waiting job shows up as ready.
    driver.execute_script("window.otelkitMarker = 'same page';")
    text_is('tr[data-queue="mail"] td.count-ready', "1")
    assert driver.execute_script("return window.otelkitMarker") == "same page"
    _screenshot(driver, tmp_path, "jobs-web-queues.png")

    # Resume: the worker takes the job.
    click('tr[data-queue="mail"] button.resume')
    wait.until(ec.text_to_be_present_in_element((By.ID, "notice"), "Queue resumed"))
    assert worker.run_until_idle(timeout=WAIT) == 1
    assert store.get(waiting).state is JobState.SUCCEEDED
