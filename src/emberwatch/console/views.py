"""The console's pages: incidents, one incident and its actions, mentions, sources, digests.

Every page is rendered on the server (Jinja2, autoescaped) and works without JavaScript;
``/static/console.js`` only refreshes the incident list when a new incident opens and adds
a copy button to the draft reply. Every action is a POST form carrying the CSRF token
(checked by :mod:`emberwatch.console.auth`'s middleware) and is recorded with the logged-in
user, never a typed name.

========================  =====================================================  =========
route                     what it shows or does                                  role
========================  =====================================================  =========
``GET /``                 open incidents, most urgent first, with filters        viewer
``GET /updates``          the newest incident's id (what console.js polls)       viewer
``GET /incidents/{id}``   why, respond-by, playbook, draft reply, mentions,      viewer
                          engagement curve, deliveries and actions
``POST /incidents/{id}/{ack|snooze|resolve|assign|note}``                        responder
``POST /mentions/{id}/label``  "wrong?": complaint yes/no and the right category  responder
``GET /mentions``         search, paged; ``?format=csv`` streams the search      viewer
``GET /sources``          each source's health, last success and error, next     viewer
``GET /digests``          past digests; ``/digests/{day}`` one as it was sent    viewer
========================  =====================================================  =========

Pages read a bounded number of rows with indexed queries (an incident's alerts, deliveries
and actions by ``incident_id``; mentions newest first by ``first_seen_at``) and never one
query per row. Mention text is untrusted: templates escape it, links are shown only when
plain http(s) (:func:`~emberwatch.text.web_link`), and single-line fields go through
:func:`~emberwatch.text.one_line`.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import anyio
import sqlalchemy as sa
from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from emberwatch import metrics
from emberwatch.alerts.decisions import SourceFacts, source_health
from emberwatch.alerts.lifecycle import UnknownIncident, act, record_action
from emberwatch.alerts.reply import Draft, draft_reply, no_draft_reason
from emberwatch.alerts.view import (
    AlertView,
    MentionLine,
    latest_actions,
    load_notice,
    newest_mentions_of,
    team_timezone,
)
from emberwatch.config import SEVERITY_RANK, Config, duration_words
from emberwatch.console.auth import csrf_token, current_user, require
from emberwatch.errors import LabelError
from emberwatch.labels import label_mention, scorer_for
from emberwatch.models import (
    AlertRecord,
    Delivery,
    EngagementSnapshot,
    Incident,
    IncidentAction,
    Label,
    MentionRecord,
    SentDigest,
    SourceState,
    UserRecord,
)
from emberwatch.scoring.triage import CATEGORIES, SEVERITIES, respond_within
from emberwatch.text import one_line, printable, web_link

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

INCIDENTS_PAGE = 50
MENTIONS_PAGE = 50
DIGESTS_PAGE = 30
CSV_BATCH = 1000
SEARCH_TABLE = "mentions_search"  # SQLite's trigram index of mentions (migration 0010)
SEARCH_MIN_CHARS = 3  # the trigram index answers searches of 3 characters or more
CURVE_POINTS = 48
CURVE_ROWS = 5000  # snapshots read for one incident's curve, newest first
TREND_WINDOW = timedelta(hours=6)
TREND_BUCKETS = 12
HISTORY_ROWS = 500
NOTE_LIMIT = 2000
STATUSES = ("open", "triggered", "acknowledged", "resolved", "all")
SENTIMENTS = ("negative", "neutral", "positive", "unscored")
# Sentiment bands, as the digest counts them.
NEGATIVE_MAX = -0.05
POSITIVE_MIN = 0.05
DIGEST_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'; sandbox allow-popups allow-top-navigation"
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

PAGES = Environment(
    loader=PackageLoader("emberwatch", "templates/console"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def add_pages(
    app: web.Application, config: Config, engine: Engine, clock: Callable[[], datetime]
) -> None:
    """Add the console's pages and its static files to ``app``."""
    pages = _Pages(config, engine, clock)
    viewer, responder = require("viewer"), require("responder")
    app.router.add_get("/", viewer(pages.incidents))
    app.router.add_get("/updates", viewer(pages.updates))
    app.router.add_get("/incidents/{id:\\d+}", viewer(pages.incident))
    app.router.add_post("/incidents/{id:\\d+}/{action:ack|snooze|resolve}", responder(pages.act))
    app.router.add_post("/incidents/{id:\\d+}/assign", responder(pages.assign))
    app.router.add_post("/incidents/{id:\\d+}/note", responder(pages.note))
    app.router.add_post("/mentions/{id:\\d+}/label", responder(pages.label))
    app.router.add_get("/mentions", viewer(pages.mentions))
    app.router.add_get("/sources", viewer(pages.sources))
    app.router.add_get("/digests", viewer(pages.digests))
    app.router.add_get("/digests/{day:\\d{4}-\\d{2}-\\d{2}}", viewer(pages.digest))
    app.router.add_get("/digests/{day:\\d{4}-\\d{2}-\\d{2}}.txt", viewer(pages.digest_text))
    static = resources.files("emberwatch") / "static"
    app.router.add_static("/static/", str(static), append_version=False)


# -- filters -------------------------------------------------------------------------------


