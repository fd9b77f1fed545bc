"""Gathering the digest: what was heard on one local day, read in a handful of queries.

The typed parts of a :class:`Digest` and :func:`build_digest`, which reads them from the
database. The day's alerts are the stored rows (:class:`~emberwatch.models.AlertRecord`,
only the columns shown); the other parts are summaries no table holds. Pure reading:
nothing here sends, renders or writes.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import load_only
from sqlmodel import Session, select

from emberwatch.alerts import themes as complaint_themes
from emberwatch.alerts.decisions import SourceFacts, SourceHealth, SourceStatus, source_health
from emberwatch.alerts.links import action_urls
from emberwatch.config import SEVERITY_RANK, Config
from emberwatch.digest.schedule import day_bounds
from emberwatch.models import (
    AlertRecord,
    ChannelHealth,
    Delivery,
    Incident,
    IncidentAction,
    MentionRecord,
    Rollup,
    SourceState,
    utcnow,
)
from emberwatch.text import one_line, web_link

NEGATIVE_MAX = -0.05  # sentiment at or below: negative
POSITIVE_MIN = 0.05  # sentiment at or above: positive
SENTIMENTS = ("negative", "neutral", "positive")
CHART_DAYS = 14
BASELINE_DAYS = 7  # the average is over the 7 days before the reported day
TOP_THEMES = 5
EXCERPT = 160
LINK_RECIPIENT = "digest"  # whom the digest's action links name (the page asks who acts)
SEVERITIES = ("critical", "warning", "info")  # most severe first


# -- the digest's typed parts -------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    """A count for the reported day, the day before, and the 7-day average before it."""

    name: str
    today: int
    previous: int
    week_average: float

    @property
    def delta(self) -> str:
        """Change against the day before: ``+3``, ``−2`` or ``±0``."""
        change = self.today - self.previous
        return f"+{change}" if change > 0 else f"−{-change}" if change < 0 else "±0"

    @property
    def trend(self) -> str:
        """An arrow against the 7-day average; flat within 10 % (or one mention)."""
        gap = self.today - self.week_average
        if abs(gap) <= max(1.0, 0.1 * self.week_average):
            return "→"
        return "↑" if gap > 0 else "↓"


@dataclass(frozen=True)
class DayVolume:
    day: date
    mentions: int
    negative: int

    @property
    def negative_share(self) -> float | None:
        return self.negative / self.mentions if self.mentions else None


@dataclass(frozen=True)
class OpenIncident:
    id: int
    severity: str
    brand: str
    title: str
    status: str
    opened_at: datetime
    age: timedelta
    escalations: int
    episode: int = 1
    post_url: str | None = None  # the lead mention's link, when it is plain http(s)
    links: dict[str, str] = field(default_factory=dict)  # action -> signed action page URL
    handled: str | None = None  # "acknowledged by ana at …", "snoozed by bo until …"

    @property
    def unacknowledged(self) -> bool:
        return self.status == "triggered"


@dataclass(frozen=True)
class ResolvedIncident:
    id: int
    severity: str
    brand: str
    title: str
    resolved_by: str
    resolved_at: datetime
    open_for: timedelta


@dataclass(frozen=True)
class Durations:
    """Median and worst of the durations of incidents acknowledged (or resolved) that day."""

    count: int = 0
    median: timedelta | None = None
    worst: timedelta | None = None

    @classmethod
    def of(cls, values: list[timedelta]) -> Durations:
        if not values:
            return cls()
        seconds = statistics.median(v.total_seconds() for v in values)
        return cls(len(values), timedelta(seconds=round(seconds)), max(values))


@dataclass(frozen=True)
class EscalatedIncident:
    id: int
    severity: str
    brand: str
    title: str
    status: str
    escalations: int


@dataclass(frozen=True)
class FailedDelivery:
    id: int
    channel: str
    kind: str
    recipient: str | None
    status: str
    attempts: int
    last_error: str


@dataclass(frozen=True)
class BrokenChannel:
    channel: str
    broken_since: datetime
    last_error: str


@dataclass(frozen=True)
class SourceLine:
    """A source's health as the alert policy judges it (pending, failing, unhealthy, ...)."""

    name: str
    type: str
    status: SourceStatus
    reason: str
    consecutive_failures: int
    last_success_at: datetime | None
    last_error: str


