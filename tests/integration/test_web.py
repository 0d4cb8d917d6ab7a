"""The web page's routes against a real Redis: listing, a job's page, actions, auth, CSRF, bad input."""

from __future__ import annotations

import re
import warnings
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
import redis

from rediscron import EditConflict, JobNotFound, RedisCronScheduler
from rediscron import keys as k
from rediscron.registry import Registry
from rediscron.testing import RedisServer
from rediscron.web import create_app, create_wsgi_app
from rediscron.web.app import CSRF_COOKIE, SESSION_COOKIE
from rediscron.web.data import list_jobs
from rediscron.words import cron_words, interval_words
from tests import jobs

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's note about httpx's successor
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

TOKEN = "s3cret-token-value"


@pytest.fixture
def registry(connection: redis.Redis) -> Registry:
    return Registry(connection)


@pytest.fixture
def seeded(registry: Registry) -> Registry:
    for i in range(12):
        registry.register(jobs.noop, "metrics" if i % 2 else "reports", id=f"metric:{i:02d}", interval=60 + i)
    registry.register(jobs.noop, "reports", id="report:daily", cron="0 9 * * 1-5", timezone="Europe/Berlin")
    registry.disable("metric:03")
    return registry


def client(connection: redis.Redis, **options: Any) -> TestClient:
    """A client that says, as a browser does, which page its writes come from."""
    c = TestClient(create_app(connection, **options), base_url="http://testserver")
    c.headers["Origin"] = "http://testserver"
    return c


def csrf_of(c: TestClient, path: str = "/") -> str:
    """Load a page (which sets the CSRF cookie) and return the form token it carries."""
    page = c.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    return found.group(1) if found else c.cookies[CSRF_COOKIE]


def signed_in(connection: redis.Redis) -> TestClient:
    c = client(connection, token=TOKEN)
    response = c.post("/login", data={"token": TOKEN, "csrf": csrf_of(c, "/login")}, follow_redirects=False)
    assert response.status_code == 303 and SESSION_COOKIE in response.cookies
    return c


def test_the_jobs_page_lists_every_job_with_its_schedule_state_and_next_run(
    connection: redis.Redis, seeded: Registry
) -> None:
    page = client(connection).get("/")
    assert page.status_code == 200
    assert page.text.count('<tr data-id="') == 13
    assert "at 09:00 on Monday to Friday (Europe/Berlin)" in page.text
    assert "every 1 min 1 s" in page.text  # metric:01, interval 61
    assert '<span class="state disabled">disabled</span>' in page.text
    assert "13 jobs: 12 scheduled" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")


def test_filters_by_state_queue_and_search(connection: redis.Redis, seeded: Registry) -> None:
    c = client(connection)
    assert re.findall(r'<tr data-id="([^"]+)"', c.get("/?state=disabled").text) == ["metric:03"]
    reports = re.findall(r'<tr data-id="([^"]+)"', c.get("/?queue=reports").text)
    assert sorted(reports) == [*(f"metric:{i:02d}" for i in range(0, 12, 2)), "report:daily"]
    assert re.findall(r'<tr data-id="([^"]+)"', c.get("/?q=report").text) == ["report:daily"]
    assert "match these filters" in c.get("/?q=nothing-like-it").text


@pytest.mark.parametrize("state", ["all", "enabled", "disabled"])
@pytest.mark.parametrize("search", ["", "job"])
def test_pages_cover_every_matching_job_once(registry: Registry, state: str, search: str) -> None:
    for i in range(37):
        registry.register(jobs.noop, "q", id=f"job:{i}", interval=60 + i, enabled=i % 4 != 0)
    expected = {f"job:{i}" for i in range(37) if state == "all" or (state == "disabled") == (i % 4 == 0)}
    for limit in (1, 5, 50):
        seen: list[str] = []
        cursor = ""
        for _page in range(100):
            listing = list_jobs(registry, state=state, search=search, cursor=cursor, limit=limit)
            assert len(listing.rows) <= limit
            seen += [row.id for row in listing.rows]
            cursor = listing.next_cursor
            if not cursor:
                break
        assert sorted(seen) == sorted(expected), (limit, state, search)