def _choice(value: str | None, allowed: tuple[str, ...] | list[str], default: str = "") -> str:
    return value if value in allowed else default


def _page_number(raw: str | None) -> int:
    try:
        return max(1, min(int(raw or 1), 10_000))
    except ValueError:
        return 1


def _date(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@dataclass(frozen=True)
class IncidentFilters:
    """The incident list's GET query; unknown values fall back to the defaults."""

    status: str = "open"
    severity: str = ""
    brand: str = ""
    source: str = ""
    category: str = ""
    page: int = 1

    @classmethod
    def of(cls, query: Mapping[str, str], config: Config) -> IncidentFilters:
        return cls(
            status=_choice(query.get("status"), STATUSES, "open"),
            severity=_choice(query.get("severity"), SEVERITIES),
            brand=_choice(query.get("brand"), [b.name for b in config.brands]),
            source=_choice(query.get("source"), [s.name for s in config.sources]),
            category=_choice(query.get("category"), CATEGORIES),
            page=_page_number(query.get("page")),
        )

    def url(self, **changes: Any) -> str:
        return "/?" + _query(replace(self, **changes))


@dataclass(frozen=True)
class MentionFilters:
    """The mention search's GET query."""

    q: str = ""
    brand: str = ""
    source: str = ""
    sentiment: str = ""
    category: str = ""
    language: str = ""
    since: date | None = None
    until: date | None = None
    page: int = 1

    @classmethod
    def of(cls, query: Mapping[str, str], config: Config) -> MentionFilters:
        return cls(
            q=one_line(query.get("q"), 200),
            brand=_choice(query.get("brand"), [b.name for b in config.brands]),
            source=_choice(query.get("source"), [s.name for s in config.sources]),
            sentiment=_choice(query.get("sentiment"), SENTIMENTS),
            category=_choice(query.get("category"), CATEGORIES),
            language=one_line(query.get("language"), 16).lower(),
            since=_date(query.get("since")),
            until=_date(query.get("until")),
            page=_page_number(query.get("page")),
        )

    def url(self, **changes: Any) -> str:
        return "/mentions?" + _query(replace(self, **changes))


def _query(filters: object) -> str:
    pairs = []
    for f in fields(filters):  # type: ignore[arg-type]
        value = getattr(filters, f.name)
        if value in (None, "") or (f.name == "page" and value == 1):
            continue
        pairs.append((f.name, value.isoformat() if isinstance(value, date) else str(value)))
    return urlencode(pairs)


# -- the incident list -------------------------------------------------------------------


@dataclass(frozen=True)
class Trend:
    """An incident's engagement over the last hours: the sparkline and the last hour's rise."""

    points: str = ""
    rise: int = 0

    @property
    def words(self) -> str:
        if not self.points:
            return "no recent counts"
        return f"+{self.rise:,} in the last hour" if self.rise > 0 else "steady"


@dataclass(frozen=True)
class IncidentRow:
    incident: Incident
    respond_by: datetime
    trend: Trend
    acted: str | None
    assignee: str | None

    @property
    def heading(self) -> str:
        return one_line(self.incident.title, 120) or f"incident #{self.incident.id}"


@dataclass(frozen=True)
class IncidentList:
    rows: list[IncidentRow]
    total: int
    newest: int


def _incident_conditions(filters: IncidentFilters) -> list[Any]:
    conditions: list[Any] = []
    if filters.status == "open":
        conditions.append(Incident.status.in_(("triggered", "acknowledged")))  # type: ignore[attr-defined]
    elif filters.status != "all":
        conditions.append(Incident.status == filters.status)
    for column, value in (
        (Incident.severity, filters.severity),
        (Incident.brand, filters.brand),
        (Incident.source_name, filters.source),
        (Incident.category, filters.category),
    ):
        if value:
            conditions.append(column == value)
    return conditions


def list_incidents(
    session: Session, filters: IncidentFilters, now: datetime, size: int = INCIDENTS_PAGE
) -> IncidentList:
    """One page of incidents. Open ones come most urgent first: respond-by (opened plus the
    severity's response time), then the higher severity; resolved ones newest first."""
    conditions = _incident_conditions(filters)
    offset = (filters.page - 1) * size
    if filters.status in ("resolved", "all"):
        found = session.exec(
            select(Incident)
            .where(*conditions)
            .order_by(Incident.updated_at.desc(), Incident.id.desc())  # type: ignore[attr-defined,union-attr]
            .offset(offset)
            .limit(size)
        ).all()
        page = list(found)
    else:
        # Respond-by is opened_at plus a fixed span per severity, so the most urgent N
        # overall are among the oldest N of each severity: three indexed reads, merged.
        merged: list[Incident] = []
        for severity in SEVERITIES:
            if filters.severity and severity != filters.severity:
                continue
            merged.extend(
                session.exec(
                    select(Incident)
                    .where(*conditions, Incident.severity == severity)
                    .order_by(Incident.opened_at, Incident.id)  # type: ignore[arg-type]
                    .limit(offset + size)
                ).all()
            )
        merged.sort(key=lambda i: (_respond_by(i), -SEVERITY_RANK.get(i.severity, 0), i.id))
        page = merged[offset : offset + size]
    total = session.exec(select(sa.func.count()).select_from(Incident).where(*conditions)).one()
    newest = session.exec(select(sa.func.max(Incident.id))).one() or 0
    ids = [i.id for i in page if i.id is not None]
    acted = latest_actions(session, ids)
    assignees = _assignees(session, ids)
    trends = _trends(session, ids, now)
    rows = [
        IncidentRow(
            incident=i,
            respond_by=_respond_by(i),
            trend=trends.get(i.id, Trend()),  # type: ignore[arg-type]
            acted=acted[i.id].words if i.id in acted else None,
            assignee=assignees.get(i.id),  # type: ignore[arg-type]
        )
        for i in page
    ]
    return IncidentList(rows, int(total), int(newest))


def _respond_by(incident: Incident) -> datetime:
    return incident.opened_at + respond_within(incident.severity)


def _assignees(session: Session, ids: list[int]) -> dict[int, str]:
    """Who each incident is assigned to: its newest ``assign`` action (any episode)."""
    if not ids:
        return {}
    rows = session.exec(
        select(IncidentAction.incident_id, IncidentAction.note)
        .where(
            IncidentAction.incident_id.in_(ids),  # type: ignore[attr-defined]
            IncidentAction.action == "assign",
        )
        .order_by(IncidentAction.id)  # type: ignore[arg-type]
    ).all()
    return {incident_id: note for incident_id, note in rows if note}


def _snapshots(
    session: Session, ids: list[int], since: datetime | None, limit: int | None
) -> list[tuple[int, int, datetime, int]]:
    """(incident, mention, seen_at, engagement) of the incidents' mentions, oldest first."""
    if not ids:
        return []
    total = EngagementSnapshot.likes + EngagementSnapshot.reposts + EngagementSnapshot.replies
    query = (
        select(
            AlertRecord.incident_id,
            EngagementSnapshot.mention_id,
            EngagementSnapshot.seen_at,
            total,
        )
        .join(AlertRecord, AlertRecord.mention_id == EngagementSnapshot.mention_id)  # type: ignore[arg-type]
        .where(AlertRecord.incident_id.in_(ids))  # type: ignore[union-attr]
    )
    if since is not None:
        query = query.where(EngagementSnapshot.seen_at >= since)  # type: ignore[arg-type]
    query = query.order_by(EngagementSnapshot.seen_at.desc())  # type: ignore[attr-defined]
    if limit is not None:
        query = query.limit(limit)
    rows = [(int(i), int(m), t, int(e or 0)) for i, m, t, e in session.exec(query).all()]
    rows.reverse()
    return rows


def _series(rows: list[tuple[int, int, datetime, int]], ends: list[datetime]) -> list[int]:
    """Total engagement at each moment in ``ends``: each mention's latest count by then
    (its first count in the rows before it was first counted)."""
    first: dict[int, int] = {}
    for _incident, mention, _at, value in rows:
        first.setdefault(mention, value)
    latest = dict(first)
    out, index = [], 0
    for end in ends:
        while index < len(rows) and rows[index][2] <= end:
            latest[rows[index][1]] = rows[index][3]
            index += 1
        out.append(sum(latest.values()))
    return out


def _polyline(values: list[int], width: float, height: float) -> str:
    """SVG polyline points for ``values`` scaled into ``width`` × ``height``."""
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1
    step = width / (len(values) - 1)
    return " ".join(
        f"{i * step:.1f},{height - (v - low) / span * height:.1f}" for i, v in enumerate(values)
    )


def _trends(session: Session, ids: list[int], now: datetime) -> dict[int, Trend]:
    rows = _snapshots(session, ids, now - TREND_WINDOW, None)
    by_incident: dict[int, list[tuple[int, int, datetime, int]]] = {}
    for row in rows:
        by_incident.setdefault(row[0], []).append(row)
    step = TREND_WINDOW / TREND_BUCKETS
    ends = [now - TREND_WINDOW + step * (k + 1) for k in range(TREND_BUCKETS)]
    per_hour = int(timedelta(hours=1) / step)
    trends = {}
    for incident_id, own in by_incident.items():
        series = _series(own, ends)
        trends[incident_id] = Trend(_polyline(series, 80, 18), series[-1] - series[-1 - per_hour])
    return trends


# -- one incident --------------------------------------------------------------------------


@dataclass(frozen=True)
class MentionItem:
    """A mention on a page: its display line, its stored record and its current labels."""

    line: MentionLine
    record: MentionRecord
    incident_id: int | None = None
    labels: list[Label] = field(default_factory=list)

    @property
    def sentiment(self) -> str:
        return sentiment_band(self.record.sentiment)

    @property
    def text(self) -> str:
        return printable(self.record.text)

    @property
    def title(self) -> str:
        return one_line(self.record.title, 300)

    @property
    def labelled(self) -> str:
        """The team's labels on this mention: "not a complaint, category question (ana)"."""
        words = []
        for label in self.labels:
            if label.field == "complaint":
                what = "a complaint" if label.value == "true" else "not a complaint"
            else:
                what = f"category {label.value}"
            words.append(f"{what} ({one_line(label.labelled_by, 60)})")
        return ", ".join(words)


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor: str
    action: str
    via: str
    note: str
    episode: int


@dataclass(frozen=True)
class DeliveryEntry:
    destination: str
    kind: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    error: str


@dataclass(frozen=True)
class Curve:
    points: str
    high: int
    start: datetime | None
    end: datetime | None
    width: int = 600
    height: int = 120


@dataclass(frozen=True)
class IncidentDetail:
    incident: Incident
    view: AlertView | None
    draft: Draft | None
    no_draft: str
    mentions: list[MentionItem]
    more: bool
    page: int
    curve: Curve
    deliveries: dict[str, list[DeliveryEntry]]
    history: list[HistoryEntry]
    assignee: str | None
    acted: str | None

    @property
    def heading(self) -> str:
        if self.incident.title:
            return one_line(self.incident.title, 200)
        return self.mentions[0].line.start if self.mentions else f"incident #{self.incident.id}"


_VERBS = {
    "ack": "acknowledged",
    "snooze": "snoozed",
    "resolve": "resolved",
    "assign": "assigned to",
    "note": "noted",
    "escalate": "escalated",
    "retrigger": "re-triggered",
}


def load_incident(
    session: Session, config: Config, incident_id: int, page: int, now: datetime
) -> IncidentDetail | None:
    incident = session.get(Incident, incident_id)
    if incident is None:
        return None
    first = session.exec(
        select(sa.func.min(AlertRecord.id)).where(AlertRecord.incident_id == incident_id)
    ).one()
    view = load_notice(session, config, first, incident_id, {}, "console") if first else None
    draft = draft_reply(incident.category, view.own, incident.brand) if view else None
    mentions, more = _incident_mentions(session, incident_id, page)
    rows = _snapshots(session, [incident_id], None, CURVE_ROWS)
    actions = session.exec(
        select(IncidentAction)
        .where(IncidentAction.incident_id == incident_id)
        .order_by(IncidentAction.at, IncidentAction.id)  # type: ignore[arg-type]
        .limit(HISTORY_ROWS)
    ).all()
    history = [
        HistoryEntry(
            a.at,
            one_line(a.actor, 100),
            _VERBS.get(a.action, a.action),
            a.via,
            one_line(a.note, 300) if a.action != "note" else printable(a.note or ""),
            a.episode,
        )
        for a in actions
    ]
    assignee = next((a.note for a in reversed(actions) if a.action == "assign"), None)
    acted = latest_actions(session, [incident_id]).get(incident_id)
    return IncidentDetail(
        incident=incident,
        view=view,
        draft=draft,
        no_draft=no_draft_reason(incident.category),
        mentions=mentions,
        more=more,
        page=page,
        curve=_curve(rows),
        deliveries=_deliveries(session, incident_id),
        history=history,
        assignee=assignee,
        acted=acted.words if acted else None,
    )


def _incident_mentions(
    session: Session, incident_id: int, page: int
) -> tuple[list[MentionItem], bool]:
    records = session.exec(
        newest_mentions_of(incident_id).offset((page - 1) * MENTIONS_PAGE).limit(MENTIONS_PAGE + 1)
    ).all()
    more = len(records) > MENTIONS_PAGE
    items = _items(session, [(m, incident_id) for m in records[:MENTIONS_PAGE]])
    return items, more


def _items(session: Session, rows: list[tuple[MentionRecord, int | None]]) -> list[MentionItem]:
    """Mentions with their current labels (one query for the page)."""
    ids = [m.id for m, _ in rows if m.id is not None]
    labels: dict[int, dict[str, Label]] = {}
    if ids:
        for label in session.exec(
            select(Label)
            .where(Label.mention_id.in_(ids))  # type: ignore[union-attr]
            .order_by(Label.labelled_at, Label.id)  # type: ignore[arg-type]
        ):
            labels.setdefault(label.mention_id, {})[label.field] = label  # type: ignore[index]
    return [
        MentionItem(MentionLine.of(m), m, incident, list(labels.get(m.id, {}).values()))  # type: ignore[arg-type]
        for m, incident in rows
    ]


def _curve(rows: list[tuple[int, int, datetime, int]]) -> Curve:
    if not rows:
        return Curve("", 0, None, None)
    start, end = rows[0][2], rows[-1][2]
    span = end - start
    count = CURVE_POINTS if span > timedelta(0) else 1
    ends = [start + span * (k + 1) / count for k in range(count)] if count > 1 else [end]
    series = _series(rows, ends)
    if len(series) == 1:
        series = [series[0], series[0]]
    curve = Curve("", max(series), start, end)
    return replace(curve, points=_polyline(series, curve.width, curve.height))


def _deliveries(session: Session, incident_id: int) -> dict[str, list[DeliveryEntry]]:
    """Messages about the incident, grouped by destination (channel, and recipient if any)."""
    rows = session.exec(
        select(Delivery)
        .where(Delivery.incident_id == incident_id)
        .order_by(Delivery.created_at, Delivery.id)  # type: ignore[arg-type]
        .limit(HISTORY_ROWS)
    ).all()
    grouped: dict[str, list[DeliveryEntry]] = {}
    for d in rows:
        destination = d.channel + (f" → {one_line(d.recipient, 100)}" if d.recipient else "")
        grouped.setdefault(destination, []).append(
            DeliveryEntry(
                destination,
                d.kind,
                d.status,
                d.attempts,
                d.created_at,
                d.sent_at,
                one_line(d.last_error, 300),
            )
        )
    return grouped


# -- mentions ------------------------------------------------------------------------------


def sentiment_band(value: float | None) -> str:
    if value is None:
        return "unscored"
    return (
        "negative" if value <= NEGATIVE_MAX else "positive" if value >= POSITIVE_MIN else "neutral"
    )


def _has_search_table(connection: sa.Connection) -> bool:
    """Whether this SQLite database has the trigram index (migration 0010 builds it when
    SQLite can), remembered for the life of the DBAPI connection."""
    known = connection.info.get("emberwatch_search_table")
    if known is None:
        known = connection.info["emberwatch_search_table"] = (
            connection.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (SEARCH_TABLE,)
            ).first()
            is not None
        )
    return bool(known)


