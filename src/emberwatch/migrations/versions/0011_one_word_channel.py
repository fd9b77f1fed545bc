"""One word for where a message goes: "receiver" becomes "channel" in the schema.

The tables ``receiver_health`` and ``receiver_pacing`` become ``channel_health`` and
``channel_pacing``, and the ``receiver`` column of those and of ``notification_state`` and
``rollups`` becomes ``channel``. Queued broken-channel notices are renamed too (their
outbox kind and payload key), so one queued before the upgrade still reads right. On
PostgreSQL the indexes and the sequence named after the old tables are renamed as
PostgreSQL would name them now. Nodes of the release before must be stopped first: they
read the old names.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 17:30:00
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TABLES = (("receiver_health", "channel_health"), ("receiver_pacing", "channel_pacing"))
_COLUMNS = ("notification_state", "rollups")
# PostgreSQL's names for what it made with the tables (a unique constraint's index, a
# primary key's index, a serial's sequence), as (kind, old, new).
_PG_NAMES = (
    ("INDEX", "receiver_health_pkey", "channel_health_pkey"),
    ("INDEX", "receiver_health_receiver_key", "channel_health_channel_key"),
    ("SEQUENCE", "receiver_health_id_seq", "channel_health_id_seq"),
    ("INDEX", "receiver_pacing_pkey", "channel_pacing_pkey"),
)


def _rename(old: str, new: str, *, tables: tuple[tuple[str, str], ...]) -> None:
    for table_old, table_new in tables:
        op.rename_table(table_old, table_new)
    for table in (*(t[1] for t in tables), *_COLUMNS):
        # Batch mode, so SQLite copies the table with its constraints renamed too.
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column(old, new_column_name=new)


def upgrade() -> None:
    _rename("receiver", "channel", tables=_TABLES)
    if op.get_bind().dialect.name == "postgresql":
        for kind, old, new in _PG_NAMES:
            op.execute(f"ALTER {kind} IF EXISTS {old} RENAME TO {new}")
    op.execute(
        "UPDATE deliveries SET kind = 'channel_broken', "
        "payload = REPLACE(payload, '\"receiver\":', '\"channel\":') "
        "WHERE kind = 'receiver_broken'"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE deliveries SET kind = 'receiver_broken', "
        "payload = REPLACE(payload, '\"channel\":', '\"receiver\":') "
        "WHERE kind = 'channel_broken'"
    )
    if op.get_bind().dialect.name == "postgresql":
        for kind, old, new in _PG_NAMES:
            op.execute(f"ALTER {kind} IF EXISTS {new} RENAME TO {old}")
    _rename("channel", "receiver", tables=tuple((new, old) for old, new in _TABLES))
