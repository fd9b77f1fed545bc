"""The incident console: users, sessions, login attempts, assignments and notes.

Assignments and notes are ``incident_actions`` rows (``assign``, ``note``), so they need no
table of their own; the console's pages add ``sent_digests`` (each digest as it was sent).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 15:00:00
"""

import sqlalchemy as sa
from alembic import op

import emberwatch.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # -- console pages: each digest as it was sent (/digests) --------------------------------
    op.create_table(
        "sent_digests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("sent_at", emberwatch.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("day"),
    )


def downgrade() -> None:
    # -- console pages ------------------------------------------------------------------------
    op.drop_table("sent_digests")