def _text_search(connection: sa.Connection, q: str) -> Any:
    """``q`` as a literal, case-insensitive substring of the text, title or author.

    The LIKE test decides on both databases. PostgreSQL serves it from trigram indexes on
    the three columns (migration 0010). On SQLite a search of 3 or more characters first
    asks the FTS5 trigram table for candidates: a quoted phrase there is a substring
    match, case-insensitive for every letter (SQLite's LIKE only for ASCII ones), so its
    rows include every row LIKE matches and LIKE keeps the results exactly as they were.
    Shorter searches (which match nearly every mention) use LIKE alone.
    """
    like = sa.or_(
        MentionRecord.text.icontains(q, autoescape=True),  # type: ignore[attr-defined]
        MentionRecord.title.icontains(q, autoescape=True),  # type: ignore[union-attr]
        MentionRecord.author.icontains(q, autoescape=True),  # type: ignore[union-attr]
    )
    if (
        connection.dialect.name != "sqlite"
        or len(q) < SEARCH_MIN_CHARS
        or not _has_search_table(connection)
    ):
        return like
    # A quoted FTS5 phrase is literal; a double quote inside is doubled. The unary + keeps
    # SQLite from driving the query by the candidates' ids (fetching and sorting every one:
    # 100 ms for a word most mentions hold); it walks mentions newest first instead,
    # checking each id against the candidate list, and stops at the end of the page.
    candidates = sa.text(
        f"+mentions.id IN (SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH :phrase)"
    ).bindparams(phrase='"' + q.replace('"', '""') + '"')
    return sa.and_(candidates, like)


