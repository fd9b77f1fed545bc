"""Acknowledge, snooze and resolve: recorded with who, when and how; repeats are harmless."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlmodel import Session, select
from tests.alerts.test_incidents import T0, file_alerts

from emberwatch.alerts.lifecycle import UnknownIncident, act
from emberwatch.models import Incident, IncidentAction


@pytest.fixture
def incident_id(engine) -> int:
    (found,) = file_alerts(engine, dict(now=T0, url="https://example.com/1"))
    return found


def actions(engine, incident_id) -> list[tuple[str, str, str]]:
    with Session(engine) as session:
        rows = session.exec(
            select(IncidentAction)
            .where(IncidentAction.incident_id == incident_id)
            .order_by(IncidentAction.id)
        ).all()
        return [(a.action, a.actor, a.via) for a in rows]


def incident(engine, incident_id) -> Incident:
    with Session(engine) as session:
        return session.get(Incident, incident_id)


def test_it_records_who_acknowledged_snoozed_and_resolved_and_when(engine, incident_id):
    acked = act(engine, incident_id, "ack", actor="ana", via="link", now=T0 + timedelta(minutes=4))
    snoozed = act(
        engine,
        incident_id,
        "snooze",
        actor="bo",
        via="cli",
        now=T0 + timedelta(minutes=6),
        snooze_for=timedelta(hours=2),
    )
    resolved = act(
        engine, incident_id, "resolve", actor="cy", via="link", now=T0 + timedelta(minutes=30)
    )
    assert acked.changed and snoozed.changed and resolved.changed
    assert "acknowledged by ana" in acked.message and "until 14:06Z" in snoozed.message
    assert actions(engine, incident_id) == [
        ("ack", "ana", "link"),
        ("snooze", "bo", "cli"),
        ("resolve", "cy", "link"),
    ]
    done = incident(engine, incident_id)
    assert (done.status, done.acknowledged_by, done.resolved_by) == ("resolved", "ana", "cy")
    # Time to acknowledge and to resolve follow from the incident row.
    assert done.acknowledged_at - done.opened_at == timedelta(minutes=4)
    assert done.resolved_at - done.opened_at == timedelta(minutes=30)
    with Session(engine) as session:
        snooze = session.exec(select(IncidentAction).where(IncidentAction.action == "snooze")).one()
        assert snooze.at == T0 + timedelta(minutes=6) and snooze.note == "for 2:00:00"


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("ack", "already acknowledged by ana at 12:01Z"),
        ("snooze", "already snoozed until 13:01Z"),
        ("resolve", "already resolved by ana at 2026-11-20 12:01Z"),
    ],
)
def test_a_repeated_click_changes_nothing_and_says_so(engine, incident_id, action, message):
    first = act(engine, incident_id, action, actor="ana", via="link", now=T0 + timedelta(minutes=1))
    again = act(engine, incident_id, action, actor="bo", via="link", now=T0 + timedelta(minutes=2))
    assert first.changed and not again.changed and not again.expired
    assert message in again.message
    assert actions(engine, incident_id) == [(action, "ana", "link")]


def test_time_to_acknowledge_counts_the_first_acknowledgement(engine, incident_id):
    act(engine, incident_id, "snooze", actor="ana", via="link", now=T0 + timedelta(minutes=2))
    act(engine, incident_id, "ack", actor="bo", via="link", now=T0 + timedelta(minutes=9))
    found = incident(engine, incident_id)
    assert (found.acknowledged_by, found.acknowledged_at) == ("ana", T0 + timedelta(minutes=2))
    assert found.snoozed_until is None  # an ack ends the snooze


@pytest.mark.parametrize("action", ["ack", "snooze", "resolve"])
def test_a_link_expires_when_its_episode_closes(engine, incident_id, action):
    act(engine, incident_id, "resolve", actor="ana", via="cli", now=T0 + timedelta(minutes=1))
    outcome = act(
        engine,
        incident_id,
        action,
        actor="bo",
        via="link",
        now=T0 + timedelta(minutes=2),
        episode=1,
    )
    if action == "resolve":  # resolving a resolved episode is a harmless repeat
        assert not outcome.changed and not outcome.expired
    else:
        assert outcome.expired and "has expired" in outcome.message
    # A link from an older episode stays expired after the incident reopens.
    file_alerts(engine, dict(now=T0 + timedelta(hours=1), url="https://example.com/1"))
    old = act(
        engine, incident_id, action, actor="bo", via="link", now=T0 + timedelta(hours=2), episode=1
    )
    assert old.expired and incident(engine, incident_id).status == "triggered"
    assert actions(engine, incident_id)[-1][0] == "reopen"


def test_it_refuses_unknown_incidents_and_actions(engine, incident_id):
    with pytest.raises(UnknownIncident):
        act(engine, 999, "ack", actor="a", via="cli", now=T0)
    with pytest.raises(ValueError, match="unknown action"):
        act(engine, incident_id, "delete", actor="a", via="cli", now=T0)


@pytest.mark.parametrize("action", ["ack", "snooze", "resolve"])
def test_eight_concurrent_clicks_record_one_action_at_the_first_clicks_time(
    engine, incident_id, action
):
    clicks = [T0 + timedelta(minutes=3, seconds=n) for n in range(8)]
    start = threading.Barrier(len(clicks))

    def click(n: int):
        start.wait()
        return act(engine, incident_id, action, actor=f"p{n}", via="link", now=clicks[n])

    with ThreadPoolExecutor(len(clicks)) as pool:
        outcomes = list(pool.map(click, range(len(clicks))))
    assert sum(o.changed for o in outcomes) == 1
    (winner,) = [n for n, o in enumerate(outcomes) if o.changed]
    with Session(engine) as session:
        rows = session.exec(
            select(IncidentAction).where(IncidentAction.incident_id == incident_id)
        ).all()
    assert [(a.action, a.actor, a.at) for a in rows] == [(action, f"p{winner}", clicks[winner])]
    found = incident(engine, incident_id)
    if action != "resolve":
        assert (found.acknowledged_by, found.acknowledged_at) == (f"p{winner}", clicks[winner])
    # Every other click was told who came first.
    assert all(("already" in o.message) for o in outcomes if not o.changed)
