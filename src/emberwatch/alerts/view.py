"""The alert as channels see it: one typed object joining the alert and its mention."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from emberwatch.models import AlertRecord, MentionRecord
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
