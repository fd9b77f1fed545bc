"""On-call Slack: Block Kit messages posted to an incoming webhook.

Failure classification (see Slack's incoming-webhook errors): ``429`` → retry after
``Retry-After``; ``400 invalid_payload``/``invalid_blocks`` → retry once as plain text;
``403``/``404``/``410`` (``no_service``, ``channel_not_found``, ``channel_is_archived``…) →
the receiver is broken, permanent; ``5xx`` and timeouts → retry.
"""

from __future__ import annotations

from typing import Any

import httpx

from emberwatch.alerts.view import AlertView
from emberwatch.channels._escape import cut, slack_mrkdwn, slack_url
from emberwatch.errors import DeliveryError
from emberwatch.sources._http import retry_after_seconds

SECTION_LIMIT = 3000
HEADER_LIMIT = 150
SEVERITY_ICON = {
    "critical": ":rotating_light:",
    "warning": ":warning:",
    "info": ":information_source:",
}


def render(view: AlertView, *, plain: bool = False) -> dict[str, Any]:
    """The webhook payload: Block Kit plus a plain ``text`` fallback (all mention text escaped)."""
    fallback = _fallback_text(view)
    if plain:
        return {"text": fallback}
    prefix = f"ESCALATION {view.escalation_level} · " if view.escalation_level else ""
    header = cut(f"{prefix}{view.severity.upper()} · {view.brand} · {view.category}", HEADER_LIMIT)
    quote = slack_mrkdwn(cut(_mention_text(view), SECTION_LIMIT - 20))
    quoted = "\n".join(f">{line}" for line in quote.splitlines() or [""])
    reach = (
        f"{view.author_followers:,} followers"
        if view.author_followers is not None
        else "reach unknown"
    )
    who = slack_mrkdwn(view.author or "unknown author")
    facts = [
        f"*Author:* {who} ({reach}){' · *VIP*' if view.vip else ''}",
        f"*Source:* {slack_mrkdwn(view.source_name)} · engagement {view.engagement}",
        f"*Why:* {slack_mrkdwn(cut('; '.join(view.reasons), 900))}",
    ]
    if view.incident_id is not None:
        facts.append(
            f"*Incident #{view.incident_id}* · {view.alert_count} related "
            f"mention{'s' if view.alert_count != 1 else ''}"
            + (f" · now: {slack_mrkdwn(view.notify_reason)}" if view.notify_reason else "")
        )
    steps = "\n".join(f"• {slack_mrkdwn(s)}" for s in view.playbook[:3])
    todo = f"*Respond by {view.respond_by:%H:%M} UTC*\n{steps}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
    ]
    if view.escalation_level:
        ping = f"{view.ping} " if view.ping else ""
        blocks.append(_section(f"{ping}:rotating_light: {slack_mrkdwn(view.notify_reason)}"))
    blocks += [_section(quoted), _section("\n".join(facts)), _section(todo)]
    links = _links(view)
    if links:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": links}]})
    return {"text": fallback, "blocks": blocks}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_LIMIT)}}


def _links(view: AlertView) -> str:
    parts = []
    post = slack_url(view.url)
    if post:
        parts.append(f"<{post}|Open the post>")
    labels = {"ack": "Acknowledge", "snooze": "Snooze 1 h", "resolve": "Resolve"}
    for action, label in labels.items():
        url = slack_url(view.links.get(action))
        if url:
            parts.append(f"<{url}|{label}>")
    if view.incident_id is not None and not view.links:
        parts.append(f"Acknowledge: `emberwatch alerts ack {view.incident_id}`")
    return " · ".join(parts)


def render_text(text: str) -> dict[str, Any]:
    """A plain notice (rollups, source health) whose text Emberwatch wrote itself."""
    return {"text": text}


def _mention_text(view: AlertView) -> str:
    return f"{view.title}\n{view.text}" if view.title else view.text


def _fallback_text(view: AlertView) -> str:
    icon = SEVERITY_ICON.get(view.severity, "")
    body = slack_mrkdwn(cut(" ".join(_mention_text(view).split()), 300))
    return (
        f"{icon} {view.severity.upper()} {view.category} about {slack_mrkdwn(view.brand)}: {body}"
    )


async def send(
    client: httpx.AsyncClient, webhook_url: str, payload: dict[str, Any], timeout: float
) -> None:
    """POST one payload; raise DeliveryError classified for the outbox worker."""
    try:
        response = await client.post(webhook_url, json=payload, timeout=timeout)
    except httpx.TimeoutException:
        raise DeliveryError(f"slack: post webhook: timed out after {timeout:g}s") from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"slack: post webhook: {type(exc).__name__}") from None
    status = response.status_code
    if status == 200:
        return
    body = response.text[:100].strip()
    message = f"slack: post webhook: HTTP {status} {body}".strip()
    if status == 429:
        raise DeliveryError(message, retry_after=retry_after_seconds(response.headers) or 1.0)
    if status == 400 and body in {"invalid_payload", "invalid_blocks"}:
        raise DeliveryError(message, plain_text_fallback=True)
    if status in (403, 404, 410):
        raise DeliveryError(message, permanent=True, receiver_broken=True)
    if status >= 500:
        raise DeliveryError(message, retry_after=retry_after_seconds(response.headers))
    raise DeliveryError(message, permanent=True)
