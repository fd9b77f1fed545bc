"""The ops team's daily digest: what was heard yesterday, queued once a day.

Three steps, one module each: :mod:`~emberwatch.digest.schedule` decides when a day's
digest is due and queues it in the outbox like any other producer;
:mod:`~emberwatch.digest.gather` reads the day from the database; and
:mod:`~emberwatch.digest.render` turns it into subject, text and HTML when the delivery
worker picks the row up. Sending is the ``digest`` channel's
(:mod:`emberwatch.channels.digest`), through the email channel's SMTP server.

The digest for a local date is enqueued with the key ``digest:<date>``, so it is sent at
most once per day however often the scheduler fires or the process restarts; it is sent on
quiet days too, so that silence is visibly silence. :func:`digest_due` is the pure "queue
it now?" decision the scheduler asks every minute.

What it holds, for the reported local day (all read in a handful of queries):

- first, one line with the state of the day (:attr:`Digest.headline`): open incidents by
  severity, the oldest unacknowledged one and its age, escalations, failed deliveries and
  unhealthy sources; "All clear" only when there is none of these;
- what needs attention now: broken channels, failed or expired deliveries, unhealthy
  sources (a source not polled yet is "pending", not unhealthy);
- mention counts by brand, source and sentiment against the day before and the 7-day
  average, and a 14-day chart of volume and negative share;
- open incidents with their age, severity (a word as well as a colour), who acknowledged
  or snoozed them, a link to the post and signed links to act on them; time to
  acknowledge and to resolve, escalations, and who resolved what;
- what the noise controls held back: silenced alerts and rolled-up notifications;
- VIP mentions, and the top complaint themes with a lesson for each.
"""

from __future__ import annotations

from datetime import date

import anyio
import httpx
from sqlalchemy.engine import Engine

from emberwatch.channels import CHANNELS
from emberwatch.channels.base import Envelope
from emberwatch.config import Config
from emberwatch.digest.gather import DayVolume, Digest, build_digest, sentiment_label
from emberwatch.digest.render import (
    chart_bars,
    digest_message,
    keep_report,
    keep_sent,
    load_report,
    render,
    subject_line,
)
from emberwatch.digest.schedule import (
    KIND,
    day_bounds,
    digest_day,
    digest_due,
    enqueue_digest,
    last_queued_day,
)
from emberwatch.models import utcnow
from emberwatch.outbox import Claimed


async def send_stored(config: Config, engine: Engine, item: Claimed) -> None:
    """Build, keep and send one queued digest now (what the delivery worker does for a
    digest row); raises DeliveryError when it did not go."""
    day = date.fromisoformat(item.payload["date"])
    report = await anyio.to_thread.run_sync(load_report, config, engine, day, utcnow())
    channel = CHANNELS[item.channel]
    async with httpx.AsyncClient() as http:
        envelope = Envelope(
            item.channel,
            item.kind,
            getattr(config.channels, item.channel),
            http,
            item.recipient,
            item.payload,
            config,
        )
        outcome = await channel.send(envelope, report)
    if outcome.status != "sent":
        raise outcome.as_error()


__all__ = [
    "KIND",
    "DayVolume",
    "Digest",
    "build_digest",
    "chart_bars",
    "day_bounds",
    "digest_day",
    "digest_due",
    "digest_message",
    "enqueue_digest",
    "keep_report",
    "keep_sent",
    "last_queued_day",
    "load_report",
    "render",
    "send_stored",
    "sentiment_label",
    "subject_line",
]
