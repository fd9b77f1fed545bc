"""When the digest is due, and queuing it: the digest is a producer like the alert policy.

The digest for a local date is enqueued with the key ``digest:<date>``, so it is sent at
most once per day however often the scheduler fires or the process restarts.
:func:`digest_due` is the pure "queue it now?" decision the scheduler asks every minute.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from emberwatch.models import (
    Delivery,
)
from emberwatch.outbox import enqueue

KIND = "digest"  # the outbox rows' kind, and the channel that sends them
DEDUP_PREFIX = f"{KIND}:"


# -- days and scheduling ------------------------------------------------------------------


def day_bounds(day: date, zone: str) -> tuple[datetime, datetime]:
    """The UTC instants where a local calendar day starts and ends (DST-aware)."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def digest_day(now: datetime, zone: str) -> date:
    """The day a digest sent at ``now`` reports on: the previous local calendar day."""
    return now.astimezone(ZoneInfo(zone)).date() - timedelta(days=1)


def digest_due(now: datetime, send_at: time, zone: str, last_queued: date | None) -> date | None:
    """The day whose digest should be queued at ``now``, or None.

    Due once the local wall clock in ``zone`` has reached ``send_at`` today and yesterday's
    digest is newer than ``last_queued`` (the newest day already queued). "Reached" holds
    from the first moment the wall clock shows ``send_at`` or later: in a spring-forward gap
    that is the jump itself, and in a fall-back overlap the first of the two passes, so the
    repeated hour neither delays nor repeats it. A process that was down at send time queues
    the digest when it comes back the same day.
    """
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    day = local.date() - timedelta(days=1)
    if last_queued is not None and last_queued >= day:
        return None
    first_pass = datetime.combine(local.date(), send_at.replace(tzinfo=None), tzinfo=tz)
    reached = local.time() >= send_at.replace(tzinfo=None) or now >= first_pass
    return day if reached else None


def last_queued_day(engine: Engine) -> date | None:
    """The newest day whose digest was queued (``digest:<date>`` in the outbox)."""
    with Session(engine) as session:
        keys = session.exec(
            select(Delivery.dedup_key)
            .where(Delivery.dedup_key.startswith(DEDUP_PREFIX))  # type: ignore[attr-defined]
            .order_by(Delivery.dedup_key.desc())  # type: ignore[attr-defined]
            .limit(10)
        ).all()
    for key in keys:  # ISO dates sort as text; skip any key that is not one
        try:
            return date.fromisoformat(key.removeprefix(DEDUP_PREFIX))
        except ValueError:
            continue
    return None


def enqueue_digest(engine: Engine, day: date, now: datetime) -> bool:
    """Queue the digest for ``day`` unless it already was; True when newly queued."""
    with Session(engine) as session:
        added = enqueue(
            session,
            dedup_key=f"{DEDUP_PREFIX}{day.isoformat()}",
            channel=KIND,
            kind=KIND,
            now=now,
            payload={"date": day.isoformat()},
        )
        try:
            session.commit()
        except sa.exc.IntegrityError:  # another node queued it first
            session.rollback()
            return False
        return added
