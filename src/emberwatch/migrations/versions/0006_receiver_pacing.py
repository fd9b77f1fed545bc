"""Per-receiver send pacing shared by every node.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 14:30:00
"""

import sqlalchemy as sa
from alembic import op

import emberwatch.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "receiver_pacing",
        sa.Column("receiver", sa.String(length=100), nullable=False),
        sa.Column("last_slot_at", emberwatch.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("receiver"),
    )


def downgrade() -> None:
    op.drop_table("receiver_pacing")
