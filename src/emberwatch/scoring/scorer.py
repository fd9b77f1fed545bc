"""The scorer: one call turns a mention (and its engagement history) into scores.

:meth:`Scorer.score` runs VADER once, scans the text once for complaint and triage cues,
forecasts spread from the snapshots, then categorizes and grades the mention. Every
judgement adds its reasons, which alerts show.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any

from emberwatch._slots import maker
from emberwatch.mention import Mention, parse_timestamp
from emberwatch.scoring import triage
from emberwatch.scoring._cues import Cue, Prepared, prepare
from emberwatch.scoring.complaint import Complaint, combine, find_cues
from emberwatch.scoring.language import detect
from emberwatch.scoring.learned import Evidence, LearnedLayer
from emberwatch.scoring.sentiment import SentimentModel, fuse_rating
from emberwatch.scoring.virality import Forecast, forecast_from_polls, platform_prior

_evidence = maker(Evidence)

# Engagement (likes + reposts + replies) that a mention must reach within 24 h of
# publication to count as viral; ``emberwatch score --viral-threshold N`` overrides it and
# the config's ``thresholds.viral_engagement`` uses the same default.
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

    @classmethod
    def of(cls, mention: Mention, at: datetime) -> Snapshot:
        """The mention's counts as seen at ``at``; a missing count is 0."""
        return cls(at, mention.likes or 0, mention.reposts or 0, mention.replies or 0)


def snapshots_from_json(items: Iterable[Mapping[str, Any]] | None) -> list[Snapshot]:
    """Snapshots from their JSON form, ``[{at, likes, reposts, replies}]``.

    ``at`` is an ISO 8601 string or a Unix time; missing or null counts are 0. Raises
    ``ValueError`` naming the item at fault ("snapshots[2]: 'at' is missing").
    """
    out = []
    for i, item in enumerate(items or []):
        if not isinstance(item, Mapping):
            raise ValueError(f"snapshots[{i}]: expected an object, got {type(item).__name__}")
        try:
            at = parse_timestamp(item.get("at"))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"snapshots[{i}]: 'at' is not a timestamp: {exc}") from None
        if at is None:
            raise ValueError(f"snapshots[{i}]: 'at' is missing")
        counts = {}
        for key in ("likes", "reposts", "replies"):
            value = item.get(key)
            try:
                counts[key] = max(0, int(value or 0))
            except (ValueError, TypeError):
                raise ValueError(f"snapshots[{i}]: {key!r} is not a count: {value!r}") from None
        out.append(Snapshot(at, **counts))
    return out


@dataclass(frozen=True, slots=True)
class Scores:
    """Every judgement about one mention, each with the reasons behind it.

    ``sentiment`` is in -1..+1; ``complaint`` and ``virality`` are probabilities;
    ``expected_engagement`` is the expected final engagement; ``respond_within_minutes``
    is how soon staff should reach out at this severity. ``language`` is the text's ISO
    639-1 code, or ``und`` when too short to tell (then it is read as English).
    """

    sentiment: float
    complaint: float
    virality: float
    expected_engagement: float
    category: str
    severity: str
    reasons: list[str] = field(default_factory=list)
    playbook: list[str] = field(default_factory=list)
    respond_within_minutes: int = 240
    language: str = "en"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickled as its field values, made again by _scores: the scoring pool returns
        # every new mention's scores from its worker, and this is faster both ways than
        # a dataclass's own field-by-field state.
        return _scores_from, _score_values(self)


_scores = maker(Scores)
_score_values = attrgetter(*(f.name for f in fields(Scores)))


def _scores_from(*values: Any) -> Scores:
    return _scores(*values)  # type: ignore[no-any-return]


