"""Source poll leases for coordinating nodes; APScheduler 4's own tables dropped.

Nodes now share the polls through the ``sources`` table: ``poll_due_at`` says when a
source's next poll is due, ``lease_until``/``leased_by`` which node is polling it, and
``refresh_due_at`` when its engagement is next refreshed. APScheduler 4.0's data store
(``metadata``, ``tasks``, ``schedules``, ``jobs``, ``job_results`` and two enum types on
PostgreSQL) is no longer used and is dropped where an earlier release created it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 14:30:00
"""

import sqlalchemy as sa
from alembic import op

import emberwatch.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COLUMNS = ("poll_due_at", "lease_until", "leased_by", "refresh_due_at")
# Child tables first: job_results and jobs point at nothing of ours, but keep the order
# APScheduler created them in, reversed.
_APSCHEDULER_TABLES = ("job_results", "jobs", "schedules", "tasks")


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        for name in ("poll_due_at", "lease_until", "refresh_due_at"):
            batch_op.add_column(
                sa.Column(name, emberwatch.models.UTCDateTime(timezone=True), nullable=True)
            )
        batch_op.add_column(sa.Column("leased_by", sa.String(length=200), nullable=True))
    _drop_apscheduler_tables()


def _drop_apscheduler_tables() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    present = set(inspector.get_table_names())
    for table in _APSCHEDULER_TABLES:
        if table in present:
            op.drop_table(table)
    # "metadata" is a common name: drop it only when it is APScheduler's (one column).
    if "metadata" in present:
        columns = {c["name"] for c in inspector.get_columns("metadata")}
        if columns == {"schema_version"}:
            op.drop_table("metadata")
    if bind.dialect.name == "postgresql":
        op.execute("DROP TYPE IF EXISTS coalescepolicy")
        op.execute("DROP TYPE IF EXISTS joboutcome")


def downgrade() -> None:
    # APScheduler 4's tables are not brought back: the release before this one creates
    # them itself when it starts.
    with op.batch_alter_table("sources", schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