UnhealthySource = SourceLine  # the name before pending and failing sources were told apart


@dataclass(frozen=True)
class VipMention:
    brand: str
    source_name: str
    author: str
    excerpt: str
    url: str | None
    sentiment: str

    @property
    def link(self) -> str | None:
        """The URL when it is plain http(s), safe to put in an ``href``."""
        return web_link(self.url)


@dataclass(frozen=True)
class ThemeCount:
    theme: str
    count: int
    example: str
    lesson: str


@dataclass
class Digest:
    day: date
    zone: str
    generated_at: datetime
    total: Count
    by_brand: list[Count] = field(default_factory=list)
    by_source: list[Count] = field(default_factory=list)
    by_sentiment: list[Count] = field(default_factory=list)
    daily: list[DayVolume] = field(default_factory=list)
    # The day's alerts as stored, with only the columns the digest shows.
    alerts: list[AlertRecord] = field(default_factory=list)
    open_incidents: list[OpenIncident] = field(default_factory=list)
    time_to_acknowledge: Durations = field(default_factory=Durations)
    time_to_resolve: Durations = field(default_factory=Durations)
    escalated: list[EscalatedIncident] = field(default_factory=list)
    failed_deliveries: list[FailedDelivery] = field(default_factory=list)
    broken_channels: list[BrokenChannel] = field(default_factory=list)
    silenced: int = 0
    rolled_up: dict[str, int] = field(default_factory=dict)
    sources: list[SourceLine] = field(default_factory=list)  # every source not healthy
    resolved: list[ResolvedIncident] = field(default_factory=list)
    vip_mentions: list[VipMention] = field(default_factory=list)
    complaints: int = 0  # negative or complaint mentions the themes were counted over
    themes: list[ThemeCount] = field(default_factory=list)

    @property
    def mentions(self) -> int:
        return self.total.today

    def _sources(self, status: str) -> list[SourceLine]:
        return [s for s in self.sources if s.status == status]

    @property
    def unhealthy_sources(self) -> list[SourceLine]:
        return self._sources("unhealthy")

    @property
    def failing_sources(self) -> list[SourceLine]:
        """In trouble, but not yet for ``unhealthy_after_intervals``."""
        return self._sources("failing")

    @property
    def pending_sources(self) -> list[SourceLine]:
        """Not polled yet: a new install or a newly added source. Not a problem."""
        return self._sources("pending")

    @property
    def unacknowledged(self) -> list[OpenIncident]:
        return [i for i in self.open_incidents if i.unacknowledged]

    @property
    def state(self) -> str:
        """``critical``, ``warning``, ``attention`` or ``clear``: the headline's colour."""
        if self.broken_channels or any(i.severity == "critical" for i in self.open_incidents):
            return "critical"
        if any(i.severity == "warning" for i in self.open_incidents):
            return "warning"
        if self.open_incidents or self.attention:
            return "attention"
        return "clear"

    @property
    def headline(self) -> str:
        """The state of the day in one line: the digest's first line."""
        parts: list[str] = []
        if self.open_incidents:
            n = len(self.open_incidents)
            tally = Counter(i.severity for i in self.open_incidents)
            by_severity = ", ".join(f"{tally[s]} {s}" for s in SEVERITIES if tally[s])
            parts.append(f"{n} open incident{_s(n)} ({by_severity})")
            waiting = self.unacknowledged
            if waiting:
                oldest = max(waiting, key=lambda i: (i.age, -i.id))
                parts.append(
                    f"{len(waiting)} unacknowledged, the oldest #{oldest.id} "
                    f"({oldest.severity}, {oldest.brand}) open {duration_text(oldest.age)}"
                )
            else:
                parts.append("all acknowledged")
            escalated = [i for i in waiting if i.escalations]
            if escalated:
                parts.append(f"{len(escalated)} escalated without acknowledgement")
        for r in self.broken_channels:
            parts.append(f"channel {r.channel} BROKEN")
        if self.failed_deliveries:
            n = len(self.failed_deliveries)
            parts.append(f"{n} deliver{'y' if n == 1 else 'ies'} failed or expired")
        for word, sources in (
            ("unhealthy", self.unhealthy_sources),
            ("failing", self.failing_sources),
        ):
            if sources:
                names = ", ".join(s.name for s in sources)
                parts.append(f"{len(sources)} source{_s(len(sources))} {word}: {names}")
        pending = ""
        if self.pending_sources:
            n = len(self.pending_sources)
            names = ", ".join(s.name for s in self.pending_sources)
            pending = (
                f"{n} source{_s(n)} pending {'its' if n == 1 else 'their'} first poll: {names}"
            )
        if not parts:
            clear = "All clear: no open incident, no failed delivery, every source healthy"
            return f"{clear} ({pending})" if pending else clear
        if not self.open_incidents:
            parts.insert(0, "No open incident")
        if pending:
            parts.append(pending)
        return "; ".join(parts)

    @property
    def attention(self) -> list[str]:
        """What needs someone now besides the incidents, one line each, shown first."""
        lines = [
            f"channel {r.channel} is BROKEN since {local_time(r.broken_since, self.zone)}: "
            f"{r.last_error or 'no error recorded'}"
            for r in self.broken_channels
        ]
        if self.failed_deliveries:
            n = len(self.failed_deliveries)
            lines.append(f"{n} deliver{'y' if n == 1 else 'ies'} failed or expired")
        for word, sources in (
            ("unhealthy", self.unhealthy_sources),
            ("failing", self.failing_sources),
        ):
            if sources:
                n = len(sources)
                lines.append(f"{n} source{_s(n)} {word}: {', '.join(s.name for s in sources)}")
        return lines