def test_a_search_is_literal_text_not_a_pattern(registry: Registry) -> None:
    registry.register(jobs.noop, "q", id="a*b[1]", interval=60)
    registry.register(jobs.noop, "q", id="axxb1", interval=60)
    assert [row.id for row in list_jobs(registry, search="a*b[").rows] == ["a*b[1]"]


def test_a_job_page_shows_definition_next_runs_history_and_drops(connection: redis.Redis, seeded: Registry) -> None:
    seeded.trigger("report:daily")
    page = client(connection, job_url="http://dash.example/0/view/job/{id}").get("/job", params={"id": "report:daily"})
    assert page.status_code == 200
    assert page.text.count("09:00:00 CE") == 10  # ten next runs in the job's zone (CET or CEST)
    rq_id = seeded.history(["report:daily"])["report:daily"][0].rq_job_id
    assert f'href="http://dash.example/0/view/job/{rq_id}"' in page.text
    assert "Slots not run" in page.text


def test_unknown_job_is_a_404_that_says_so(connection: redis.Redis) -> None:
    page = client(connection).get("/job", params={"id": "nope"})
    assert page.status_code == 404 and "There is no cron job &#39;nope&#39;" in page.text


def test_a_corrupt_record_is_shown_with_why_and_nothing_breaks(connection: redis.Redis, seeded: Registry) -> None:
    connection.hset(k.job("metric:05"), "revision", "not-a-number")
    c = client(connection)
    listing = c.get("/").text
    row = listing[listing.index('<tr data-id="metric:05"') :]
    assert '<span class="state quarantined">' in row[: row.index("</tr>")]  # as its own page says
    page = c.get("/job", params={"id": "metric:05"})
    assert page.status_code == 200 and "Unreadable record" in page.text and "revision" in page.text


def test_hostile_ids_and_values_are_escaped(connection: redis.Redis, registry: Registry) -> None:
    registry.register(jobs.noop, "q<b>", id="<script>alert(1)</script>", interval=60, kwargs={"x": "<img src=x>"})
    c = client(connection)
    for page in (c.get("/"), c.get("/job", params={"id": "<script>alert(1)</script>"})):
        assert "<script>alert(1)" not in page.text and "<img src=x>" not in page.text
        assert "&lt;script&gt;" in page.text


def test_read_only_by_default_and_says_how_to_allow_writes(connection: redis.Redis, seeded: Registry) -> None:
    c = client(connection)
    response = c.post("/action", data={"id": "metric:00", "action": "disable", "csrf": csrf_of(c)})
    assert response.status_code == 403 and "read-only" in response.text and "--token" in response.text
    assert seeded.fetch("metric:00").enabled


def test_writes_need_the_token_and_the_csrf_check(connection: redis.Redis, seeded: Registry) -> None:
    c = client(connection, token=TOKEN)
    csrf = csrf_of(c)
    assert c.post("/action", data={"id": "metric:00", "action": "disable", "csrf": csrf}).status_code == 403
    wrong = c.post("/login", data={"token": "guess", "csrf": csrf_of(c, "/login")})
    assert wrong.status_code == 403 and "not the token" in wrong.text
    c = signed_in(connection)
    assert TOKEN not in c.cookies[SESSION_COOKIE]
    no_csrf = c.post("/action", data={"id": "metric:00", "action": "disable"})
    assert no_csrf.status_code == 403 and "security check" in no_csrf.text
    foreign = c.post(
        "/action",
        data={"id": "metric:00", "action": "disable", "csrf": csrf_of(c)},
        headers={"Origin": "http://evil.example"},
    )
    assert foreign.status_code == 403 and "another site" in foreign.text
    assert seeded.fetch("metric:00").enabled
    done = c.post("/action", data={"id": "metric:00", "action": "disable", "csrf": csrf_of(c)}, follow_redirects=False)
    assert done.status_code == 303 and not seeded.fetch("metric:00").enabled


