"""The delivery worker: claim due outbox rows, send each through its channel, mark it.

The stages, in the order :func:`deliver_due` runs them for each claimed row:

1. *expire*: a row past its deadline is marked expired, unsent;
2. *give up on ambiguity*: a row whose sends ended with no outcome too often is failed;
3. *pace*: wait for the channel's next send slot, shared by every node (or give the row
   back for a later pass);
4. *load*: read what the row is about, as it stands now (:func:`content`): an incident's
   view, a :class:`~emberwatch.channels.base.Notice` Emberwatch wrote, or the digest's
   :class:`~emberwatch.channels.base.Report` (built, rendered and kept when it goes out);
5. *send*: the channel (:mod:`emberwatch.channels`) renders and classifies;
6. *record*: :func:`~emberwatch.outbox.mark_sent` or :func:`~emberwatch.outbox.mark_failed`
   (which decides the retry), metrics, and the channel's health: a broken channel is
   announced once through the channels that reach people by address.

Rendering happens at send time, from current rows, so a retried message shows the
incident as it stands.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import anyio
import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from emberwatch import digest, metrics
from emberwatch.alerts.view import AlertView, load_notice
from emberwatch.channels import CHANNELS
from emberwatch.channels.base import Envelope, Notice, Report
from emberwatch.config import Config
from emberwatch.errors import DeliveryError
from emberwatch.models import ChannelHealth, Delivery
from emberwatch.outbox import (
    Claimed,
    claim_due,
    enqueue_message,
    mark_ambiguous_failed,
    mark_expired,
    mark_failed,
    mark_sent,
    release,
    reserve_slot,
)
from emberwatch.text import one_line

log = logging.getLogger("emberwatch.delivery")


def notice_lines(item: Claimed) -> tuple[str, list[str]]:
    """Subject and lines of a notice Emberwatch wrote itself."""
    p: dict[str, Any] = item.payload
    if item.kind == "rollup":
        total = p.get("total", 0)
        noun = "alert" if total == 1 else "alerts"
        return f"[Emberwatch] {total} more {noun}, rolled up", list(p.get("lines", []))
    if item.kind == "channel_broken":
        return (
            f"[Emberwatch] The {p.get('channel')} channel is broken",
            [
                f"Emberwatch can no longer post to {p.get('channel')}: {p.get('error')}.",
                "Its alerts are kept and retried until their deadline; fix the webhook "
                "(or the channel it points to) and they will go out.",
            ],
        )
    if item.kind == "source_unhealthy":
        return (
            f"[Emberwatch] Source {p.get('source')} is unhealthy",
            [
                f"No successful poll of {p.get('source')} since {p.get('since')} "
                f"({p.get('failures')} failures in a row).",
                f"Last error: {p.get('error')}",
                "Mentions from this source are not being heard until it recovers.",
            ],
        )
    if item.kind == "source_recovered":
        return (
            f"[Emberwatch] Source {p.get('source')} recovered",
            [f"{p.get('source')} polls successfully again (unhealthy since {p.get('since')})."],
        )
    raise DeliveryError(f"{item.channel}: unknown notice kind {item.kind!r}", permanent=True)


def _view(config: Config, engine: Engine, item: Claimed) -> AlertView | None:
    who = item.recipient or item.channel
    with Session(engine) as session:
        return load_notice(session, config, item.alert_id or 0, item.incident_id, item.payload, who)


async def content(
    config: Config, engine: Engine, item: Claimed, now: datetime
) -> AlertView | Notice | Report:
    """What a claimed row is about, read now."""
    if item.kind == digest.KIND:
        day = date.fromisoformat(item.payload["date"])
        return await anyio.to_thread.run_sync(digest.load_report, config, engine, day, now)
    if item.kind in ("alert", "escalation"):
        view = await anyio.to_thread.run_sync(_view, config, engine, item)
        if view is None:
            raise DeliveryError(f"{item.channel}: alert {item.alert_id} is gone", permanent=True)
        return view
    subject, lines = notice_lines(item)
    # A notice quotes a source's or a channel's last error: each line stays one line.
    return Notice(one_line(subject), [one_line(line) for line in lines])


async def send(
    config: Config, engine: Engine, http: httpx.AsyncClient, item: Claimed, now: datetime
) -> None:
    """Load and send one claimed row; raise DeliveryError, classified, when it did not go."""
    channel = CHANNELS.get(item.channel)
    if channel is None:
        raise DeliveryError(f"unknown channel {item.channel!r}", permanent=True)
    settings = config.channel_settings(item.channel)
    if settings is None:
        raise DeliveryError(f"{item.channel}: not configured any more", permanent=True)
    loaded = await content(config, engine, item, now)
    envelope = Envelope(
        item.channel, item.kind, settings, http, item.recipient, item.payload, config
    )
    outcome = await channel.send(envelope, loaded)
    if outcome.status != "sent":
        raise outcome.as_error()


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    expired: int = 0
    deferred: int = 0  # given back untried: no send slot free in time


def pacing_key(config: Config, channel: str) -> str | None:
    """The pacing key of a channel (never a secret), or None when it is not paced."""
    settings = config.channel_settings(channel)
    if channel not in CHANNELS or settings is None:
        return None
    return CHANNELS[channel].pacing_key(settings)


async def _wait_for_slot(
    config: Config, engine: Engine, item: Claimed, budget_ends: float, full: set[str]
) -> bool:
    """Wait for the item's send slot; False when its channel has none free in time.

    ``budget_ends`` (monotonic) bounds the wait to half the lease after the claim, so a
    row is sent well before its lease runs out and another worker could claim it too.
    ``full`` remembers pacing keys found without a slot in this batch.
    """
    gap = CHANNELS[item.channel].min_gap(config) if item.channel in CHANNELS else timedelta(0)
    key = pacing_key(config, item.channel)
    if key is None or gap <= timedelta(0):
        return True
    if key in full:
        return False
    max_wait = timedelta(seconds=budget_ends - time.monotonic())
    slot = None
    if max_wait >= timedelta(0):
        slot = await anyio.to_thread.run_sync(reserve_slot, engine, key, gap, max_wait)
    if slot is None:
        full.add(key)
        return False
    # Sleep until the slot itself: the commit and the thread hop are already behind us.
    await anyio.sleep(max(0.0, slot - time.monotonic()))
    return True


async def deliver_due(
    config: Config, engine: Engine, http: httpx.AsyncClient, now: datetime
) -> DeliveryReport:
    """Claim and send every due delivery once."""
    report = DeliveryReport()
    claimed = await anyio.to_thread.run_sync(claim_due, engine, now, config.delivery.lease)
    budget_ends = time.monotonic() + config.delivery.lease.total_seconds() / 2
    full: set[str] = set()
    for item in claimed:
        if item.expires_at is not None and now > item.expires_at:
            await anyio.to_thread.run_sync(mark_expired, engine, item, now)
            report.expired += 1
            continue
        if item.ambiguous_attempts >= config.delivery.max_ambiguous_attempts:
            await anyio.to_thread.run_sync(
                mark_ambiguous_failed, engine, item, config.delivery.max_ambiguous_attempts
            )
            metrics.DELIVERY_ATTEMPTS.labels(channel=item.channel, outcome="failed").inc()
            report.failed += 1
            continue
        if not await _wait_for_slot(config, engine, item, budget_ends, full):
            # Other workers hold this channel's next slots: leave the row to a later pass.
            await anyio.to_thread.run_sync(release, engine, item.id)
            report.deferred += 1
            continue
        try:
            await send(config, engine, http, item, now)
        except DeliveryError as error:
            status = await anyio.to_thread.run_sync(
                mark_failed, engine, item, error, now, config.delivery.max_attempts
            )
            if error.channel_broken:
                await anyio.to_thread.run_sync(
                    channel_broken, engine, config, item.channel, str(error), now
                )
            metrics.DELIVERY_ATTEMPTS.labels(channel=item.channel, outcome=status).inc()
            if status == "failed":
                report.failed += 1
            else:
                report.retrying += 1
            continue
        await anyio.to_thread.run_sync(mark_sent, engine, item.id, now)
        metrics.DELIVERY_ATTEMPTS.labels(channel=item.channel, outcome="sent").inc()
        await anyio.to_thread.run_sync(channel_healthy, engine, item.channel, now)
        report.sent += 1
    return report


def channel_broken(engine: Engine, config: Config, channel: str, error: str, now: datetime) -> None:
    """Say loudly, once per broken spell, through the channels that reach people by
    address (email), to their recipients and the escalation list."""
    with Session(engine) as session:
        health = session.exec(
            select(ChannelHealth).where(ChannelHealth.channel == channel).with_for_update()
        ).first()
        if health is None:
            health = ChannelHealth(channel=channel)
        if health.broken_since is None:
            health.broken_since, health.notified = now, False
        health.last_error = error[:500]
        loud = [
            name
            for name, channel in CHANNELS.items()
            if channel.targets_addresses
            and name != channel
            and config.channel_settings(name) is not None
        ]
        for name in loud if not health.notified else []:
            settings = config.channel_settings(name)
            recipients = sorted({*settings.recipients, *config.escalation.emails})
            enqueue_message(
                session,
                config,
                channel=name,
                key=f"channel-broken:{channel}:{now:%Y%m%dT%H%M%S}",
                now=now,
                kind="channel_broken",
                recipients=recipients,
                payload={"channel": channel, "error": error[:300]},
            )
            health.notified = True
        session.add(health)
        session.commit()


def channel_healthy(engine: Engine, channel: str, now: datetime | None = None) -> None:
    """A send to ``channel`` succeeded: end its broken spell, and release at once the
    rows held back while it was broken (they would otherwise wait out
    :data:`BROKEN_CHANNEL_RETRY`)."""
    with Session(engine) as session:
        health = session.exec(select(ChannelHealth).where(ChannelHealth.channel == channel)).first()
        if health is None or health.broken_since is None:
            return
        health.broken_since, health.notified, health.last_error = None, False, None
        session.add(health)
        released = session.execute(
            sa.update(Delivery)
            .where(
                Delivery.channel == channel,  # type: ignore[arg-type]
                Delivery.status == "pending",  # type: ignore[arg-type]
                Delivery.lease_until.is_(None),  # type: ignore[union-attr]
                Delivery.next_attempt_at > (now or datetime.now(UTC)),  # type: ignore[operator]
            )
            .values(next_attempt_at=now or datetime.now(UTC))
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        session.commit()
    log.warning("channel %s works again; %d held deliveries due now", channel, released)
