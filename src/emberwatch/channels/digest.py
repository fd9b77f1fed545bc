"""The ops team's daily digest: what was heard yesterday, sent once a day by email.

The digest for a local date is enqueued with the key ``digest:<date>``, so it is sent at
most once per day however often the scheduler fires or the process restarts; it is sent on
quiet days too, so that silence is visibly silence. :func:`digest_due` is the pure "queue
it now?" decision the scheduler asks every minute.

What it holds, for the reported local day (all read in a handful of queries):

- what needs attention now, said first: broken receivers, failed or expired deliveries,
  unhealthy sources;
- mention counts by brand, source and sentiment against the day before and the 7-day
  average, and a 14-day chart of volume and negative share;
- open incidents with their age, time to acknowledge and to resolve, escalations;
- what the noise controls held back: silenced alerts and rolled-up notifications;
- VIP mentions, and the top complaint themes with a lesson for each.
"""

from __future__ import annotations

import base64
import io
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from zoneinfo import ZoneInfo

import anyio
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from emberwatch.alerts import themes as complaint_themes
from emberwatch.channels import email
from emberwatch.channels._escape import cut, terminal
from emberwatch.config import Config
from emberwatch.errors import DeliveryError
from emberwatch.models import (
    AlertRecord,
    Delivery,
    Incident,
    IncidentAction,
    MentionRecord,
    ReceiverHealth,
    Rollup,
    SourceState,
    utcnow,
)
from emberwatch.outbox import Claimed, enqueue

NEGATIVE_MAX = -0.05  # sentiment at or below: negative
POSITIVE_MIN = 0.05  # sentiment at or above: positive
SENTIMENTS = ("negative", "neutral", "positive")
CHART_DAYS = 14
BASELINE_DAYS = 7  # the average is over the 7 days before the reported day
TOP_THEMES = 5
EXCERPT = 160
DEDUP_PREFIX = "digest:"


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
class AlertLine:
    id: int
    severity: str
    category: str
    brand: str
    source_name: str
    silenced: bool


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
class BrokenReceiver:
    receiver: str
    broken_since: datetime
    last_error: str


@dataclass(frozen=True)
class UnhealthySource:
    name: str
    type: str
    consecutive_failures: int
    last_success_at: datetime | None
    last_error: str


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
        return self.url if self.url and re.match(r"^https?://", self.url, re.I) else None


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
    alerts: list[AlertLine] = field(default_factory=list)
    open_incidents: list[OpenIncident] = field(default_factory=list)
    time_to_acknowledge: Durations = field(default_factory=Durations)
    time_to_resolve: Durations = field(default_factory=Durations)
    escalated: list[EscalatedIncident] = field(default_factory=list)
    failed_deliveries: list[FailedDelivery] = field(default_factory=list)
    broken_receivers: list[BrokenReceiver] = field(default_factory=list)
    silenced: int = 0
    rolled_up: dict[str, int] = field(default_factory=dict)
    unhealthy_sources: list[UnhealthySource] = field(default_factory=list)
    vip_mentions: list[VipMention] = field(default_factory=list)
    complaints: int = 0  # negative or complaint mentions the themes were counted over
    themes: list[ThemeCount] = field(default_factory=list)

    @property
    def mentions(self) -> int:
        return self.total.today

    @property
    def attention(self) -> list[str]:
        """What needs someone now, one line each, shown first (and named in the subject)."""
        lines = [
            f"receiver {r.receiver} is BROKEN since {_local(r.broken_since, self.zone)}: "
            f"{r.last_error or 'no error recorded'}"
            for r in self.broken_receivers
        ]
        if self.failed_deliveries:
            n = len(self.failed_deliveries)
            lines.append(f"{n} deliver{'y' if n == 1 else 'ies'} failed or expired")
        if self.unhealthy_sources:
            n = len(self.unhealthy_sources)
            lines.append(f"{n} source{'' if n == 1 else 's'} unhealthy")
        return lines


# -- days and scheduling ------------------------------------------------------------------


