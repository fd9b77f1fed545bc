"""Attach an alert to its incident, inside the poll's transaction.

An alert joins the most recently updated incident of its brand that shares a grouping key
(conversation, URL, author) or whose text it nearly duplicates within the grouping window;
otherwise it opens a new incident. Joining a resolved incident opens its next episode.
Severity only rises automatically. The alert is its stored shape,
:class:`~emberwatch.models.AlertRecord`, stored already or about to be (a poll inserts its
new alerts together once they are filed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Session

from emberwatch import db
from emberwatch.alerts.grouping import TextIndex, TextShapes, grouping_keys
from emberwatch.alerts.lifecycle import forget_notifications, record_action
from emberwatch.config import SEVERITY_RANK, Grouping
from emberwatch.models import (
    AlertRecord,
    Incident,
    IncidentKey,
    MentionRecord,
)
from emberwatch.text import cut


class FiledMention(Protocol):
    """What filing reads of a mention: a stored ``MentionRecord`` or a bulk-inserted row."""

    brand: str
    source: str
    url: str | None
    author: str | None
    title: str | None
    text: str
    thread: str | None


class RecentTexts:
    """Each brand's recent alert texts, read and pre-processed once per transaction.

    A poll may file dozens of alerts; reading and re-processing the same 500 candidate
    texts for each of them was most of the cost of a poll.
    """

    LIMIT = 500
    # A Session.get that reads its row costs about as much as ten rows of one bulk read
    # (on PostgreSQL 0.17 ms of the poller's CPU and a round trip, against 16 us a row).
    GET_COST = 10

    def __init__(self, since: datetime, shapes: TextShapes | None = None) -> None:
        self.since = since
        self._shapes = shapes or TextShapes()
        self._by_brand: dict[str, TextIndex] = {}
        self._unloaded: dict[str, set[int]] = {}
        self._expected: dict[str, int] = {}
        self._loaded: list[Incident] = []

    def expect(self, brand: str, alerts: int) -> None:
        """Say how many alerts of the brand the transaction is about to file."""
        self._expected[brand] = alerts

    def read(self, session: Session, brand: str, latest: Iterable[Any]) -> set[int]:
        """Take the brand's candidates now rather than at its first alert, from the rows of
        :meth:`latest_query`. Returns the incidents :meth:`incident` would read at its
        first call, for the caller to read with others in one query
        (:func:`load_incidents`)."""
        self.index(session, brand, latest)
        return self._incidents_to_read(brand)

    def incident(self, session: Session, brand: str, incident_id: int) -> Incident | None:
        """The incident whose text an alert nearly duplicates."""
        self._loaded += load_incidents(session, self._incidents_to_read(brand))
        # Reading one row by key needs nothing flushed; the poll flushes its alerts once.
        with session.no_autoflush:
            return session.get(Incident, incident_id)

    def _incidents_to_read(self, brand: str) -> set[int]:
        """The first time a transaction asks, when it files enough of the brand's alerts
        (:meth:`expect`) that reading candidates one at a time would cost more than all
        at once: the brand's candidate incidents, to read in one query."""
        candidates = self._unloaded.pop(brand, None)
        if candidates and self._expected.get(brand, 0) * self.GET_COST >= len(candidates):
            return candidates
        return set()

    def for_brand(self, session: Session, brand: str) -> TextIndex:
        index = self._by_brand.get(brand)
        if index is None:
            session.flush()  # as a query through the session would, before reading
            rows = session.connection().execute(*self.latest_query(brand))
            index = self.index(session, brand, rows)
        return index

    def latest_query(self, brand: str) -> tuple[Any, dict[str, Any]]:
        """The query for the brand's latest alerts that :meth:`for_brand` runs, for the
        caller to run with others: it gives their rows to :meth:`index`."""
        return _LATEST_ALERTS, {"brand": brand, "since": self.since, "limit": self.LIMIT}

    def index(self, session: Session, brand: str, rows: Iterable[Any]) -> TextIndex:
        """The brand's candidates, from its latest alerts (:meth:`latest_query`' rows)."""
        index = self._by_brand[brand] = TextIndex(self._shapes)
        connection = session.connection()
        latest = [
            (incident_id, (mention_id, alerted_at)) for incident_id, mention_id, alerted_at in rows
        ]
        # A mention's text never changes: read only those not read in earlier polls.
        # The time its alert was raised goes with the mention's id: should a mention
        # ever be deleted, SQLite may give its id to the next one.
        texts = self._shapes.mention_texts
        unread = dict(mention for _, mention in latest if mention not in texts)
        ids = sorted(unread)
        for start in range(0, len(ids), 500):
            for mention_id, title, text in connection.execute(
                _MENTION_TEXTS[db.on_postgresql(session)], {"ids": ids[start : start + 500]}
            ):
                texts[mention_id, unread[mention_id]] = _text_of(title, text)
        index.add_many(
            ((incident_id, texts[mention]) for incident_id, mention in latest), newest=False
        )
        self._unloaded[brand] = {incident_id for incident_id, _ in latest}
        return index


