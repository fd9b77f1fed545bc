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
    unhealthy_since: datetime | None = _ts()  # type: ignore[assignment]
    # How nodes share the polls (see emberwatch.scheduling): when the next poll is due,
    # and the lease a node holds while it polls; when the next engagement refresh is due.
    poll_due_at: datetime | None = _ts()  # type: ignore[assignment]
    lease_until: datetime | None = _ts()  # type: ignore[assignment]
    leased_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    refresh_due_at: datetime | None = _ts()  # type: ignore[assignment]


class MentionRecord(SQLModel, table=True):
    """A stored mention of a brand, with its latest engagement and scores.

    The console's text search has indexes on ``text``, ``title`` and ``author`` that only
    migration 0010 makes, where the database allows: pg_trgm GIN indexes on PostgreSQL, an
    FTS5 trigram table kept by triggers on SQLite (see tests/test_indexes.py for why they
    are not declared here).
    """

    __tablename__ = "mentions"
    __table_args__ = (
        sa.UniqueConstraint("source", "external_id", name="uq_mentions_source_external_id"),
        sa.Index("ix_mentions_brand_published", "brand", "published_at"),
        sa.Index("ix_mentions_source_name_first_seen", "source_name", "first_seen_at"),
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
    # ISO 639-1 code of the text's language ("en", "ja"); None for mentions stored before
    # languages were detected.
    language: str | None = Field(default=None, sa_column=sa.Column(sa.String(16)))
    # The conversation the mention belongs to (``Mention.thread``: "hackernews:story:123");
    # None where the platform links no reply to a parent, and for mentions stored before.
    thread: str | None = Field(default=None, sa_column=sa.Column(sa.String(500)))


class Label(SQLModel, table=True):
    """A team member's judgement of one mention: what the learned scoring layer learns from.

    ``field`` is ``complaint`` (``value`` "true" or "false") or ``category`` (one of
    :data:`emberwatch.scoring.triage.CATEGORIES`). ``mention`` holds the mention's
    normalized fields as JSON, so a label outlives the stored mention and exports as it
    was imported; ``mention_id`` points at the stored mention when there is one.
    ``mention_key`` names the mention (``source:external_id``, or a hash of its text when it
    has no id): a newer label of the same key and field replaces an older one when fitting,
    and the older one stays as history. ``via`` says how the label came: ``import``,
    ``cli`` or ``console`` (the "wrong?" form on a mention).
    """

    __tablename__ = "labels"
    __table_args__ = (sa.Index("ix_labels_mention_key_field", "mention_key", "field"),)

    id: int | None = Field(default=None, primary_key=True)
    mention_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("mentions.id", ondelete="SET NULL"), index=True
        ),
    )
    mention_key: str = Field(sa_column=sa.Column(sa.String(600), nullable=False))
    mention: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    brand: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    field: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    value: str = Field(sa_column=sa.Column(sa.String(30), nullable=False))
    labelled_by: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    labelled_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
    via: str = Field(sa_column=sa.Column(sa.String(30), nullable=False))


class FittedModel(SQLModel, table=True):
    """The learned scoring layer fitted from the labels; the newest ``version`` is in use.

    ``weights`` is the layer's own serialized form (see :mod:`emberwatch.scoring.learned`),
    whose layout ``format`` names; a reader that does not know the format ignores it.
    """

    __tablename__ = "fitted_models"

    id: int | None = Field(default=None, primary_key=True)
    version: int = Field(sa_column=sa.Column(sa.Integer, nullable=False, unique=True))
    format: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    fitted_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
    n_labels: int = 0
    weights: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))


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


