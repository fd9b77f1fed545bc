"""Database tables (SQLModel). The same code runs on SQLite and PostgreSQL.

Every timestamp is stored and returned as timezone-aware UTC (see :class:`UTCDateTime`),
because SQLite keeps no zone and a naive datetime invites off-by-hours bugs.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """A DateTime column that only accepts aware datetimes and always returns UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(*, nullable: bool = True, index: bool = False) -> object:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


class SourceState(SQLModel, table=True):
    """What the pipeline remembers about each configured source between polls."""

    __tablename__ = "sources"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=sa.Column(sa.String(200), unique=True, nullable=False))
    type: str = Field(sa_column=sa.Column(sa.String(50), nullable=False))
    cursor: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    last_poll_at: datetime | None = _ts()  # type: ignore[assignment]
    last_success_at: datetime | None = _ts()  # type: ignore[assignment]
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    last_error_at: datetime | None = _ts()  # type: ignore[assignment]
    consecutive_failures: int = 0
    next_poll_after: datetime | None = _ts()  # type: ignore[assignment]
    items_last_poll: int = 0
    polls_total: int = 0


class MentionRecord(SQLModel, table=True):
    """A stored mention of a brand, with its latest engagement and scores."""

    __tablename__ = "mentions"
    __table_args__ = (
        sa.UniqueConstraint("source", "external_id", name="uq_mentions_source_external_id"),
        sa.Index("ix_mentions_brand_published", "brand", "published_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(sa_column=sa.Column(sa.String(50), nullable=False))
    external_id: str = Field(sa_column=sa.Column(sa.String(500), nullable=False))
    source_name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False, index=True))
    brand: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    url: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    author: str | None = Field(default=None, sa_column=sa.Column(sa.String(500)))
    author_followers: int | None = None
    title: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    text: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    published_at: datetime | None = _ts()  # type: ignore[assignment]
    first_seen_at: datetime = _ts(nullable=False, index=True)  # type: ignore[assignment]
    rating: float | None = None
    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    engagement: int = 0
    sentiment: float | None = None
    complaint: float | None = None
    virality: float | None = None
    expected_engagement: float | None = None
    category: str | None = Field(default=None, sa_column=sa.Column(sa.String(30)))
    severity: str | None = Field(default=None, sa_column=sa.Column(sa.String(20)))
    reasons: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    vip: bool = False


class EngagementSnapshot(SQLModel, table=True):
    """Engagement of one mention at one moment: the trajectory the virality score reads."""

    __tablename__ = "engagement_snapshots"

    id: int | None = Field(default=None, primary_key=True)
    mention_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("mentions.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    seen_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
    likes: int = 0
    reposts: int = 0
    replies: int = 0


class AlertRecord(SQLModel, table=True):
    """One alert per mention; its severity may rise as the mention spreads."""

    __tablename__ = "alerts"

    id: int | None = Field(default=None, primary_key=True)
    mention_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("mentions.id"), nullable=False, unique=True)
    )
    brand: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    source_name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    category: str = Field(sa_column=sa.Column(sa.String(30), nullable=False))
    severity: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    status: str = Field(default="triggered", sa_column=sa.Column(sa.String(20), nullable=False))
    created_at: datetime = _ts(nullable=False, index=True)  # type: ignore[assignment]
    updated_at: datetime = _ts(nullable=False)  # type: ignore[assignment]


class Delivery(SQLModel, table=True):
    """The outbox: one row per message to send, written with the change that causes it.

    A worker claims a row by setting ``lease_until`` with a conditional update, sends, and
    only then marks it ``sent``; a crash mid-send leaves the lease to expire and another
    attempt follows. ``dedup_key`` makes enqueueing the same message twice impossible.
    """

    __tablename__ = "deliveries"
    __table_args__ = (sa.Index("ix_deliveries_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    dedup_key: str = Field(sa_column=sa.Column(sa.String(300), unique=True, nullable=False))
    channel: str = Field(sa_column=sa.Column(sa.String(30), nullable=False))
    alert_id: int | None = Field(
        default=None, sa_column=sa.Column(sa.Integer, sa.ForeignKey("alerts.id"), index=True)
    )
    payload: str = Field(default="{}", sa_column=sa.Column(sa.Text, nullable=False))
    status: str = Field(default="pending", sa_column=sa.Column(sa.String(20), nullable=False))
    attempts: int = 0
    created_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
    next_attempt_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
    lease_until: datetime | None = _ts()  # type: ignore[assignment]
    leased_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    sent_at: datetime | None = _ts()  # type: ignore[assignment]
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))


def utcnow() -> datetime:
    return datetime.now(UTC)