# Built once: this runs for every brand in every poll that raises an alert, and composing
# the statement each time cost as much as running it.
_LATEST_ALERTS = (
    sa.select(AlertRecord.incident_id, AlertRecord.mention_id, AlertRecord.created_at)
    .join(Incident, Incident.id == AlertRecord.incident_id)  # type: ignore[arg-type]
    .where(
        Incident.brand == sa.bindparam("brand"),
        Incident.updated_at >= sa.bindparam("since"),  # type: ignore[operator]
    )
    .order_by(sa.desc(AlertRecord.id))
    .limit(sa.bindparam("limit"))
)


def _in(column: Any, name: str, postgres: bool, *, semi_join: bool = False) -> Any:
    """``column IN (:name)``; on PostgreSQL one array parameter, as psycopg converts a
    statement with many parameters anew each time (:func:`db.one_of`): ``column =
    ANY(:name)``, or with ``semi_join`` ``column IN (SELECT unnest(:name))``, one index
    probe per value. ``incident_keys.key = ANY(:keys)`` read the keys through the
    incidents instead: 8 ms a poll against 2 ms."""
    if not postgres:
        return column.in_(sa.bindparam(name, expanding=True))
    array = sa.bindparam(name, type_=postgresql.ARRAY(column.type))
    return column.in_(sa.select(sa.func.unnest(array))) if semi_join else column == sa.any_(array)


# [SQLite or another backend, PostgreSQL], indexed by db.on_postgresql.
_MENTION_TEXTS = [
    sa.select(MentionRecord.id, MentionRecord.title, MentionRecord.text).where(
        _in(MentionRecord.id, "ids", postgres)
    )
    for postgres in (False, True)
]
_INCIDENTS_HOLDING = [
    sa.select(IncidentKey.incident_id, IncidentKey.key)
    .join(Incident, Incident.id == IncidentKey.incident_id)  # type: ignore[arg-type]
    .where(
        Incident.brand == sa.bindparam("brand"),
        _in(IncidentKey.key, "keys", postgres, semi_join=True),
        Incident.updated_at >= sa.bindparam("since"),  # type: ignore[operator]
    )
    for postgres in (False, True)
]


