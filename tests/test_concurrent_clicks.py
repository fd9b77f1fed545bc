"""Eight clicks on one incident action at once, through the real HTTP endpoint on loopback
(logged in to the console, as an action link leads): one action is recorded, and the
incident's time is that action's."""

import asyncio
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import Session, select

from emberwatch.models import Incident, IncidentAction
from emberwatch.web import build_app
from tests.alerts.test_incidents import T0, file_alerts
from tests.console.auth_helpers import BROWSER, form_token, log_in, make_user, use_cheap_hashes
from tests.helpers import make_config

CONFIG = make_config(http={"secret": "x" * 20})


class TickingClock:
    """Each click reads a later time, so the winner's time can be told from the others'."""

    def __init__(self) -> None:
        self.ticks = 0

    def __call__(self):
        self.ticks += 1
        return T0 + timedelta(minutes=5, seconds=self.ticks)


@pytest.mark.parametrize("action", ["ack", "snooze", "resolve"])
async def test_eight_concurrent_posts_on_one_action_record_one(engine, monkeypatch, action):
    (incident_id,) = file_alerts(engine, dict(now=T0, url="https://example.com/1"))
    use_cheap_hashes(monkeypatch)
    make_user(engine, "ana", "responder")
    clock = TickingClock()
    async with TestClient(TestServer(build_app(CONFIG, engine, clock))) as client:
        assert (await log_in(client, "ana")).status == 303
        path = f"/incidents/{incident_id}"
        token = form_token(await (await client.get(path, headers=BROWSER)).text())
        form = {
            "episode": "1",
            "csrf_token": token,
            **({"for": "1h"} if action == "snooze" else {}),
        }

        async def click() -> str:
            response = await client.post(
                f"{path}/{action}", data=form, headers=BROWSER, allow_redirects=False
            )
            assert response.status == 303, await response.text()
            return response.headers["Location"]

        results = await asyncio.gather(*(click() for _ in range(8)))
    assert sorted(r.rsplit("=", 1)[1] for r in results) == ["changed"] + ["unchanged"] * 7
    with Session(engine) as session:
        rows = session.exec(select(IncidentAction)).all()
        incident = session.get(Incident, incident_id)
    assert [(a.action, a.actor, a.via) for a in rows] == [(action, "ana", "console")]
    if action != "resolve":
        assert incident.acknowledged_at == rows[0].at  # the winner's time, not a later one
    else:
        assert incident.resolved_at == rows[0].at
