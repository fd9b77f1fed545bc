"""Route a claimed outbox row to its channel: render it from the database, then send."""

from __future__ import annotations

import anyio
import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session

from emberwatch.alerts.view import AlertView, load_alert_view
from emberwatch.channels import email, slack
from emberwatch.config import Config
from emberwatch.errors import DeliveryError
from emberwatch.outbox import Claimed


def _view(engine: Engine, alert_id: int) -> AlertView | None:
    with Session(engine) as session:
        return load_alert_view(session, alert_id)


async def send(config: Config, engine: Engine, http: httpx.AsyncClient, item: Claimed) -> None:
    if item.channel == "digest":
        from emberwatch.channels import digest

        await digest.send_stored(config, engine, item)
        return
    if item.alert_id is None:
        raise DeliveryError(f"{item.channel}: delivery {item.id} has no alert", permanent=True)
    view = await anyio.to_thread.run_sync(_view, engine, item.alert_id)
    if view is None:
        raise DeliveryError(f"{item.channel}: alert {item.alert_id} is gone", permanent=True)
    if item.channel == "slack":
        channel = config.channels.slack
        if channel is None:
            raise DeliveryError("slack: not configured any more", permanent=True)
        payload = slack.render(view, plain=bool(item.payload.get("plain")))
        await slack.send(
            http, channel.webhook_url.get_secret_value(), payload, channel.timeout.total_seconds()
        )
    elif item.channel == "email":
        mail = config.channels.email
        if mail is None:
            raise DeliveryError("email: not configured any more", permanent=True)
        await email.send(email.alert_message(view, mail), mail)
    else:
        raise DeliveryError(f"unknown channel {item.channel!r}", permanent=True)