def test_a_bearer_token_needs_no_csrf_and_a_wrong_one_is_refused(connection: redis.Redis, seeded: Registry) -> None:
    c = client(connection, token=TOKEN)
    wrong = c.post("/action", data={"id": "metric:00", "action": "disable"}, headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 403 and seeded.fetch("metric:00").enabled
    ok = c.post("/action", data={"id": "metric:00", "action": "disable"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and not seeded.fetch("metric:00").enabled


def test_an_auth_callable_grants_writes(connection: redis.Redis, seeded: Registry) -> None:
    c = client(connection, auth=lambda request: request.headers.get("x-user") == "admin")
    csrf = csrf_of(c)
    assert c.post("/action", data={"id": "metric:00", "action": "trigger", "csrf": csrf}).status_code == 403
    ok = c.post("/action", data={"id": "metric:00", "action": "trigger", "csrf": csrf}, headers={"x-user": "admin"})
    assert ok.status_code == 200 and len(seeded.history(["metric:00"])["metric:00"]) == 1


def test_enable_trigger_and_delete(connection: redis.Redis, seeded: Registry) -> None:
    c = signed_in(connection)
    c.post("/action", data={"id": "metric:03", "action": "enable", "csrf": csrf_of(c)})
    assert seeded.fetch("metric:03").enabled
    page = c.post("/action", data={"id": "metric:03", "action": "trigger", "csrf": csrf_of(c)})
    assert "Triggered" in page.text and len(seeded.history(["metric:03"])["metric:03"]) == 1
    confirm = c.get("/delete", params={"id": "metric:03"})
    assert "cannot be undone" in confirm.text
    gone = c.post("/action", data={"id": "metric:03", "action": "delete", "csrf": csrf_of(c)})
    assert gone.status_code == 200 and "Deleted." in gone.text
    with pytest.raises(JobNotFound):
        seeded.fetch("metric:03")
    again = c.post("/action", data={"id": "metric:03", "action": "delete", "csrf": csrf_of(c)})
    assert again.status_code == 404
    unknown = c.post("/action", data={"id": "metric:04", "action": "explode", "csrf": csrf_of(c)})
    assert unknown.status_code == 400


def edit_form(c: TestClient, job_id: str) -> dict[str, str]:
    page = c.get("/edit", params={"id": job_id})
    assert page.status_code == 200
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page.text))
    fields.update({name: value for name, value in re.findall(r'name="(\w+)" rows="3">([^<]*)<', page.text)})
    fields["kind"] = "cron" if 'value="cron" checked' in page.text else "interval"
    return {name: value.replace("&#34;", '"') for name, value in fields.items()}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "cron", "cron": "0 25 * * *"}, "cron job &#39;report:daily&#39;: cron: "),
        ({"kind": "cron", "timezone": "Mars/Olympus"}, "timezone"),
        ({"kind": "interval", "interval": "soon"}, "interval: must be a whole number of seconds"),
        ({"kind": "interval", "interval": "0"}, "interval"),
        ({"args": "[1, 2"}, "args: is not valid JSON"),
        ({"kwargs": "[1]"}, "kwargs: must be a JSON object"),
    ],
)
def test_a_bad_edit_is_refused_with_the_apis_message_and_nothing_written(
    connection: redis.Redis, seeded: Registry, change: dict[str, str], message: str
) -> None:
    before = connection.hgetall(k.job("report:daily"))
    c = signed_in(connection)
    form = {**edit_form(c, "report:daily"), **change}
    response = c.post("/edit", data=form)
    assert response.status_code == 400 and message in response.text, response.text
    assert connection.hgetall(k.job("report:daily")) == before
    for name, value in change.items():
        if name != "kind":
            assert value.replace('"', "&#34;") in response.text  # what was typed is kept


