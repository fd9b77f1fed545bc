"""Nobody gets in who doesn't belong: sessions, CSRF, the lockout, /metrics, the trusted
header and the security headers, over real HTTP on loopback against SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import Session, select

from emberwatch.console.auth import SECURITY_HEADERS, csrf_token, current_user, require
from emberwatch.console.users import set_password
from emberwatch.models import ConsoleSession
from emberwatch.web import build_app
from tests.console.auth_helpers import (
    BROWSER,
    PASSWORD,
    T0,
    form_token,
    log_in,
    login_token,
    make_user,
)
from tests.helpers import make_config

SECRET = "s" * 32
METRICS_TOKEN = "m" * 32
PUBLIC = {"/login", "/logout", "/healthz", "/readyz", "/metrics"}
SAMPLE = {
    "id": "1",
    "incident": "1",
    "episode": "1",
    "action": "ack",
    "day": "2026-11-30",
}


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


def config(**http):
    return make_config(http={"secret": SECRET, **http})


async def probe(request: web.Request) -> web.Response:
    user = current_user(request)
    assert user is not None
    return web.Response(text=f"{user.name} {user.role} {csrf_token(request)}")


def app_for(engine, clock, **http) -> web.Application:
    app = build_app(config(**http), engine, clock)
    app.router.add_get("/_probe", require("viewer")(probe))
    app.router.add_get("/_probe/admin", require("admin")(probe))
    app.router.add_post("/_probe/act", require("responder")(probe))
    return app


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def client(engine, clock):
    async with TestClient(TestServer(app_for(engine, clock))) as client:
        yield client


async def whoami(client, cookies=None) -> tuple[int, str]:
    response = await client.get("/_probe", cookies=cookies, allow_redirects=False)
    return response.status, await response.text()


async def session_token(client) -> str:
    """The form token bound to the logged-in session."""
    status, text = await whoami(client)
    assert status == 200, text
    return text.split()[2]


def session_cookie(response) -> SimpleCookie:
    jar = SimpleCookie()
    for header in response.headers.getall("Set-Cookie"):
        jar.load(header)
    return jar


# -- every route needs a session ----------------------------------------------------------


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: SAMPLE.get(m[1], "1"), path)


def _guarded_routes(app: web.Application) -> list[tuple[str, str]]:
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if route.method == "HEAD" or path is None or "prefix" in info:
            continue
        if path in PUBLIC or path.startswith("/_probe"):
            continue
        found.append((route.method, _concrete(path)))
    return sorted(set(found))


async def test_every_route_without_a_session_sends_a_browser_to_login_and_refuses_the_rest(
    engine, clock
):
    app = app_for(engine, clock)
    routes = _guarded_routes(app)
    assert ("GET", "/actions/1/1/ack") in routes
    async with TestClient(TestServer(app)) as client:
        token = await login_token(client)
        for method, path in [*routes, ("GET", "/_probe"), ("GET", "/no/such/page")]:
            data = {"csrf_token": token} if method == "POST" else None
            browser = await client.request(
                method, path, data=data, headers=BROWSER, allow_redirects=False
            )
            assert browser.status == 302, (method, path)
            assert browser.headers["Location"].startswith("/login?next=%2F"), path
            other = await client.request(method, path, data=data, allow_redirects=False)
            assert other.status == 401, (method, path)
            assert "log in" in await other.text()


async def test_login_health_readiness_and_the_stylesheet_need_no_session(client):
    for path in ("/login", "/healthz", "/readyz", "/static/console.css"):
        assert (await client.get(path, allow_redirects=False)).status == 200, path


async def test_a_huge_user_name_is_refused_and_logged_short(engine, client, caplog):
    make_user(engine)
    with caplog.at_level(logging.INFO, logger="emberwatch.console"):
        response = await log_in(client, "a" * 10_000 + "\nforged line", "x" * 5000)
    assert response.status == 401
    (line,) = [r.getMessage() for r in caplog.records if "failed login" in r.getMessage()]
    assert len(line) < 200 and "\n" not in line


async def test_the_login_page_has_the_form_fields_and_no_inline_script(client):
    page = await (await client.get("/login?next=/mentions", headers=BROWSER)).text()
    assert '<form method="post" action="/login">' in page
    for field in ("username", "password", "csrf_token", "next"):
        assert f'name="{field}"' in page
    assert 'value="/mentions"' in page
    assert "<script>" not in page and "style=" not in page


# -- CSRF -----------------------------------------------------------------------------------


async def test_a_post_without_a_valid_csrf_token_is_forbidden(engine, client):
    make_user(engine)
    # Even the login form needs one.
    no_token = await client.post("/login", data={"username": "ana", "password": PASSWORD})
    assert no_token.status == 403
    assert (await log_in(client)).status == 303
    token = await session_token(client)
    for data in ({}, {"csrf_token": ""}, {"csrf_token": "forged"}, {"csrf_token": token + "x"}):
        assert (await client.post("/_probe/act", data=data)).status == 403, data
        assert (await client.post("/logout", data=data)).status == 403, data
    assert (await whoami(client))[0] == 200  # still logged in: logout was refused
    assert (await client.post("/_probe/act", data={"csrf_token": token})).status == 200
    header = await client.post("/_probe/act", headers={"X-CSRF-Token": token})
    assert header.status == 200


async def test_a_token_from_another_session_is_forbidden(engine, clock):
    make_user(engine, "ana")
    make_user(engine, "bo")
    app = app_for(engine, clock)
    async with (
        TestClient(TestServer(app)) as ana,
        TestClient(TestServer(app_for(engine, clock))) as bo,
    ):
        await log_in(ana, "ana")
        await log_in(bo, "bo")
        stolen = await session_token(bo)
        assert (await ana.post("/_probe/act", data={"csrf_token": stolen})).status == 403


# -- login, logout, sessions -------------------------------------------------------------------


async def test_login_then_logout(engine, client, caplog):
    make_user(engine, "ana", "viewer")
    with caplog.at_level(logging.INFO, logger="emberwatch.console"):
        response = await log_in(client, next_path="/mentions?q=kettle")
    assert response.status == 303 and response.headers["Location"] == "/mentions?q=kettle"
    status, text = await whoami(client)
    assert status == 200 and text.startswith("ana viewer ")
    assert any("'ana' logged in from 127.0.0.1" in r.getMessage() for r in caplog.records)
    # A logged-in visit to /login goes on to where it was going.
    again = await client.get("/login?next=/sources", allow_redirects=False)
    assert again.status == 303 and again.headers["Location"] == "/sources"

    old = {
        "emberwatch_session": client.session.cookie_jar.filter_cookies(client.make_url("/"))[
            "emberwatch_session"
        ].value
    }
    out = await client.post(
        "/logout", data={"csrf_token": await session_token(client)}, allow_redirects=False
    )
    assert out.status == 303 and out.headers["Location"] == "/login"
    assert (await whoami(client))[0] == 401
    # The old cookie is dead on the server too, not just forgotten by the browser.
    async with TestClient(client.server) as replay:
        assert (await whoami(replay, cookies=old))[0] == 401


@pytest.mark.parametrize("password", ["wrong password", "", PASSWORD.upper()])
@pytest.mark.parametrize("name", ["ana", "nobody", "ANA"])
async def test_a_wrong_name_or_password_gets_the_form_again(engine, client, name, password):
    make_user(engine)
    response = await log_in(client, name, password)
    page = await response.text()
    assert response.status in (400, 401)
    assert "Wrong user name or password" in page or "Give your user name" in page
    assert 'name="password"' in page and PASSWORD not in page
    assert "Set-Cookie" not in response.headers or "emberwatch_session" not in str(
        response.headers.getall("Set-Cookie")
    )


@pytest.mark.parametrize(
    "next_path", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x"]
)
async def test_login_never_redirects_off_site(engine, client, next_path):
    make_user(engine)
    response = await log_in(client, next_path=next_path)
    assert response.status == 303 and response.headers["Location"] == "/"


async def test_the_session_id_rotates_at_login(engine, client):
    make_user(engine)
    first = session_cookie(await log_in(client))["emberwatch_session"].value
    second = session_cookie(await log_in(client))["emberwatch_session"].value
    assert first != second
    async with TestClient(client.server) as other:
        assert (await whoami(other, cookies={"emberwatch_session": first}))[0] == 401
        assert (await whoami(other, cookies={"emberwatch_session": second}))[0] == 200


async def test_a_forged_or_unsigned_cookie_is_nobody(engine, client):
    make_user(engine)
    real = session_cookie(await log_in(client))["emberwatch_session"].value
    token, _, mac = real.rpartition(".")
    async with TestClient(client.server) as other:
        for forged in (token, f"{token}.{mac[:-2]}xx", f"x{real}", "", "."):
            assert (await whoami(other, cookies={"emberwatch_session": forged}))[0] == 401


@pytest.mark.parametrize(
    ("public_url", "secure"),
    [("http://127.0.0.1:8787", False), ("https://emberwatch.example.com", True)],
)
async def test_the_cookies_are_httponly_samesite_lax_and_secure_over_https(
    engine, clock, public_url, secure
):
    make_user(engine)
    app = app_for(engine, clock, public_url=public_url, session_lifetime="2h")
    async with TestClient(TestServer(app)) as client:
        # Sent by hand: the client keeps a Secure cookie for https only.
        form = await client.get("/login", headers=BROWSER)
        browser = session_cookie(form)["emberwatch_browser"]
        login = await client.post(
            "/login",
            data={
                "username": "ana",
                "password": PASSWORD,
                "csrf_token": form_token(await form.text()),
            },
            cookies={"emberwatch_browser": browser.value},
            allow_redirects=False,
        )
        assert login.status == 303
        morsel = session_cookie(login)["emberwatch_session"]
    for cookie in (browser, morsel):
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Lax"
        assert cookie["path"] == "/"
        assert bool(cookie["secure"]) is secure
    assert morsel["max-age"] == str(2 * 3600)


async def test_a_session_expires_after_its_lifetime(engine, clock):
    make_user(engine)
    async with TestClient(TestServer(app_for(engine, clock, session_lifetime="1h"))) as client:
        await log_in(client)
        clock.now += timedelta(minutes=59)
        assert (await whoami(client))[0] == 200
        clock.now += timedelta(minutes=1)
        assert (await whoami(client))[0] == 401
        browser = await client.get("/_probe", headers=BROWSER, allow_redirects=False)
        assert browser.status == 302 and browser.headers["Location"] == "/login?next=%2F_probe"
        # The next login, anyone's, sweeps away the expired rows.
        make_user(engine, "bo")
        clock.now += timedelta(hours=1)
        await log_in(client, "bo")
        with Session(engine) as session:
            assert len(session.exec(select(ConsoleSession)).all()) == 1


async def test_a_password_change_ends_every_session_of_that_user(engine, client):
    make_user(engine)
    await log_in(client)
    assert set_password(engine, "ana", "a new long password", T0) == 1
    assert (await whoami(client))[0] == 401
    assert (await log_in(client)).status == 401
    assert (await log_in(client, password="a new long password")).status == 303


async def test_a_role_below_the_handlers_is_forbidden(engine, client):
    make_user(engine, "vi", "viewer")
    make_user(engine, "root", "admin")
    await log_in(client, "vi")
    assert (await client.get("/_probe/admin")).status == 403
    token = await session_token(client)
    assert (await client.post("/_probe/act", data={"csrf_token": token})).status == 403
    await log_in(client, "root")
    assert (await client.get("/_probe/admin")).status == 200


# -- the lockout ----------------------------------------------------------------------------


async def test_five_wrong_passwords_in_15_minutes_lock_the_user_for_15_minutes(
    engine, clock, client, caplog
):
    make_user(engine)
    with caplog.at_level(logging.INFO, logger="emberwatch.console"):
        for n in range(4):
            clock.now = T0 + timedelta(minutes=3 * n)
            assert (await log_in(client, password=f"guess {n}")).status == 401
        clock.now = T0 + timedelta(minutes=14)
        locked = await log_in(client, password="guess 4")
    assert locked.status == 429 and "locked for 15 more minutes" in await locked.text()
    (line,) = [r for r in caplog.records if "locked user" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert line.getMessage() == (
        "console: locked user 'ana' until 2026-11-30 12:29Z after 5 wrong passwords "
        "within 15 minutes (last from 127.0.0.1)"
    )
    assert not any("guess" in r.getMessage() or PASSWORD in r.getMessage() for r in caplog.records)
    # The right password does not help while locked; another user is not affected.
    clock.now = T0 + timedelta(minutes=28)
    assert (await log_in(client)).status == 429
    make_user(engine, "bo")
    assert (await log_in(client, "bo")).status == 303
    clock.now = T0 + timedelta(minutes=29)
    assert (await log_in(client)).status == 303


async def test_wrong_passwords_spread_over_more_than_15_minutes_do_not_lock(engine, clock, client):
    make_user(engine)
    for n in range(8):
        clock.now = T0 + timedelta(minutes=4 * n)
        assert (await log_in(client, password="nope")).status == 401
    assert (await log_in(client)).status == 303


async def test_a_successful_login_clears_the_count(engine, clock, client):
    make_user(engine)
    for _ in range(4):
        await log_in(client, password="nope")
    assert (await log_in(client)).status == 303
    for _ in range(4):
        assert (await log_in(client, password="nope")).status == 401


# -- /metrics -------------------------------------------------------------------------------


async def test_metrics_need_the_bearer_token_by_default(engine, clock):
    make_user(engine)
    app = app_for(engine, clock, metrics_token=METRICS_TOKEN)
    async with TestClient(TestServer(app)) as client:
        refused = await client.get("/metrics")
        assert refused.status == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert "emberwatch_" not in await refused.text()
        for wrong in (f"Bearer {METRICS_TOKEN}x", f"Basic {METRICS_TOKEN}", "Bearer "):
            assert (await client.get("/metrics", headers={"Authorization": wrong})).status == 401
        # A console login is not a metrics token.
        await log_in(client)
        assert (await client.get("/metrics")).status == 401
        good = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert good.status == 200 and "emberwatch_polls" in await good.text()


async def test_metrics_without_a_token_configured_are_closed(client):
    assert (await client.get("/metrics", headers={"Authorization": "Bearer "})).status == 401


async def test_metrics_are_open_when_public(engine, clock):
    async with TestClient(TestServer(app_for(engine, clock, metrics_public=True))) as client:
        response = await client.get("/metrics")
        assert response.status == 200 and "emberwatch_polls" in await response.text()


# -- single sign-on behind a reverse proxy ---------------------------------------------------


async def test_the_trusted_header_logs_in_from_a_trusted_proxy(engine, clock):
    make_user(engine, "ana@acme.example", "viewer")
    app = app_for(
        engine,
        clock,
        trusted_user_header="X-Forwarded-User",
        trusted_proxies=["10.0.0.0/8", "127.0.0.1"],
    )
    async with TestClient(TestServer(app)) as client:
        headers = {"X-Forwarded-User": "ana@acme.example"}
        status, text = await whoami_with(client, headers)
        assert status == 200 and text.startswith("ana@acme.example viewer ")
        # An unknown name is nobody, not a new user.
        assert (await whoami_with(client, {"X-Forwarded-User": "mallory"}))[0] == 401
        # Without the header, the proxy's requests need a session like any other.
        assert (await whoami_with(client, {}))[0] == 401


async def test_the_trusted_header_from_an_untrusted_address_is_ignored_and_logged_once(
    engine, clock, caplog
):
    make_user(engine, "admin", "admin")
    app = app_for(
        engine, clock, trusted_user_header="X-Forwarded-User", trusted_proxies=["10.1.2.3"]
    )
    async with TestClient(TestServer(app)) as client:
        with caplog.at_level(logging.WARNING, logger="emberwatch.console"):
            for _ in range(3):
                status, _text = await whoami_with(client, {"X-Forwarded-User": "admin"})
                assert status == 401
    lines = [r.getMessage() for r in caplog.records if "X-Forwarded-User" in r.getMessage()]
    assert lines == [
        "console: ignored X-Forwarded-User from 127.0.0.1: not in [http] trusted_proxies "
        "(logged once)"
    ]


async def whoami_with(client, headers) -> tuple[int, str]:
    response = await client.get("/_probe", headers=headers, allow_redirects=False)
    return response.status, await response.text()


# -- security headers -----------------------------------------------------------------------


async def test_every_response_carries_the_security_headers(engine, client):
    make_user(engine)
    responses = [
        await client.get("/login"),
        await client.get("/healthz"),
        await client.get("/readyz"),
        await client.get("/metrics"),
        await client.get("/_probe"),
        await client.get("/_probe", headers=BROWSER, allow_redirects=False),
        await client.post("/login"),
        await client.get("/actions/1/1/ack?who=a&sig=b", allow_redirects=False),
        await log_in(client),
        await client.get("/_probe"),
        await client.get("/no/such/page"),
        await client.get("/actions/x/1/ack?who=a&sig=b"),
    ]
    assert {r.status for r in responses} >= {200, 302, 303, 401, 403, 404}
    for response in responses:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (response.url, name)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"
    assert SECURITY_HEADERS["Referrer-Policy"] == "same-origin"


async def test_the_login_form_token_is_bound_to_the_browser_cookie(engine, clock):
    make_user(engine)
    app = app_for(engine, clock)
    async with (
        TestClient(TestServer(app)) as one,
        TestClient(TestServer(app_for(engine, clock))) as two,
    ):
        token = await login_token(one)
        await login_token(two)
        stolen = await two.post(
            "/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token}
        )
        assert stolen.status == 403
        page = await (await one.get("/login", headers=BROWSER)).text()
        assert form_token(page) == token  # stable while the browser cookie lasts
