"""The alert view: the plain sentence, reach, what changed, and loading an incident's
mentions and who acted from the database."""

from datetime import timedelta

import pytest
from sqlmodel import Session
from tests.alerts.test_incidents import T0, file_alerts
from tests.channels.test_slack import REVIEW, REVIEW_REASONS, incident_view, mention
from tests.helpers import make_config

from emberwatch.alerts.lifecycle import act
from emberwatch.alerts.view import (
    cues_of,
    latest_actions,
    load_incident_page,
    load_notice,
    reach_line,
    team_timezone,
)
from emberwatch.models import AlertRecord


def test_cues_are_read_from_the_stored_reasons():
    cues = cues_of(
        [
            *REVIEW_REASONS,
            "category legal_threat: legal cue: 'lawsuit', 'small claims'",
            'unmet expectation: "still haven\'t" (+2.2)',
        ]
    )
    assert cues["elapsed time"] == ["three weeks"]
    assert cues["request for a remedy"] == ["refund"]
    assert cues["legal_threat"] == ["lawsuit", "small claims"]
    assert cues["unmet expectation"] == ["still no", "still haven't"]
    assert "complaint 1.00 = logistic(+8.68)" not in str(cues)


def review(**overrides):
    values = dict(
        source_type="rss",
        source_name="reviews",
        author="Dana W.",
        title="Three weeks and still no kettle",
        text=REVIEW,
        complaint=1.0,
        reasons=REVIEW_REASONS,
        likes=None,
        engagement=0,
    )
    values.update(overrides)
    return mention(1, **values)


@pytest.mark.parametrize(
    ("category", "lines", "expected"),
    [
        (
            "complaint",
            [review()],
            "A customer on the reviews feed says their express order is three weeks late, "
            "that support blamed the courier and that they want a refund.",
        ),
        (
            "complaint",
            [mention(2, likes=240, replies=90, engagement=330, virality=0.97), review()],
            "A customer on the reviews feed says their express order is three weeks late, "
            "that support blamed the courier and that they want a refund; the Hacker News "
            "thread about it is growing fast (240 points, 90 comments).",
        ),
        (
            "complaint",
            [mention(1, text="Acme is bad", reasons=[], likes=0, engagement=0)],
            "A customer on Hacker News complains about acme.",
        ),
        (
            "complaint",
            [
                mention(
                    1,
                    source_type="x",
                    text="My Acme kettle arrived broken and nobody answered my emails",
                    reasons=["defect or damage: 'broken' (+2.2)", "unmet expectation: 'nobody'"],
                    likes=3,
                    reposts=1,
                    replies=0,
                    engagement=4,
                    vip=True,
                )
            ],
            "A VIP customer on X says nobody answers them and that it is broken; the X post "
            "has 3 likes, 1 repost so far.",
        ),
        (
            "legal_threat",
            [mention(1, reasons=["category legal_threat: legal cue: 'small claims'"])],
            "A customer on Hacker News threatens legal action (“small claims”); the Hacker News "
            "thread has 1 point so far.",
        ),
        (
            "abuse",
            [mention(1, reasons=["category abuse: abusive: 'clowns'"], likes=0, engagement=0)],
            "Someone on Hacker News is abusive about acme (“clowns”).",
        ),
    ],
)
def test_the_plain_sentence(category, lines, expected):
    alert = incident_view(len(lines), mentions=lines, context=lines, category=category)
    assert alert.why == expected
    for model_term in ("logistic", "branching", "probability", "P(>="):
        assert model_term not in alert.why


def test_the_plain_sentence_is_one_line_whatever_the_cues_hold():
    hostile = mention(1, reasons=["category abuse: abusive: 'you\\n*Respond by* never'"])
    assert "\n" not in incident_view(1, mentions=[hostile], context=[hostile], category="abuse").why


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([mention(1)], "Reach: followers unknown on Hacker News"),
        ([mention(1, author_followers=1)], "Reach: customer1 has 1 follower"),
        (
            [
                mention(1, source_type="x", author_followers=12_400, author="maria"),
                mention(2, source_type="x", author_followers=80),
                mention(3),
                review(),
            ],
            "Reach: up to 12,400 followers (maria on X); followers unknown on Hacker News and "
            "the reviews feed",
        ),
        (
            [mention(1, vip=True, author="big\nbuyer")],
            "Reach: followers unknown on Hacker News; VIP customer: big buyer",
        ),
    ],
)
def test_reach_is_one_honest_line(lines, expected):
    assert reach_line(lines) == expected