class Incident(SQLModel, table=True):
    """One story: related alerts grouped together, with a lifecycle.

    ``status`` is ``triggered``, ``acknowledged`` (optionally snoozed until
    ``snoozed_until``) or ``resolved``. A trigger after resolve opens a new ``episode`` of
    the same incident. Severity only rises automatically.
    """

    __tablename__ = "incidents"
    __table_args__ = (
        sa.Index("ix_incidents_brand_status", "brand", "status"),
        sa.Index("ix_incidents_status", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    brand: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    source_name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    title: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    status: str = Field(default="triggered", sa_column=sa.Column(sa.String(20), nullable=False))
    episode: int = 1
    severity: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    category: str = Field(sa_column=sa.Column(sa.String(30), nullable=False))
    opened_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
    updated_at: datetime = _ts(nullable=False, index=True)  # type: ignore[assignment]
    acknowledged_at: datetime | None = _ts()  # type: ignore[assignment]
    acknowledged_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    snoozed_until: datetime | None = _ts()  # type: ignore[assignment]
    resolved_at: datetime | None = _ts()  # type: ignore[assignment]
    resolved_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    escalations: int = 0
    last_escalated_at: datetime | None = _ts()  # type: ignore[assignment]
    alert_count: int = 0
    engagement: int = 0
    silenced: bool = False


class IncidentKey(SQLModel, table=True):
    """A grouping key (URL, thread, author) that leads new alerts to an incident."""

    __tablename__ = "incident_keys"
    __table_args__ = (sa.UniqueConstraint("incident_id", "key", name="uq_incident_keys"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False
        )
    )
    key: str = Field(sa_column=sa.Column(sa.String(600), nullable=False, index=True))
    seen_at: datetime = _ts(nullable=False)  # type: ignore[assignment]


class IncidentAction(SQLModel, table=True):
    """Who did what to an incident, and when: acks, snoozes, resolves, escalations."""

    __tablename__ = "incident_actions"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(
        sa_column=sa.Column(
            sa.Integer,
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    episode: int = 1
    action: str = Field(sa_column=sa.Column(sa.String(30), nullable=False))
    actor: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    via: str = Field(sa_column=sa.Column(sa.String(30), nullable=False))
    at: datetime = _ts(nullable=False, index=True)  # type: ignore[assignment]
    note: str | None = Field(default=None, sa_column=sa.Column(sa.Text))


class NotificationState(SQLModel, table=True):
    """What a channel was last told about an incident: the timers' memory, kept durable."""

    __tablename__ = "notification_state"
    __table_args__ = (sa.UniqueConstraint("incident_id", "channel", name="uq_notification_state"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False
        )
    )
    channel: str = Field(sa_column=sa.Column(sa.String(50), nullable=False))
    episode: int = 1
    notified_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
    severity: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    alert_count: int = 0
    engagement: int = 0
    count: int = 0


class Silence(SQLModel, table=True):
    """Mute alerts matching brand/source/category/severity until ``ends_at``."""

    __tablename__ = "silences"

    id: int | None = Field(default=None, primary_key=True)
    matchers: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    starts_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
    ends_at: datetime = _ts(nullable=False, index=True)  # type: ignore[assignment]
    comment: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_by: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    created_at: datetime = _ts(nullable=False)  # type: ignore[assignment]


class AlertRecord(SQLModel, table=True):
    """One alert per mention; its severity may rise as the mention spreads.

    The one stored shape of an alert: ingest writes it, incidents file it, the digest lists
    it. What a message says about it is :class:`emberwatch.alerts.view.AlertView`.
    """

    __tablename__ = "alerts"

    id: int | None = Field(default=None, primary_key=True)
    mention_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("mentions.id"), nullable=False, unique=True)
    )
    incident_id: int | None = Field(
        default=None, sa_column=sa.Column(sa.Integer, sa.ForeignKey("incidents.id"), index=True)
    )
    silenced_by: int | None = Field(
        default=None, sa_column=sa.Column(sa.Integer, sa.ForeignKey("silences.id"))
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
    ``attempts`` counts sends whose outcome was learned; ``ambiguous_attempts`` counts
    claims whose lease ran out with no outcome (a crash or hang mid-send).
    """

    __tablename__ = "deliveries"
    __table_args__ = (sa.Index("ix_deliveries_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    dedup_key: str = Field(sa_column=sa.Column(sa.String(300), unique=True, nullable=False))
    channel: str = Field(sa_column=sa.Column(sa.String(30), nullable=False))
    kind: str = Field(default="alert", sa_column=sa.Column(sa.String(30), nullable=False))
    recipient: str | None = Field(default=None, sa_column=sa.Column(sa.String(300)))
    alert_id: int | None = Field(
        default=None, sa_column=sa.Column(sa.Integer, sa.ForeignKey("alerts.id"), index=True)
    )
    incident_id: int | None = Field(
        default=None, sa_column=sa.Column(sa.Integer, sa.ForeignKey("incidents.id"), index=True)
    )
    expires_at: datetime | None = _ts()  # type: ignore[assignment]
    payload: str = Field(default="{}", sa_column=sa.Column(sa.Text, nullable=False))
    status: str = Field(default="pending", sa_column=sa.Column(sa.String(20), nullable=False))
    attempts: int = 0
    ambiguous_attempts: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    created_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
    next_attempt_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
    lease_until: datetime | None = _ts()  # type: ignore[assignment]
    leased_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    sent_at: datetime | None = _ts()  # type: ignore[assignment]
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))


class Rollup(SQLModel, table=True):
    """A notification a channel's noise budget held back, to be summed up, never dropped."""

    __tablename__ = "rollups"

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(sa_column=sa.Column(sa.String(50), nullable=False))
    incident_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("incidents.id"), nullable=False)
    )
    brand: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    source_name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    category: str = Field(sa_column=sa.Column(sa.String(30), nullable=False))
    created_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
    delivery_id: int | None = Field(
        default=None, sa_column=sa.Column(sa.Integer, sa.ForeignKey("deliveries.id"), index=True)
    )


class ChannelHealth(SQLModel, table=True):
    """A channel found broken (Slack 403/404/410): said loudly once per broken spell."""

    __tablename__ = "channel_health"

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(sa_column=sa.Column(sa.String(50), unique=True, nullable=False))
    broken_since: datetime | None = _ts()  # type: ignore[assignment]
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    notified: bool = False


class ChannelPacing(SQLModel, table=True):
    """The latest send slot handed out per channel (a Slack webhook), shared by every node.

    A node reserves the next slot with a conditional update (see
    :func:`emberwatch.outbox.reserve_slot`) and waits for it, so nodes together keep to the
    channel's rate. ``channel`` is the channel's name and a hash of its webhook URL
    (:func:`emberwatch.delivery.pacing_key`), never the URL itself (it is a secret).
    ``last_slot_at`` may lie in the future.
    """

    __tablename__ = "channel_pacing"

    channel: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    last_slot_at: datetime = _ts(nullable=False)  # type: ignore[assignment]


# -- console users and their logins (emberwatch.console.users) --------------------------------


class UserRecord(SQLModel, table=True):
    """A person who may use the console, with a role: ``viewer``, ``responder`` or ``admin``.

    ``password_hash`` is an argon2id hash (never the password). ``locked_until`` is set when
    too many wrong passwords arrive (see :data:`emberwatch.console.users.LOCKOUT_FAILURES`).
    """

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=sa.Column(sa.String(100), unique=True, nullable=False))
    role: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    password_hash: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    created_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
    password_changed_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
    locked_until: datetime | None = _ts()  # type: ignore[assignment]