def _mention_conditions(
    connection: sa.Connection, filters: MentionFilters, zone: ZoneInfo
) -> list[Any]:
    conditions: list[Any] = []
    if filters.q:
        conditions.append(_text_search(connection, filters.q))
    for column, value in (
        (MentionRecord.brand, filters.brand),
        (MentionRecord.source_name, filters.source),
        (MentionRecord.category, filters.category),
        (MentionRecord.language, filters.language),
    ):
        if value:
            conditions.append(column == value)
    sentiment = MentionRecord.sentiment
    bands = {
        "negative": sentiment <= NEGATIVE_MAX,  # type: ignore[operator]
        "positive": sentiment >= POSITIVE_MIN,  # type: ignore[operator]
        "neutral": sa.and_(sentiment > NEGATIVE_MAX, sentiment < POSITIVE_MIN),  # type: ignore[operator]
        "unscored": sentiment.is_(None),  # type: ignore[union-attr]
    }
    if filters.sentiment:
        conditions.append(bands[filters.sentiment])
    if filters.since:
        start = datetime.combine(filters.since, time(), zone).astimezone(UTC)
        conditions.append(MentionRecord.first_seen_at >= start)  # type: ignore[operator]
    if filters.until:
        end = datetime.combine(filters.until + timedelta(days=1), time(), zone).astimezone(UTC)
        conditions.append(MentionRecord.first_seen_at < end)  # type: ignore[operator]
    return conditions


