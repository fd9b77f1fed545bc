import pytest
import sqlalchemy as sa

from emberwatch import db as database
from emberwatch.errors import SchemaOutOfDateError


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
