"""Indexes for the console's text search (``/mentions?q=``): trigram indexes on the mentions'
text, title and author, so a search reads the rows that can match, not every row.

PostgreSQL: the search is ``text ILIKE '%q%' OR title ILIKE ... OR author ILIKE ...``; a GIN
index with ``gin_trgm_ops`` on each column serves it (a bitmap OR of the three). The
operator class comes from the ``pg_trgm`` extension: this migration creates it when the
database allows (``CREATE EXTENSION`` needs the CREATE privilege on the database from
PostgreSQL 13, where pg_trgm is a trusted extension; superuser before). When it cannot, it
logs what to run and carries on: the search is the same, only slower.

SQLite: an FTS5 table ``mentions_search`` with the ``trigram`` tokenizer (SQLite 3.34 or
newer) over the same three columns, external content (it indexes ``mentions`` and stores
no copy of the text), kept in step by triggers on insert, delete and an update of those
columns. The search asks it for candidates (a quoted phrase: a case-insensitive substring
of 3 or more characters) and keeps the exact LIKE test, so the results are the same as
without it. Without FTS5 or the trigram tokenizer it logs and carries on.

A later migration that rebuilds ``mentions`` on SQLite (Alembic's batch mode copies the
table) drops these triggers with it: recreate them there and rebuild the index with
``INSERT INTO mentions_search(mentions_search) VALUES ('rebuild')``.
tests/console/test_pages.py checks that the index follows every change at the head.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 16:00:00
"""

import logging
import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

log = logging.getLogger("emberwatch.migrations")

COLUMNS = ("text", "title", "author")
TRIGRAM_INDEXES = {column: f"ix_mentions_{column}_trgm" for column in COLUMNS}
SEARCH_TABLE = "mentions_search"
SQLITE_TRIGGERS = {
    "mentions_search_insert": (
        "AFTER INSERT ON mentions BEGIN "
        "INSERT INTO mentions_search (rowid, text, title, author) "
        "VALUES (new.id, new.text, new.title, new.author); END"
    ),
    "mentions_search_delete": (
        "AFTER DELETE ON mentions BEGIN "
        "INSERT INTO mentions_search (mentions_search, rowid, text, title, author) "
        "VALUES ('delete', old.id, old.text, old.title, old.author); END"
    ),
    # Only when a searched column changes: engagement refreshes update mentions often.
    "mentions_search_update": (
        "AFTER UPDATE OF id, text, title, author ON mentions BEGIN "
        "INSERT INTO mentions_search (mentions_search, rowid, text, title, author) "
        "VALUES ('delete', old.id, old.text, old.title, old.author); "
        "INSERT INTO mentions_search (rowid, text, title, author) "
        "VALUES (new.id, new.text, new.title, new.author); END"
    ),
}


def _trigram_schema(connection: sa.Connection) -> str | None:
    """The schema pg_trgm lives in, creating the extension when allowed; None without it."""
    find = sa.text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    )
    schema = connection.execute(find).scalar()
    if schema is not None:
        return str(schema)
    try:
        with connection.begin_nested():
            connection.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        log.warning(
            "the console's text search will read every mention: pg_trgm could not be "
            "installed (%s). To index it, have a database owner or superuser run "
            "'CREATE EXTENSION pg_trgm;' and then, as Emberwatch's user: %s;",
            reason,
            "; ".join(_trigram_statements(connection, None)),
        )
        return None
    schema = connection.execute(find).scalar()
    return None if schema is None else str(schema)


def _trigram_statements(connection: sa.Connection, schema: str | None) -> list[str]:
    quote = connection.dialect.identifier_preparer
    opclass = "gin_trgm_ops" if schema is None else f"{quote.quote_schema(schema)}.gin_trgm_ops"
    return [
        f"CREATE INDEX {name} ON mentions USING gin ({quote.quote(column)} {opclass})"
        for column, name in TRIGRAM_INDEXES.items()
    ]


def _upgrade_postgresql(connection: sa.Connection) -> None:
    schema = _trigram_schema(connection)
    if schema is None:
        return
    # The operator class is named with its schema: the extension may live in a schema that
    # is not on this connection's search_path (one per test, or a DBA's "extensions").
    statements = _trigram_statements(connection, schema)
    try:
        with connection.begin_nested():
            for statement in statements:
                connection.execute(sa.text(statement))
    except sa.exc.DBAPIError as exc:  # e.g. no USAGE on the schema pg_trgm lives in
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        log.warning(
            "the console's text search will read every mention: its trigram indexes could "
            "not be made (%s). To make them: %s;",
            reason,
            "; ".join(statements),
        )


def _upgrade_sqlite(connection: sa.Connection) -> None:
    try:
        # A failed statement leaves SQLite's transaction as it was, so this can be tried.
        connection.execute(
            sa.text(
                f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5("
                f"{', '.join(COLUMNS)}, content='mentions', content_rowid='id', "
                "tokenize='trigram')"
            )
        )
    except sa.exc.OperationalError as exc:
        log.warning(
            "the console's text search will read every mention: SQLite %s cannot build a "
            "trigram index (%s; FTS5 with the trigram tokenizer needs SQLite 3.34 or newer)",
            sqlite3.sqlite_version,
            str(exc.orig).strip(),
        )
        return
    for name, body in SQLITE_TRIGGERS.items():
        connection.execute(sa.text(f"CREATE TRIGGER {name} {body}"))
    connection.execute(sa.text(f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}) VALUES ('rebuild')"))


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        _upgrade_postgresql(connection)
    elif connection.dialect.name == "sqlite":
        _upgrade_sqlite(connection)


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        for name in TRIGRAM_INDEXES.values():
            connection.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
    elif connection.dialect.name == "sqlite":
        for name in SQLITE_TRIGGERS:
            connection.execute(sa.text(f"DROP TRIGGER IF EXISTS {name}"))
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {SEARCH_TABLE}"))