def _mention_query(conditions: list[Any]) -> Any:
    return (
        select(MentionRecord, AlertRecord.incident_id)
        .outerjoin(AlertRecord, AlertRecord.mention_id == MentionRecord.id)  # type: ignore[arg-type]
        .where(*conditions)
    )


def search_mentions(
    session: Session, filters: MentionFilters, zone: ZoneInfo
) -> tuple[list[MentionItem], bool]:
    """One page of mentions matching the search, newest seen first, and whether more follow."""
    rows = session.exec(
        _mention_query(_mention_conditions(session.connection(), filters, zone))
        .order_by(MentionRecord.first_seen_at.desc(), MentionRecord.id.desc())  # type: ignore[attr-defined,union-attr]
        .offset((filters.page - 1) * MENTIONS_PAGE)
        .limit(MENTIONS_PAGE + 1)
    ).all()
    return _items(session, list(rows[:MENTIONS_PAGE])), len(rows) > MENTIONS_PAGE


CSV_COLUMNS = (
    "id", "first_seen_at", "published_at", "brand", "source", "source_name", "author",
    "author_followers", "url", "title", "text", "language", "likes", "reposts", "replies",
    "engagement", "sentiment", "complaint", "virality", "category", "severity", "vip",
    "incident_id",
)  # fmt: skip


