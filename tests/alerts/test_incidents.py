"""Alerts join incidents: by URL, thread or author, or near-duplicate text in the window."""

import itertools
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from emberwatch.alerts.grouping import TextShapes
from emberwatch.alerts.incidents import RecentTexts, attach
from emberwatch.alerts.lifecycle import act
from emberwatch.config import Grouping
from emberwatch.models import (
    AlertRecord,
    Incident,
    IncidentAction,
    MentionRecord,
    NotificationState,
)

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
GROUPING = Grouping(window=timedelta(hours=24), similarity=88)
STORY = "Acme kettle exploded in my kitchen and support refused any refund for the damage"
RETOLD = "RT: the damage! Acme kettle exploded in my kitchen and support refused any refund"
_ids = itertools.count(1)


def store_alert(
    session: Session,
    now: datetime,
    *,
    text: str = STORY,
    source: str = "hackernews",
    source_name: str = "hn",
    url: str | None = None,
    author: str | None = None,
    severity: str = "warning",
    category: str = "complaint",
    engagement: int = 0,
    title: str | None = None,
    brand: str = "acme",
    grouping: Grouping = GROUPING,
) -> Incident:
    """One stored mention with its alert, filed in an incident as a poll would."""
    mention = MentionRecord(
        source=source,
        external_id=f"m{next(_ids)}",
        source_name=source_name,
        brand=brand,
        url=url,
        author=author,
        title=title,
        text=text,
        first_seen_at=now,
        engagement=engagement,
        likes=engagement,
        severity=severity,
        category=category,
        reasons='["sentiment -0.80"]',
    )
    session.add(mention)
    session.flush()
    alert = AlertRecord(
        mention_id=mention.id,
        brand=brand,
        source_name=source_name,
        category=category,
        severity=severity,
        reason="test",
        created_at=now,
        updated_at=now,
    )
    session.add(alert)
    session.flush()
    incident = attach(session, alert, mention, grouping, now)
    session.flush()
    return incident


def file_alerts(engine, *alerts: dict) -> list[int]:
    """File each alert (``now`` plus store_alert's keywords) in its own transaction."""
    ids = []
    for fields in alerts:
        with Session(engine) as session:
            ids.append(store_alert(session, **fields).id)
            session.commit()
    return ids


def test_it_groups_the_same_url_thread_or_author_into_one_incident(engine):
    ids = file_alerts(
        engine,
        dict(now=T0, url="https://example.com/post/1?utm_source=x", text="Acme sucks"),
        dict(now=T0 + timedelta(minutes=1), url="https://www.example.com/post/1/", text="ugh"),
        dict(
            now=T0 + timedelta(minutes=2),
            source="reddit",
            source_name="reddit",
            url="https://reddit.com/r/acme/comments/abc/title/c1",
            text="Acme broke",
        ),
        dict(
            now=T0 + timedelta(minutes=3),
            source="reddit",
            source_name="reddit",
            url="https://reddit.com/r/acme/comments/abc/title/c2",
            text="same here",
        ),
        dict(now=T0 + timedelta(minutes=4), author="@Dana", text="Acme lost it"),
        dict(now=T0 + timedelta(minutes=5), author="dana", text="still waiting"),
    )
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[4] == ids[5]
    assert len({ids[0], ids[2], ids[4]}) == 3
    with Session(engine) as session:
        assert session.get(Incident, ids[0]).alert_count == 2


def test_it_groups_near_duplicate_text_across_sources_within_the_window(engine):
    ids = file_alerts(
        engine,
        dict(now=T0, text=STORY),
        dict(now=T0 + timedelta(hours=2), source="rss", source_name="feed", text=RETOLD),
    )
    assert ids[0] == ids[1]


def test_it_opens_a_new_incident_outside_the_window(engine):
    ids = file_alerts(
        engine,
        dict(now=T0, text=STORY, url="https://example.com/1"),
        dict(now=T0 + timedelta(hours=25), text=RETOLD),
        dict(now=T0 + timedelta(hours=50), url="https://example.com/1", text="again"),
    )
    assert len(set(ids)) == 3


def test_it_never_fuzzy_matches_short_texts(engine):
    ids = file_alerts(
        engine,
        dict(now=T0, text="Acme is awful"),
        dict(now=T0 + timedelta(minutes=1), source="rss", source_name="feed", text="Acme is awful"),
    )
    assert ids[0] != ids[1]


