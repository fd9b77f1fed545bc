"""The alert policy's stages against a real database, with a controllable clock."""

import json
from datetime import timedelta

import pytest
from sqlmodel import Session, select
from tests.alerts.test_incidents import T0, file_alerts
from tests.helpers import make_config

from emberwatch.alerts.lifecycle import act
from emberwatch.alerts.policy import ROLLUP_EVERY, evaluate
from emberwatch.alerts.view import load_notice
from emberwatch.channels import slack
from emberwatch.delivery import notice_lines
from emberwatch.models import (
    Delivery,
    EngagementSnapshot,
    Incident,
    IncidentAction,
    MentionRecord,
    Rollup,
)
from emberwatch.outbox import Claimed

SLACK = {"webhook_url": "https://hooks.example/services/x"}
EMAIL = {
    "host": "127.0.0.1",
    "port": 2525,
    "security": "none",
    "sender": "ew@acme.example",
    "recipients": ["marketing@acme.example"],
}
ROUTE = {
    "name": "all",
    "channels": ["slack", "digest"],
    "group_wait": "30s",
    "group_interval": "5m",
    "repeat_interval": "4h",
}


def config(**overrides):
    values = dict(channels={"slack": SLACK}, routes=[ROUTE])
    values.update(overrides)
    return make_config(**values)


def deliveries(engine, **where) -> list[Delivery]:
    with Session(engine) as session:
        query = select(Delivery).order_by(Delivery.id)
        for name, value in where.items():
            query = query.where(getattr(Delivery, name) == value)
        return list(session.exec(query).all())


def set_engagement(engine, incident_id: int, engagement: int, now) -> None:
    """The incident's mention is re-read with new engagement (as a refresh would)."""
    with Session(engine) as session:
        mention = session.exec(
            select(MentionRecord).where(MentionRecord.url == f"https://example.com/{incident_id}")
        ).one()
        mention.engagement = mention.likes = engagement
        session.add(mention)
        session.add(EngagementSnapshot(mention_id=mention.id, seen_at=now, likes=engagement))
        session.commit()


def alert_at(engine, now, n=1, **fields):
    fields.setdefault("url", f"https://example.com/{n}")
    fields.setdefault("text", f"complaint number {n}")
    (incident_id,) = file_alerts(engine, dict(now=now, **fields))
    return incident_id


def test_it_notifies_a_rise_or_doubling_in_the_same_evaluation_but_batches_new_mentions(engine):
    cfg = config()
    incident_id = alert_at(engine, T0, engagement=20)
    set_engagement(engine, incident_id, 20, T0)
    assert evaluate(engine, cfg, T0 + timedelta(seconds=29))["notify_stage"] == 0
    evaluate(engine, cfg, T0 + timedelta(seconds=30))
    assert [d.dedup_key for d in deliveries(engine)] == ["notify:1:1:slack:1"]

    # A related mention arrives: it waits group_interval after the last message.
    plain = T0 + timedelta(minutes=1)
    alert_at(engine, plain, author=None, text="another one", url="https://example.com/1?ref=x")
    evaluate(engine, cfg, plain)
    evaluate(engine, cfg, T0 + timedelta(minutes=5, seconds=29))
    assert len(deliveries(engine)) == 1
    evaluate(engine, cfg, T0 + timedelta(minutes=5, seconds=30))
    (_, batched) = deliveries(engine)
    assert json.loads(batched.payload)["reason"] == "1 new related mention"

    # Engagement more than doubles: the evaluation that sees it enqueues at once.
    spread = T0 + timedelta(minutes=6)
    set_engagement(engine, incident_id, 60, spread)
    evaluate(engine, cfg, spread)
    doubled = deliveries(engine)[-1]
    assert doubled.created_at == spread and "engagement doubled" in doubled.payload

    # A severity rise, a minute later: enqueued by that same evaluation too.
    rise = spread + timedelta(minutes=1)
    alert_at(engine, rise, severity="critical", text="lawyers now", url="https://example.com/1")
    evaluate(engine, cfg, rise)
    risen = deliveries(engine)[-1]
    assert risen.created_at == rise and "rose from warning to critical" in risen.payload
    assert [d.dedup_key for d in deliveries(engine)] == [
        f"notify:{incident_id}:1:slack:{n}" for n in (1, 2, 3, 4)
    ]


