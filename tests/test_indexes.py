"""The hot queries use indices on PostgreSQL (checked with EXPLAIN), and the models match
the migrations (so autogenerate finds nothing left to do)."""

import re
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

HOT_QUERIES = {
    "a mention by its platform id": (
        "SELECT id FROM mentions WHERE source = 'x' AND external_id = '1'"
    ),
    "due deliveries": (
        "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= now()"
    ),
    "open incidents": "SELECT id FROM incidents WHERE status = 'triggered'",
    "an incident by grouping key": "SELECT incident_id FROM incident_keys WHERE key = 'url:x'",
    "a mention's snapshots": "SELECT * FROM engagement_snapshots WHERE mention_id = 1",
    "an incident's alerts": "SELECT id FROM alerts WHERE incident_id = 1",
    "a day's alerts": "SELECT id FROM alerts WHERE created_at >= now() - interval '1 day'",
    "a day's mentions": "SELECT id FROM mentions WHERE first_seen_at >= now() - interval '1 day'",
    # The console's pages (emberwatch.console.views).
    "the console's page of mentions": (
        "SELECT id FROM mentions ORDER BY first_seen_at DESC, id DESC LIMIT 51"
    ),
    "an incident's messages": "SELECT id FROM deliveries WHERE incident_id = 1",
    "an incident's actions": "SELECT id FROM incident_actions WHERE incident_id = 1",
    "a mention's labels": "SELECT id FROM labels WHERE mention_id = 1",
    "refresh candidates": (
        "SELECT external_id FROM mentions WHERE source_name = 's' "
        "AND first_seen_at >= now() - interval '1 day'"
    ),
}


@pytest.mark.parametrize("query", HOT_QUERIES.values(), ids=HOT_QUERIES.keys())
def test_hot_queries_use_an_index_on_postgresql(engine, query):
    if engine.dialect.name != "postgresql":
        pytest.skip("EXPLAIN plans are checked on PostgreSQL")
    with engine.connect() as connection:
        # Empty tables make a sequential scan cheapest; forbid it to see if an index serves.
        connection.execute(sa.text("SET enable_seqscan = off"))
        plan = "\n".join(row[0] for row in connection.execute(sa.text(f"EXPLAIN {query}")))
    assert "Index" in plan and "Seq Scan" not in plan, plan


# The text search's indexes (migration 0010) are not in the models, so the comparison skips
# them: they exist only where the database allows (pg_trgm needs a privilege, and SQLite
# FTS5 with the trigram tokenizer needs 3.34), the operator class is named with the schema
# pg_trgm happens to live in, and SQLite's FTS5 table (a virtual table and its shadow
# tables, kept in step by triggers) is nothing SQLAlchemy's metadata can declare.
SEARCH_INDEXES = {"ix_mentions_text_trgm", "ix_mentions_title_trgm", "ix_mentions_author_trgm"}
SEARCH_TABLE = "mentions_search"


def _not_the_search_index(obj, name, type_, reflected, compare_to):
    if type_ == "index" and name in SEARCH_INDEXES:
        return False
    return not (type_ == "table" and name and name.startswith(SEARCH_TABLE))


def test_the_migrations_build_exactly_the_models(engine):
    import emberwatch.models  # noqa: F401

    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": _not_the_search_index}
        )
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def test_the_text_search_has_its_indexes(engine):
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            found = {i["name"] for i in sa.inspect(connection).get_indexes("mentions")}
            assert found >= SEARCH_INDEXES
        else:
            names = {r[0] for r in connection.exec_driver_sql("SELECT name FROM sqlite_master")}
            assert {SEARCH_TABLE, "mentions_search_insert", "mentions_search_delete"} <= names
            assert "mentions_search_update" in names


SEARCH = (
    "SELECT id FROM mentions WHERE text ILIKE '%zebra crossing%' "
    "OR title ILIKE '%zebra crossing%' OR author ILIKE '%zebra crossing%'"
)


def test_a_text_search_uses_the_trigram_indexes_on_postgresql(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("EXPLAIN plans are checked on PostgreSQL")
    with engine.connect() as connection:
        connection.execute(sa.text("SET enable_seqscan = off"))
        plan = "\n".join(row[0] for row in connection.execute(sa.text(f"EXPLAIN {SEARCH}")))
    assert set(re.findall(r"ix_mentions_\w+_trgm", plan)) >= SEARCH_INDEXES, plan
    assert "Seq Scan" not in plan, plan


def test_a_text_search_asks_the_trigram_table_on_sqlite(engine):
    """The console's own query: candidates from FTS5, mentions walked newest first."""
    from sqlmodel import Session

    from emberwatch.console.views import (
        MentionFilters,
        MentionRecord,
        _mention_conditions,
        _mention_query,
    )

    if engine.dialect.name != "sqlite":
        pytest.skip("the FTS5 table is SQLite's")
    with Session(engine) as session:
        connection = session.connection()
        filters = MentionFilters(q="zebra crossing")
        query = (
            _mention_query(_mention_conditions(connection, filters, ZoneInfo("UTC")))
            .order_by(MentionRecord.first_seen_at.desc(), MentionRecord.id.desc())
            .limit(51)
        )
        compiled = query.compile(dialect=connection.dialect)
        params = tuple(compiled.params[name] for name in compiled.positiontup)
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params).all()
    steps = [row[-1] for row in plan]
    assert any(SEARCH_TABLE in step and "VIRTUAL TABLE" in step for step in steps), steps
    assert any("ix_mentions_first_seen_at" in step for step in steps), steps
