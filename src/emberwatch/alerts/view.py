"""The alert as channels see it: one typed object joining the alert and its mention."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlmodel import Session

from emberwatch.alerts.links import action_urls
from emberwatch.config import Config
from emberwatch.models import AlertRecord, Incident, MentionRecord
from emberwatch.scoring.triage import playbook, respond_within


@dataclass(frozen=True)
class AlertView:
    alert_id: int
    brand: str
    source_name: str
    source_type: str
    severity: str
    category: str
    reason: str
    created_at: datetime
    url: str | None
    author: str | None
    author_followers: int | None
    title: str | None
    text: str
    published_at: datetime | None
    rating: float | None
    engagement: int
    sentiment: float | None
    complaint: float | None
    virality: float | None
    reasons: list[str]
    vip: bool
    playbook: list[str]
    # The incident the alert belongs to, and why this message goes out now.
    incident_id: int | None = None
    episode: int = 1
    alert_count: int = 1
    incident_engagement: int = 0
    notify_reason: str = ""
    links: dict[str, str] = field(default_factory=dict)
    escalation_level: int = 0
    ping: str | None = None

    @property
    def respond_by(self) -> datetime:
        return self.created_at + respond_within(self.severity)


def load_alert_view(session: Session, alert_id: int) -> AlertView | None:
    alert = session.get(AlertRecord, alert_id)
    if alert is None:
        return None
    mention = session.get(MentionRecord, alert.mention_id)
    assert mention is not None
    return AlertView(
        alert_id=alert_id,
        brand=alert.brand,
        source_name=alert.source_name,
        source_type=mention.source,
        severity=alert.severity,
        category=alert.category,
        reason=alert.reason,
        created_at=alert.created_at,
        url=mention.url,
        author=mention.author,
        author_followers=mention.author_followers,
        title=mention.title,
        text=mention.text,
        published_at=mention.published_at,
        rating=mention.rating,
        engagement=mention.engagement,
        sentiment=mention.sentiment,
        complaint=mention.complaint,
        virality=mention.virality,
        reasons=json.loads(mention.reasons) if mention.reasons else [],
        vip=mention.vip,
        playbook=playbook(alert.category, vip=mention.vip, severity=alert.severity),
    )


def slack_ping(mention: str | None) -> str | None:
    """The escalation ping in Slack's syntax, from the trusted config value."""
    if not mention:
        return None
    kind, _, ident = mention.partition(":")
    return {"subteam": f"<!subteam^{ident}>", "user": f"<@{ident}>"}.get(kind, f"<!{mention}>")


def load_notice(
    session: Session,
    config: Config,
    alert_id: int,
    incident_id: int | None,
    payload: dict[str, object],
    who: str,
) -> AlertView | None:
    """An alert view with its incident, the reason for this message and action links."""
    view = load_alert_view(session, alert_id)
    if view is None or incident_id is None:
        return view
    incident = session.get(Incident, incident_id)
    if incident is None:
        return view
    episode = int(payload.get("episode") or incident.episode)  # type: ignore[call-overload]
    links = {}
    if config.http is not None:
        links = action_urls(
            config.http.public_url, config.http.secret.get_secret_value(), incident_id, episode, who
        )
    level = int(payload.get("level") or 0)  # type: ignore[call-overload]
    return replace(
        view,
        severity=incident.severity,
        category=incident.category,
        incident_id=incident_id,
        episode=episode,
        alert_count=incident.alert_count,
        incident_engagement=incident.engagement,
        notify_reason=str(payload.get("reason") or ""),
        links=links,
        escalation_level=level,
        ping=slack_ping(config.escalation.slack_mention) if level else None,
    )
