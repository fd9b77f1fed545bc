"""The hot queries use indices on PostgreSQL (checked with EXPLAIN), and the models match
the migrations (so autogenerate finds nothing left to do)."""

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


def test_the_migrations_build_exactly_the_models(engine):
    import emberwatch.models  # noqa: F401

    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []
