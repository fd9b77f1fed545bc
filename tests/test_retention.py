from datetime import UTC, datetime, timedelta

from sqlmodel import Session, func, select

from emberwatch.models import AlertRecord, Delivery, EngagementSnapshot, MentionRecord
from emberwatch.retention import prune

NOW = datetime(2026, 11, 20, tzinfo=UTC)
OLD = NOW - timedelta(days=200)


def mention(session, external_id, seen):
    record = MentionRecord(
        source="rss",
        external_id=external_id,
        source_name="n",
        brand="acme",
        text="t",
        first_seen_at=seen,
    )
    session.add(record)
    session.flush()
    session.add(EngagementSnapshot(mention_id=record.id, seen_at=seen, likes=1))
    return record


def test_prune_keeps_alerted_and_recent_mentions_and_reports_what_it_removed(engine):
    with Session(engine) as session:
        mention(session, "old", OLD)
        alerted = mention(session, "old-alerted", OLD)
        mention(session, "new", NOW)
        session.add(
            AlertRecord(
                mention_id=alerted.id,
                brand="acme",
                source_name="n",
                category="complaint",
                severity="warning",
                reason="r",
                created_at=OLD,
                updated_at=OLD,
            )
        )
        session.add(
            Delivery(
                dedup_key="d", channel="slack", status="sent", created_at=OLD, next_attempt_at=OLD
            )
        )
        session.commit()
    dry = prune(engine, NOW - timedelta(days=180), dry_run=True)
    assert (dry.mentions, dry.snapshots, dry.deliveries) == (1, 1, 1)
    done = prune(engine, NOW - timedelta(days=180))
    assert done == dry
    with Session(engine) as session:
        left = sorted(session.exec(select(MentionRecord.external_id)).all())
        snapshots = session.exec(select(func.count()).select_from(EngagementSnapshot)).one()
    assert left == ["new", "old-alerted"] and snapshots == 2
