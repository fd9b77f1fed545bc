"""The ops team's daily digest: what was heard yesterday, sent once a day by email.

The digest for a local date is enqueued with the key ``digest:<date>``, so it is sent at
most once per day however often the scheduler fires or the process restarts; it is sent on
quiet days too, so that silence is visibly silence.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import anyio
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from emberwatch.channels import email
from emberwatch.config import Config
from emberwatch.errors import DeliveryError
from emberwatch.models import AlertRecord, Delivery, MentionRecord, SourceState
from emberwatch.outbox import Claimed, enqueue


@dataclass
class Digest:
    day: date
    zone: str
    mentions: int = 0
    by_brand: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    by_sentiment: Counter[str] = field(default_factory=Counter)
    alerts: list[tuple[int, str, str, str, str]] = field(default_factory=list)
    failed_deliveries: int = 0
    unhealthy_sources: list[tuple[str, str]] = field(default_factory=list)


def day_bounds(day: date, zone: str) -> tuple[datetime, datetime]:
    """The UTC instants where a local calendar day starts and ends (DST-aware)."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def sentiment_label(value: float | None) -> str:
    if value is None:
        return "unscored"
    return "negative" if value <= -0.05 else "positive" if value >= 0.05 else "neutral"


def build_digest(engine: Engine, day: date, zone: str) -> Digest:
    start, end = day_bounds(day, zone)
    digest = Digest(day=day, zone=zone)
    with Session(engine) as session:
        rows = session.exec(
            select(MentionRecord.brand, MentionRecord.source_name, MentionRecord.sentiment).where(
                MentionRecord.first_seen_at >= start,  # type: ignore[operator]
                MentionRecord.first_seen_at < end,  # type: ignore[operator]
            )
        ).all()
        for brand, source_name, sentiment in rows:
            digest.mentions += 1
            digest.by_brand[brand] += 1
            digest.by_source[source_name] += 1
            digest.by_sentiment[sentiment_label(sentiment)] += 1
        alerts = session.exec(
            select(AlertRecord)
            .where(AlertRecord.created_at >= start, AlertRecord.created_at < end)  # type: ignore[operator]
            .order_by(AlertRecord.id)  # type: ignore[arg-type]
        ).all()
        digest.alerts = [(a.id, a.severity, a.category, a.brand, a.source_name) for a in alerts]  # type: ignore[misc]
        digest.failed_deliveries = session.exec(
            select(sa.func.count()).select_from(Delivery).where(Delivery.status == "failed")
        ).one()
        for state in session.exec(select(SourceState).where(SourceState.consecutive_failures > 0)):
            digest.unhealthy_sources.append((state.name, state.last_error or ""))
    return digest


def render(digest: Digest) -> tuple[str, str, str]:
    """(subject, text, html) of a digest."""
    subject = (
        f"[Emberwatch] Daily digest for {digest.day.isoformat()}: "
        f"{digest.mentions} mentions, {len(digest.alerts)} alerts"
    )
    context = {"d": digest}
    return (
        subject,
        email.render_template("digest.txt", **context),
        email.render_template("digest.html", **context),
    )


def enqueue_digest(engine: Engine, day: date, now: datetime) -> bool:
    """Queue the digest for ``day`` unless it already was; True when newly queued."""
    with Session(engine) as session:
        added = enqueue(
            session,
            dedup_key=f"digest:{day.isoformat()}",
            channel="digest",
            now=now,
            payload={"date": day.isoformat()},
        )
        try:
            session.commit()
        except sa.exc.IntegrityError:  # another node queued it first
            session.rollback()
            return False
        return added


def digest_day(now: datetime, zone: str) -> date:
    """The day a digest sent at ``now`` reports on: the previous local calendar day."""
    return now.astimezone(ZoneInfo(zone)).date() - timedelta(days=1)


async def send_stored(config: Config, engine: Engine, item: Claimed) -> None:
    channel, mail = config.channels.digest, config.channels.email
    if channel is None or mail is None:
        raise DeliveryError("digest: not configured any more", permanent=True)
    day = date.fromisoformat(item.payload["date"])
    digest = await anyio.to_thread.run_sync(build_digest, engine, day, channel.timezone)
    subject, text, html = render(digest)
    message = email.build_message(
        sender=mail.sender, recipients=channel.recipients, subject=subject, text=text, html=html
    )
    await email.send(message, mail)
