"""The outbox: durable delivery of alerts and digests.

Rows are written in the same transaction as the change that causes them (see
:mod:`emberwatch.pipeline`). A worker *claims* a due row by setting a lease with a
conditional update (``FOR UPDATE SKIP LOCKED`` on PostgreSQL so workers never wait on
each other), sends, and only then marks it sent. A crash between claim and send leaves the
lease to expire and the row is sent by the next worker; the only possible duplicate is a
send whose outcome was never learned. Retrying lives here and nowhere else.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio
import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from emberwatch.config import Config
from emberwatch.errors import DeliveryError
from emberwatch.models import AlertRecord, Delivery

log = logging.getLogger("emberwatch.outbox")

WORKER_ID = f"{socket.gethostname()}-{os.getpid()}"
MAX_RETRY_DELAY = timedelta(minutes=30)


def alert_channels(config: Config) -> list[str]:
    channels = []
    if config.channels.slack is not None:
        channels.append("slack")
    if config.channels.email is not None:
        channels.append("email")
    return channels


def enqueue(
    session: Session,
    *,
    dedup_key: str,
    channel: str,
    now: datetime,
    alert_id: int | None = None,
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
            alert_id=alert_id,
            payload=json.dumps(payload or {}),
            created_at=now,
            next_attempt_at=now,
        )
    )
    return True


def enqueue_alert(session: Session, config: Config, alert: AlertRecord, now: datetime) -> None:
    """One delivery per alert channel; a severity rise gets its own, so it is told again."""
    assert alert.id is not None
    for channel in alert_channels(config):
        enqueue(
            session,
            dedup_key=f"alert:{alert.id}:{channel}:{alert.severity}",
            channel=channel,
            alert_id=alert.id,
            now=now,
        )


@dataclass(frozen=True)
class Claimed:
    id: int
    channel: str
    alert_id: int | None
    payload: dict[str, Any]
    attempts: int


def claim_due(
    engine: Engine, now: datetime, lease: timedelta, limit: int = 20, worker: str = WORKER_ID
) -> list[Claimed]:
    """Lease up to ``limit`` due rows for this worker."""
    claimed: list[Claimed] = []
    with Session(engine) as session:
        due = (
            select(Delivery)
            .where(
                Delivery.status == "pending",
                Delivery.next_attempt_at <= now,  # type: ignore[operator]
                sa.or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),  # type: ignore[union-attr,operator]
            )
            .order_by(Delivery.id)  # type: ignore[arg-type]
            .limit(limit)
        )
        if engine.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        rows = session.exec(due).all()
        for row in rows:
            # Conditional on the lease still being free: on SQLite this is the lock.
            result = session.execute(
                sa.update(Delivery)
                .where(
                    Delivery.id == row.id,  # type: ignore[arg-type]
                    Delivery.status == "pending",
                    sa.or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),  # type: ignore[union-attr,operator]
                )
                .values(lease_until=now + lease, leased_by=worker, attempts=Delivery.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(
                    Claimed(
                        row.id, row.channel, row.alert_id, json.loads(row.payload), row.attempts + 1
                    )  # type: ignore[arg-type]
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


def mark_sent(engine: Engine, delivery_id: int, now: datetime) -> None:
    with Session(engine) as session:
        session.execute(
            sa.update(Delivery)
            .where(Delivery.id == delivery_id)  # type: ignore[arg-type]
            .values(status="sent", sent_at=now, lease_until=None, last_error=None)
        )
        session.commit()


def mark_failed(
    engine: Engine, item: Claimed, error: DeliveryError, now: datetime, max_attempts: int
) -> str:
    """Record a failed attempt: schedule a retry, or give up. Returns the new status."""
    payload = dict(item.payload)
    if error.plain_text_fallback and not payload.get("plain"):
        payload["plain"] = True
        status, next_at = "pending", now
    elif error.permanent or item.attempts >= max_attempts:
        status, next_at = "failed", now
    else:
        status, next_at = "pending", now + retry_delay(item.attempts, error.retry_after)
    if error.receiver_broken:
        payload["receiver_broken"] = True
    with Session(engine) as session:
        session.execute(
            sa.update(Delivery)
            .where(Delivery.id == item.id)  # type: ignore[arg-type]
            .values(
                status=status,
                next_attempt_at=next_at,
                lease_until=None,
                last_error=str(error)[:500],
                payload=json.dumps(payload),
            )
        )
        session.commit()
    level = logging.ERROR if status == "failed" else logging.WARNING
    log.log(level, "delivery %s (%s): %s; now %s", item.id, item.channel, error, status)
    return status


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


async def deliver_due(
    config: Config, engine: Engine, http: httpx.AsyncClient, now: datetime
) -> DeliveryReport:
    """Claim and send every due delivery once."""
    from emberwatch.channels import dispatch  # late: channels import the alert views

    report = DeliveryReport()
    claimed = await anyio.to_thread.run_sync(claim_due, engine, now, config.delivery.lease)
    for item in claimed:
        try:
            await dispatch.send(config, engine, http, item)
        except DeliveryError as error:
            status = await anyio.to_thread.run_sync(
                mark_failed, engine, item, error, now, config.delivery.max_attempts
            )
            if status == "failed":
                report.failed += 1
            else:
                report.retrying += 1
            continue
        await anyio.to_thread.run_sync(mark_sent, engine, item.id, now)
        report.sent += 1
    return report


def pending_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(
            select(sa.func.count()).select_from(Delivery).where(Delivery.status == "pending")
        ).one()