def test_a_new_critical_incident_is_enqueued_by_the_first_evaluation(engine):
    alert_at(engine, T0, severity="critical")
    evaluate(engine, config(), T0)
    (delivery,) = deliveries(engine)
    assert "new critical incident" in delivery.payload


def test_acknowledged_and_resolved_incidents_are_not_notified(engine):
    cfg = config()
    acked, resolved = alert_at(engine, T0, 1), alert_at(engine, T0, 2)
    act(engine, acked, "ack", actor="ana", via="cli", now=T0 + timedelta(seconds=5))
    act(engine, resolved, "resolve", actor="ana", via="cli", now=T0 + timedelta(seconds=5))
    evaluate(engine, cfg, T0 + timedelta(hours=1))
    assert deliveries(engine) == []


def test_past_its_budget_a_channel_gets_one_rollup_and_nothing_is_dropped(engine):
    cfg = config(channels={"slack": {**SLACK, "max_per_hour": 2}})
    for n in (1, 2, 3, 4, 5):
        alert_at(engine, T0, n)
    evaluate(engine, cfg, T0 + timedelta(minutes=1))
    assert len(deliveries(engine, kind="alert")) == 2
    with Session(engine) as session:
        assert len(session.exec(select(Rollup)).all()) == 3

    # A new critical incident cuts through the budget.
    alert_at(engine, T0 + timedelta(minutes=2), 6, severity="critical")
    evaluate(engine, cfg, T0 + timedelta(minutes=2))
    assert len(deliveries(engine, kind="alert")) == 3

    evaluate(engine, cfg, T0 + timedelta(minutes=1) + ROLLUP_EVERY - timedelta(seconds=1))
    assert deliveries(engine, kind="rollup") == []
    evaluate(engine, cfg, T0 + timedelta(minutes=1) + ROLLUP_EVERY)
    (rollup,) = deliveries(engine, kind="rollup")
    payload = json.loads(rollup.payload)
    assert payload == {"lines": ["3 more negative mentions about acme on hn"], "total": 3}
    with Session(engine) as session:
        assert {r.delivery_id for r in session.exec(select(Rollup))} == {rollup.id}
    # Once summed up, the rollup is not sent again.
    evaluate(engine, cfg, T0 + timedelta(hours=1))
    assert len(deliveries(engine, kind="rollup")) == 1


def claimed(delivery: Delivery) -> Claimed:
    return Claimed(
        id=delivery.id,
        channel=delivery.channel,
        kind=delivery.kind,
        recipient=delivery.recipient,
        alert_id=delivery.alert_id,
        incident_id=delivery.incident_id,
        payload=json.loads(delivery.payload),
        attempts=0,
        expires_at=None,
    )


ESCALATING = dict(
    channels={"slack": SLACK, "email": EMAIL},
    escalation={
        "after": "15m",
        "max_times": 2,
        "slack_mention": "subteam:S123",
        "emails": ["boss@acme.example", "cto@acme.example"],
    },
    http={"secret": "x" * 20},
)
EVIL = "<!channel> <!here> <@U024BE7LH> <http://evil.example|click> Acme lost my order"


