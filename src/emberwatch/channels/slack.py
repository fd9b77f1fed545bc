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
    """The webhook payload: Block Kit plus a plain ``text`` fallback (all text escaped)."""
    fallback = _fallback_text(view)
    if plain:
        return {"text": fallback}
    header = cut(f"{view.severity.upper()} · {view.brand} · {view.category}", HEADER_LIMIT)
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
    steps = "\n".join(f"• {slack_mrkdwn(s)}" for s in view.playbook[:3])
    todo = f"*Respond by {view.respond_by:%H:%M} UTC*\n{steps}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": cut(quoted, SECTION_LIMIT)}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": cut("\n".join(facts), SECTION_LIMIT)},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": cut(todo, SECTION_LIMIT)}},
    ]
    link = slack_url(view.url)
    if link:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{link}|Open the post>"}]}
        )
    return {"text": fallback, "blocks": blocks}


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
