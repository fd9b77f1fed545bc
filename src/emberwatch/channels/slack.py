"""On-call Slack: Block Kit messages posted to an incoming webhook.

Failure classification, Slack's own (its incoming-webhook errors), read before the shared
table of :mod:`emberwatch.http_status` was made and kept as it was: ``429`` → retry after
``Retry-After`` (1 s when absent); ``400 invalid_payload``/``invalid_blocks`` → retry once
as plain text; ``403``/``404``/``410`` (``no_service``, ``channel_not_found``,
``channel_is_archived``…) → the channel is broken; ``5xx`` and timeouts → retry; anything
else (``401`` and ``408`` included, which the shared table reads as broken and retry) →
permanent. Only ``200`` is success.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from pydantic import Field

from emberwatch.channels.base import BaseChannel, Envelope, Notice, Outcome, Role, is_alert
from emberwatch.errors import DeliveryError
from emberwatch.http_status import retry_after_seconds
from emberwatch.settings import PositiveDuration, SecretWebUrl, StrictModel
from emberwatch.text import cut, one_line, slack_mrkdwn, slack_url

if TYPE_CHECKING:
    from emberwatch.alerts.view import AlertView

NAME = "slack"


class Settings(StrictModel):
    """The on-call team's Slack incoming webhook."""

    webhook_url: SecretWebUrl
    timeout: PositiveDuration = timedelta(seconds=10)
    max_per_hour: int = Field(
        default=30, ge=1, description="noise budget: past this, messages roll up into summaries"
    )


SECTION_LIMIT = 3000
# What Slack answers for a webhook that no longer leads anywhere (see the docstring).
BROKEN_STATUSES = frozenset({403, 404, 410})
HEADER_LIMIT = 150
CONTEXT_LIMIT = 2000
TEXT_LIMIT = 39_000
SEVERITY_ICON = {
    "critical": ":rotating_light:",
    "warning": ":warning:",
    "info": ":information_source:",
}


def render(view: AlertView, *, plain: bool = False) -> dict[str, Any]:
    """The webhook payload: Block Kit plus a plain ``text`` fallback (all mention text escaped).

    Blocks follow the order people act on: why (one plain sentence), respond-by and the
    whole playbook with the action links, the mentions with their links, reach, and last
    the scores and the model's reasons. ``plain`` (the retry after ``invalid_blocks``) sends
    the same content as text only.
    """
    fallback = _fallback_text(view)
    todo = _todo(view)
    mentions = _mentions(view)
    links = _links(view)
    details = _details(view)
    if plain:
        parts = [fallback, *todo, links, *mentions, slack_mrkdwn(view.reach), *details]
        return {"text": cut("\n\n".join(p for p in parts if p), TEXT_LIMIT)}
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _header(view), "emoji": True}},
    ]
    if view.escalation_level:
        ping = f"{view.ping} " if view.ping else ""
        blocks.append(_section(f"{ping}:rotating_light: {slack_mrkdwn(view.notify_reason)}"))
    blocks.append(_section(slack_mrkdwn(view.why)))
    blocks += [_section(text) for text in todo]
    if links:
        blocks.append(_context(links))
    blocks.append({"type": "divider"})
    blocks += [_section(text) for text in mentions]
    blocks.append(_section(slack_mrkdwn(view.reach)))
    blocks.append({"type": "context", "elements": [_mrkdwn(text) for text in details]})
    return {"text": fallback, "blocks": blocks}


def _header(view: AlertView) -> str:
    prefix = f"ESCALATION {view.escalation_level} · " if view.escalation_level else ""
    change = view.change if not view.escalation_level else None
    head = f"{prefix}{view.severity.upper()} · {view.brand} · {view.category} on {view.platform}"
    return cut(one_line(f"{head} · {change}" if change else head), HEADER_LIMIT)


def _todo(view: AlertView) -> list[str]:
    """Respond-by and every playbook step, split over sections only if too long for one."""
    lines = [
        f"*Respond by {view.respond_by_local}* "
        f"({view.severity}: within {view.respond_within_words})",
        *(f"{i}. {slack_mrkdwn(step)}" for i, step in enumerate(view.playbook, 1)),
    ]
    return _pack(lines)