def test_an_edit_saves_schedule_zone_and_arguments(connection: redis.Redis, seeded: Registry) -> None:
    c = signed_in(connection)
    form = {**edit_form(c, "report:daily"), "cron": "30 7 * * *", "timezone": "Asia/Tokyo", "args": '["a", 1]'}
    saved = c.post("/edit", data=form)
    assert saved.status_code == 200 and "Saved." in saved.text
    job = seeded.fetch("report:daily")
    assert (job.cron, job.timezone, job.args) == ("30 7 * * *", "Asia/Tokyo", ("a", 1))
    form = {**edit_form(c, "report:daily"), "kind": "interval", "interval": "300"}
    c.post("/edit", data=form)
    job = seeded.fetch("report:daily")
    assert (job.interval, job.cron) == (300, None)


def test_an_edit_over_someone_elses_is_refused_and_shows_the_conflict(
    connection: redis.Redis, seeded: Registry
) -> None:
    c = signed_in(connection)
    form = edit_form(c, "report:daily")
    seeded.update("report:daily", cron="0 18 * * *")  # meanwhile, elsewhere
    seeded.trigger("report:daily")  # a run does not count as an edit
    response = c.post("/edit", data={**form, "cron": "0 6 * * *"})
    assert response.status_code == 409 and "changed elsewhere" in response.text and "0 18 * * *" in response.text
    assert seeded.fetch("report:daily").cron == "0 18 * * *"
    resent = c.post("/edit", data={**edit_form_from(response.text), "cron": "0 6 * * *"})
    assert resent.status_code == 200 and seeded.fetch("report:daily").cron == "0 6 * * *"


def edit_form_from(html: str) -> dict[str, str]:
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', html))
    fields.update(dict(re.findall(r'name="(\w+)" rows="3">([^<]*)<', html)))
    fields["kind"] = "cron"
    return {name: value.replace("&#34;", '"') for name, value in fields.items()}


def test_registry_update_with_a_stale_digest_raises(registry: Registry) -> None:
    job = registry.register(jobs.noop, "q", id="d", interval=60)
    seen = registry.digest(job)
    registry.trigger("d")
    assert registry.update("d", seen=seen, interval=120).interval == 120  # a run is not an edit
    with pytest.raises(EditConflict):
        registry.update("d", seen=seen, interval=180)
    assert registry.fetch("d").interval == 120


def test_the_state_endpoint_moves_on_edits_and_fires(connection: redis.Redis, seeded: Registry) -> None:
    c = client(connection)
    first = c.get("/api/state").json()
    assert set(first) == {"marker", "now", "panel"} and "Leader" in first["panel"]
    on_its_page = c.get("/api/state", params={"id": "metric:00"}).json()
    seeded.trigger("metric:00")  # a run by hand: on the job's own page
    assert c.get("/api/state", params={"id": "metric:00"}).json()["marker"] != on_its_page["marker"]
    clock = [2_000_000_000.0]
    scheduler = RedisCronScheduler(connection, clock=lambda: clock[0], logging_level="WARNING")
    scheduler.register_birth()
    scheduler.run_once()  # every job fires: their records move
    scheduler.register_death()
    second = c.get("/api/state").json()
    assert second["marker"] != first["marker"]
    seeded.disable("metric:01")
    assert c.get("/api/state").json()["marker"] != second["marker"]


def test_no_secret_reaches_a_page(connection: redis.Redis, seeded: Registry) -> None:
    c = signed_in(connection)
    pages = [c.get(path) for path in ("/", "/job?id=metric:00", "/edit?id=metric:00", "/login", "/api/state")]
    for page in pages:
        assert TOKEN not in page.text
        assert all(TOKEN not in value for value in page.headers.values())


def test_a_redis_outage_is_a_clear_503_and_the_page_recovers(
    redis_server: RedisServer, connection: redis.Redis, seeded: Registry
) -> None:
    c = client(redis.Redis.from_url(redis_server.url, socket_timeout=2, socket_connect_timeout=2))
    assert c.get("/").status_code == 200
    redis_server.stop()
    try:
        page = c.get("/")
        assert page.status_code == 503 and "Redis is unreachable" in page.text
        state = c.get("/api/state")
        assert state.status_code == 503 and "unreachable" in state.json()["error"]
    finally:
        redis_server.start()
    assert c.get("/api/state").status_code == 200