def csv_cell(value: object) -> object:
    """A cell safe to open in a spreadsheet: times in ISO 8601, and text that would start a
    formula (``=``, ``+``, ``-``, ``@``, tab, CR) prefixed with ``'``. Numbers Emberwatch
    wrote stay numbers (``-0.8`` is a sentiment, not a formula)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = str(value).replace("\x00", "")
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _csv_batch(
    engine: Engine, filters: MentionFilters, zone: ZoneInfo, after: tuple[datetime, int] | None
) -> list[tuple[MentionRecord, int | None]]:
    with Session(engine) as session:
        conditions = _mention_conditions(session.connection(), filters, zone)
        if after is not None:
            seen, last = after
            conditions.append(
                sa.or_(
                    MentionRecord.first_seen_at < seen,  # type: ignore[operator]
                    sa.and_(MentionRecord.first_seen_at == seen, MentionRecord.id < last),  # type: ignore[operator]
                )
            )
        return list(
            session.exec(
                _mention_query(conditions)
                .order_by(MentionRecord.first_seen_at.desc(), MentionRecord.id.desc())  # type: ignore[attr-defined,union-attr]
                .limit(CSV_BATCH)
            ).all()
        )


def _csv_rows(rows: list[tuple[MentionRecord, int | None]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for mention, incident_id in rows:
        values = {name: getattr(mention, name, None) for name in CSV_COLUMNS}
        values["incident_id"] = incident_id
        writer.writerow([csv_cell(values[name]) for name in CSV_COLUMNS])
    return out.getvalue()


# -- sources and digests -------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRow:
    name: str
    type: str
    status: str
    reason: str
    state: SourceState | None
    interval: timedelta | None

    @property
    def next_poll(self) -> datetime | None:
        if self.state is None:
            return None
        return self.state.poll_due_at or self.state.next_poll_after

    @property
    def error(self) -> str:
        return one_line(self.state.last_error, 300) if self.state else ""


def load_sources(session: Session, config: Config, now: datetime) -> list[SourceRow]:
    """Every configured source with its health, and any stored one no longer configured."""
    states = {s.name: s for s in session.exec(select(SourceState)).all()}
    rows = []
    for source in config.sources:
        state = states.pop(source.name, None)
        if not source.enabled:
            status, reason = "disabled", "disabled in the config"
        elif state is None:
            status, reason = "pending", "waiting for its first poll"
        else:
            facts = SourceFacts(
                state.last_poll_at,
                state.last_success_at,
                state.consecutive_failures,
                state.unhealthy_since,
            )
            health = source_health(
                facts,
                source.interval,
                config.unhealthy_after_intervals,
                now,
                grace=config.poll_jitter,
            )
            status, reason = health.status, health.reason
        rows.append(SourceRow(source.name, source.type, status, reason, state, source.interval))
    for name, state in sorted(states.items()):
        rows.append(SourceRow(name, state.type, "removed", "not in the config", state, None))
    return rows


@dataclass(frozen=True)
class DigestRow:
    day: str
    status: str
    sent_at: datetime | None
    subject: str
    kept: bool


def load_digests(session: Session, page: int) -> tuple[list[DigestRow], bool]:
    """Digests newest first: those kept as sent, and (on the first page) queued or failed
    ones of the last week not kept yet."""
    kept = session.exec(
        select(SentDigest.day, SentDigest.subject, SentDigest.sent_at)
        .order_by(SentDigest.day.desc())  # type: ignore[attr-defined]
        .offset((page - 1) * DIGESTS_PAGE)
        .limit(DIGESTS_PAGE + 1)
    ).all()
    more = len(kept) > DIGESTS_PAGE
    kept = kept[:DIGESTS_PAGE]
    days = [day for day, _, _ in kept]
    if page == 1:
        today = datetime.now(UTC).date()
        days += [(today - timedelta(days=k)).isoformat() for k in range(8)]
    deliveries = {
        d.dedup_key.removeprefix("digest:"): d
        for d in session.exec(
            select(Delivery).where(
                Delivery.dedup_key.in_([f"digest:{d}" for d in set(days)])  # type: ignore[attr-defined]
            )
        ).all()
    }
    rows = {
        day: DigestRow(
            day,
            deliveries[day].status if day in deliveries else "sent",
            deliveries[day].sent_at if day in deliveries and deliveries[day].sent_at else sent,
            one_line(subject, 300),
            True,
        )
        for day, subject, sent in kept
    }
    for day, delivery in deliveries.items():
        if day not in rows:
            rows[day] = DigestRow(day, delivery.status, delivery.sent_at, "", False)
    return sorted(rows.values(), key=lambda r: r.day, reverse=True), more


# -- handlers ------------------------------------------------------------------------------


def _local(moment: datetime | None, zone: ZoneInfo, *, date_too: bool = True) -> str:
    if moment is None:
        return "—"
    here = moment.astimezone(zone)
    return here.strftime("%a %d %b %H:%M %Z" if date_too else "%H:%M %Z")


def _age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return "—"
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // (24 * 60)} d"


def _until(moment: datetime, now: datetime) -> str:
    if moment <= now:
        return f"overdue by {_age(moment, now)}"
    return f"in {_age(now, moment)}"


def _safe_next(raw: str | None, fallback: str) -> str:
    """A same-site path to go back to after a form; anything else gives ``fallback``."""
    if raw and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw:
        return one_line(raw, 1000)
    return fallback


_DONE = {
    "ack": "Acknowledged",
    "snooze": "Snoozed",
    "resolve": "Resolved",
    "assign": "Assigned",
    "note": "Note added",
}


class _Pages:
    def __init__(self, config: Config, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.config = config
        self.engine = engine
        self.clock = clock
        self.zone = ZoneInfo(team_timezone(config))

    async def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        def run() -> Any:
            with Session(self.engine) as session:
                return fn(session, *args)

        return await anyio.to_thread.run_sync(run)

    def _render(
        self, request: web.Request, name: str, *, status: int = 200, **context: Any
    ) -> web.Response:
        now = self.clock()
        text = PAGES.get_template(name).render(
            user=current_user(request),
            csrf=csrf_token(request),
            path=request.path_qs,
            now=now,
            local=functools.partial(_local, zone=self.zone),
            age=functools.partial(_age, now=now),
            until=functools.partial(_until, now=now),
            link=web_link,
            config=self.config,
            brands=[b.name for b in self.config.brands],
            sources=[s.name for s in self.config.sources],
            severities=SEVERITIES,
            categories=CATEGORIES,
            zone=self.zone.key,
            **context,
        )
        return web.Response(status=status, text=text, content_type="text/html")

    def _missing(self, request: web.Request, what: str) -> web.Response:
        return self._render(request, "missing.html", status=404, what=what)

    # -- incidents ---------------------------------------------------------------------

    async def incidents(self, request: web.Request) -> web.Response:
        filters = IncidentFilters.of(request.query, self.config)
        found = await self._read(list_incidents, filters, self.clock())
        return self._render(
            request,
            "incidents.html",
            filters=filters,
            found=found,
            statuses=STATUSES,
            more=filters.page * INCIDENTS_PAGE < found.total,
        )

    async def updates(self, _request: web.Request) -> web.Response:
        def newest(session: Session) -> dict[str, int]:
            top = session.exec(select(sa.func.max(Incident.id))).one() or 0
            return {"newest": int(top)}

        return web.json_response(await self._read(newest))

    async def incident(self, request: web.Request) -> web.Response:
        incident_id = int(request.match_info["id"])
        page = _page_number(request.query.get("page"))
        detail = await self._read(load_incident, self.config, incident_id, page, self.clock())
        if detail is None:
            return self._missing(request, f"incident #{incident_id}")
        confirm = _choice(request.query.get("action"), ("ack", "snooze", "resolve"))
        done = _choice(request.query.get("done"), list(_DONE))
        result = _choice(request.query.get("result"), ["changed", "unchanged", "expired"])
        return self._render(
            request,
            "incident.html",
            d=detail,
            confirm=confirm,
            done=_DONE.get(done, ""),
            result=result,
            labelled=request.query.get("labelled", ""),
            snooze_choices=[duration_words(c) for c in self.config.actions.snooze_choices],
            snooze_default=duration_words(self.config.actions.snooze_default),
            users=await self._read(_user_names),
            note_limit=NOTE_LIMIT,
        )

    async def act(self, request: web.Request) -> web.Response:
        incident_id = int(request.match_info["id"])
        action = request.match_info["action"]
        user = current_user(request)
        assert user is not None  # require() let the request in
        form = await request.post()
        snooze_for = None
        if action == "snooze":
            try:
                snooze_for = self.config.actions.snooze_span(str(form.get("for") or ""), exact=True)
            except ValueError:
                raise web.HTTPBadRequest(
                    text=f"Snooze for {self.config.actions.choice_words}."
                ) from None
        episode = _int(form.get("episode"))
        try:
            outcome = await anyio.to_thread.run_sync(
                lambda: act(
                    self.engine,
                    incident_id,
                    action,
                    actor=user.name,
                    via="console",
                    now=self.clock(),
                    episode=episode,
                    snooze_for=snooze_for,
                )
            )
        except UnknownIncident:
            return self._missing(request, f"incident #{incident_id}")
        metrics.INCIDENT_ACTIONS.labels(action=action, via="console").inc()
        result = "expired" if outcome.expired else "changed" if outcome.changed else "unchanged"
        raise web.HTTPSeeOther(f"/incidents/{incident_id}?done={action}&result={result}")

    async def assign(self, request: web.Request) -> web.Response:
        form = await request.post()
        names = await self._read(_user_names)
        assignee = one_line(str(form.get("user") or ""), 100)
        if not assignee or (names and assignee not in names):
            raise web.HTTPBadRequest(text="Assign to one of the console's users.")
        return await self._note(request, "assign", assignee)

    async def note(self, request: web.Request) -> web.Response:
        form = await request.post()
        text = printable(str(form.get("note") or "")).strip()[:NOTE_LIMIT]
        if not text:
            raise web.HTTPBadRequest(text="A note needs some text.")
        return await self._note(request, "note", text)

    async def _note(self, request: web.Request, action: str, note: str) -> web.Response:
        incident_id = int(request.match_info["id"])
        user = current_user(request)
        assert user is not None

        def record() -> bool:
            with Session(self.engine) as session:
                incident = session.get(Incident, incident_id)
                if incident is None:
                    return False
                now = self.clock()
                record_action(
                    session, incident, action, actor=user.name, via="console", now=now, note=note
                )
                session.commit()
                return True

        if not await anyio.to_thread.run_sync(record):
            return self._missing(request, f"incident #{incident_id}")
        raise web.HTTPSeeOther(f"/incidents/{incident_id}?done={action}&result=changed")

    # -- labels ------------------------------------------------------------------------

    async def label(self, request: web.Request) -> web.Response:
        mention_id = int(request.match_info["id"])
        user = current_user(request)
        assert user is not None
        form = await request.post()
        values = {}
        complaint = str(form.get("complaint") or "")
        if complaint in ("yes", "no"):
            values["complaint"] = "true" if complaint == "yes" else "false"
        category = str(form.get("category") or "")
        if category:
            if category not in CATEGORIES:
                raise web.HTTPBadRequest(text=f"Category is one of {', '.join(CATEGORIES)}.")
            values["category"] = category
        back = _safe_next(str(form.get("next") or ""), "/mentions")
        if not values:
            raise web.HTTPSeeOther(back)
        scorer = scorer_for(self.config)
        try:
            await anyio.to_thread.run_sync(
                lambda: label_mention(
                    self.engine,
                    scorer,
                    mention_id,
                    values,
                    by=user.name,
                    now=self.clock(),
                    via="console",
                )
            )
        except LabelError:
            return self._missing(request, f"mention {mention_id}")
        path, _, query = back.partition("?")
        query = "&".join(p for p in query.split("&") if p and not p.startswith("labelled="))
        query = f"{query}&labelled={mention_id}" if query else f"labelled={mention_id}"
        raise web.HTTPSeeOther(f"{path}?{query}#m{mention_id}")

    # -- mentions ----------------------------------------------------------------------

    async def mentions(self, request: web.Request) -> web.StreamResponse:
        filters = MentionFilters.of(request.query, self.config)
        if request.query.get("format") == "csv":
            return await self._csv(request, filters)
        items, more = await self._read(search_mentions, filters, self.zone)
        return self._render(
            request,
            "mentions.html",
            filters=filters,
            items=items,
            more=more,
            sentiments=SENTIMENTS,
            labelled=request.query.get("labelled", ""),
            first=(filters.page - 1) * MENTIONS_PAGE + 1,
        )

    async def _csv(self, request: web.Request, filters: MentionFilters) -> web.StreamResponse:
        stamp = self.clock().astimezone(self.zone).strftime("%Y%m%d-%H%M")
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="emberwatch-mentions-{stamp}.csv"',
                "Cache-Control": "no-store",
            }
        )
        await response.prepare(request)
        header = io.StringIO()
        csv.writer(header, lineterminator="\r\n").writerow(CSV_COLUMNS)
        await response.write(header.getvalue().encode())
        after: tuple[datetime, int] | None = None
        while True:
            rows = await anyio.to_thread.run_sync(
                _csv_batch, self.engine, replace(filters, page=1), self.zone, after
            )
            if not rows:
                break
            await response.write(_csv_rows(rows).encode())
            last = rows[-1][0]
            after = (last.first_seen_at, last.id)  # type: ignore[assignment]
            if len(rows) < CSV_BATCH:
                break
        await response.write_eof()
        return response

    # -- sources and digests -----------------------------------------------------------

    async def sources(self, request: web.Request) -> web.Response:
        rows = await self._read(load_sources, self.config, self.clock())
        return self._render(request, "sources.html", rows=rows, words=duration_words)

    async def digests(self, request: web.Request) -> web.Response:
        page = _page_number(request.query.get("page"))
        rows, more = await self._read(load_digests, page)
        return self._render(
            request,
            "digests.html",
            rows=rows,
            more=more,
            page=page,
            configured=self.config.channels.digest is not None,
        )

    async def _kept(self, day: str) -> SentDigest | None:
        def read(session: Session) -> SentDigest | None:
            return session.exec(select(SentDigest).where(SentDigest.day == day)).first()

        return await self._read(read)

    async def digest(self, request: web.Request) -> web.Response:
        """The digest's HTML exactly as it was emailed (Emberwatch's own escaped output)."""
        kept = await self._kept(request.match_info["day"])
        if kept is None:
            return self._missing(request, f"a digest kept for {request.match_info['day']}")
        # Its own policy: the email's inline styles apply, nothing runs, nothing is fetched.
        return web.Response(
            text=kept.html,
            content_type="text/html",
            headers={"Content-Security-Policy": DIGEST_POLICY},
        )

    async def digest_text(self, request: web.Request) -> web.Response:
        kept = await self._kept(request.match_info["day"])
        if kept is None:
            return self._missing(request, f"a digest kept for {request.match_info['day']}")
        return web.Response(text=kept.text, content_type="text/plain")


def _int(value: object) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def _user_names(session: Session) -> list[str]:
    """The console's users by name, for the assign list (empty before users exist)."""
    return [str(n) for n in session.exec(select(UserRecord.name).order_by(UserRecord.name)).all()]