def test_it_keeps_brands_apart(engine):
    ids = file_alerts(
        engine,
        dict(now=T0, url="https://example.com/1"),
        dict(now=T0, url="https://example.com/1", brand="globex"),
    )
    assert ids[0] != ids[1]


def test_it_only_raises_severity_automatically(engine):
    (incident_id, *_) = file_alerts(
        engine,
        dict(now=T0, url="https://example.com/1", severity="critical", category="legal_threat"),
        dict(now=T0 + timedelta(minutes=1), url="https://example.com/1", severity="info"),
        dict(now=T0 + timedelta(minutes=2), url="https://example.com/1", severity="warning"),
    )
    with Session(engine) as session:
        incident = session.get(Incident, incident_id)
        assert (incident.severity, incident.category, incident.alert_count) == (
            "critical",
            "legal_threat",
            3,
        )
    file_alerts(
        engine,
        dict(now=T0, url="https://example.com/2", text="meh", severity="info"),
        dict(now=T0, url="https://example.com/2", text="worse", severity="warning"),
    )
    with Session(engine) as session:
        rose = session.exec(select(Incident).where(Incident.id != incident_id)).one()
        assert rose.severity == "warning"


def test_a_trigger_after_resolve_opens_the_next_episode_with_fresh_state(engine):
    (incident_id,) = file_alerts(engine, dict(now=T0, url="https://example.com/1"))
    with Session(engine) as session:
        session.add(
            NotificationState(
                incident_id=incident_id,
                channel="slack",
                notified_at=T0,
                severity="warning",
                count=1,
            )
        )
        session.commit()
    act(engine, incident_id, "ack", actor="ana", via="cli", now=T0 + timedelta(minutes=5))
    act(engine, incident_id, "resolve", actor="ana", via="cli", now=T0 + timedelta(minutes=9))

    later = T0 + timedelta(hours=1)
    (again,) = file_alerts(
        engine, dict(now=later, url="https://example.com/1", severity="info", text="back")
    )
    assert again == incident_id
    with Session(engine) as session:
        incident = session.get(Incident, incident_id)
        assert (incident.episode, incident.status, incident.opened_at) == (2, "triggered", later)
        assert incident.acknowledged_at is incident.resolved_at is None
        # A new episode starts from its own alert, not the old episode's worst.
        assert (incident.severity, incident.alert_count) == ("info", 1)
        assert session.exec(select(NotificationState)).all() == []
        reopen = session.exec(select(IncidentAction).where(IncidentAction.action == "reopen")).one()
        assert (reopen.episode, reopen.at, reopen.via) == (2, later, "pipeline")


def test_recent_texts_kept_across_polls_never_outlive_their_mention(engine):
    """A runtime keeps alerted mentions' texts between polls. If a mention is deleted and
    a later mention takes its id, the later mention's text is the one compared."""
    shapes = TextShapes()
    since = T0 - GROUPING.window
    with Session(engine) as session:
        first = store_alert(session, T0, text=STORY)
        session.commit()
        index = RecentTexts(since, shapes).for_brand(session, "acme")
        assert index.best(RETOLD, GROUPING.similarity) == first.id
        mention_id = session.exec(select(AlertRecord.mention_id)).one()
        # The mention and its alert go; a new mention takes the freed id.
        session.execute(sa.delete(AlertRecord))
        session.execute(sa.delete(MentionRecord))
        session.commit()
        other = "Globex kettles never shipped and the store closed with our deposits gone"
        later = MentionRecord(
            id=mention_id,
            source="hackernews",
            external_id="reused",
            source_name="hn",
            brand="acme",
            text=other,
            first_seen_at=T0 + timedelta(hours=1),
        )
        session.add(later)
        session.flush()
        alert = AlertRecord(
            mention_id=mention_id,
            incident_id=first.id,
            brand="acme",
            source_name="hn",
            category="complaint",
            severity="warning",
            reason="test",
            created_at=T0 + timedelta(hours=1),
            updated_at=T0 + timedelta(hours=1),
        )
        session.add(alert)
        session.commit()
        index = RecentTexts(since, shapes).for_brand(session, "acme")
        assert index.best(RETOLD, GROUPING.similarity) is None
        assert index.best(other, GROUPING.similarity) == first.id
