"""A generic webhook: a documented JSON body, signed, POSTed to any URL.

The body (``version`` 1) holds the incident, its mentions, the scores and the model's
reasons, the playbook and the action links; a notice Emberwatch wrote itself (a rollup,
source health) is ``{"kind", "subject", "lines"}``. Every request carries

- ``X-Emberwatch-Timestamp``: Unix seconds when it was signed;
- ``X-Emberwatch-Signature: sha256=<hex>``: HMAC-SHA256, under ``secret``, of the
  timestamp, a ``.``, and the exact body bytes.

The server that takes it recomputes the signature over what it received and rejects a timestamp more
than a few minutes old, so a captured request cannot be replayed (the README has a
ten-line verifier). Failures are classified by :mod:`emberwatch.http_status`: 429 and 5xx
retry (never sooner than ``Retry-After``), 401/403/404/410 mark the channel broken, any
other 4xx is permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, SecretStr, field_validator

from emberwatch.channels.base import BaseChannel, Envelope, Notice, Outcome, is_alert, post_json
from emberwatch.settings import PositiveDuration, SecretWebUrl, StrictModel

if TYPE_CHECKING:
    from emberwatch.alerts.view import AlertView

NAME = "webhook"
VERSION = 1
MAX_BYTES = 256_000
SIGNATURE_HEADER = "X-Emberwatch-Signature"
TIMESTAMP_HEADER = "X-Emberwatch-Timestamp"


class Settings(StrictModel):
    """A URL that takes Emberwatch's signed JSON (see the README's "Webhook channel")."""

    url: SecretWebUrl
    secret: SecretStr = Field(description="signs each body: HMAC-SHA256, X-Emberwatch-Signature")
    timeout: PositiveDuration = timedelta(seconds=10)
    deadline: PositiveDuration = timedelta(hours=2)
    min_gap: PositiveDuration | None = None
    max_per_hour: int = Field(
        default=30, ge=1, description="noise budget: past this, messages roll up into summaries"
    )

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (e.g. `openssl rand -hex 32`)")
        return value


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Emberwatch-Signature`` value for ``body`` sent at ``timestamp``."""
    signed = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def alert_body(view: AlertView, kind: str) -> dict[str, Any]:
    """The documented JSON for an incident notice (``kind`` alert or escalation)."""
    return {
        "version": VERSION,
        "kind": kind,
        "incident": {
            "id": view.incident_id,
            "episode": view.episode,
            "alert_id": view.alert_id,
            "severity": view.severity,
            "category": view.category,
            "brand": view.brand,
            "source": view.source_name,
            "platform": view.platform,
            "gist": view.gist,
            "why": view.why,
            "change": view.change,
            "notify_reason": view.notify_reason,
            "escalation_level": view.escalation_level,
            "respond_by": view.respond_by.isoformat(),
            "mention_total": max(view.mention_total, len(view.listed)),
        },
        "mentions": [
            {
                "author": m.who,
                "platform": m.platform,
                "published_at": m.when.isoformat() if m.when is not None else None,
                "text": m.quote,
                "url": m.link,
                "vip": m.vip,
            }
            for m in view.listed
        ],
        "scores": {
            "sentiment": view.sentiment,
            "complaint": view.complaint,
            "virality": view.virality,
            "engagement": view.engagement,
        },
        "reasons": list(view.reason_lines),
        "playbook": list(view.playbook),
        "links": dict(view.links),
    }


def fit(body: dict[str, Any], limit: int = MAX_BYTES) -> bytes:
    """The body as compact JSON, dropping the oldest mentions (and then cutting texts)
    until it fits in ``limit`` bytes."""
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    mentions = list(body.get("mentions", []))
    while len(data) > limit and mentions:
        mentions.pop()
        data = json.dumps({**body, "mentions": mentions}, separators=(",", ":")).encode()
    if len(data) > limit:  # one field alone is huge: cut every string
        small = json.loads(data)
        for key, value in small.get("incident", {}).items():
            if isinstance(value, str):
                small["incident"][key] = value[:1000]
        small["reasons"] = [r[:300] for r in small.get("reasons", [])][:20]
        small["playbook"] = [p[:300] for p in small.get("playbook", [])][:20]
        small["lines"] = [line[:300] for line in small.get("lines", [])][:20]
        data = json.dumps(small, separators=(",", ":")).encode()[:limit]
    return data


class Webhook(BaseChannel):
    name: ClassVar[str] = NAME
    Settings: ClassVar[type[StrictModel]] = Settings
    max_bytes: ClassVar[int] = MAX_BYTES

    def min_gap(self, config: Any) -> timedelta:
        settings = config.channels.webhook
        return settings.min_gap if settings and settings.min_gap else timedelta(0)

    def pacing_key(self, settings: Any) -> str | None:
        url = settings.url.get_secret_value()
        return f"{NAME}:{hashlib.sha256(url.encode()).hexdigest()[:32]}"

    def render(self, content: Any, envelope: Envelope) -> bytes:
        if is_alert(content):
            return fit(alert_body(content, envelope.kind))
        assert isinstance(content, Notice)
        body = {"version": VERSION, "kind": envelope.kind, "subject": content.subject}
        return fit({**body, "lines": content.lines})

    async def send(self, envelope: Envelope, content: Any) -> Outcome:
        settings = envelope.settings
        if not (is_alert(content) or isinstance(content, Notice)):
            return Outcome("permanent", f"{NAME}: cannot send a {envelope.kind}")
        body = self.render(content, envelope)
        stamp = str(int(time.time()))
        headers = {
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: sign(settings.secret.get_secret_value(), stamp, body),
        }
        return await post_json(
            f"{NAME}: post",
            envelope.http,
            settings.url.get_secret_value(),
            body,
            settings.timeout.total_seconds(),
            headers,
        )


CHANNEL = Webhook()
