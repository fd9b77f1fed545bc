"""Eight people (or one impatient one) POST the same action link at once, through the real
HTTP endpoint on loopback: one action is recorded, at the first click's time."""

import asyncio
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import Session, select

from emberwatch.models import Incident, IncidentAction
from emberwatch.web import build_app
from tests.test_web import CONFIG, NAMED, T0, incident_id, link  # noqa: F401


class TickingClock:
    """Each click reads a later time, so "the first click's time" can be told apart."""

    def __init__(self) -> None:
        self.ticks = 0

    def __call__(self):
        self.ticks += 1
        return T0 + timedelta(minutes=5, seconds=self.ticks)


@pytest.mark.parametrize("action", ["ack", "snooze", "resolve"])
async def test_eight_concurrent_posts_on_one_link_record_one_action(engine, incident_id, action):  # noqa: F811
    clock = TickingClock()
    async with TestClient(TestServer(build_app(CONFIG, engine, clock))) as client:
        url = link(incident_id, action)
        form = {**NAMED, "for": "1h"} if action == "snooze" else NAMED

        async def click() -> str:
            response = await client.post(url, data=form)
            assert response.status == 200
            return await response.text()

        pages = await asyncio.gather(*(click() for _ in range(8)))
    assert sum("already" not in page for page in pages) == 1
    with Session(engine) as session:
        rows = session.exec(select(IncidentAction)).all()
        incident = session.get(Incident, incident_id)
    assert [(a.action, a.via) for a in rows] == [(action, "link")]
    if action != "resolve":
        # The incident's time is the recorded action's: the click that won, not a later one.
        assert incident.acknowledged_at == rows[0].at
        assert T0 + timedelta(minutes=5) < incident.acknowledged_at <= clock()