class Scorer:
    """Scores mentions; holds one sentiment model per brand, built once.

    A brand's model has its ``lexicon`` overrides and counts its own ``terms`` (the config's
    ``include``: names, @handles, #hashtags) as neutral, so "United" is no praise of United.
    """

    def __init__(
        self,
        brand_lexicons: dict[str, dict[str, float]] | None = None,
        *,
        brand_terms: dict[str, list[str]] | None = None,
        viral_threshold: int = DEFAULT_VIRAL_THRESHOLD,
        high_reach_followers: int = 10_000,
        learned: LearnedLayer | None = None,
    ) -> None:
        if viral_threshold < 1:
            raise ValueError(f"viral_threshold must be at least 1, got {viral_threshold}")
        self._default = SentimentModel()
        lexicons, terms = brand_lexicons or {}, brand_terms or {}
        self._by_brand = {
            brand: SentimentModel(lexicons.get(brand), neutral_terms=terms.get(brand, ()))
            for brand in {*lexicons, *terms}
            if lexicons.get(brand) or terms.get(brand)
        }
        self.viral_threshold = viral_threshold
        self.high_reach_followers = high_reach_followers
        # What the team's labels taught (see scoring/learned.py); None scores by cues alone.
        self.learned = learned

    def score(
        self,
        mention: Mention,
        *,
        snapshots: list[Snapshot] | None = None,
        brand: str | None = None,
        vip: bool = False,
        now: datetime | None = None,
    ) -> Scores:
        """Score one mention.

        ``snapshots`` is its engagement history. Without one, the mention's own counts are
        taken as seen at ``now`` when both ``now`` and ``published_at`` are known; otherwise
        virality rests on the author's reach and the platform prior alone.
        """
        (
            prepared,
            sentiment,
            complaint,
            category,
            sentiment_reasons,
            cues,
            question,
            category_reasons,
            language,
        ) = self._read(mention, brand)
        probability = complaint.probability
        forecast = self._forecast(mention, snapshots, now)
        reasons = [*sentiment_reasons, *complaint.reasons]
        learned = self.learned
        if learned is not None:
            judgement = learned.judge(_evidence(prepared, sentiment, complaint, category))
            reasons += judgement.reasons
            rules = category
            probability = judgement.complaint
            # The rules' category again, with the corrected probability. categorize reads
            # the probability only against COMPLAINT_AT, and writes it only in the reason
            # of a complaint: on the same side of COMPLAINT_AT, any other category and its
            # reasons are the same as before, and a complaint stays a complaint, whose
            # reasons are not needed when the layer's category replaces it.
            if (probability >= triage.COMPLAINT_AT) != (
                complaint.probability >= triage.COMPLAINT_AT
            ) or (rules == "complaint" and judgement.category in (None, "complaint")):
                category, category_reasons = triage.categorize(
                    sentiment=sentiment, complaint=probability, cues=cues, question=question
                )
            if judgement.category is not None and judgement.category != category:
                category_reasons = [learned.category_reason(judgement, category)]
                category = judgement.category
        severity, severity_reasons = triage.severity(
            category,
            sentiment=sentiment,
            complaint=probability,
            virality=forecast.probability,
            followers=mention.author_followers,
            high_reach=self.high_reach_followers,
            vip=vip,
        )
        reasons += forecast.reasons
        reasons.append(
            f"category {category}: {'; '.join(category_reasons)}"
            if category_reasons
            else f"category {category}"
        )
        reasons.append(
            f"severity {severity}: {'; '.join(severity_reasons)}"
            if severity_reasons
            else f"severity {severity}"
        )
        # round() with digits costs about 0.25 us. The sentiment is already rounded to 4
        # places on every path (VADER's compound, the rating fusion, 0.0), and round is
        # idempotent there; so is the complaint probability that combine gives (not the
        # learned layer's, nor a star rating's); a cached prior forecast's figures are
        # rounded once.
        if learned is not None or (mention.rating is not None and language not in _READ_AS_ENGLISH):
            probability = round(probability, 4)
        prior = _PRIOR_ROUNDED.get(id(forecast))
        if prior is not None and prior[0] is forecast:
            virality, expected = prior[1], prior[2]
        else:
            virality, expected = round(forecast.probability, 4), round(forecast.expected_final, 1)
        return _scores(
            sentiment,
            probability,
            virality,
            expected,
            category,
            severity,
            reasons,
            triage.playbook(category, vip=vip, severity=severity),
            _minutes_within(severity),
            language,
        )

    def evidence(self, mention: Mention, *, brand: str | None = None) -> Evidence:
        """What the rules find in a mention, which the learned layer reads: what
        :func:`emberwatch.scoring.learned.fit` fits on."""
        prepared, sentiment, complaint, category, *_ = self._read(mention, brand)
        return _evidence(prepared, sentiment, complaint, category)  # type: ignore[no-any-return]

    def _read(self, mention: Mention, brand: str | None) -> _Reading:
        """Sentiment, complaint cues and the rules' category: the text's part of scoring,
        as a plain tuple (:data:`_Reading` names its parts; a named tuple's ``__new__``
        cost half a microsecond a mention, and the :class:`Evidence` is made only for
        those who read it).

        A text in a language the scorers do not read (not English, and long enough to
        tell) takes its sentiment from its star rating, if any, else 0; its complaint
        probability then rests on that sentiment and its category has no text cues.
        """
        text = mention.full_text
        prepared = prepare(text)
        language, _ = detect(text)
        cues: dict[str, list[Cue]]
        if language in _READ_AS_ENGLISH:
            model = self._by_brand.get(brand or "", self._default)
            sentiment = model.score(text, rating=mention.rating)
            value, sentiment_reasons = sentiment.value, sentiment.reasons
            complaint = combine(find_cues(prepared), value)
            cues = triage.triage_cues(prepared)
            question = triage.is_question(prepared)
        else:
            value, sentiment_reasons = 0.0, (f"language {language}: text not scored",)
            if mention.rating is not None:
                value, fused = fuse_rating(0.0, mention.rating)
                sentiment_reasons = (*sentiment_reasons, *fused[1:])
            complaint = combine([], 0.0) if mention.rating is None else _rated(mention.rating)
            cues = {}
            question = "?" in text or "\uff1f" in text
        category, category_reasons = triage.categorize(
            sentiment=value, complaint=complaint.probability, cues=cues, question=question
        )
        return (
            prepared,
            value,
            complaint,
            category,
            sentiment_reasons,
            cues,
            question,
            category_reasons,
            language,
        )

    def score_new(self, mention: Mention, *, brand: str, vip: bool, now: datetime) -> Scores:
        """Score a mention seen for the first time ``now``: the counts it arrives with, if
        any, are its only snapshot."""
        snapshots = [Snapshot.of(mention, now)] if mention.has_counts else []
        return self.score(mention, snapshots=snapshots, brand=brand, vip=vip, now=now)

    def _forecast(
        self, mention: Mention, snapshots: list[Snapshot] | None, now: datetime | None
    ) -> Forecast:
        source = mention.source or ""
        followers = mention.author_followers or 0
        if snapshots:
            ordered = sorted(snapshots, key=lambda s: s.at)
            start = mention.published_at or ordered[0].at
            polls = [((s.at - start).total_seconds(), s.engagement) for s in ordered]
            forecast = forecast_from_polls(
                polls,
                threshold=self.viral_threshold,
                poster_followers=followers or None,
                prior=platform_prior(source),
            )
            if mention.published_at is None:
                return _with_reason(forecast, "publication time unknown: ages from 1st snapshot")
            return forecast
        seen = mention.engagement
        if seen and mention.published_at is not None and now is not None:
            age = max(0.0, (now - mention.published_at).total_seconds())
            return forecast_from_polls(
                [(age, seen)],
                threshold=self.viral_threshold,
                poster_followers=followers or None,
                prior=platform_prior(source),
            )
        forecast = _prior_forecast(source.lower(), followers, self.viral_threshold)
        if seen:
            probability = 1.0 if seen >= self.viral_threshold else forecast.probability
            return Forecast(
                probability,
                max(forecast.expected_final, float(seen)),
                float(seen),
                math.nan,
                forecast.branching,
                (*forecast.reasons, f"{seen} engagement seen at an unknown time"),
            )
        return forecast