class RecentKeys:
    """Which recent incidents of a brand hold which grouping keys, read once per transaction.

    Looking each alert's keys up in the database took a query per alert, and each query
    first flushed the session. The pipeline loads every key a poll will need in one query
    (:meth:`load`); keys filed during the transaction are recorded here as they are
    (:meth:`add`) and written together by :meth:`write`.
    """

    def __init__(self, since: datetime) -> None:
        self.since = since
        self._looked_up: set[tuple[str, str]] = set()
        self._incidents: dict[tuple[str, str], set[int]] = {}
        self._unwritten: list[dict[str, object]] = []
        self._loaded: list[Incident] = []

    def load(self, session: Session, brand: str, keys: Sequence[str]) -> None:
        """Read which incidents hold any of ``keys`` not read yet, and those incidents."""
        self._loaded += load_incidents(session, self.read(session, brand, keys))

    def read(self, session: Session, brand: str, keys: Sequence[str]) -> set[int]:
        """Read which incidents hold any of ``keys`` not read yet. Returns those
        incidents, for the caller to read (:func:`load_incidents`): find() reads every
        one of an alert's candidates."""
        # Straight on the connection: no autoflush (what this transaction changed is
        # already recorded here).
        connection = session.connection()
        queries = self.queries(session, brand, keys)
        return self.found(brand, [row for query in queries for row in connection.execute(*query)])

    def queries(
        self, session: Session, brand: str, keys: Sequence[str]
    ) -> list[tuple[Any, dict[str, Any]]]:
        """The queries :meth:`read` runs, for the caller to run with others: it gives
        their rows to :meth:`found`."""
        missing = sorted({k for k in keys if (brand, k) not in self._looked_up})
        self._looked_up.update((brand, k) for k in missing)
        statement = _INCIDENTS_HOLDING[db.on_postgresql(session)]
        return [
            (statement, {"brand": brand, "keys": missing[start : start + 500], "since": self.since})
            for start in range(0, len(missing), 500)
        ]

    def found(self, brand: str, rows: Iterable[Any]) -> set[int]:
        """Record which incidents hold which keys, from :meth:`queries`' rows; returns
        those incidents."""
        found: set[int] = set()
        for incident_id, key in rows:
            self._incidents.setdefault((brand, key), set()).add(incident_id)
            found.add(incident_id)
        return found

    def find(self, session: Session, brand: str, keys: Sequence[str]) -> Incident | None:
        """The most recently updated incident in the window holding any of ``keys``."""
        self.load(session, brand, keys)
        ids = set().union(*(self._incidents.get((brand, k), ()) for k in keys))
        found = [
            incident
            for incident_id in ids
            if (incident := session.get(Incident, incident_id)) is not None
            and incident.updated_at >= self.since
        ]
        return max(found, key=lambda i: (i.updated_at, i.id), default=None)

    def holds(self, brand: str, key: str, incident_id: int) -> bool:
        return incident_id in self._incidents.get((brand, key), ())

    def add(self, brand: str, key: str, incident_id: int, now: datetime) -> None:
        """Record that the incident now holds the key; :meth:`write` stores it."""
        self._incidents.setdefault((brand, key), set()).add(incident_id)
        self._unwritten.append({"incident_id": incident_id, "key": key, "seen_at": now})

    def write(self, session: Session) -> None:
        """Store the keys added since the last write, in one INSERT (:func:`db.insert_rows`)."""
        query = self.write_query(session)
        if query is not None:
            session.execute(*query)

    def write_query(self, session: Session) -> tuple[Any, Any] | None:
        """The INSERT :meth:`write` runs, for a caller that runs it with others (None when
        no key was added since the last); the keys then count as written."""
        if not self._unwritten:
            return None
        query = db.insert_query(session, IncidentKey.__table__, self._unwritten)  # type: ignore[attr-defined]
        self._unwritten = []
        return query


def load_incidents(session: Session, ids: set[int]) -> list[Incident]:
    """Bring these incidents into the session in one query, so that :meth:`Session.get`
    finds them there: filing a poll's alerts asked for them one round trip at a time.

    The session holds its objects weakly: the caller keeps the returned list for as long
    as the gets should find them.
    """
    identity = session.identity_map
    unread = sorted(i for i in ids if session.identity_key(Incident, i) not in identity)
    loaded: list[Incident] = []
    with session.no_autoflush:
        for start in range(0, len(unread), 500):
            loaded += session.scalars(
                sa.select(Incident).where(
                    db.one_of(session, Incident.id, unread[start : start + 500])
                )
            ).all()
    return loaded


