from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from emberwatch import db as database
from emberwatch.errors import EmberwatchError
from emberwatch.models import SourceState
from emberwatch.scheduling import (
    LEASE,
    _jitter,
    claim_due_sources,
    ensure_sources,
    next_due,
    release_source,
    renew_leases,
    single_node_guard,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_a_second_node_on_one_sqlite_file_is_refused(tmp_path):
    engine = database.create_db_engine(f"sqlite:///{tmp_path / 'one.db'}")
    with (
        single_node_guard(engine),
        pytest.raises(EmberwatchError, match="SQLite serves a single node"),
        single_node_guard(engine),
    ):
        pass
    with single_node_guard(engine):  # released when the first node stops
        pass


@pytest.mark.parametrize(
    ("configured", "interval", "expected"),
    [(5, 300, 5), (5, 10, 1), (0, 300, None)],
)
def test_jitter_is_at_most_a_tenth_of_the_interval(configured, interval, expected):
    assert _jitter(timedelta(seconds=configured), timedelta(seconds=interval)) == expected


@pytest.mark.parametrize(
    ("due", "now", "expected", "why"),
    [
        (T0, T0 + timedelta(seconds=0.4), T0 + timedelta(seconds=5), "on time: one interval on"),
        (T0, T0 + timedelta(seconds=4.9), T0 + timedelta(seconds=5), "slow poll keeps phase"),
        (T0, T0 + timedelta(seconds=5), T0 + timedelta(seconds=10), "slot reached: the next"),
        (T0, T0 + timedelta(seconds=31), T0 + timedelta(seconds=35), "hung: missed slots skip"),
        (None, T0, T0 + timedelta(seconds=5), "never scheduled: from now"),
    ],
)
def test_the_next_poll_keeps_the_phase_and_skips_missed_slots(due, now, expected, why):
    assert next_due(due, timedelta(seconds=5), now) == expected, why


def _config(*names: str, interval: str = "5s"):
    from emberwatch.config import validate_config

    return validate_config(
        {
            "brands": [{"name": "acme", "include": ["Acme"]}],
            "poll_jitter": "0s",
            "sources": [
                {"name": n, "type": "hackernews", "query": "acme", "interval": interval}
                for n in names
            ],
        },
        "test.toml",
        {},
    )


def test_nodes_claim_disjoint_sources_and_a_lapsed_lease_passes_on(engine):
    names = [f"s{i}" for i in range(6)]
    ensure_sources(engine, _config(*names), T0)
    first = claim_due_sources(engine, names, "node-a", T0, 4)
    second = claim_due_sources(engine, names, "node-b", T0, 4)
    assert len(first) == 4 and len(second) == 2
    assert not {c.name for c in first} & {c.name for c in second}
    assert claim_due_sources(engine, names, "node-c", T0 + timedelta(seconds=1), 10) == []
    # node-a dies: its leases lapse and another node takes its sources.
    later = T0 + LEASE + timedelta(seconds=1)
    renew_leases(engine, [c.name for c in second], "node-b", later - timedelta(seconds=1))
    taken = claim_due_sources(engine, names, "node-c", later, 10)
    assert sorted(c.name for c in taken) == sorted(c.name for c in first)


def test_a_claim_leaves_other_nodes_sources_and_its_own_polls_alone(engine):
    # Rows this node does not poll: a removed source, and one another node's config added.
    ignored = ensure_sources(engine, _config("gone", "mine", "busy"), T0)
    assert ignored == set()
    ignored = ensure_sources(engine, _config("mine", "busy"), T0)
    assert ignored == {"gone"}
    ensure_sources(engine, _config("theirs"), T0)
    claimed = claim_due_sources(
        engine, {"mine", "busy"}, "node", T0, 10, ignored=ignored, busy=["busy"]
    )
    assert [c.name for c in claimed] == ["mine"]
    assert ignored == {"gone", "theirs"}  # learned, so later claims skip it in the query
    with engine.connect() as connection:
        leased = connection.execute(
            sa.select(SourceState.__table__.c.name).where(
                SourceState.__table__.c.leased_by.is_not(None)
            )
        ).scalars()
        assert set(leased) == {"mine"}


def test_a_claim_reads_the_cursor_the_poll_starts_from(engine):
    ensure_sources(engine, _config("a"), T0)
    with engine.begin() as connection:
        connection.execute(SourceState.__table__.update().values(cursor="page-7"))
    (claim,) = claim_due_sources(engine, ["a"], "node", T0, 10)
    assert claim.cursor == "page-7"


def test_a_released_source_is_due_one_interval_on_and_backoff_holds_it(engine):
    ensure_sources(engine, _config("a", "b"), T0)
    claimed = {c.name: c.due for c in claim_due_sources(engine, ["a", "b"], "node", T0, 10)}
    release_source(engine, "a", "node", next_due(claimed["a"], timedelta(seconds=5), T0))
    release_source(engine, "b", "node", next_due(claimed["b"], timedelta(seconds=5), T0))
    with engine.begin() as connection:
        connection.execute(
            SourceState.__table__.update()
            .where(SourceState.__table__.c.name == "b")
            .values(next_poll_after=T0 + timedelta(minutes=5))
        )
    assert claim_due_sources(engine, ["a", "b"], "node", T0 + timedelta(seconds=4), 10) == []
    due = claim_due_sources(engine, ["a", "b"], "node", T0 + timedelta(seconds=5), 10)
    assert [c.name for c in due] == ["a"]  # b is backing off


def test_the_lease_migration_drops_apscheduler_4_tables(db_url):
    from alembic import command

    engine = database.create_db_engine(db_url)
    command.upgrade(database._alembic_config(engine), "0004")
    with engine.begin() as connection:
        for table in ("tasks", "schedules", "jobs", "job_results"):
            connection.execute(sa.text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)"))
        connection.execute(sa.text("CREATE TABLE metadata (schema_version INTEGER NOT NULL)"))
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("CREATE TYPE coalescepolicy AS ENUM ('latest')"))
    database.upgrade(engine)
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert not tables & {"tasks", "schedules", "jobs", "job_results", "metadata"}
    assert "sources" in tables