def _s(n: int) -> str:
    return "" if n == 1 else "s"


# -- building -----------------------------------------------------------------------------


def sentiment_label(value: float | None) -> str:
    if value is None:
        return "unscored"
    return (
        "negative" if value <= NEGATIVE_MAX else "positive" if value >= POSITIVE_MIN else "neutral"
    )


def build_digest(
    engine: Engine,
    day: date,
    zone: str,
    *,
    now: datetime | None = None,
    config: Config | None = None,
) -> Digest:
    """Everything the digest says about local ``day``; ``now`` dates the incidents' ages.

    With ``config``, incident rows carry signed action links (when ``[http]`` is set) and
    sources are judged as the alert policy judges them, by their own interval; without
    it, a source is failing when its last poll failed and pending before its first.
    """
    now = now or utcnow()
    start, end = day_bounds(day, zone)
    days = [day - timedelta(days=CHART_DAYS - 1 - i) for i in range(CHART_DAYS)]
    edges = [day_bounds(d, zone)[0] for d in days] + [end]
    with Session(engine) as session:
        counts = _mention_counts(session, edges)
        digest = Digest(day=day, zone=zone, generated_at=now, total=counts.total())
        digest.by_brand = counts.table("brand")
        digest.by_source = counts.table("source")
        digest.by_sentiment = counts.table("sentiment", always=SENTIMENTS)
        digest.daily = [
            DayVolume(d, counts.per_day[i], counts.negative_per_day[i]) for i, d in enumerate(days)
        ]
        _add_alerts(session, digest, start, end)
        _add_incidents(session, digest, start, end, now, config)
        _add_deliveries(session, digest, start, end)
        _add_sources(session, digest, now, config)
        _add_vips_and_themes(session, digest, start, end)
    return digest


