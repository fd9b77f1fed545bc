import sqlite3
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from click.testing import CliRunner
from sqlmodel import Session, func, select

from emberwatch import db as database
from emberwatch.cli import cli
from emberwatch.models import AlertRecord, Delivery, EngagementSnapshot, MentionRecord
from emberwatch.retention import Pruned, prune

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


def test_prune_deletes_in_batches_each_committed_and_reports_progress(engine):
    with Session(engine) as session:
        for i in range(5):
            mention(session, f"old-{i}", OLD)
        for i in range(3):
            session.add(
                Delivery(
                    dedup_key=f"d{i}",
                    channel="slack",
                    status="sent",
                    created_at=OLD,
                    next_attempt_at=OLD,
                )
            )
        session.commit()
    commits = []
    sa.event.listen(engine, "commit", lambda _conn: commits.append(1))
    seen = []
    pruned = prune(
        engine,
        NOW - timedelta(days=180),
        batch_size=2,
        progress=lambda what, done, total: seen.append((what, done, total)),
    )
    assert pruned == Pruned(mentions=5, snapshots=5, deliveries=3)
    assert seen == [
        ("mentions", 2, 5),
        ("mentions", 4, 5),
        ("mentions", 5, 5),
        ("deliveries", 2, 3),
        ("deliveries", 3, 3),
    ]
    assert len(commits) >= 5  # one transaction per batch, not one for the whole prune


def test_another_writer_is_not_blocked_between_batches(sqlite_engine, tmp_path):
    with Session(sqlite_engine) as session:
        for i in range(4):
            mention(session, f"old-{i}", OLD)
        session.commit()
    written = []

    def write_meanwhile(what, done, total):
        # A short busy timeout: this fails fast if the prune still held the write lock.
        other = sqlite3.connect(tmp_path / "emberwatch.db", timeout=0.2)
        with other:
            other.execute("UPDATE mentions SET text = 'touched' WHERE external_id = 'old-3'")
        other.close()
        written.append(done)

    prune(sqlite_engine, NOW - timedelta(days=180), batch_size=2, progress=write_meanwhile)
    assert written == [2, 4]


def test_a_dry_run_counts_without_deleting_or_batching(engine):
    with Session(engine) as session:
        for i in range(3):
            mention(session, f"old-{i}", OLD)
        session.commit()
    seen = []
    dry = prune(engine, NOW - timedelta(days=180), dry_run=True, batch_size=1, progress=seen.append)
    assert dry == Pruned(3, 3, 0) and seen == []
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(MentionRecord)).one() == 3


def test_db_prune_prints_progress_to_stderr_and_the_summary_to_stdout(tmp_path, monkeypatch):
    db_path = tmp_path / "ew.db"
    config = tmp_path / "c.toml"
    config.write_text(
        f'database_url = "sqlite:///{db_path}"\n[[brands]]\nname = "acme"\ninclude = ["Acme"]\n'
    )
    engine = database.create_db_engine(f"sqlite:///{db_path}")
    database.upgrade(engine)
    with Session(engine) as session:
        for i in range(3):
            mention(session, f"old-{i}", OLD)
        session.commit()
    engine.dispose()
    monkeypatch.setattr("emberwatch.retention.BATCH_SIZE", 2)
    result = CliRunner().invoke(cli, ["db", "prune", "--older-than", "1d", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "pruned 2 of 3 mentions",
        "pruned 3 of 3 mentions",
    ]
    assert result.stdout.startswith("removed 3 mentions, 3 engagement snapshots and 0 finished")