def test_mounted_under_a_prefix_every_link_keeps_it(connection: redis.Redis, seeded: Registry) -> None:
    outer = Starlette(routes=[Mount("/cron", app=create_app(connection, token=TOKEN))])
    c = TestClient(outer)
    c.headers["Origin"] = "http://testserver"
    page = c.get("/cron/")
    assert page.status_code == 200
    links = re.findall(r'(?:href|action|src)="(/[^"]*)"', page.text)
    assert links and all(link.startswith("/cron/") for link in links), links
    assert c.get("/cron/static/style.css").status_code == 200
    assert c.get("/cron/job", params={"id": "metric:00"}).status_code == 200


def test_the_wsgi_app_serves_the_same_pages(connection: redis.Redis, seeded: Registry) -> None:
    app = create_wsgi_app(connection)
    environ: dict[str, Any] = {"PATH_INFO": "/job", "QUERY_STRING": "id=report%3Adaily"}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, headers, exc=None: status.append(s)))
    assert status[0].startswith("200") and b"report:daily" in body


def test_schedules_in_words() -> None:
    assert cron_words("*/5 * * * *") == "every 5 minutes"
    assert cron_words("0 9 * * 1-5") == "at 09:00 on Monday to Friday"
    assert cron_words("15 3 1 * *") == "at 03:15 on day 1 of each month"
    assert cron_words("0 9 1 1 *") is None  # left to the expression
    assert interval_words(300) == "every 5 minutes"
    assert interval_words(90061) == "every 25 h 1 min 1 s"


def test_mounted_in_fastapi_as_the_docs_show(connection: redis.Redis, seeded: Registry) -> None:
    FastAPI = pytest.importorskip("fastapi", reason="the `frameworks` extra is not installed").FastAPI

    app = FastAPI()
    app.mount("/cron", create_app(connection, token=TOKEN))
    c = TestClient(app)
    c.headers["Origin"] = "http://testserver"
    assert c.get("/cron/").status_code == 200
    csrf = csrf_of(c, "/cron/login")
    c.post("/cron/login", data={"token": TOKEN, "csrf": csrf})
    csrf = csrf_of(c, "/cron/")  # a session's forms carry a value of its own
    done = c.post("/cron/action", data={"id": "metric:00", "action": "disable", "csrf": csrf})
    assert done.status_code == 200 and done.url.path == "/cron/job" and not seeded.fetch("metric:00").enabled