class _MentionCounts:
    """Mentions per local day (0 = first chart day, last = reported day) and dimension."""

    def __init__(self) -> None:
        self.per_day: list[int] = [0] * CHART_DAYS
        self.negative_per_day: list[int] = [0] * CHART_DAYS
        self.by: dict[str, dict[str, list[int]]] = {
            dim: defaultdict(lambda: [0] * CHART_DAYS) for dim in ("brand", "source", "sentiment")
        }

    def add(self, index: int, brand: str, source: str, sentiment: str, n: int) -> None:
        self.per_day[index] += n
        if sentiment == "negative":
            self.negative_per_day[index] += n
        self.by["brand"][brand][index] += n
        self.by["source"][source][index] += n
        self.by["sentiment"][sentiment][index] += n

    @staticmethod
    def _count(name: str, series: list[int]) -> Count:
        week = series[-1 - BASELINE_DAYS : -1]
        return Count(name, series[-1], series[-2], sum(week) / BASELINE_DAYS)

    def total(self) -> Count:
        return self._count("all", self.per_day)

    def table(self, dim: str, always: tuple[str, ...] = ()) -> list[Count]:
        series = self.by[dim]
        rows = [
            self._count(name, series.get(name, [0] * CHART_DAYS))
            for name in set(series) | set(always)
        ]
        rows = [r for r in rows if r.name in always or r.today or r.previous or r.week_average]
        if always:
            order = {name: i for i, name in enumerate(always)}
            return sorted(rows, key=lambda r: (order.get(r.name, len(order)), r.name))
        return sorted(rows, key=lambda r: (-r.today, -r.week_average, r.name))


def _mention_counts(session: Session, edges: list[datetime]) -> _MentionCounts:
    """One grouped query: counts per local day, brand, source and sentiment bucket."""
    seen = MentionRecord.first_seen_at
    score = MentionRecord.sentiment
    day_index = sa.case(*[(seen < edge, i) for i, edge in enumerate(edges[1:])])  # type: ignore[operator]
    bucket = sa.case(
        (score.is_(None), "unscored"),  # type: ignore[union-attr]
        (score <= NEGATIVE_MAX, "negative"),  # type: ignore[operator]
        (score >= POSITIVE_MIN, "positive"),  # type: ignore[operator]
        else_="neutral",
    )
    inner = (
        sa.select(
            day_index.label("d"),
            MentionRecord.brand,
            MentionRecord.source_name,
            bucket.label("s"),
        )
        .where(seen >= edges[0], seen < edges[-1])  # type: ignore[operator]
        .subquery()
    )
    grouped = sa.select(
        inner.c.d, inner.c.brand, inner.c.source_name, inner.c.s, sa.func.count()
    ).group_by(inner.c.d, inner.c.brand, inner.c.source_name, inner.c.s)
    counts = _MentionCounts()
    for index, brand, source, sentiment, n in session.execute(grouped):
        counts.add(index, brand, source, sentiment, n)
    return counts


# What the digest shows of an alert (not its reason, the longest column).
_ALERT_COLUMNS = (
    AlertRecord.id,
    AlertRecord.severity,
    AlertRecord.category,
    AlertRecord.brand,
    AlertRecord.source_name,
    AlertRecord.silenced_by,
)


def _add_alerts(session: Session, digest: Digest, start: datetime, end: datetime) -> None:
    digest.alerts = list(
        session.exec(
            select(AlertRecord)
            .options(load_only(*_ALERT_COLUMNS))
            .where(_during(AlertRecord.created_at, start, end))
            .order_by(AlertRecord.id)  # type: ignore[arg-type]
        )
    )
    digest.silenced = sum(alert.silenced_by is not None for alert in digest.alerts)
    rollups = session.execute(
        sa.select(Rollup.channel, sa.func.count())
        .where(_during(Rollup.created_at, start, end))
        .group_by(Rollup.channel)
        .order_by(Rollup.channel)
    ).all()
    digest.rolled_up = {channel: n for channel, n in rollups}


