"""The outbox: the queue of messages to channels (enqueue, claim, mark).

Producers write rows in the same transaction as the change that causes them: the alert
policy (:mod:`emberwatch.alerts.policy`) in its own transactions, the source health
check, and the digest (:mod:`emberwatch.digest.schedule`). The delivery worker
(:mod:`emberwatch.delivery`) *claims* a due row by setting a lease with a conditional
update (``FOR UPDATE SKIP LOCKED`` on PostgreSQL so workers never wait on each other),
sends, and only then marks it sent. A crash between claim and send leaves the lease to
expire and the row is sent by the next worker; the only possible duplicate is a send whose
outcome was never learned. When to retry is decided here (:func:`mark_failed`), once.

Attempts are counted when their outcome is learned (sent, a retryable failure, a
permanent one), against ``[delivery] max_attempts``. A claim whose lease ran out with no
outcome (the worker was killed or hung mid-send) is an *ambiguous* attempt: the message
may or may not have gone. The next claim counts it in ``ambiguous_attempts``, against its
own, larger ``[delivery] max_ambiguous_attempts``, so that crashes never use up the
attempts a channel's real answers are owed, and a row that kills every worker that
sends it still ends.

Pacing is shared the same way: a channel that takes about one message a second (a Slack
webhook) has a row in ``channel_pacing`` holding the latest send slot handed out. A
worker reserves the next slot with a conditional update (:func:`reserve_slot`) and waits
for it, so every node together keeps to the rate, not each node alone.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, select

from emberwatch.config import Config
from emberwatch.errors import DeliveryError
from emberwatch.models import ChannelPacing, Delivery

log = logging.getLogger("emberwatch.outbox")

WORKER_ID = f"{socket.gethostname()}-{os.getpid()}"
MAX_RETRY_DELAY = timedelta(minutes=30)
BROKEN_CHANNEL_RETRY = timedelta(minutes=10)
# A send slot starts at least this far ahead of its reservation, so the reservation's own
# commit and thread hop never make a send late (a late send crowds the next one).
SLOT_LEAD = timedelta(milliseconds=100)


def enqueue(
    session: Session,
    *,
    dedup_key: str,
    channel: str,
    now: datetime,
    deadline: timedelta | None = None,
    kind: str = "alert",
    recipient: str | None = None,
    alert_id: int | None = None,
    incident_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> bool:
    """Add one outbox row unless one with the same key exists; True when added."""
    exists = session.exec(select(Delivery.id).where(Delivery.dedup_key == dedup_key)).first()
    if exists is not None:
        return False
    session.add(
        Delivery(
            dedup_key=dedup_key,
            channel=channel,
            kind=kind,
            recipient=recipient,
            alert_id=alert_id,
            incident_id=incident_id,
            payload=json.dumps(payload or {}),
            created_at=now,
            next_attempt_at=now,
            expires_at=None if deadline is None else now + deadline,
        )
    )
    return True


def enqueue_message(
    session: Session,
    config: Config,
    *,
    channel: str,
    key: str,
    now: datetime,
    kind: str,
    recipients: list[str] | None = None,
    **fields: Any,
) -> int:
    """Queue one message to a channel, as its rows: the channel says how a message fans
    out (``targets``). Email gets a row per recipient so that a recipient's permanent
    refusal fails only that row, and a temporary one retries only that recipient.
    """
    deadline = config.deadline(channel)
    settings = config.channel_settings(channel)
    targets = (
        config.channel(channel).targets(settings, recipients)
        if settings is not None
        else list(recipients or [None])
    )
    return sum(
        enqueue(
            session,
            dedup_key=key if target is None else f"{key}:{target}",
            channel=channel,
            now=now,
            deadline=deadline,
            kind=kind,
            recipient=target,
            **fields,
        )
        for target in targets
    )


@dataclass(frozen=True)
class Claimed:
    id: int
    channel: str
    kind: str
    recipient: str | None
    alert_id: int | None
    incident_id: int | None
    payload: dict[str, Any]
    attempts: int  # the number of this attempt, if its outcome is learned
    expires_at: datetime | None
    ambiguous_attempts: int = 0  # earlier claims whose lease ran out with no outcome


def claim_due(
    engine: Engine, now: datetime, lease: timedelta, limit: int = 20, worker: str = WORKER_ID
) -> list[Claimed]:
    """Lease up to ``limit`` due rows for this worker.

    A row whose previous lease ran out (every outcome, and :func:`release`, clears the
    lease) had a send with no outcome: it is counted as ambiguous here, not as an attempt.
    """
    free = sa.or_(Delivery.lease_until.is_(None), Delivery.lease_until < now)  # type: ignore[union-attr,operator]
    claimed: list[Claimed] = []
    with Session(engine) as session:
        due = (
            select(Delivery)
            .where(Delivery.status == "pending", Delivery.next_attempt_at <= now, free)  # type: ignore[operator]
            .order_by(Delivery.next_attempt_at, Delivery.id)  # type: ignore[arg-type]
            .limit(limit)
        )
        if engine.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        for row in session.exec(due).all():
            # Conditional on the lease still being free, and as read (so the ambiguous
            # attempt is counted once): on SQLite this is the lock.
            lapsed = row.lease_until is not None
            ambiguous = row.ambiguous_attempts + int(lapsed)
            as_read = (
                Delivery.lease_until == row.lease_until  # type: ignore[comparison-overlap]
                if lapsed
                else Delivery.lease_until.is_(None)  # type: ignore[union-attr]
            )
            result = session.execute(
                sa.update(Delivery)
                .where(Delivery.id == row.id, Delivery.status == "pending", free, as_read)  # type: ignore[arg-type]
                .values(lease_until=now + lease, leased_by=worker, ambiguous_attempts=ambiguous)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(
                    Claimed(
                        id=row.id,  # type: ignore[arg-type]
                        channel=row.channel,
                        kind=row.kind,
                        recipient=row.recipient,
                        alert_id=row.alert_id,
                        incident_id=row.incident_id,
                        payload=json.loads(row.payload),
                        attempts=row.attempts + 1,
                        expires_at=row.expires_at,
                        ambiguous_attempts=ambiguous,
                    )
                )
        session.commit()
    return claimed


def retry_delay(attempts: int, retry_after: float | None) -> timedelta:
    """Exponential backoff with full jitter, capped, and never sooner than Retry-After."""
    base = min(timedelta(seconds=2**attempts), MAX_RETRY_DELAY)
    delay = base * random.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


def _finish(engine: Engine, delivery_id: int, **values: Any) -> None:
    with Session(engine) as session:
        session.execute(
            sa.update(Delivery)
            .where(Delivery.id == delivery_id)  # type: ignore[arg-type]
            .values(lease_until=None, **values)
        )
        session.commit()


def mark_sent(engine: Engine, delivery_id: int, now: datetime) -> None:
    _finish(
        engine,
        delivery_id,
        status="sent",
        sent_at=now,
        last_error=None,
        attempts=Delivery.attempts + 1,
    )


def release(engine: Engine, delivery_id: int) -> None:
    """Give a claimed row back untried: due again at once, no attempt counted."""
    _finish(engine, delivery_id)


def mark_ambiguous_failed(engine: Engine, item: Claimed, max_ambiguous: int) -> None:
    """Give up on a row whose sends ended with no outcome ``max_ambiguous`` times."""
    error = (
        f"{item.channel}: {item.ambiguous_attempts} sends ended with no outcome "
        f"(the worker was killed or hung mid-send; limit {max_ambiguous})"
    )
    log.error("delivery %s: %s; now failed", item.id, error, extra={"delivery_id": item.id})
    _finish(engine, item.id, status="failed", last_error=error)


def mark_expired(engine: Engine, item: Claimed, now: datetime) -> None:
    log.error(
        "delivery %s (%s %s): deadline passed; marked expired", item.id, item.channel, item.kind
    )
    _finish(engine, item.id, status="expired", last_error=f"expired at {now:%Y-%m-%d %H:%M}Z")


def mark_failed(
    engine: Engine, item: Claimed, error: DeliveryError, now: datetime, max_attempts: int
) -> str:
    """Record a failed attempt: schedule a retry, or give up. Returns the new status."""
    payload = dict(item.payload)
    if error.plain_text_fallback and not payload.get("plain"):
        payload["plain"] = True
        status, next_at = "pending", now
    elif error.channel_broken:
        # Keep it: the channel may be fixed before the deadline. Try again now and then.
        status, next_at = "pending", now + BROKEN_CHANNEL_RETRY
    elif error.permanent or item.attempts >= max_attempts:
        status, next_at = "failed", now
    else:
        status, next_at = "pending", now + retry_delay(item.attempts, error.retry_after)
    _finish(
        engine,
        item.id,
        attempts=Delivery.attempts + 1,
        status=status,
        next_attempt_at=next_at,
        last_error=str(error)[:500],
        payload=json.dumps(payload),
    )
    level = logging.ERROR if status == "failed" else logging.WARNING
    log.log(
        level,
        "delivery %s (%s): %s; now %s",
        item.id,
        item.channel,
        error,
        status,
        extra={
            "delivery_id": item.id,
            "channel": item.channel,
            "alert_id": item.alert_id,
            "incident_id": item.incident_id,
        },
    )
    return status


def _database_now(connection: Connection) -> datetime:
    """The clock every node shares: PostgreSQL's. SQLite serves one node, on this machine."""
    if connection.dialect.name == "postgresql":
        now = connection.execute(sa.select(sa.func.clock_timestamp())).scalar_one()
        return now.astimezone(UTC)
    return datetime.now(UTC)