def _mentions(view: AlertView) -> list[str]:
    listed = view.listed
    total = max(view.mention_total, len(listed))
    noun = "mention" if total == 1 else "mentions"
    heading = (
        f"*{total} {noun}, newest first*"
        if not view.more
        else f"*{total} {noun}; the newest {len(listed)}:*"
    )
    lines = [heading]
    for m in listed:
        facts = [f"*{slack_mrkdwn(m.who)}* on {slack_mrkdwn(m.platform)}"]
        if m.when is not None:
            facts.append(view.local(m.when))
        if m.counts:
            facts.append(m.counts)
        if m.vip:
            facts.append("*VIP*")
        url = slack_url(m.link)
        facts.append(f"<{url}|open the post>" if url else "no link")
        lines.append(" · ".join(facts) + f"\n>{slack_mrkdwn(m.quote)}")
    if view.more:
        where = f" in incident #{view.incident_id}" if view.incident_id is not None else ""
        lines.append(f"…and {view.more} more{where}")
    return _pack(lines)


def _details(view: AlertView) -> list[str]:
    """The scores and the model's reasons, and the incident's bookkeeping: last, small."""
    reasons = "; ".join(view.reason_lines) or "none stored"
    out = [
        f"*Scores:* {view.scores}",
        cut(f"*The model's reasons:* {slack_mrkdwn(reasons)}", CONTEXT_LIMIT),
    ]
    if view.incident_id is not None:
        why_now = f" · sent because: {slack_mrkdwn(one_line(view.notify_reason))}"
        out.append(
            f"Incident #{view.incident_id}, episode {view.episode}"
            + (why_now if view.notify_reason else "")
            + f" · alert #{view.alert_id}"
        )
    return out


def _pack(lines: list[str]) -> list[str]:
    """Lines joined into as few sections as fit; a line is cut only if it alone is too long."""
    out: list[str] = []
    for line in lines:
        line = cut(line, SECTION_LIMIT)
        if out and len(out[-1]) + 1 + len(line) <= SECTION_LIMIT:
            out[-1] += "\n" + line
        else:
            out.append(line)
    return out


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(cut(text, SECTION_LIMIT))}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(text)]}


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": cut(text, SECTION_LIMIT)}


def _links(view: AlertView) -> str:
    parts = []
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


def _fallback_text(view: AlertView) -> str:
    """The notification line: severity, gist, what changed and the plain sentence."""
    icon = SEVERITY_ICON.get(view.severity, "")
    change = f" ({view.change})" if view.change else ""
    escalated = f"ESCALATION {view.escalation_level}: " if view.escalation_level else ""
    line = one_line(f"{icon} {escalated}{view.gist}{change}: {view.why}")
    return slack_mrkdwn(cut(line, 600))


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
    if status == 400 and body in {"invalid_payload", "invalid_blocks"}:
        raise DeliveryError(message, plain_text_fallback=True)
    if status == 429:
        raise DeliveryError(message, retry_after=retry_after_seconds(response.headers) or 1.0)
    if status in BROKEN_STATUSES:
        raise DeliveryError(message, permanent=True, channel_broken=True)
    if status >= 500:
        raise DeliveryError(message, retry_after=retry_after_seconds(response.headers))
    raise DeliveryError(message, permanent=True)


class Slack(BaseChannel):
    """On-call: pages at critical by default, and escalations ping people here."""

    name: ClassVar[str] = NAME
    Settings: ClassVar[type[StrictModel]] = Settings
    role: ClassVar[Role | None] = Role("on-call", "critical")
    pages: ClassVar[bool] = True
    max_bytes: ClassVar[int] = 45_000  # TEXT_LIMIT and 50 blocks of SECTION_LIMIT, escaped

    def deadline(self, config: Any) -> timedelta:
        return config.delivery.slack_deadline  # type: ignore[no-any-return]

    def min_gap(self, config: Any) -> timedelta:
        return config.delivery.slack_min_gap  # type: ignore[no-any-return]

    def pacing_key(self, settings: Any) -> str | None:
        # Paced per webhook; the URL is a secret, so only its hash is stored.
        url = settings.webhook_url.get_secret_value()
        return f"{NAME}:{hashlib.sha256(url.encode()).hexdigest()[:32]}"

    def render(self, content: Any, envelope: Envelope) -> dict[str, Any]:
        if is_alert(content):
            return render(content, plain=envelope.plain)
        if isinstance(content, Notice):
            lines = [f"*{slack_mrkdwn(content.subject)}*", *map(slack_mrkdwn, content.lines)]
            return render_text("\n".join(lines))
        raise DeliveryError(f"{NAME}: cannot send a {envelope.kind}", permanent=True)

    async def send(self, envelope: Envelope, content: Any) -> Outcome:
        settings = envelope.settings
        try:
            payload = self.render(content, envelope)
            await send(
                envelope.http,
                settings.webhook_url.get_secret_value(),
                payload,
                settings.timeout.total_seconds(),
            )
        except DeliveryError as error:
            return Outcome.from_error(error)
        return Outcome("sent")


CHANNEL = Slack()
