"""Route a claimed outbox row to its channel: render it from the database, then send.

Rendering happens at send time, from current rows, so a retried message shows the
incident as it stands. What each ``kind`` of row renders:

- ``alert`` and ``escalation``: an incident notice (Slack Block Kit, or multipart email);
- ``rollup``: the lines a receiver's noise budget held back;
- ``receiver_broken``: a loud email that another receiver (Slack) stopped working;
- ``source_unhealthy`` and ``source_recovered``: source health notices;
- ``digest``: the daily digest (see :mod:`emberwatch.channels.digest`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import anyio
import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session

from emberwatch.alerts.view import AlertView, load_notice
from emberwatch.channels import email, slack
from emberwatch.config import Config
from emberwatch.errors import DeliveryError
from emberwatch.outbox import Claimed
from emberwatch.text import one_line


def _notice(config: Config, engine: Engine, item: Claimed) -> AlertView | None:
    who = item.recipient or item.channel
    with Session(engine) as session:
        return load_notice(session, config, item.alert_id or 0, item.incident_id, item.payload, who)


def notice_lines(item: Claimed) -> tuple[str, list[str]]:
    """Subject and lines of a notice Emberwatch wrote itself."""
    p: dict[str, Any] = item.payload
    if item.kind == "rollup":
        total = p.get("total", 0)
        noun = "alert" if total == 1 else "alerts"
        return f"[Emberwatch] {total} more {noun}, rolled up", list(p.get("lines", []))
    if item.kind == "receiver_broken":
        return (
            f"[Emberwatch] The {p.get('receiver')} receiver is broken",
            [
                f"Emberwatch can no longer post to {p.get('receiver')}: {p.get('error')}.",
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


async def send(
    config: Config, engine: Engine, http: httpx.AsyncClient, item: Claimed, now: datetime
) -> None:
    if item.kind == "digest" or item.channel == "digest":
        from emberwatch.channels import digest

        await digest.send_stored(config, engine, item)
        return
    if item.kind in ("alert", "escalation"):
        view = await anyio.to_thread.run_sync(_notice, config, engine, item)
        if view is None:
            raise DeliveryError(f"{item.channel}: alert {item.alert_id} is gone", permanent=True)
        await _send_view(config, http, item, view)
        return
    subject, lines = notice_lines(item)
    # A notice quotes a source's or a receiver's last error: each line stays one line.
    subject, lines = one_line(subject), [one_line(line) for line in lines]
    if item.channel == "slack":
        text = "\n".join([f"*{slack.slack_mrkdwn(subject)}*", *map(slack.slack_mrkdwn, lines)])
        await _post_slack(config, http, slack.render_text(text))
    else:
        mail = _mail(config)
        recipients = [item.recipient] if item.recipient else mail.recipients
        await _send_mail(email.notice_message(mail, recipients, subject, lines), mail)


async def _send_view(
    config: Config, http: httpx.AsyncClient, item: Claimed, view: AlertView
) -> None:
    if item.channel == "slack":
        await _post_slack(config, http, slack.render(view, plain=bool(item.payload.get("plain"))))
        return
    if item.channel != "email":
        raise DeliveryError(f"unknown channel {item.channel!r}", permanent=True)
    mail = _mail(config)
    recipients = [item.recipient] if item.recipient else mail.recipients
    first = item.kind == "alert" and item.payload.get("number") == 1 and view.episode == 1
    await _send_mail(email.alert_message(view, mail, recipients, first=first), mail)


async def _post_slack(config: Config, http: httpx.AsyncClient, payload: dict[str, Any]) -> None:
    channel = config.channels.slack
    if channel is None:
        raise DeliveryError("slack: not configured any more", permanent=True)
    await slack.send(
        http, channel.webhook_url.get_secret_value(), payload, channel.timeout.total_seconds()
    )


def _mail(config: Config) -> Any:
    if config.channels.email is None:
        raise DeliveryError("email: not configured any more", permanent=True)
    return config.channels.email


async def _send_mail(message: Any, mail: Any) -> None:
    refused = await email.send(message, mail)
    if refused:
        raise DeliveryError(
            f"email: send: refused permanently by the server for {', '.join(refused)}",
            permanent=True,
            failed_recipients=refused,
        )