def reserve_slot(engine: Engine, key: str, gap: timedelta, max_wait: timedelta) -> float | None:
    """Reserve the next send slot of pacing ``key``; return it on this process's
    monotonic clock.

    The slot is ``gap`` after the latest slot any node reserved, or now (plus
    :data:`SLOT_LEAD`) if that is further back. It is taken with a conditional update on
    the latest slot as read (an insert for a new key), so two workers never get the
    same slot: the one that loses reads again. None, with nothing reserved, when the slot
    lies more than ``max_wait`` ahead.
    """
    table = ChannelPacing.__table__
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    while True:
        with engine.begin() as connection:
            now = _database_now(connection)
            here = time.monotonic()  # the same instant on the clock the caller sleeps by
            last = connection.execute(
                sa.select(table.c.last_slot_at).where(table.c.channel == key)
            ).scalar_one_or_none()
            slot = now + SLOT_LEAD if last is None else max(now + SLOT_LEAD, last + gap)
            if slot - now > max_wait:
                return None
            if last is None:
                take: sa.Executable = (
                    insert(table)
                    .values(channel=key, last_slot_at=slot)
                    .on_conflict_do_nothing(index_elements=["channel"])
                )
            else:
                take = (
                    sa.update(table)
                    .where(table.c.channel == key, table.c.last_slot_at == last)
                    .values(last_slot_at=slot)
                )
            # RETURNING, since a conflicting insert's row count is not reported everywhere.
            taken = connection.execute(take.returning(table.c.channel)).first()  # type: ignore[attr-defined]
            if taken is not None:
                return here + (slot - now).total_seconds()