def test_mounted_in_flask_as_the_docs_show(connection: redis.Redis, seeded: Registry) -> None:
    Flask = pytest.importorskip("flask", reason="the `frameworks` extra is not installed").Flask
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    app = Flask(__name__)
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/cron": create_wsgi_app(connection, token=TOKEN)})  # type: ignore[method-assign]
    c = app.test_client()
    page = c.get("/cron/")
    assert page.status_code == 200 and b'href="/cron/job?id=metric%3A00"' in page.data
    assert c.get("/cron/static/style.css").status_code == 200
    assert c.get("/cron/job?id=report%3Adaily").status_code == 200
    refused = c.post("/cron/action", data={"id": "metric:00", "action": "disable"})
    assert refused.status_code == 403 and seeded.fetch("metric:00").enabled
    allowed = c.post(
        "/cron/action", data={"id": "metric:00", "action": "disable"}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert allowed.status_code == 303 and not seeded.fetch("metric:00").enabled


def test_a_filter_stops_at_its_budget_and_says_it_can_look_further(connection: redis.Redis, registry: Registry) -> None:
    many = [{"func": "tests.jobs.noop", "queue_name": "q", "id": f"b:{i}", "interval": 60} for i in range(5600)]
    registry.register_many(many)
    c = client(connection)
    page = c.get("/", params={"queue": "nowhere"})
    assert "None of the 5,000 jobs looked at for this page match" in page.text
    for _ in range(5):
        further = re.search(r'href="(\?[^"]+)">Look further', page.text)
        if further is None:
            break
        page = c.get("/" + further.group(1).replace("&amp;", "&"))
    assert "No cron jobs match these filters" in page.text and "Look further" not in page.text


# -- from an attack on the page -------------------------------------------------------------------


def test_a_cookie_write_needs_its_origin_and_its_sessions_own_csrf_value(
    connection: redis.Redis, seeded: Registry
) -> None:
    c = signed_in(connection)
    form = {"id": "metric:00", "action": "disable", "csrf": csrf_of(c)}
    for origin in ("null", ""):
        refused = c.post("/action", data=form, headers={"Origin": origin})
        assert refused.status_code == 403 and "Origin" in refused.text, origin
    # A page of another port of this host can read the double-submit cookie, not the session's value.
    double_submit = {**form, "csrf": c.cookies[CSRF_COOKIE]}
    assert c.post("/action", data=double_submit).status_code == 403
    assert seeded.fetch("metric:00").enabled
    assert c.post("/action", data=form).status_code == 200 and not seeded.fetch("metric:00").enabled


def test_signing_out_ends_the_session_even_for_a_kept_cookie(connection: redis.Redis, seeded: Registry) -> None:
    c = signed_in(connection)
    kept = c.cookies[SESSION_COOKIE]
    csrf = csrf_of(c)
    assert c.post("/logout", data={"csrf": csrf}).status_code == 200
    c.cookies.set(SESSION_COOKIE, kept)
    assert c.post("/action", data={"id": "metric:00", "action": "disable", "csrf": csrf}).status_code == 403
    assert seeded.fetch("metric:00").enabled


def test_wrong_tokens_are_throttled(connection: redis.Redis) -> None:
    c = client(connection, token=TOKEN)
    statuses = [c.post("/login", data={"token": "guess", "csrf": csrf_of(c, "/login")}).status_code for _ in range(7)]
    assert statuses[:5] == [403] * 5 and statuses[5:] == [429, 429]
    assert c.post("/login", data={"token": TOKEN, "csrf": csrf_of(c, "/login")}).status_code == 429


def test_a_huge_body_is_refused_before_it_is_read(connection: redis.Redis, seeded: Registry) -> None:
    read_only = client(connection)
    assert read_only.post("/action", content=b"a" * 1_000_000).status_code == 403
    c = signed_in(connection)
    huge = c.post("/edit", content=b"a" * 1_000_000, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert huge.status_code == 413 and "larger than" in huge.text


@pytest.mark.parametrize(
    ("cookies", "form", "headers"),
    [
        ({SESSION_COOKIE: "a.1.\u00e9"}, {}, {}),
        ({CSRF_COOKIE: "abc"}, {"csrf": "\u00e9"}, {}),
        ({}, {"csrf": "abc"}, {"Authorization": "Bearer \u00e9"}),
    ],
)
def test_any_character_in_a_cookie_form_or_header_is_a_clear_refusal(
    connection: redis.Redis, seeded: Registry, cookies: dict[str, str], form: dict[str, str], headers: dict[str, str]
) -> None:
    c = client(connection, token=TOKEN)
    encoded = {name: value.encode() for name, value in headers.items()}
    if cookies:
        encoded["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items()).encode()
    assert c.get("/", headers=encoded).status_code == 200
    response = c.post("/action", data={"id": "metric:00", "action": "disable", **form}, headers=encoded)
    assert response.status_code == 403


@pytest.mark.parametrize("cursor", ["z:\u00b2", "z:99999999999999999999", "s:" + "9" * 30, "s:12/x", "q:1", ":"])
def test_a_cursor_that_is_not_ours_starts_at_the_first_page(
    connection: redis.Redis, seeded: Registry, cursor: str
) -> None:
    c = client(connection)
    for path in ("/", "/rows"):
        assert c.get(path, params={"cursor": cursor}).status_code == 200


def test_hostile_history_and_auxiliary_keys_leave_the_pages_readable(connection: redis.Redis, seeded: Registry) -> None:
    connection.zadd(k.history("metric:00"), {"big-99999999999999999": 1_900_000_000})
    c = client(connection)
    assert c.get("/job", params={"id": "metric:00"}).status_code == 200
    connection.delete(k.history("metric:01"))
    connection.set(k.history("metric:01"), "x")
    assert c.get("/job", params={"id": "metric:01"}).status_code == 200
    assert c.get("/api/state", params={"id": "metric:01"}).status_code == 200
    for key in ("rq:queues", "rq:cron_schedulers", k.stats(), k.fires(), k.failing()):
        connection.delete(key)
        connection.set(key, "x")
    page = c.get("/")
    assert page.status_code == 200 and page.text.count("<tr data-id=") == 13
    assert "cannot be read" in page.text  # the panel says what it could not read


def test_a_trigger_whose_history_cannot_be_written_still_says_it_ran(connection: redis.Redis, seeded: Registry) -> None:
    connection.set(k.history("metric:00"), "x")
    c = client(connection, token=TOKEN)
    done = c.post(
        "/action", data={"id": "metric:00", "action": "trigger"}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert done.status_code == 200 and "Triggered" in done.text
    assert connection.llen("rq:queue:reports") == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"args": "[" * 50_000 + "]" * 50_000}, "args: is nested too deeply"),
        ({"kind": "interval", "interval": "6_0"}, "interval: must be a whole number"),
        ({"kind": "interval", "interval": "\u0666\u0660"}, "interval: must be a whole number"),
        ({"kind": "interval", "interval": "9" * 5000}, "5000 digits"),
    ],
)
def test_more_bad_edits_are_refused_by_field(
    connection: redis.Redis, seeded: Registry, change: dict[str, str], message: str
) -> None:
    c = signed_in(connection)
    response = c.post("/edit", data={**edit_form(c, "report:daily"), **change})
    assert response.status_code == 400 and message in response.text
    banner = re.search(r'id="form-error">([^<]*)<', response.text)
    assert banner is not None and len(banner.group(1)) < 300  # what was typed stays in the form, not the message


