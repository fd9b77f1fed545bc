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
    # -- console auth: users, their sessions and wrong passwords (emberwatch.console.users) ----
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", emberwatch.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "password_changed_at", emberwatch.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("locked_until", emberwatch.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", emberwatch.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", emberwatch.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index(
        op.f("ix_console_sessions_user_id"), "console_sessions", ["user_id"], unique=False
    )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("at", emberwatch.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_failures_user_at", "login_failures", ["user_id", "at"], unique=False)
    # -- end console auth ----------------------------------------------------------------------
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
    # -- console auth ------------------------------------------------------------------------
    op.drop_index("ix_login_failures_user_at", table_name="login_failures")
    op.drop_table("login_failures")
    op.drop_index(op.f("ix_console_sessions_user_id"), table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("users")
    # -- end console auth ----------------------------------------------------------------------
    # -- console pages ------------------------------------------------------------------------
    op.drop_table("sent_digests")
