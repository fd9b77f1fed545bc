"""Indices for the hot queries: open incidents and refresh candidates.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 22:45:00
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.create_index(
        "ix_mentions_source_name_first_seen", "mentions", ["source_name", "first_seen_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_mentions_source_name_first_seen", table_name="mentions")
    op.drop_index("ix_incidents_status", table_name="incidents")