# Languages the text scorers read: English, and texts too short to tell (as before).
_READ_AS_ENGLISH = frozenset(("en", "und"))
# The complaint probability of a review whose text is not read, by its stars (1..5):
# a 1-star review is most often a complaint, a 4- or 5-star one rarely.
_RATED_COMPLAINT = (0.8, 0.65, 0.35, 0.1, 0.05)


def _rated(rating: float) -> Complaint:
    """The complaint probability of a review read by its star rating alone."""
    stars = min(max(float(rating), 1.0), 5.0)
    low = int(stars) - 1
    high = min(low + 1, 4)
    p = _RATED_COMPLAINT[low] + (stars - 1 - low) * (_RATED_COMPLAINT[high] - _RATED_COMPLAINT[low])
    reason = f"complaint {p:.2f} from the {stars:g}-star rating (text not read)"
    return Complaint(p, (), round(math.log(p / (1 - p)), 4), (reason,))


# What Scorer._read finds in a mention's text: the prepared text, its sentiment, the
# complaint, the rules' category, the sentiment's reasons, the triage cues, whether it asks
# a question, the category's reasons and the language.
_Reading = tuple[
    Prepared,
    float,
    Complaint,
    str,
    tuple[str, ...],
    dict[str, list[Cue]],
    bool,
    list[str],
    str,
]


_MINUTES_WITHIN: dict[str, int] = {}


def _minutes_within(severity: str) -> int:
    """``triage.respond_within(severity)`` in whole minutes, remembered by severity."""
    minutes = _MINUTES_WITHIN.get(severity)
    if minutes is None:
        minutes = int(triage.respond_within(severity).total_seconds() // 60)
        if len(_MINUTES_WITHIN) < 64:
            _MINUTES_WITHIN[severity] = minutes
    return minutes


@lru_cache(maxsize=4096)
def _prior_forecast(source: str, followers: int, threshold: int) -> Forecast:
    """The forecast before anything is observed; cached, as it depends on three values.
    Its probability and expected engagement as the scores round them are kept in
    :data:`_PRIOR_ROUNDED`."""
    forecast = forecast_from_polls(
        [], threshold=threshold, poster_followers=followers or None, prior=platform_prior(source)
    )
    if len(_PRIOR_ROUNDED) < 4096:
        _PRIOR_ROUNDED[id(forecast)] = (
            forecast,
            round(forecast.probability, 4),
            round(forecast.expected_final, 1),
        )
    return forecast


# A prior forecast's rounded figures by its id; the entry holds the forecast, so the id
# cannot name another object while the entry exists (Scorer.score checks it is the same).
_PRIOR_ROUNDED: dict[int, tuple[Forecast, float, float]] = {}


def _with_reason(forecast: Forecast, reason: str) -> Forecast:
    return Forecast(
        forecast.probability,
        forecast.expected_final,
        forecast.engagement,
        forecast.age,
        forecast.branching,
        (*forecast.reasons, reason),
    )