def day_bounds(day: date, zone: str) -> tuple[datetime, datetime]:
    """The UTC instants where a local calendar day starts and ends (DST-aware)."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def digest_day(now: datetime, zone: str) -> date:
    """The day a digest sent at ``now`` reports on: the previous local calendar day."""
    return now.astimezone(ZoneInfo(zone)).date() - timedelta(days=1)


def digest_due(now: datetime, send_at: time, zone: str, last_queued: date | None) -> date | None:
    """The day whose digest should be queued at ``now``, or None.

    Due once the local wall clock in ``zone`` has reached ``send_at`` today and yesterday's
    digest is newer than ``last_queued`` (the newest day already queued). "Reached" holds
    from the first moment the wall clock shows ``send_at`` or later: in a spring-forward gap
    that is the jump itself, and in a fall-back overlap the first of the two passes, so the
    repeated hour neither delays nor repeats it. A process that was down at send time queues
    the digest when it comes back the same day.
    """
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    day = local.date() - timedelta(days=1)
    if last_queued is not None and last_queued >= day:
        return None
    first_pass = datetime.combine(local.date(), send_at.replace(tzinfo=None), tzinfo=tz)
    reached = local.time() >= send_at.replace(tzinfo=None) or now >= first_pass
    return day if reached else None


def last_queued_day(engine: Engine) -> date | None:
    """The newest day whose digest was queued (``digest:<date>`` in the outbox)."""
    with Session(engine) as session:
        keys = session.exec(
            select(Delivery.dedup_key)
            .where(Delivery.dedup_key.startswith(DEDUP_PREFIX))  # type: ignore[attr-defined]
            .order_by(Delivery.dedup_key.desc())  # type: ignore[attr-defined]
            .limit(10)
        ).all()
    for key in keys:  # ISO dates sort as text; skip any key that is not one
        try:
            return date.fromisoformat(key.removeprefix(DEDUP_PREFIX))
        except ValueError:
            continue
    return None


def enqueue_digest(engine: Engine, day: date, now: datetime) -> bool:
    """Queue the digest for ``day`` unless it already was; True when newly queued."""
    with Session(engine) as session:
        added = enqueue(
            session,
            dedup_key=f"{DEDUP_PREFIX}{day.isoformat()}",
            channel="digest",
            kind="digest",
            now=now,
            payload={"date": day.isoformat()},
        )
        try:
            session.commit()
        except sa.exc.IntegrityError:  # another node queued it first
            session.rollback()
            return False
        return added


# -- building -----------------------------------------------------------------------------


def sentiment_label(value: float | None) -> str:
    if value is None:
        return "unscored"
    return (
        "negative" if value <= NEGATIVE_MAX else "positive" if value >= POSITIVE_MIN else "neutral"
    )


def build_digest(engine: Engine, day: date, zone: str, *, now: datetime | None = None) -> Digest:
    """Everything the digest says about local ``day``; ``now`` dates the incidents' ages."""
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
        _add_incidents(session, digest, start, end, now)
        _add_deliveries(session, digest, start, end)
        _add_sources(session, digest, start)
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


def _add_alerts(session: Session, digest: Digest, start: datetime, end: datetime) -> None:
    rows = session.execute(
        sa.select(
            AlertRecord.id,
            AlertRecord.severity,
            AlertRecord.category,
            AlertRecord.brand,
            AlertRecord.source_name,
            AlertRecord.silenced_by,
        )
        .where(_during(AlertRecord.created_at, start, end))
        .order_by(AlertRecord.id)  # type: ignore[arg-type]
    ).all()
    digest.alerts = [
        AlertLine(id_, severity, category, brand, source, silenced_by is not None)
        for id_, severity, category, brand, source, silenced_by in rows
    ]
    digest.silenced = sum(alert.silenced for alert in digest.alerts)
    rollups = session.execute(
        sa.select(Rollup.receiver, sa.func.count())
        .where(_during(Rollup.created_at, start, end))
        .group_by(Rollup.receiver)
        .order_by(Rollup.receiver)
    ).all()
    digest.rolled_up = {receiver: n for receiver, n in rollups}