class ConsoleSession(SQLModel, table=True):
    """A console login: the cookie carries a random token, this row only its SHA-256, so a
    copy of the database cannot be replayed as a cookie. Logout, a password change and
    removing the user delete the rows; ``expires_at`` ends the rest."""

    __tablename__ = "console_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_column=sa.Column(sa.String(64), unique=True, nullable=False))
    user_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    created_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
    expires_at: datetime = _ts(nullable=False)  # type: ignore[assignment]


class LoginFailure(SQLModel, table=True):
    """One wrong password for a known user; enough of them in a window lock the user."""

    __tablename__ = "login_failures"
    __table_args__ = (sa.Index("ix_login_failures_user_at", "user_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        )
    )
    at: datetime = _ts(nullable=False)  # type: ignore[assignment]


class SentDigest(SQLModel, table=True):
    """A digest as it was sent, for the console's ``/digests``: the outbox row keeps only
    its date, and rebuilding it later would show today's data, not what people read."""

    __tablename__ = "sent_digests"

    id: int | None = Field(default=None, primary_key=True)
    day: str = Field(sa_column=sa.Column(sa.String(10), unique=True, nullable=False))
    subject: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    text: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    html: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    sent_at: datetime = _ts(nullable=False)  # type: ignore[assignment]


def utcnow() -> datetime:
    return datetime.now(UTC)
