"""The web page in a real browser: Debian's Chromium (headless), driven by Playwright, against
``rqrcron web`` and a scheduler in their own processes.

Chromium is installed by ``make test`` when missing and possible (tests/browser_setup.sh). Where it
cannot be had, these tests fail and say why; ``RQRCRON_SKIP_BROWSER=1`` skips them, on purpose only.
Screenshots of each page are written to ``test-output/screenshots/`` (docs/web.md shows them).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from rediscron import Registry
from rediscron.testing import free_port

from .conftest import ROOT, SchedulerProcess, wait_until

TOKEN = "browser-test-token"
SHOTS = Path(os.environ.get("RQRCRON_TEST_OUTPUT", ROOT / "test-output")) / "screenshots"
#: What the machine's Chromium needs here: no sandbox as root, and no calls to Google's services.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    found = os.environ.get("RQRCRON_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("RQRCRON_SKIP_BROWSER") == "1":
        pytest.skip("RQRCRON_SKIP_BROWSER=1: the web page's browser tests were skipped on purpose")
    pytest.fail(
        "Chromium is not installed, so the web page's browser tests cannot run. `make test` installs "
        "Debian's chromium package where it can (as root, with apt-get); install it yourself, point "
        "RQRCRON_CHROMIUM at a Chromium binary, or set RQRCRON_SKIP_BROWSER=1 to skip these tests.",
        pytrace=False,
    )


class WebProcess:
    def __init__(self, url: str, log_dir: Path, *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / "web.log"
        self._log = self.log_path.open("wb")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RQRCRON_WEB_TOKEN": TOKEN}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rediscron", "-u", url, "web", "--port", str(self.port), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
        wait_until(self.up, timeout=15, what=f"rqrcron web on port {self.port}")

    def up(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/static/style.css", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self._log.close()


@pytest.fixture
def web(redis_url: str, connection: redis.Redis, tmp_path: Path) -> Iterator[WebProcess]:
    process = WebProcess(redis_url, tmp_path)
    yield process
    process.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    binary = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=binary, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"the page raised JavaScript errors: {errors}"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def register_elsewhere(url: str, job_id: str) -> None:
    """register() from another process, as an app would."""
    code = (
        "import redis, sys; from rediscron import Registry; "
        "Registry(redis.Redis.from_url(sys.argv[1])).register('tests.jobs.noop', 'reports', id=sys.argv[2], "
        "cron='0 9 * * 1-5', timezone='Europe/Berlin', args=['weekly'])"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code, url, job_id], check=True, cwd=ROOT, env=env)


def seed(connection: redis.Redis) -> Registry:
    registry = Registry(connection)
    for i in range(8):
        registry.register("tests.jobs.noop", "metrics", id=f"metric:pm{i}", interval=30 * (i + 1), args=[f"pm{i}"])
    registry.register("tests.jobs.noop", "default", id="cleanup:tmp", cron="*/15 * * * *")
    registry.disable("metric:pm7")
    return registry


def test_jobs_appear_live_and_a_click_disables_one(
    web: WebProcess, page: Any, connection: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    registry = seed(connection)
    scheduler = SchedulerProcess(redis_url, "web-leader", tmp_path, "--lock-ttl", "3")
    try:
        page.goto(web.base + "/")
        assert page.locator("tr[data-id]").count() == 9
        page.evaluate("window.sameDocument = true")
        started = time.monotonic()
        register_elsewhere(redis_url, "report:weekly")
        page.wait_for_selector('tr[data-id="report:weekly"]', timeout=5000)
        appeared = time.monotonic() - started
        assert page.evaluate("window.sameDocument === true"), "the page reloaded instead of updating"
        assert appeared < 3.0, f"the new job took {appeared:.2f} s to appear"
        page.wait_for_function("document.querySelector('#panel').textContent.includes('web-leader')", timeout=8000)
        shot(page, "jobs")

        page.click("text=Sign in")
        page.fill("#token", TOKEN)
        page.click("button:has-text('Sign in')")
        page.click("a:has-text('metric:pm2')")
        page.click("button:has-text('Disable')")
        page.wait_for_selector("text=Disabled: no run is enqueued")
        assert not registry.fetch("metric:pm2").enabled
        assert page.locator("#job-live .state").inner_text() == "disabled"
        page.click("button:has-text('Run now')")
        page.wait_for_selector("text=Triggered")
        page.wait_for_selector("#job-live table.history tbody tr")
        shot(page, "job")
    finally:
        scheduler.stop()


def test_an_edit_with_a_bad_cron_is_refused_then_saved(web: WebProcess, page: Any, connection: redis.Redis) -> None:
    registry = seed(connection)
    before = connection.hgetall("rq:cron_job:cleanup:tmp")
    page.goto(web.base + "/login")
    page.fill("#token", TOKEN)
    page.click("button:has-text('Sign in')")
    page.goto(web.base + "/edit?id=cleanup%3Atmp")
    page.fill("#cron", "0 25 * * *")
    page.click("button:has-text('Save')")
    error = page.locator("#form-error").inner_text()
    assert "cron job 'cleanup:tmp': cron:" in error and "0 25 * * *" in error
    assert connection.hgetall("rq:cron_job:cleanup:tmp") == before
    shot(page, "edit-refused")
    page.fill("#cron", "30 6 * * *")
    page.fill("#timezone", "Europe/Paris")
    page.click("button:has-text('Save')")
    page.wait_for_selector("text=Saved.")
    job = registry.fetch("cleanup:tmp")
    assert (job.cron, job.timezone) == ("30 6 * * *", "Europe/Paris")


def test_narrow_screen_keyboard_and_an_empty_token(
    web: WebProcess, browser: Any, connection: redis.Redis, redis_url: str
) -> None:
    seed(connection)
    context = browser.new_context(viewport={"width": 390, "height": 800})
    narrow = context.new_page()
    narrow.goto(web.base + "/")
    narrow.keyboard.press("Tab")
    assert narrow.evaluate("document.activeElement.textContent") == "Skip to content"
    width = narrow.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the page is {width}px wide on a 390px screen"
    shot(narrow, "jobs-narrow")
    context.close()
    empty = subprocess.run(
        [sys.executable, "-m", "rediscron", "-u", redis_url, "web", "--token", " "],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert empty.returncode == 1 and "--token is empty" in empty.stderr


def test_the_page_keeps_working_across_a_redis_restart(
    web: WebProcess, page: Any, connection: redis.Redis, redis_server: Any, redis_url: str
) -> None:
    seed(connection)
    page.goto(web.base + "/")
    redis_server.stop()
    try:
        page.wait_for_selector("#offline:not([hidden])", timeout=5000)
    finally:
        redis_server.start()
    page.wait_for_selector("#offline", state="hidden", timeout=10000)
    seed(redis.Redis.from_url(redis_url))
    register_elsewhere(redis_url, "after:restart")
    page.wait_for_selector('tr[data-id="after:restart"]', timeout=5000)


def test_ctrl_c_stops_the_server_cleanly(web: WebProcess) -> None:
    web.process.send_signal(signal.SIGINT)
    assert web.process.wait(10) == 0, web.log()
    assert "Traceback" not in web.log()


def test_a_job_deleted_elsewhere_says_so_on_its_open_page(web: WebProcess, page: Any, connection: redis.Redis) -> None:
    registry = seed(connection)
    page.goto(web.base + "/job?id=cleanup%3Atmp")
    registry.delete("cleanup:tmp")
    page.wait_for_selector("text=This job was deleted", timeout=5000)


def test_the_outage_page_reloads_itself_once_redis_is_back(
    web: WebProcess, page: Any, connection: redis.Redis, redis_server: Any
) -> None:
    seed(connection)
    redis_server.stop()
    try:
        page.goto(web.base + "/")
        assert "Redis is unreachable" in page.content()
    finally:
        redis_server.start()
    page.wait_for_selector("h1:has-text('Cron jobs')", timeout=10000)