def _during(column: object, start: datetime, end: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(column >= start, column < end)  # type: ignore[operator]


def _add_incidents(
    session: Session, digest: Digest, start: datetime, end: datetime, now: datetime
) -> None:
    """Open incidents, response times and escalations, from one query over incidents."""
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
    for incident, escalate_action in rows:
        assert incident.id is not None
        if incident.status != "resolved":
            digest.open_incidents.append(
                OpenIncident(
                    incident.id,
                    incident.severity,
                    incident.brand,
                    _one_line(incident.title, EXCERPT),
                    incident.status,
                    incident.opened_at,
                    max(now - incident.opened_at, timedelta(0)),
                    incident.escalations,
                )
            )
        if incident.acknowledged_at and start <= incident.acknowledged_at < end:
            to_ack.append(max(incident.acknowledged_at - incident.opened_at, timedelta(0)))
        if incident.resolved_at and start <= incident.resolved_at < end:
            to_resolve.append(max(incident.resolved_at - incident.opened_at, timedelta(0)))
        escalated = incident.escalations > 0 and (
            incident.last_escalated_at is not None and start <= incident.last_escalated_at < end
        )
        if escalated or escalate_action:
            digest.escalated.append(
                EscalatedIncident(
                    incident.id,
                    incident.severity,
                    incident.brand,
                    _one_line(incident.title, EXCERPT),
                    incident.status,
                    max(incident.escalations, 1),
                )
            )
    severity_rank = {"critical": 0, "warning": 1, "info": 2}
    digest.open_incidents.sort(key=lambda i: (severity_rank.get(i.severity, 3), -i.age))
    digest.time_to_acknowledge = Durations.of(to_ack)
    digest.time_to_resolve = Durations.of(to_resolve)


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
            _one_line(d.last_error or "", 300),
        )
        for d in failed
    ]
    broken = session.exec(
        select(ReceiverHealth)
        .where(ReceiverHealth.broken_since.is_not(None))  # type: ignore[union-attr]
        .order_by(ReceiverHealth.receiver)
    ).all()
    digest.broken_receivers = [
        BrokenReceiver(r.receiver, r.broken_since, _one_line(r.last_error or "", 300))  # type: ignore[arg-type]
        for r in broken
    ]


def _add_sources(session: Session, digest: Digest, start: datetime) -> None:
    """Sources failing now, or without a success since the reported day began."""
    states = session.exec(
        select(SourceState)
        .where(
            sa.or_(
                SourceState.consecutive_failures > 0,
                SourceState.last_success_at.is_(None),  # type: ignore[union-attr]
                SourceState.last_success_at < start,  # type: ignore[operator]
            )
        )
        .order_by(SourceState.name)
    ).all()
    digest.unhealthy_sources = [
        UnhealthySource(
            s.name,
            s.type,
            s.consecutive_failures,
            s.last_success_at,
            _one_line(s.last_error or "", 300),
        )
        for s in states
    ]


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
                    _one_line(author or "unknown", 100),
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


def _one_line(text: str, limit: int) -> str:
    return cut(" ".join(terminal(text).split()), limit)


def _excerpt(text: str, at: int | None = None, limit: int = EXCERPT) -> str:
    """About ``limit`` characters of ``text`` on one line, around position ``at``."""
    begin = 0 if at is None or at < limit // 2 else at - limit // 3
    window = text[begin : begin + limit * 2]
    line = _one_line(window, limit - 1 if begin else limit)
    return f"…{line}" if begin else line


# -- rendering ----------------------------------------------------------------------------


def _local(moment: datetime | None, zone: str) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def _duration(span: timedelta | None) -> str:
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


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f}%"