def test_it_escalates_a_critical_incident_with_the_configured_ping_and_emails_up_to_max_times(
    engine,
):
    cfg = config(**ESCALATING)
    incident_id = alert_at(engine, T0, text=EVIL, severity="critical")
    evaluate(engine, cfg, T0 + timedelta(seconds=30))
    assert deliveries(engine, kind="escalation") == []
    evaluate(engine, cfg, T0 + timedelta(minutes=14, seconds=59))
    assert deliveries(engine, kind="escalation") == []

    evaluate(engine, cfg, T0 + timedelta(minutes=15))
    first = deliveries(engine, kind="escalation")
    assert sorted((d.channel, d.recipient) for d in first) == [
        ("email", "boss@acme.example"),
        ("email", "cto@acme.example"),
        ("slack", None),
    ]
    (to_slack,) = [d for d in first if d.channel == "slack"]
    with Session(engine) as session:
        view = load_notice(
            session, cfg, to_slack.alert_id, incident_id, json.loads(to_slack.payload), "slack"
        )
    rendered = json.dumps(slack.render(view))
    assert "<!subteam^S123>" in rendered and "ESCALATION 1" in rendered
    for forged in ("<!channel>", "<!here>", "<@U024BE7LH>", "<http://evil"):
        assert forged not in rendered
    assert "not acknowledged after 15 min" in rendered

    evaluate(engine, cfg, T0 + timedelta(minutes=30))
    evaluate(engine, cfg, T0 + timedelta(hours=3))
    assert len(deliveries(engine, kind="escalation", channel="slack")) == 2
    with Session(engine) as session:
        escalations = session.exec(
            select(IncidentAction).where(IncidentAction.action == "escalate")
        ).all()
        assert [(a.episode, a.at) for a in escalations] == [
            (1, T0 + timedelta(minutes=15)),
            (1, T0 + timedelta(minutes=30)),
        ]
        assert session.get(Incident, incident_id).escalations == 2


def test_info_and_acknowledged_incidents_are_never_escalated(engine):
    cfg = config(**ESCALATING)
    alert_at(engine, T0, 1, severity="info")
    acked = alert_at(engine, T0, 2, severity="critical")
    act(engine, acked, "ack", actor="ana", via="link", now=T0 + timedelta(minutes=1))
    evaluate(engine, cfg, T0 + timedelta(hours=1))
    assert deliveries(engine, kind="escalation") == []


def test_quiet_hours_hold_escalation_of_what_they_held_but_not_of_a_breakthrough(engine):
    quiet = {"start": "11:00", "end": "13:00", "timezone": "UTC", "breakthrough": "critical"}
    cfg = config(**ESCALATING, routes=[{**ROUTE, "quiet_hours": quiet}])
    alert_at(engine, T0, 1, severity="warning")
    alert_at(engine, T0, 2, severity="critical")
    evaluate(engine, cfg, T0 + timedelta(minutes=20))  # 12:20, inside quiet hours
    escalated = {d.incident_id for d in deliveries(engine, kind="escalation")}
    assert escalated == {2}
    evaluate(engine, cfg, T0 + timedelta(hours=1, minutes=5))  # 13:05, quiet hours over
    assert {d.incident_id for d in deliveries(engine, kind="escalation")} == {1, 2}


def test_a_rollup_renders_as_inert_slack_text(engine):
    cfg = make_config(
        brands=[{"name": "<!channel> acme", "include": ["acme"]}], channels={"slack": SLACK}
    )
    subject, lines = notice_lines(
        claimed(
            Delivery(
                id=1,
                dedup_key="r",
                channel="slack",
                kind="rollup",
                payload=json.dumps({"lines": ["2 more about <!channel> acme on hn"], "total": 2}),
            )
        )
    )
    text = "\n".join([f"*{slack.slack_mrkdwn(subject)}*", *map(slack.slack_mrkdwn, lines)])
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert cfg.brands[0].name.startswith("<!")


def test_a_snooze_that_ends_notifies_afresh_and_escalates_only_after_the_delay(engine):
    cfg = config(escalation={"after": "15m"})
    incident_id = alert_at(engine, T0, severity="critical")  # critical: escalated to Slack
    evaluate(engine, cfg, T0 + timedelta(seconds=30))
    act(
        engine,
        incident_id,
        "snooze",
        actor="ana",
        via="link",
        now=T0 + timedelta(minutes=1),
        snooze_for=timedelta(hours=1),
    )
    evaluate(engine, cfg, T0 + timedelta(minutes=30))
    assert len(deliveries(engine)) == 1
    evaluate(engine, cfg, T0 + timedelta(hours=1, minutes=1))
    with Session(engine) as session:
        assert session.get(Incident, incident_id).status == "triggered"
        retriggered = session.exec(
            select(IncidentAction).where(IncidentAction.action == "retrigger")
        ).one()
        assert retriggered.note == "snooze ended"
    sent = deliveries(engine, kind="alert")
    assert [d.dedup_key for d in sent] == [f"notify:{incident_id}:1:slack:{n}" for n in (1, 2)]
    assert sent[1].created_at == T0 + timedelta(hours=1, minutes=1)
    # The fresh notification gets the escalation delay before anyone is paged.
    assert deliveries(engine, kind="escalation") == []
    evaluate(engine, cfg, T0 + timedelta(hours=1, minutes=15))
    assert deliveries(engine, kind="escalation") == []
    evaluate(engine, cfg, T0 + timedelta(hours=1, minutes=16))
    assert len(deliveries(engine, kind="escalation")) == 1