def alerted_texts(
    filed: Iterable[tuple[AlertRecord, FiledMention]],
) -> dict[tuple[int, datetime], str]:
    """The texts of these alerts' mentions as :meth:`RecentTexts.for_brand` reads them
    back, keyed as :attr:`TextShapes.mention_texts` keeps them: once the transaction that
    filed the alerts has committed, the next one need not read them (a query a poll
    fewer). Silenced alerts belong to no incident, so to no candidates."""
    return {
        (alert.mention_id, alert.created_at): _text_of(mention.title, mention.text)
        for alert, mention in filed
        if alert.incident_id is not None
    }


def _text_of(title: str | None, text: str) -> str:
    return f"{title or ''} {text}"


def attach(
    session: Session,
    alert: AlertRecord,
    mention: FiledMention,
    grouping: Grouping,
    now: datetime,
    recent: RecentTexts | None = None,
    recent_keys: RecentKeys | None = None,
) -> Incident:
    """File the alert in its incident, opening one if none fits, and set its incident id.

    The caller stores the alert itself. With ``recent_keys`` given, the caller also stores
    the new keys (:meth:`RecentKeys.write`) after its last alert; without, they are stored
    here.
    """
    keys = grouping_keys(mention.source, mention.url, mention.author, mention.thread)
    recent = recent or RecentTexts(now - grouping.window)
    own_keys = recent_keys is None
    recent_keys = recent_keys or RecentKeys(now - grouping.window)
    incident = _find(session, mention, keys, grouping, recent, recent_keys)
    if incident is None:
        incident = Incident(
            brand=alert.brand,
            source_name=alert.source_name,
            title=cut(" ".join((mention.title or mention.text).split()), 140),
            severity=alert.severity,
            category=alert.category,
            opened_at=now,
            updated_at=now,
        )
        session.add(incident)
        session.flush()
    elif incident.status == "resolved":
        _open_next_episode(session, incident, alert, now)
    else:
        raise_severity(incident, alert.severity, alert.category)
    assert incident.id is not None
    if alert.incident_id != incident.id:
        incident.alert_count += 1
        alert.incident_id = incident.id
        recent.for_brand(session, incident.brand).add(
            incident.id, _text_of(mention.title, mention.text)
        )
    incident.updated_at = now
    session.add(incident)
    # _find loaded these keys for the brand, and the incident it chose is in the window.
    for key in keys:
        if not recent_keys.holds(incident.brand, key, incident.id):
            recent_keys.add(incident.brand, key, incident.id, now)
    if own_keys:
        recent_keys.write(session)
    return incident


def raise_severity(incident: Incident, severity: str, category: str) -> bool:
    if SEVERITY_RANK[severity] > SEVERITY_RANK[incident.severity]:
        incident.severity, incident.category = severity, category
        return True
    return False


def _find(
    session: Session,
    mention: FiledMention,
    keys: Sequence[str],
    grouping: Grouping,
    recent: RecentTexts,
    recent_keys: RecentKeys,
) -> Incident | None:
    found = recent_keys.find(session, mention.brand, keys) if keys else None
    if found is not None:
        return found
    best = recent.for_brand(session, mention.brand).best(
        _text_of(mention.title, mention.text), grouping.similarity
    )
    if best is None:
        return None
    return recent.incident(session, mention.brand, best)


def _open_next_episode(
    session: Session, incident: Incident, alert: AlertRecord, now: datetime
) -> None:
    incident.episode += 1
    incident.status = "triggered"
    incident.severity, incident.category = alert.severity, alert.category
    incident.opened_at = now
    incident.acknowledged_at = incident.acknowledged_by = None
    incident.resolved_at = incident.resolved_by = None
    incident.snoozed_until = None
    incident.escalations, incident.last_escalated_at = 0, None
    incident.alert_count = 0
    forget_notifications(session, incident)
    record_action(
        session,
        incident,
        "reopen",
        actor="emberwatch",
        via="pipeline",
        now=now,
        note="a related alert arrived after the incident was resolved",
    )