def test_the_edit_form_escapes_invisible_characters_and_reads_them_back(
    connection: redis.Redis, registry: Registry
) -> None:
    registry.register(jobs.noop, "q", id="bidi", interval=60, args=["\u202eevil"])
    c = signed_in(connection)
    form = edit_form(c, "bidi")
    assert "\u202e" not in c.get("/edit", params={"id": "bidi"}).text and "\\u202e" in form["args"]
    assert c.post("/edit", data=form).status_code == 200
    assert registry.fetch("bidi").args == ("\u202eevil",)


def test_allowed_hosts_refuse_another_name(connection: redis.Redis, seeded: Registry) -> None:
    c = TestClient(create_app(connection, allowed_hosts=["127.0.0.1", "localhost"]), base_url="http://127.0.0.1")
    assert c.get("/").status_code == 200
    assert c.get("/", headers={"Host": "evil.example"}).status_code == 400


def test_wrong_bearer_tokens_are_throttled_too(connection: redis.Redis, seeded: Registry) -> None:
    c = client(connection, token=TOKEN)
    form = {"id": "metric:00", "action": "disable"}
    statuses = [c.post("/action", data=form, headers={"Authorization": "Bearer guess"}).status_code for _ in range(7)]
    assert statuses == [403] * 5 + [429, 429]


def test_a_signed_out_session_stays_out_for_another_process(connection: redis.Redis, seeded: Registry) -> None:
    c = signed_in(connection)
    kept, csrf = c.cookies[SESSION_COOKIE], csrf_of(c)
    c.post("/logout", data={"csrf": csrf})
    restarted = client(connection, token=TOKEN)  # a new app: nothing in its memory
    restarted.cookies.set(SESSION_COOKIE, kept)
    refused = restarted.post("/action", data={"id": "metric:00", "action": "disable", "csrf": csrf})
    assert refused.status_code == 403 and seeded.fetch("metric:00").enabled


def test_an_unreadable_record_is_listed_under_its_shown_state(connection: redis.Redis, seeded: Registry) -> None:
    connection.hset(k.job("metric:05"), "revision", "not-a-number")
    enabled = {row.id for row in list_jobs(seeded, state="enabled").rows}
    assert "metric:05" not in enabled and "metric:04" in enabled
