"""Migration 0011 renames "receiver" to "channel" in the schema, keeping every row, and
its downgrade gives the old names back (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from emberwatch import db as database

T = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _insert(connection: sa.Connection, table: str, **values: object) -> None:
    """Insert a row as the schema stands, filling what it requires and the test leaves out."""
    reflected = sa.Table(table, sa.MetaData(), autoload_with=connection)
    for column in reflected.columns:
        if column.name in values or column.nullable or column.server_default is not None:
            continue
        if column.primary_key and isinstance(column.type, sa.Integer):
            continue
        python = column.type.python_type
        values[column.name] = {bool: False, int: 1, str: "x", datetime: T}[python]
    connection.execute(reflected.insert().values(**values))


def _rows(engine: sa.Engine, query: str) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(query))]


def test_the_rename_keeps_every_row_and_goes_back(db_url):
    engine = database.create_db_engine(db_url)
    alembic = database._alembic_config(engine)
    command.upgrade(alembic, "0010")
    with engine.begin() as connection:
        _insert(connection, "incidents", id=1)
        _insert(connection, "receiver_health", receiver="slack", last_error="HTTP 404")
        _insert(connection, "receiver_pacing", receiver="slack:abc")
        _insert(connection, "notification_state", incident_id=1, receiver="email")
        _insert(connection, "rollups", incident_id=1, receiver="email")
        payload = json.dumps({"receiver": "slack", "error": "HTTP 404"})
        _insert(connection, "deliveries", channel="email", kind="receiver_broken", payload=payload)

    command.upgrade(alembic, "0011")
    assert _rows(engine, "SELECT channel, last_error FROM channel_health") == [
        ("slack", "HTTP 404")
    ]
    assert _rows(engine, "SELECT channel FROM channel_pacing") == [("slack:abc",)]
    assert _rows(engine, "SELECT channel FROM notification_state") == [("email",)]
    assert _rows(engine, "SELECT channel FROM rollups") == [("email",)]
    ((kind, payload),) = _rows(engine, "SELECT kind, payload FROM deliveries")
    assert kind == "channel_broken"
    assert json.loads(payload) == {"channel": "slack", "error": "HTTP 404"}
    inspector = sa.inspect(engine)
    tables = set(inspector.get_table_names())
    assert {"channel_health", "channel_pacing"} <= tables
    assert not {"receiver_health", "receiver_pacing"} & tables
    unique = inspector.get_unique_constraints("notification_state")
    assert [c["column_names"] for c in unique] == [["incident_id", "channel"]]

    command.downgrade(alembic, "0010")
    assert _rows(engine, "SELECT receiver FROM receiver_health") == [("slack",)]
    assert _rows(engine, "SELECT receiver FROM receiver_pacing") == [("slack:abc",)]
    assert _rows(engine, "SELECT receiver FROM notification_state") == [("email",)]
    assert _rows(engine, "SELECT receiver FROM rollups") == [("email",)]
    ((kind, payload),) = _rows(engine, "SELECT kind, payload FROM deliveries")
    assert (kind, json.loads(payload)["receiver"]) == ("receiver_broken", "slack")
    engine.dispose()