@pytest.mark.parametrize(
    ("reason", "episode", "expected"),
    [
        ("new incident", 1, None),
        ("new critical incident", 1, None),
        ("new incident", 2, "again (episode 2)"),
        ("engagement doubled within 30 min (11 → 330)", 1, "now 240 points, 90 comments"),
        ("severity rose from warning to critical", 1, "now critical, 240 points, 90 comments"),
        ("2 new related mentions (breaks through quiet hours)", 1, "2 new mentions"),
        ("still open and unacknowledged", 1, "still unacknowledged, now 240 points, 90 comments"),
    ],
)
def test_what_changed(reason, episode, expected):
    lines = [mention(2, likes=240, replies=90, engagement=330), mention(1)]
    alert = incident_view(2, mentions=lines, context=lines, notify_reason=reason, episode=episode)
    assert alert.change == expected


@pytest.mark.parametrize(
    ("overrides", "zone"),
    [
        ({}, "UTC"),
        ({"channels": {"digest": {"recipients": ["o@x"], "timezone": "Asia/Tokyo"}}}, None),
        (
            {
                "routes": [
                    {
                        "name": "r",
                        "channels": ["digest"],
                        "quiet_hours": {
                            "start": "22:00",
                            "end": "07:00",
                            "timezone": "Europe/Oslo",
                        },
                    }
                ]
            },
            "Europe/Oslo",
        ),
    ],
)
def test_the_team_time_zone(overrides, zone):
    if "channels" in overrides:
        overrides["channels"]["email"] = {"host": "h", "sender": "s@x", "recipients": ["m@x"]}
        zone = "Asia/Tokyo"
    assert team_timezone(make_config(**overrides)) == zone


def test_a_notice_lists_the_incident_newest_first_up_to_the_limit(engine):
    url = "https://example.com/story"
    ids = file_alerts(
        engine,
        *(dict(now=T0 + timedelta(minutes=n), url=url, author=f"c{n}") for n in range(7)),
    )
    assert len(set(ids)) == 1
    config = make_config(
        alert_mentions=3,
        http={"secret": "x" * 20},
        channels={
            "email": {"host": "h", "sender": "s@acme.example", "recipients": ["m@x"]},
            "digest": {"recipients": ["o@x"], "timezone": "Europe/Berlin"},
        },
    )
    with Session(engine) as session:
        lead = session.exec(
            AlertRecord.__table__.select().where(AlertRecord.incident_id == ids[0])
        ).first()
        alert = load_notice(session, config, lead.id, ids[0], {"reason": "new incident"}, "m@x")
    assert [m.who for m in alert.listed] == ["c6", "c5", "c4"]
    assert (alert.mention_total, alert.more, len(alert.context)) == (7, 4, 7)
    assert alert.timezone == "Europe/Berlin" and "CET" in alert.respond_by_local
    assert set(alert.links) == {"ack", "snooze", "resolve"}


def test_who_acted_is_read_for_this_episode_only(engine):
    first, second = file_alerts(
        engine,
        dict(now=T0, url="https://example.com/1"),
        dict(now=T0, url="https://example.com/2", text="something else entirely"),
    )
    act(engine, first, "ack", actor="ana", via="link", now=T0 + timedelta(minutes=1))
    act(engine, first, "snooze", actor="bo", via="cli", now=T0 + timedelta(minutes=2))
    act(engine, second, "resolve", actor="cy", via="cli", now=T0 + timedelta(minutes=3))
    with Session(engine) as session:
        acted = latest_actions(session, [first, second])
        page = load_incident_page(session, first, shown=5)
    assert acted[first].words == "snoozed by bo" and acted[second].words == "resolved by cy"
    assert page.acted.words == "snoozed by bo" and page.total == 1
    # A new episode starts with nobody acting on it.
    file_alerts(engine, dict(now=T0 + timedelta(minutes=4), url="https://example.com/2"))
    with Session(engine) as session:
        assert second not in latest_actions(session, [second])
