"""The HTTP endpoint: signed action links (GET shows the incident and asks who is acting,
POST acts as that person), health and metrics."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import Session, select

from emberwatch import db as database
from emberwatch.alerts.lifecycle import act
from emberwatch.alerts.links import action_url
from emberwatch.models import Incident, IncidentAction
from emberwatch.web import build_app
from tests.alerts.test_incidents import T0, file_alerts
from tests.helpers import make_config

SECRET = "x" * 20
CONFIG = make_config(http={"secret": SECRET})


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
def incident_id(engine) -> int:
    (found,) = file_alerts(
        engine, dict(now=T0, url="https://example.com/1", author="dana", title="Kettle exploded")
    )
    return found


NAMED = {"name": "Ana Lima"}


def link(incident_id: int, action: str, episode: int = 1, who: str = "ana@acme.example") -> str:
    url = urlsplit(action_url(CONFIG.http.public_url, SECRET, incident_id, episode, action, who))
    return f"{url.path}?{url.query}"


def actions(engine) -> list[tuple[str, str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(IncidentAction).order_by(IncidentAction.id)).all()
        return [(a.action, a.actor, a.via) for a in rows]


def status(engine, incident_id) -> str:
    with Session(engine) as session:
        return session.get(Incident, incident_id).status


@pytest.mark.parametrize("action", ["ack", "snooze", "resolve"])
async def test_a_get_shows_a_confirmation_page_and_changes_nothing(
    client, engine, incident_id, action
):
    response = await client.get(link(incident_id, action))
    page = await response.text()
    assert response.status == 200
    assert f"incident #{incident_id}" in page and 'method="post"' in page
    assert "ana@acme.example" in page
    # The incident itself, and a required name field.
    assert "WARNING" in page and "Kettle exploded" in page and "dana" in page
    assert '<a href="https://example.com/1"' in page
    assert re.search(r'<input name="name" value="" required', page)
    assert status(engine, incident_id) == "triggered" and actions(engine) == []


async def test_a_post_acknowledges_and_records_who_when_and_via_link(client, engine, incident_id):
    response = await client.post(link(incident_id, "ack"), data=NAMED)
    assert response.status == 200
    assert f"incident #{incident_id} acknowledged by Ana Lima" in await response.text()
    with Session(engine) as session:
        incident = session.get(Incident, incident_id)
        assert incident.status == "acknowledged"
        # Time to acknowledge follows from the row.
        assert incident.acknowledged_at - incident.opened_at == timedelta(minutes=7)
    assert actions(engine) == [("ack", "Ana Lima", "link")]

    again = await client.post(link(incident_id, "ack"), data=NAMED)
    assert again.status == 200 and "already acknowledged" in await again.text()
    assert len(actions(engine)) == 1


async def test_a_post_snoozes_for_the_chosen_time(client, engine, incident_id):
    response = await client.post(link(incident_id, "snooze"), data={"for": "4h", **NAMED})
    assert response.status == 200 and "until 16:07Z" in await response.text()
    with Session(engine) as session:
        assert session.get(Incident, incident_id).snoozed_until == T0 + timedelta(
            hours=4, minutes=7
        )
    bad = await client.post(link(incident_id, "snooze"), data={"for": "soon", **NAMED})
    assert bad.status == 400


async def test_a_link_expires_when_its_episode_closes(client, engine, incident_id):
    act(engine, incident_id, "resolve", actor="bo", via="cli", now=T0 + timedelta(minutes=1))
    page = await client.get(link(incident_id, "ack"))
    assert page.status == 410 and "<form" not in await page.text()
    response = await client.post(link(incident_id, "ack"))
    assert response.status == 410 and "expired" in await response.text()
    # Resolving again is a harmless repeat, not an error.
    repeat = await client.post(link(incident_id, "resolve"))
    assert repeat.status == 200 and "already resolved by bo" in await repeat.text()
    assert [a[0] for a in actions(engine)] == ["resolve"]


@pytest.mark.parametrize("action", ["ack", "snooze", "resolve"])
@pytest.mark.parametrize("name", [None, "", "   ", "\n\t", "\u202e\u2066"])
async def test_a_post_without_a_name_shows_the_form_again_and_changes_nothing(
    client, engine, incident_id, action, name
):
    data = {} if name is None else {"name": name}
    response = await client.post(link(incident_id, action), data=data)
    page = await response.text()
    assert response.status == 400
    assert "Please give your name" in page and 'method="post"' in page
    assert "Kettle exploded" in page
    assert status(engine, incident_id) == "triggered" and actions(engine) == []


async def test_the_name_is_recorded_on_one_line_without_controls(client, engine, incident_id):
    hostile = "Mallory\r\nacknowledged by: the CEO \u202eevil\u202c" + "x" * 300
    response = await client.post(link(incident_id, "resolve"), data={"name": hostile})
    assert response.status == 200
    ((action, actor, via),) = actions(engine)
    assert (action, via) == ("resolve", "link")
    assert actor.startswith("Mallory acknowledged by: the CEO evil")
    assert "\n" not in actor and "\u202e" not in actor and len(actor) <= 100


async def test_the_form_remembers_the_name_given_last_time(client, engine, incident_id):
    await client.post(link(incident_id, "snooze"), data={"for": "30m", "name": "Zoë Ng"})
    page = await (await client.get(link(incident_id, "ack"))).text()
    assert '<input name="name" value="Zoë Ng" required' in page
    assert "snoozed by Zoë Ng" in page


async def test_the_page_shows_mentions_newest_first_and_escapes_them(engine):
    incident_id, *_ = file_alerts(
        engine,
        dict(now=T0, url="https://example.com/a", author="first", text="<script>x()</script>"),
        *(
            dict(now=T0 + timedelta(minutes=n), url="https://example.com/a", author=f"later{n}")
            for n in range(1, 7)
        ),
    )
    async with TestClient(TestServer(build_app(CONFIG, engine, Clock()))) as client:
        page = await (await client.get(link(incident_id, "ack"))).text()
    assert "<script>" not in page
    assert page.index("later6") < page.index("later5") < page.index("later2")
    assert "first" not in page.split("7 mentions")[1].split("and 2 more")[0]
    assert "and 2 more" in page


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
    client, engine, incident_id, tamper
):
    for method in (client.get, client.post):
        response = await method(tamper(link(incident_id, "ack")))
        assert response.status == 403
    assert status(engine, incident_id) == "triggered" and actions(engine) == []


async def test_an_unknown_incident_or_action_is_not_found(client, engine):
    assert (await client.post(link(999, "ack"))).status == 404
    assert (await client.post(link(999, "ack"), data=NAMED)).status == 404
    assert (await client.get("/actions/x/1/ack?who=a&sig=b")).status == 404
    assert (await client.get(link(1, "ack").replace("/ack?", "/delete?"))).status == 403


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


async def test_metrics_expose_the_emberwatch_families(client, engine, incident_id):
    await client.post(link(incident_id, "ack"), data=NAMED)
    response = await client.get("/metrics")
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
    assert 'emberwatch_incident_actions_total{action="ack",via="link"}' in body


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