def chart_png(daily: list[DayVolume]) -> bytes:
    """A small PNG: mentions per day as bars, the negative share as a line (in %).

    Matplotlib is imported here, not at module import, and drawn on an Agg canvas without
    pyplot: no global backend switch and no shared figure state across threads.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(7, 2.6), dpi=100)
    FigureCanvasAgg(figure)
    bars = figure.add_subplot()
    positions = list(range(len(daily)))
    colours = ["#c0c7d0"] * len(daily)
    if colours:
        colours[-1] = "#4a6fa5"  # the reported day
    bars.bar(positions, [d.mentions for d in daily], color=colours, width=0.7)
    bars.set_ylabel("mentions", fontsize=8)
    bars.set_ylim(0, max([d.mentions for d in daily] + [1]) * 1.1)
    bars.yaxis.set_major_locator(MaxNLocator(integer=True))
    bars.set_xticks(positions, [f"{d.day:%d %b}" for d in daily], fontsize=7, rotation=45)
    bars.tick_params(axis="y", labelsize=7)
    bars.spines[["top"]].set_visible(False)
    if not any(d.mentions for d in daily):
        bars.text(0.5, 0.5, "nothing heard", transform=bars.transAxes, ha="center", color="#777")
    share = bars.twinx()
    values = [float("nan") if s is None else s * 100 for s in (d.negative_share for d in daily)]
    share.plot(positions, values, color="#c0392b", marker="o", markersize=3, linewidth=1.5)
    share.set_ylim(0, 100)
    share.set_ylabel("negative %", fontsize=8, color="#c0392b")
    share.tick_params(axis="y", labelsize=7, colors="#c0392b")
    share.spines[["top"]].set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def subject_line(digest: Digest) -> str:
    subject = (
        f"[Emberwatch] Daily digest for {digest.day.isoformat()}: "
        f"{digest.mentions} mentions, {len(digest.alerts)} alerts, "
        f"{len(digest.open_incidents)} open incidents"
    )
    if digest.broken_receivers:
        names = ", ".join(r.receiver for r in digest.broken_receivers)
        subject += f" — BROKEN RECEIVER: {names}"
    elif digest.attention:
        subject += " — needs attention"
    return subject


def render(digest: Digest, *, chart_cid: str | None = None) -> tuple[str, str, str]:
    """(subject, text, html) of a digest.

    The HTML shows the chart by ``cid:<chart_cid>`` when given (an email carrying the PNG
    as a related part, see :func:`digest_message`); otherwise it embeds the PNG as a
    ``data:`` URI, so a file written to disk is complete on its own.
    """
    if chart_cid is not None:
        chart_src = f"cid:{chart_cid}"
    else:
        chart_src = "data:image/png;base64," + base64.b64encode(chart_png(digest.daily)).decode()
    context = {
        "d": digest,
        "chart_src": chart_src,
        "local": lambda moment: _local(moment, digest.zone),
        "duration": _duration,
        "percent": _percent,
        "limit": 20,
    }
    return (
        subject_line(digest),
        email.render_template("digest.txt", **context),
        email.render_template("digest.html", **context),
    )


def digest_message(digest: Digest, *, sender: str, recipients: list[str]) -> EmailMessage:
    """The email: text and HTML alternatives, the chart inline as a related image/png."""
    domain = sender.rpartition("@")[2] or "emberwatch.local"
    cid = make_msgid("chart", domain=domain)  # "<…>"
    subject, text, html = render(digest, chart_cid=cid[1:-1])
    message = email.build_message(
        sender=sender, recipients=recipients, subject=subject, text=text, html=html
    )
    html_part = message.get_body(("html",))
    assert html_part is not None
    html_part.add_related(  # type: ignore[attr-defined]
        chart_png(digest.daily),
        maintype="image",
        subtype="png",
        cid=cid,
        disposition="inline",
        filename="mentions.png",
    )
    return message


async def send_stored(config: Config, engine: Engine, item: Claimed) -> None:
    channel, mail = config.channels.digest, config.channels.email
    if channel is None or mail is None:
        raise DeliveryError("digest: not configured any more", permanent=True)
    day = date.fromisoformat(item.payload["date"])
    digest = await anyio.to_thread.run_sync(build_digest, engine, day, channel.timezone)

    def compose() -> EmailMessage:
        return digest_message(digest, sender=mail.sender, recipients=channel.recipients)

    message = await anyio.to_thread.run_sync(compose)
    await email.send(message, mail)
