"""Microsoft Teams: an Adaptive Card posted to a Workflows incoming webhook.

A Workflows webhook ("When a Teams webhook request is received" → "Post card in a chat or
channel") takes ``{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "content": <card>}]}`` and answers ``202
Accepted``. A card may be at most about 28 KB, so mentions are dropped (oldest first) and
texts cut until it fits. Every text is a ``TextRun`` in a ``RichTextBlock``, which Teams
shows as written: unlike a ``TextBlock``'s Markdown, a mention's ``[text](url)`` or
``**bold**`` stays plain text. Failures are classified by :mod:`emberwatch.http_status`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from emberwatch.channels.base import BaseChannel, Envelope, Notice, Outcome, is_alert, post_json
from emberwatch.settings import PositiveDuration, SecretWebUrl, StrictModel
from emberwatch.text import cut, one_line

if TYPE_CHECKING:
    from emberwatch.alerts.view import AlertView

NAME = "teams"
MAX_BYTES = 28_000
CARD_TYPE = "application/vnd.microsoft.card.adaptive"
COLOURS = {"critical": "Attention", "warning": "Warning", "info": "Accent"}
ACTIONS = {"ack": "Acknowledge", "snooze": "Snooze", "resolve": "Resolve"}


class Settings(StrictModel):
    """A Teams Workflows webhook URL (it holds its own signature: keep it secret)."""

    webhook_url: SecretWebUrl
    timeout: PositiveDuration = timedelta(seconds=10)
    deadline: PositiveDuration = timedelta(hours=2)
    max_per_hour: int = Field(
        default=30, ge=1, description="noise budget: past this, messages roll up into summaries"
    )


BOLD = {"weight": "Bolder"}


def _text(*runs: str | tuple[str, dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A block of text runs, each a string or (string, style). A TextRun is shown as
    written, never read as Markdown, so a mention's text cannot forge a link or a style."""
    inlines = [
        {"type": "TextRun", "text": run}
        if isinstance(run, str)
        else {"type": "TextRun", "text": run[0], **run[1]}
        for run in runs
    ]
    return {"type": "RichTextBlock", "inlines": inlines, **extra}


def card(view: AlertView, listed: int | None = None, limit: int = 2000) -> dict[str, Any]:
    """The Adaptive Card for an incident notice; ``listed`` caps the mentions shown."""
    mentions = view.listed if listed is None else view.listed[:listed]
    head = f"{view.severity.upper()} · {view.brand} · {view.category} on {view.platform}"
    if view.escalation_level:
        head = f"ESCALATION {view.escalation_level} · {head}"
    colour = COLOURS.get(view.severity, "Default")
    body: list[dict[str, Any]] = [
        _text((cut(one_line(head), 200), {**BOLD, "size": "Medium", "color": colour})),
        _text(cut(view.why, limit)),
        _text((f"Respond by {view.respond_by_local}", BOLD), f" ({view.respond_within_words})"),
        *(_text(cut(f"{i}. {step}", limit)) for i, step in enumerate(view.playbook, 1)),
    ]
    for m in mentions:
        who = (cut(one_line(m.who), 100), BOLD)
        body.append(_text(who, f" on {m.platform}: {cut(m.quote, limit)}", separator=True))
    more = max(view.mention_total, len(view.listed)) - len(mentions)
    if more > 0:
        body.append(_text(f"…and {more} more"))
    reasons = "; ".join(view.reason_lines) or "none stored"
    scores = cut(f"Scores: {view.scores}. Reasons: {reasons}", limit)
    body.append(_text((scores, {"isSubtle": True})))
    actions = [
        {"type": "Action.OpenUrl", "title": title, "url": view.links[key]}
        for key, title in ACTIONS.items()
        if view.links.get(key)
    ]
    return _envelope(body, actions)


def _envelope(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    content = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        **({"actions": actions} if actions else {}),
    }
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_TYPE, "contentUrl": None, "content": content}],
    }


def notice_card(notice: Notice) -> dict[str, Any]:
    body = [_text((cut(notice.subject, 300), BOLD))]
    body += [_text(cut(line, 2000)) for line in notice.lines[:20]]
    return _envelope(body, [])


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class Teams(BaseChannel):
    name: ClassVar[str] = NAME
    Settings: ClassVar[type[StrictModel]] = Settings
    max_bytes: ClassVar[int] = MAX_BYTES

    def pacing_key(self, settings: Any) -> str | None:
        url = settings.webhook_url.get_secret_value()
        return f"{NAME}:{hashlib.sha256(url.encode()).hexdigest()[:32]}"

    def render(self, content: Any, envelope: Envelope) -> bytes:
        if isinstance(content, Notice):
            return _encode(notice_card(content))
        data = _encode(card(content))
        listed, limit = len(content.listed), 2000
        while len(data) > MAX_BYTES and (listed or limit > 100):
            if listed:
                listed -= 1
            else:
                limit //= 2
            data = _encode(card(content, listed, limit))
        return data

    async def send(self, envelope: Envelope, content: Any) -> Outcome:
        if not (is_alert(content) or isinstance(content, Notice)):
            return Outcome("permanent", f"{NAME}: cannot send a {envelope.kind}")
        settings = envelope.settings
        return await post_json(
            f"{NAME}: post workflow webhook",
            envelope.http,
            settings.webhook_url.get_secret_value(),
            self.render(content, envelope),
            settings.timeout.total_seconds(),
        )


CHANNEL = Teams()
