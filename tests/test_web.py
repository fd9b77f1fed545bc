"""The HTTP endpoint: signed action links (behind the console's login, they open the
incident page where the logged-in user confirms), health and metrics."""

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import Session, select

from emberwatch import db as database
from emberwatch.alerts.lifecycle import act
from emberwatch.alerts.links import action_url
from emberwatch.models import Incident, IncidentAction
from emberwatch.web import build_app
from tests.alerts.test_incidents import T0, file_alerts
from tests.console.auth_helpers import BROWSER, log_in, make_user, use_cheap_hashes
from tests.helpers import make_config

SECRET = "x" * 20
METRICS_TOKEN = "t" * 20
CONFIG = make_config(http={"secret": SECRET, "metrics_token": METRICS_TOKEN})


class Clock:
    def __init__(self):
        self.now = T0 + timedelta(minutes=7)

    def __call__(self):
        return self.now


@pytest.fixture
async def client(engine):
    async with TestClient(TestServer(build_app(CONFIG, engine, Clock()))) as client:
        yield client


@pytest.fixture
async def logged_in(engine, client, monkeypatch):
    use_cheap_hashes(monkeypatch)
    make_user(engine, "ana", "responder")
    assert (await log_in(client, "ana")).status == 303
    return client


@pytest.fixture
def incident_id(engine) -> int:
    (found,) = file_alerts(
        engine, dict(now=T0, url="https://example.com/1", author="dana", title="Kettle exploded")
    )
    return found


def link(incident_id: int, action: str, episode: int = 1, who: str = "ana@acme.example") -> str:
    url = urlsplit(action_url(CONFIG.http.public_url, SECRET, incident_id, episode, action, who))
    return f"{url.path}?{url.query}"


def actions(engine) -> list[tuple[str, str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(IncidentAction).order_by(IncidentAction.id)).all()
        return [(a.action, a.actor, a.via) for a in rows]


def same_url(one: str, other: str) -> bool:
    """Equal up to the quoting of the query (the client may write ``%40`` as ``@``)."""
    a, b = urlsplit(one), urlsplit(other)
    return a.path == b.path and parse_qs(a.query) == parse_qs(b.query)


def status(engine, incident_id) -> str:
    with Session(engine) as session:
        return session.get(Incident, incident_id).status


@pytest.mark.parametrize("action", ["ack", "snooze", "resolve"])
async def test_a_link_opens_the_incident_page_to_confirm_and_changes_nothing(
    logged_in, engine, incident_id, action
):
    response = await logged_in.get(link(incident_id, action), allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == f"/incidents/{incident_id}?action={action}"
    assert status(engine, incident_id) == "triggered" and actions(engine) == []


async def test_a_link_without_a_session_logs_in_first_then_comes_back(
    engine, client, incident_id, monkeypatch
):
    url = link(incident_id, "ack")
    first = await client.get(url, headers=BROWSER, allow_redirects=False)
    assert first.status == 302
    location = urlsplit(first.headers["Location"])
    (back_to,) = parse_qs(location.query)["next"]
    assert location.path == "/login" and same_url(back_to, url)
    assert (await client.get(url, allow_redirects=False)).status == 401
    use_cheap_hashes(monkeypatch)
    make_user(engine, "ana")
    login = await log_in(client, "ana", next_path=url)
    assert login.status == 303 and same_url(login.headers["Location"], url)
    back = await client.get(url, allow_redirects=False)
    assert back.headers["Location"] == f"/incidents/{incident_id}?action=ack"
    assert actions(engine) == []


async def test_a_post_to_a_link_acts_on_nothing(logged_in, engine, incident_id):
    response = await logged_in.post(link(incident_id, "ack"), data={"name": "Mallory"})
    assert response.status == 403  # no form token: the CSRF check stops it first
    assert status(engine, incident_id) == "triggered" and actions(engine) == []


async def test_a_link_expires_when_its_episode_closes(logged_in, engine, incident_id):
    act(engine, incident_id, "resolve", actor="bo", via="cli", now=T0 + timedelta(minutes=1))
    page = await logged_in.get(link(incident_id, "ack"), allow_redirects=False)
    text = await page.text()
    assert page.status == 410 and "expired" in text and "<form" not in text
    assert f'<a href="/incidents/{incident_id}">' in text
    assert [a[0] for a in actions(engine)] == ["resolve"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url: url.replace("/ack?", "/resolve?"),
        lambda url: url.replace("who=ana", "who=mallory"),
        lambda url: url.replace("/1/ack", "/2/ack"),
        lambda url: url[:-1] + ("0" if url[-1] != "0" else "1"),
        lambda url: url.split("&sig=")[0],
    ],
)
async def test_a_tampered_link_is_forbidden_and_changes_nothing(
    logged_in, engine, incident_id, tamper
):
    response = await logged_in.get(tamper(link(incident_id, "ack")), allow_redirects=False)
    assert response.status == 403
    assert status(engine, incident_id) == "triggered" and actions(engine) == []


async def test_an_unknown_incident_or_action_is_not_found(logged_in, engine):
    assert (await logged_in.get(link(999, "ack"))).status == 404
    assert (await logged_in.get("/actions/x/1/ack?who=a&sig=b")).status == 404
    assert (await logged_in.get(link(1, "ack").replace("/ack?", "/delete?"))).status == 403


async def test_health_and_readiness_on_a_migrated_database(client):
    healthz = await client.get("/healthz")
    readyz = await client.get("/readyz")
    assert (healthz.status, readyz.status) == (200, 200)
    assert await readyz.text() == "ready\n"


async def test_it_is_not_ready_on_an_unmigrated_database(tmp_path):
    engine = database.create_db_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        async with TestClient(TestServer(build_app(CONFIG, engine, Clock()))) as client:
            readyz = await client.get("/readyz")
            assert readyz.status == 503 and "needs upgrade" in await readyz.text()
            assert (await client.get("/healthz")).status == 200
    finally:
        engine.dispose()


async def test_metrics_expose_the_emberwatch_families(client):
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    body = await response.text()
    assert response.status == 200 and response.content_type == "text/plain"
    for family in (
        "emberwatch_polls",
        "emberwatch_poll_duration_seconds",
        "emberwatch_mentions_ingested",
        "emberwatch_alerts",
        "emberwatch_delivery_attempts",
        "emberwatch_incident_actions",
        "emberwatch_outbox_backlog",
        "emberwatch_outbox_oldest_age_seconds",
        "emberwatch_source_healthy",
        "emberwatch_source_consecutive_failures",
    ):
        assert re.search(rf"^# TYPE {family}(_total)? ", body, re.MULTILINE), family


async def test_a_taken_port_is_a_clear_error_not_a_traceback(engine):
    import socket

    from emberwatch.errors import EmberwatchError
    from emberwatch.web import serve
    from tests.helpers import make_config

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = make_config(http={"secret": "x" * 20, "bind": f"127.0.0.1:{port}"})
        with pytest.raises(EmberwatchError, match="cannot listen there"):
            await serve(config, engine, lambda: T0)