def _during(column: object, start: datetime, end: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(column >= start, column < end)  # type: ignore[operator]


def _add_incidents(
    session: Session,
    digest: Digest,
    start: datetime,
    end: datetime,
    now: datetime,
    config: Config | None,
) -> None:
    """Open incidents, response times and escalations, from one query over incidents,
    then each open incident's post and who acted on it (one query each)."""
    escalated_that_day = sa.select(IncidentAction.incident_id).where(
        IncidentAction.action == "escalate", _during(IncidentAction.at, start, end)
    )
    rows = session.exec(
        select(Incident, Incident.id.in_(escalated_that_day))  # type: ignore[union-attr]
        .where(
            sa.or_(
                Incident.status != "resolved",
                _during(Incident.acknowledged_at, start, end),
                _during(Incident.resolved_at, start, end),
                _during(Incident.last_escalated_at, start, end),
                Incident.id.in_(escalated_that_day),  # type: ignore[union-attr]
            )
        )
        .order_by(Incident.opened_at, Incident.id)  # type: ignore[arg-type]
    ).all()
    to_ack: list[timedelta] = []
    to_resolve: list[timedelta] = []
    still_open = [incident for incident, _ in rows if incident.status != "resolved"]
    posts = _posts(session, [i.id for i in still_open])  # type: ignore[misc]
    handled = _handled(session, still_open)
    for incident, escalate_action in rows:
        assert incident.id is not None
        if incident.status != "resolved":
            digest.open_incidents.append(
                OpenIncident(
                    incident.id,
                    incident.severity,
                    incident.brand,
                    one_line(incident.title, EXCERPT),
                    incident.status,
                    incident.opened_at,
                    max(now - incident.opened_at, timedelta(0)),
                    incident.escalations,
                    episode=incident.episode,
                    post_url=posts.get(incident.id),
                    links=_action_links(config, incident),
                    handled=handled.get(incident.id),
                )
            )
        if incident.acknowledged_at and start <= incident.acknowledged_at < end:
            to_ack.append(max(incident.acknowledged_at - incident.opened_at, timedelta(0)))
        if incident.resolved_at and start <= incident.resolved_at < end:
            to_resolve.append(max(incident.resolved_at - incident.opened_at, timedelta(0)))
            digest.resolved.append(
                ResolvedIncident(
                    incident.id,
                    incident.severity,
                    incident.brand,
                    one_line(incident.title, EXCERPT),
                    one_line(incident.resolved_by or "unknown", 100),
                    incident.resolved_at,
                    max(incident.resolved_at - incident.opened_at, timedelta(0)),
                )
            )
        escalated = incident.escalations > 0 and (
            incident.last_escalated_at is not None and start <= incident.last_escalated_at < end
        )
        if escalated or escalate_action:
            digest.escalated.append(
                EscalatedIncident(
                    incident.id,
                    incident.severity,
                    incident.brand,
                    one_line(incident.title, EXCERPT),
                    incident.status,
                    max(incident.escalations, 1),
                )
            )
    severity_rank = {name: i for i, name in enumerate(SEVERITIES)}
    digest.open_incidents.sort(key=lambda i: (severity_rank.get(i.severity, 3), -i.age))
    digest.time_to_acknowledge = Durations.of(to_ack)
    digest.time_to_resolve = Durations.of(to_resolve)


def _posts(session: Session, incident_ids: list[int]) -> dict[int, str]:
    """Each incident's post: the link of its most severe, newest alert's mention."""
    if not incident_ids:
        return {}
    rows = session.execute(
        sa.select(AlertRecord.incident_id, AlertRecord.severity, AlertRecord.id, MentionRecord.url)
        .join(MentionRecord, MentionRecord.id == AlertRecord.mention_id)  # type: ignore[arg-type]
        .where(AlertRecord.incident_id.in_(incident_ids))  # type: ignore[union-attr]
    ).all()
    best: dict[int, tuple[int, int, str | None]] = {}
    for incident_id, severity, alert_id, url in rows:
        rank = (SEVERITY_RANK.get(severity, 0), alert_id)
        if incident_id not in best or rank > best[incident_id][:2]:
            best[incident_id] = (*rank, url)
    return {i: link for i, (_, _, url) in best.items() if (link := web_link(url))}


def _handled(session: Session, incidents: list[Incident]) -> dict[int, str]:
    """Who last acknowledged or snoozed each open incident in its current episode."""
    acknowledged = {i.id: i for i in incidents if i.status == "acknowledged"}
    if not acknowledged:
        return {}
    actions = session.exec(
        select(IncidentAction)
        .where(
            IncidentAction.incident_id.in_(list(acknowledged)),  # type: ignore[attr-defined]
            IncidentAction.action.in_(("ack", "snooze")),  # type: ignore[attr-defined]
        )
        .order_by(IncidentAction.at, IncidentAction.id)  # type: ignore[arg-type]
    ).all()
    latest = {a.incident_id: a for a in actions if a.episode == acknowledged[a.incident_id].episode}
    said: dict[int, str] = {}
    for incident_id, incident in acknowledged.items():
        action = latest.get(incident_id)
        actor = one_line(action.actor if action else incident.acknowledged_by or "unknown", 100)
        at = action.at if action else incident.acknowledged_at
        if incident.snoozed_until is not None:
            said[incident_id] = f"snoozed by {actor} until {_utc(incident.snoozed_until)}"
        else:
            said[incident_id] = f"acknowledged by {actor} at {_utc(at)}"
    return said


def _utc(moment: datetime | None) -> str:
    return "an unknown time" if moment is None else f"{moment:%Y-%m-%d %H:%M}Z"


def _action_links(config: Config | None, incident: Incident) -> dict[str, str]:
    if config is None or config.http is None:
        return {}
    http = config.http
    return action_urls(
        http.public_url,
        http.secret.get_secret_value(),
        incident.id,  # type: ignore[arg-type]
        incident.episode,
        LINK_RECIPIENT,
    )


def _add_deliveries(session: Session, digest: Digest, start: datetime, end: datetime) -> None:
    failed = session.exec(
        select(Delivery)
        .where(
            Delivery.status.in_(("failed", "expired")),  # type: ignore[attr-defined]
            sa.or_(
                _during(Delivery.created_at, start, end),
                _during(Delivery.next_attempt_at, start, end),  # the last try, once given up
                _during(Delivery.expires_at, start, end),
            ),
        )
        .order_by(Delivery.id)  # type: ignore[arg-type]
    ).all()
    digest.failed_deliveries = [
        FailedDelivery(
            d.id,  # type: ignore[arg-type]
            d.channel,
            d.kind,
            d.recipient,
            d.status,
            d.attempts,
            one_line(d.last_error or "", 300),
        )
        for d in failed
    ]
    broken = session.exec(
        select(ChannelHealth)
        .where(ChannelHealth.broken_since.is_not(None))  # type: ignore[union-attr]
        .order_by(ChannelHealth.channel)
    ).all()
    digest.broken_channels = [
        BrokenChannel(r.channel, r.broken_since, one_line(r.last_error or "", 300))  # type: ignore[arg-type]
        for r in broken
    ]


def _add_sources(session: Session, digest: Digest, now: datetime, config: Config | None) -> None:
    """Every source that is not healthy now: pending, failing or unhealthy."""
    states = session.exec(select(SourceState).order_by(SourceState.name)).all()
    configured = {s.name: s for s in config.sources if s.enabled} if config else None
    for state in states:
        facts = SourceFacts(
            state.last_poll_at,
            state.last_success_at,
            state.consecutive_failures,
            state.unhealthy_since,
        )
        if configured is None:
            health = _health_without_config(facts)
        elif state.name not in configured:
            continue  # removed from the config, or disabled: nobody expects it to poll
        else:
            health = source_health(
                facts,
                configured[state.name].interval,
                config.unhealthy_after_intervals,  # type: ignore[union-attr]
                now,
                grace=config.poll_jitter,  # type: ignore[union-attr]
            )
        if health.status == "healthy":
            continue
        digest.sources.append(
            SourceLine(
                state.name,
                state.type,
                health.status,
                health.reason,
                state.consecutive_failures,
                state.last_success_at,
                one_line(state.last_error or "", 300),
            )
        )
    if configured is not None:  # configured sources without a row yet: never polled
        known = {s.name for s in states}
        for name, source in configured.items():
            if name not in known:
                digest.sources.append(
                    SourceLine(name, source.type, "pending", _FIRST_POLL, 0, None, "")
                )


def _health_without_config(facts: SourceFacts) -> SourceHealth:
    """Without the sources' intervals: failing when the last poll failed."""
    if facts.consecutive_failures:
        n = facts.consecutive_failures
        return SourceHealth("failing", f"{n} failed poll{_s(n)} in a row")
    if facts.last_poll_at is None or facts.last_success_at is None:
        return SourceHealth("pending", _FIRST_POLL)
    return SourceHealth("healthy", "polled successfully")


_FIRST_POLL = "waiting for its first poll"


def _add_vips_and_themes(session: Session, digest: Digest, start: datetime, end: datetime) -> None:
    """VIP mentions and complaint themes, from one query over the day's notable mentions."""
    vip = MentionRecord.vip.is_(True)  # type: ignore[attr-defined]
    unhappy = sa.or_(
        MentionRecord.category == "complaint",
        MentionRecord.sentiment <= NEGATIVE_MAX,  # type: ignore[operator]
    )
    rows = session.execute(
        sa.select(
            MentionRecord.brand,
            MentionRecord.source_name,
            MentionRecord.author,
            MentionRecord.title,
            MentionRecord.text,
            MentionRecord.url,
            MentionRecord.sentiment,
            vip.label("vip"),
            unhappy.label("unhappy"),
        )
        .where(_during(MentionRecord.first_seen_at, start, end), sa.or_(vip, unhappy))
        .order_by(MentionRecord.engagement.desc(), MentionRecord.id)  # type: ignore[attr-defined]
    ).all()
    tally: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for brand, source, author, title, text, url, sentiment, is_vip, is_unhappy in rows:
        body = f"{title} — {text}" if title and text and title not in text else text or title or ""
        if is_vip:
            digest.vip_mentions.append(
                VipMention(
                    brand,
                    source,
                    one_line(author or "unknown", 100),
                    _excerpt(body),
                    url,
                    sentiment_label(sentiment),
                )
            )
        if is_unhappy:
            digest.complaints += 1
            for theme in complaint_themes.THEMES:
                found = theme.pattern.search(body)
                if found:
                    tally[theme.name] += 1
                    examples.setdefault(theme.name, _excerpt(body, found.start()))
    order = {theme.name: i for i, theme in enumerate(complaint_themes.THEMES)}
    top = sorted(tally, key=lambda name: (-tally[name], order[name]))[:TOP_THEMES]
    digest.themes = [
        ThemeCount(name, tally[name], examples[name], complaint_themes.lesson(name)) for name in top
    ]


def _excerpt(text: str, at: int | None = None, limit: int = EXCERPT) -> str:
    """About ``limit`` characters of ``text`` on one line, around position ``at``."""
    begin = 0 if at is None or at < limit // 2 else at - limit // 3
    window = text[begin : begin + limit * 2]
    line = one_line(window, limit - 1 if begin else limit)
    return f"…{line}" if begin else line


def local_time(moment: datetime | None, zone: str) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def duration_text(span: timedelta | None) -> str:
    if span is None:
        return "–"
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m" if minutes else f"{seconds}s"