def pending_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(
            select(sa.func.count()).select_from(Delivery).where(Delivery.status == "pending")
        ).one()


@dataclass(frozen=True)
class Retried:
    """What ``deliveries retry`` did with one row."""

    id: int
    retried: bool
    message: str


def retry_failed(
    engine: Engine,
    config: Config,
    ids: list[int] | None,
    *,
    by: str,
    now: datetime,
) -> list[Retried]:
    """Put failed deliveries back in the queue: pending, due now, with fresh attempts and a
    fresh deadline. ``ids`` None takes every failed row. Each row's ``last_error`` records
    who asked, when, and the error it had."""
    with Session(engine) as session:
        query = select(Delivery).order_by(Delivery.id)  # type: ignore[arg-type]
        if ids is None:
            query = query.where(Delivery.status == "failed")
        else:
            query = query.where(Delivery.id.in_(ids))  # type: ignore[union-attr]
        found = {d.id: d for d in session.exec(query)}
        done: list[Retried] = []
        for delivery_id in ids if ids is not None else list(found):
            row = found.get(delivery_id)
            if row is None:
                done.append(
                    Retried(delivery_id, False, f"delivery {delivery_id}: no such delivery")
                )
                continue
            if row.status != "failed":
                done.append(
                    Retried(
                        delivery_id,
                        False,
                        f"delivery {delivery_id}: {row.status}, not failed; left as it is",
                    )
                )
                continue
            note = f"retry asked by {by} at {now:%Y-%m-%d %H:%M}Z; before: {row.last_error}"
            updated = session.execute(
                sa.update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.status == "failed")  # type: ignore[arg-type]
                .values(
                    status="pending",
                    attempts=0,
                    ambiguous_attempts=0,
                    next_attempt_at=now,
                    expires_at=now + config.deadline(row.channel),
                    lease_until=None,
                    leased_by=None,
                    last_error=note[:500],
                )
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            if updated == 1:
                log.warning("delivery %s (%s): %s", delivery_id, row.channel, note)
                done.append(
                    Retried(delivery_id, True, f"delivery {delivery_id} ({row.channel}) queued")
                )
            else:
                done.append(
                    Retried(delivery_id, False, f"delivery {delivery_id}: changed meanwhile")
                )
        session.commit()
    return done