def test_an_acknowledgement_after_a_retrigger_holds_for_another_retrigger_interval(engine):
    cfg = config()
    incident_id = alert_at(engine, T0)
    act(engine, incident_id, "ack", actor="ana", via="link", now=T0 + timedelta(minutes=1))
    evaluate(engine, cfg, T0 + timedelta(hours=4, minutes=1))
    act(engine, incident_id, "ack", actor="bo", via="link", now=T0 + timedelta(hours=4, minutes=5))
    evaluate(engine, cfg, T0 + timedelta(hours=4, minutes=6))
    with Session(engine) as session:
        incident = session.get(Incident, incident_id)
        assert incident.status == "acknowledged"
        # Time to acknowledge still counts the first acknowledgement.
        assert incident.acknowledged_by == "ana"
    evaluate(engine, cfg, T0 + timedelta(hours=8, minutes=5))
    with Session(engine) as session:
        assert session.get(Incident, incident_id).status == "triggered"


# -- default routes and escalation by role ------------------------------------------------

MARKETING, BOSS = "marketing@acme.example", "boss@acme.example"
DEFAULTS = dict(  # no [[routes]]: the default routes
    channels={"slack": SLACK, "email": EMAIL},
    escalation={"after": "15m", "max_times": 3, "slack_mention": "subteam:S123", "emails": [BOSS]},
)


def sent(engine, kind) -> set[tuple[str, str | None]]:
    return {(d.channel, d.recipient) for d in deliveries(engine, kind=kind)}


@pytest.mark.parametrize(
    ("severity", "notified", "escalated"),
    [
        ("info", set(), set()),
        ("warning", {("email", MARKETING)}, {("email", BOSS)}),
        ("critical", {("slack", None), ("email", MARKETING)}, {("slack", None), ("email", BOSS)}),
    ],
)
def test_without_routes_each_severity_reaches_its_channels_and_escalates_by_role(
    engine, severity, notified, escalated
):
    cfg = make_config(**DEFAULTS)
    alert_at(engine, T0, severity=severity)
    evaluate(engine, cfg, T0 + timedelta(minutes=1))
    assert sent(engine, "alert") == notified
    evaluate(engine, cfg, T0 + timedelta(minutes=16))
    assert sent(engine, "escalation") == escalated


def test_a_warning_that_rises_to_critical_pages_on_call_even_past_max_times(engine):
    cfg = make_config(**DEFAULTS)
    incident_id = alert_at(engine, T0)
    for minutes in (1, 15, 30, 45):
        evaluate(engine, cfg, T0 + timedelta(minutes=minutes))
    assert sent(engine, "escalation") == {("email", BOSS)}
    assert len(deliveries(engine, kind="escalation")) == 3  # max_times, by email only

    rise = T0 + timedelta(minutes=50)
    alert_at(engine, rise, severity="critical", text="lawyers now")
    evaluate(engine, cfg, rise)
    assert ("slack", None) in sent(engine, "alert")  # on-call hears of it at once
    evaluate(engine, cfg, T0 + timedelta(minutes=59))
    assert deliveries(engine, kind="escalation", channel="slack") == []
    evaluate(engine, cfg, T0 + timedelta(minutes=60))  # 15 min after the last escalation
    (page,) = deliveries(engine, kind="escalation", channel="slack")
    assert page.dedup_key == f"escalate:{incident_id}:1:4"
    evaluate(engine, cfg, T0 + timedelta(hours=3))
    assert len(deliveries(engine, kind="escalation", channel="slack")) == 1
