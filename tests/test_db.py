from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from emberwatch import db as database
from emberwatch.errors import SchemaOutOfDateError
from emberwatch.models import MentionRecord


def test_it_creates_every_table_through_migrations(engine):
    names = set(sa.inspect(engine).get_table_names())
    assert {"sources", "mentions", "engagement_snapshots", "alerts", "deliveries"} <= names
    assert database.current_revision(engine) == database.head_revision()


def test_upgrading_twice_changes_nothing(engine):
    before, after = database.upgrade(engine)
    assert before == after == database.head_revision()


def test_run_refuses_an_empty_database_and_says_what_to_run(db_url):
    engine = database.create_db_engine(db_url)
    with pytest.raises(SchemaOutOfDateError, match=r"emberwatch db upgrade --config my\.toml"):
        database.require_current_schema(engine, "my.toml")


def test_sqlite_runs_in_wal_mode(sqlite_engine):
    with sqlite_engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_redacted_hides_the_password():
    shown = database.redacted("postgresql://user:s3cret@db.example/emberwatch")
    assert "s3cret" not in shown and "db.example" in shown


def test_postgres_urls_use_the_psycopg3_driver():
    assert database.normalize_url("postgresql://h/db") == "postgresql+psycopg://h/db"
    assert database.normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_insert_rows_keeps_order_and_types_and_one_of_finds_them(engine):
    # On PostgreSQL one array per column: a float column may hold ints (a score of 0) and
    # None beside floats, and a text column None beside text.
    table = MentionRecord.__table__
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    rows = [
        {
            "source": "hackernews",
            "external_id": str(k),
            "source_name": "hn",
            "brand": "acme",
            "author": [None, "a", 'q"{,}\\'][k % 3],
            "text": f"text {k}",
            "first_seen_at": now,
            "rating": [0, 4.5, None][k % 3],
        }
        for k in range(5)
    ]
    with Session(engine) as session:
        inserted = database.insert_rows(session, table, rows, ("id", "external_id")).all()
        session.commit()
        assert [external_id for _, external_id in inserted] == [str(k) for k in range(5)]
        ids = [id_ for id_, _ in inserted]
        assert ids == sorted(ids)
        found = session.execute(
            sa.select(table.c.external_id, table.c.author, table.c.rating)
            .where(database.one_of(session, table.c.id, ids[1:4]))
            .order_by(table.c.id)
        ).all()
    assert [tuple(row) for row in found] == [
        ("1", "a", 4.5),
        ("2", 'q"{,}\\', None),
        ("3", None, 0.0),
    ]


def test_commit_without_flush_turns_off_synchronous_commit_for_its_transaction_only(engine):
    query = sa.select(sa.literal(1))
    on_postgresql = engine.dialect.name == "postgresql"
    setting = sa.text("SHOW synchronous_commit")
    with Session(engine) as session:
        before = session.execute(setting).scalar() if on_postgresql else None
        session.commit()
        row = session.execute(database.commit_without_flush(session, query)).one()
        assert row[0] == 1
        if on_postgresql:
            assert before != "off"
            assert session.execute(setting).scalar() == "off"
            session.commit()
            assert session.execute(setting).scalar() == before


def _mention_rows(ids):
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    return [
        {"source": "hackernews", "external_id": k, "source_name": "hn", "brand": "acme"}
        | {"text": f"text {k}", "first_seen_at": now, "engagement": 0, "vip": False}
        for k in ids
    ]


def _sent_insert(session, external_ids):
    rows = _mention_rows(external_ids)
    table = MentionRecord.__table__
    returning = ("id", "external_id")
    if database.on_postgresql(session):
        statement = database.unnest_insert(table, tuple(rows[0]), returning)
        return database.Sent(session, [(statement, database.unnest_arrays(table, rows))])
    statement = table.insert().returning(*(table.c[name] for name in returning))
    return database.Sent(session, [(statement, rows)])


def test_a_sent_statement_comes_before_the_next_one_and_gives_its_rows(engine):
    # On PostgreSQL the INSERT is only sent: the count, run through the session before
    # its rows are read, must wait for it and see them, and the session go on after.
    table = MentionRecord.__table__
    count = sa.select(sa.func.count()).select_from(table)
    with Session(engine) as session:
        with _sent_insert(session, ["a", "b", "c"]) as sent:
            assert session.execute(count).scalar() == 3
            inserted = sent.rows()
        assert [external_id for _, external_id in inserted] == ["a", "b", "c"]
        with _sent_insert(session, ["d"]) as sent:
            assert [external_id for _, external_id in sent.rows()] == ["d"]
        session.commit()
        assert session.execute(count).scalar() == 4


def test_a_sent_statement_that_fails_raises_sqlalchemys_error_and_the_session_recovers(engine):
    table = MentionRecord.__table__
    count = sa.select(sa.func.count()).select_from(table)
    with Session(engine) as session:
        # Raised where the backend reads it: here (PostgreSQL) or at once.
        with pytest.raises(sa.exc.IntegrityError), _sent_insert(session, ["a", "a"]) as sent:
            sent.rows()
        session.rollback()
        assert session.execute(count).scalar() == 0
        with pytest.raises(sa.exc.IntegrityError), _sent_insert(session, ["b", "b"]):
            session.execute(count)  # the next statement is where it surfaces
        session.rollback()
        with _sent_insert(session, ["c"]) as sent:
            sent.rows()
        session.commit()
        assert session.execute(count).scalar() == 1
