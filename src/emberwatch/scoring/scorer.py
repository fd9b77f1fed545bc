"""The scorer: one call turns a mention (and its engagement history) into scores."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from emberwatch.mention import Mention
from emberwatch.scoring.sentiment import SentimentModel
from emberwatch.scoring.triage import playbook

DEFAULT_VIRAL_THRESHOLD = 500


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Engagement counts of one mention as seen at one moment."""

    at: datetime
    likes: int = 0
    reposts: int = 0
    replies: int = 0

    @property
    def engagement(self) -> int:
        return self.likes + self.reposts + self.replies


@dataclass(frozen=True, slots=True)
class Scores:
    """Every judgement about one mention, each with the reasons behind it."""

    sentiment: float
    complaint: float
    virality: float
    expected_engagement: float
    category: str
    severity: str
    reasons: list[str] = field(default_factory=list)
    playbook: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Scorer:
    """Scores mentions; holds one VADER model per brand lexicon, built once."""

    def __init__(
        self,
        brand_lexicons: dict[str, dict[str, float]] | None = None,
        *,
        viral_threshold: int = DEFAULT_VIRAL_THRESHOLD,
        high_reach_followers: int = 10_000,
    ) -> None:
        self._default = SentimentModel()
        self._by_brand = {
            brand: SentimentModel(lexicon)
            for brand, lexicon in (brand_lexicons or {}).items()
            if lexicon
        }
        self.viral_threshold = viral_threshold
        self.high_reach_followers = high_reach_followers

    def score(
        self,
        mention: Mention,
        *,
        snapshots: list[Snapshot] | None = None,
        brand: str | None = None,
        vip: bool = False,
    ) -> Scores:
        model = self._by_brand.get(brand or "", self._default)
        sentiment = model.compound(mention.full_text)
        reasons = [f"sentiment {sentiment:+.2f} (VADER compound)"]
        if mention.rating is not None and mention.rating <= 2:
            sentiment = min(sentiment, -0.5)
            reasons.append(f"{mention.rating:g}-star rating")
        complaint = max(0.0, -sentiment)
        engagement = max(
            [mention.engagement, *(s.engagement for s in snapshots or [])], default=0
        )
        virality = 1 - math.exp(-engagement / self.viral_threshold)
        if engagement:
            reasons.append(f"engagement {engagement}")
        category = "complaint" if sentiment <= -0.05 else "praise" if sentiment >= 0.5 else "other"
        severity = "info"
        if category == "complaint":
            severity = "warning" if sentiment <= -0.5 or virality >= 0.5 else "info"
            reach = mention.author_followers or 0
            if (virality >= 0.5 or reach >= self.high_reach_followers or vip) and sentiment <= -0.5:
                severity = "critical"
        if vip:
            reasons.append("VIP customer")
        return Scores(
            sentiment=round(sentiment, 4),
            complaint=round(complaint, 4),
            virality=round(virality, 4),
            expected_engagement=float(engagement),
            category=category,
            severity=severity,
            reasons=reasons,
            playbook=playbook(category, vip=vip),
        )
