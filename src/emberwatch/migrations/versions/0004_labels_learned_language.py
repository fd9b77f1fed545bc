"""Team labels, the learned scoring layer, and each mention's language.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 14:30:00
"""

import sqlalchemy as sa
from alembic import op

import emberwatch.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mention_id", sa.Integer(), nullable=True),
        sa.Column("mention_key", sa.String(length=600), nullable=False),
        sa.Column("mention", sa.Text(), nullable=False),
        sa.Column("brand", sa.String(length=200), nullable=True),
        sa.Column("field", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=30), nullable=False),
        sa.Column("labelled_by", sa.String(length=200), nullable=False),
        sa.Column("labelled_at", emberwatch.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("via", sa.String(length=30), nullable=False),
        sa.ForeignKeyConstraint(["mention_id"], ["mentions.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.create_index("ix_labels_mention_key_field", ["mention_key", "field"])
        batch_op.create_index(batch_op.f("ix_labels_mention_id"), ["mention_id"])

    op.create_table(
        "fitted_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=40), nullable=False),
        sa.Column("fitted_at", emberwatch.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("n_labels", sa.Integer(), nullable=False),
        sa.Column("weights", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version"),
    )
    with op.batch_alter_table("mentions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mentions", schema=None) as batch_op:
        batch_op.drop_column("language")
    op.drop_table("fitted_models")
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_labels_mention_id"))
        batch_op.drop_index("ix_labels_mention_key_field")
    op.drop_table("labels")
