"""One poll of one source: fetch → parse → match → store → score → decide → file.

One poll of one source is one database transaction: the mentions, their snapshots and
scores, the alerts, the incidents they are filed into *and the source's new cursor* commit
together. A crash anywhere before the commit leaves the old cursor, so the next poll
fetches the same items again and the unique key on (source, external_id) keeps them
single. Nobody is told anything here: the alert policy (:mod:`emberwatch.alerts.policy`)
decides on its own timer, in its own transactions, what to tell whom, and queues it in the
outbox (:mod:`emberwatch.outbox`), from which the delivery worker sends.

A failed poll touches nothing but the source's health columns, and backs that source off
exponentially (with jitter, never sooner than a ``Retry-After``); after
``CIRCUIT_THRESHOLD`` failures in a row the circuit opens and the source rests for
``CIRCUIT_COOLDOWN``. Other sources are unaffected.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import anyio
import httpx
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from emberwatch import db, labels, metrics
from emberwatch.alerts.decisions import Decision, decide
from emberwatch.alerts.grouping import TextShapes, grouping_keys
from emberwatch.alerts.incidents import (
    RecentKeys,
    RecentTexts,
    alerted_texts,
    attach,
    load_incidents,
)
from emberwatch.alerts.routing import Facts
from emberwatch.alerts.silences import ActiveSilences
from emberwatch.config import Config
from emberwatch.errors import FetchError, SourceError
from emberwatch.matching import BrandMatcher, build_matchers
from emberwatch.mention import Mention
from emberwatch.models import (
    AlertRecord,
    EngagementSnapshot,
    Incident,
    MentionRecord,
    SourceState,
    utcnow,
)
from emberwatch.scoring import Scorer, Scores, Snapshot
from emberwatch.scoring.pool import Presumed, ScoringPool
from emberwatch.sources import SourceSettings, connector
from emberwatch.text import snippet

# The logger keeps its old name: operators filter and alert on "emberwatch.pipeline" lines.
log = logging.getLogger("emberwatch.pipeline")

CIRCUIT_THRESHOLD = 5
# How often, at most, a poll asks whether labels taught a newer learned layer.
LEARNED_CHECK_SECONDS = 10.0
CIRCUIT_COOLDOWN = timedelta(minutes=30)
MAX_BACKOFF = timedelta(hours=1)


@dataclass
class Runtime:
    """What every stage needs, built once from the config."""

    config: Config
    engine: Engine
    http: httpx.AsyncClient
    scorer: Scorer
    matchers: list[BrandMatcher]
    clock: Callable[[], datetime] = utcnow
    # Candidate texts for incident grouping, pre-processed once and kept across polls.
    text_shapes: TextShapes = field(default_factory=TextShapes)
    # Scores large polls' new mentions in other processes; None scores in the poller.
    scoring_pool: ScoringPool | None = None
    # The version of the learned layer the scorer holds (None: cues alone), and when the
    # database was last asked for a newer one (monotonic seconds).
    learned_version: int | None = None
    _learned_checked: float = field(default=0.0, repr=False)
    _sqlite_transactions: anyio.CapacityLimiter | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        config: Config,
        engine: Engine,
        http: httpx.AsyncClient,
        clock: Callable[[], datetime] = utcnow,
    ) -> Runtime:
        layer = labels.load_layer(engine)
        scorer = labels.scorer_for(config, layer)
        pool = ScoringPool(scorer, config.scoring_processes) if config.scoring_processes else None
        return cls(
            config,
            engine,
            http,
            scorer,
            build_matchers(config.brands),
            clock,
            scoring_pool=pool,
            learned_version=layer.version if layer is not None else None,
            _learned_checked=time.monotonic(),
        )

    def learned_due(self) -> bool:
        """Whether to ask the database for a newer learned layer: at a poll's start, at
        most every :data:`LEARNED_CHECK_SECONDS`."""
        return time.monotonic() - self._learned_checked >= LEARNED_CHECK_SECONDS

    def refresh_learned(self) -> bool:
        """Load the newest learned layer if it is not the one the scorer holds (one
        indexed query when it is). True when the scorer changed; the scoring processes
        then start afresh with it, and batches already sent finish with the old one."""
        self._learned_checked = time.monotonic()
        newest = labels.newest_version(self.engine)
        if newest == self.learned_version:
            return False
        layer = labels.load_layer(self.engine) if newest is not None else None
        self.scorer.learned = layer
        self.learned_version = layer.version if layer is not None else None
        if self.scoring_pool is not None:
            self.scoring_pool.renew()
        log.info(
            "learned layer %s",
            f"v{layer.version} from {layer.n_labels} labels" if layer else "removed",
        )
        return True

    def transactions(self) -> anyio.CapacityLimiter | None:
        """How many poll transactions may run at once: one on SQLite, else no limit.

        SQLite lets one connection write at a time. With twenty polls' transactions in
        twenty threads, the losers retried and the threads fought over the interpreter:
        a round of 1,000 polls spent a third more CPU than with one at a time.
        """
        if self.engine.dialect.name != "sqlite":
            return None
        if self._sqlite_transactions is None:
            self._sqlite_transactions = anyio.CapacityLimiter(1)
        return self._sqlite_transactions

    def close(self) -> None:
        """Stop the scoring processes, if any started. The runtime still works after: a
        later large poll starts them again."""
        if self.scoring_pool is not None:
            self.scoring_pool.close()


@dataclass(frozen=True)
class PollReport:
    """One line of what a poll did, for the CLI, logs and tests."""

    source: str
    new: int = 0
    updated: int = 0
    alerts: int = 0
    error: str | None = None
    skipped: str | None = None
    pages: int = 0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.skipped:
            return f"{self.source}: skipped ({self.skipped})"
        text = f"{self.source}: {self.new} new, {self.updated} updated, {self.alerts} alerts"
        if self.error:
            text += f", error: {self.error}"
        return text


@dataclass
class _Filing:
    """What filing alerts into incidents reads once per poll transaction."""

    session: Session
    now: datetime
    recent: RecentTexts
    keys: RecentKeys
    # The silences in force: read with what filing reads (:func:`_read_for_filing`) when
    # the poll files an alert; most polls file none.
    silences: ActiveSilences = field(default_factory=lambda: ActiveSilences(()))
    # The incidents read for the poll: the session holds its objects weakly.
    incidents: list[Incident] = field(default_factory=list)


@dataclass(frozen=True)
class Matched:
    """A fetched mention a brand's matcher kept (:func:`match_stage`): the brand, and
    whether its author is one of the brand's VIPs."""

    mention: Mention
    brand: str
    vip: bool


@dataclass(frozen=True)
class PollLease:
    """The lease a node holds on a source for one poll (see :mod:`emberwatch.scheduling`).

    The poll's own transaction gives it back and sets the source's next due slot, so the
    lease costs a poll no transaction of its own. A lease another node has taken since
    (this one ran out) is left alone. ``cursor`` is the source's cursor as the claim read
    it, if it had one: the claim also checked the backoff, so the poll reads nothing before
    it fetches. Without it the poll reads the source's row first, as without a lease.
    """

    holder: str
    next_due: Callable[[datetime], datetime]
    cursor: str | None = None

    def give_back(self, state: SourceState, now: datetime) -> None:
        if state.leased_by != self.holder:
            return
        state.poll_due_at = self.next_due(now)
        state.lease_until = None
        state.leased_by = None


async def poll_source(
    rt: Runtime, settings: SourceSettings, *, force: bool = False, lease: PollLease | None = None
) -> PollReport:
    """Poll one source once and commit what it brought. Never raises for a source's fault.

    With ``lease`` (under ``run``), the commit also gives the source's lease back, and the
    poll fetches from the lease's cursor when it carries one; otherwise it reads the
    source's cursor and backoff first.
    """
    now = rt.clock()
    if rt.learned_due():
        await anyio.to_thread.run_sync(rt.refresh_learned)
    if lease is not None and lease.cursor is not None:
        cursor: str | None = lease.cursor
    else:
        state = await _in_thread(rt, _load_state, rt.engine, settings)
        if not force and state.next_poll_after and state.next_poll_after > now:
            return PollReport(
                settings.name, skipped=f"backing off until {state.next_poll_after:%H:%M:%S}Z"
            )
        cursor = state.cursor
    module = connector(settings.type)
    started = time.monotonic()
    try:
        fetched = await module.fetch(rt.http, settings, cursor, now)
    except SourceError as exc:
        return await _in_thread(rt, _record_failure, rt, settings, exc, now, lease)
    except Exception as exc:  # a connector bug must not stop the other sources
        log.exception("source %s: unexpected error in fetch", settings.name)
        error = SourceError(f"{settings.name}: unexpected {type(exc).__name__}")
        return await _in_thread(rt, _record_failure, rt, settings, error, now, lease)
    matched = match_stage(fetched.mentions, rt.matchers, settings)
    ahead = score_ahead(rt, matched, now)
    if ahead is not None:
        # Wait without holding a thread. A failed worker shows in ahead.result(), which
        # then scores in the database thread, not on the event loop.
        await asyncio.wait([asyncio.wrap_future(ahead.future)])
    report = await _in_thread(
        rt,
        lambda: commit_poll(
            rt,
            settings,
            matched,
            fetched.cursor,
            fetched.pages,
            now,
            presumed=ahead.result() if ahead is not None else None,
            lease=lease,
        ),
    )
    metrics.POLLS.labels(source=settings.name, outcome="ok").inc()
    metrics.POLL_SECONDS.labels(source=settings.name).observe(time.monotonic() - started)
    metrics.MENTIONS.labels(source=settings.name).inc(report.new)
    return PollReport(**{**report.__dict__, "notes": fetched.notes})


async def _in_thread(rt: Runtime, function: Callable[..., Any], *args: Any) -> Any:
    """Run a poll's database work in a worker thread, as many at once as the database
    takes well (:meth:`Runtime.transactions`)."""
    return await anyio.to_thread.run_sync(function, *args, limiter=rt.transactions())


def match_stage(
    mentions: list[Mention], matchers: list[BrandMatcher], settings: SourceSettings
) -> list[Matched]:
    """Keep the mentions about a brand this source serves; the first matching brand wins."""
    served = [m for m in matchers if not settings.brands or m.brand in settings.brands]
    kept: list[Matched] = []
    seen: set[str] = set()
    for mention in mentions:
        if mention.external_id in seen:
            continue  # a page boundary can repeat an item within one poll
        seen.add(mention.external_id)
        text = mention.full_text
        for matcher in served:
            if matcher.matches(text):
                kept.append(Matched(mention, matcher.brand, matcher.is_vip(mention.author)))
                break
    return kept


@dataclass(frozen=True)
class ScoredAhead:
    """A poll's mentions being scored as new ones in the runtime's scoring process."""

    pool: ScoringPool
    batch: list[Presumed]
    now: datetime
    future: concurrent.futures.Future[list[Scores]]

    def result(self) -> list[Scores]:
        """The scores, one per matched mention, in order (waits for the worker)."""
        return self.pool.result(self.future, self.batch, self.now)


def score_ahead(rt: Runtime, matched: list[Matched], now: datetime) -> ScoredAhead | None:
    """Start scoring the matched mentions in the scoring process, before the poll's
    transaction, as if each were new: most are, and the transaction scores the rest.

    None when the runtime has no scoring process or the batch is small enough to score
    in the transaction. Meanwhile the poller is free to store and file another poll.
    """
    if rt.scoring_pool is None:
        return None
    batch = [Presumed(item.mention, item.brand, item.vip) for item in matched]
    future = rt.scoring_pool.submit(batch, now)
    return None if future is None else ScoredAhead(rt.scoring_pool, batch, now, future)


def _load_state(engine: Engine, settings: SourceSettings) -> SourceState:
    with Session(engine) as session:
        state = session.exec(select(SourceState).where(SourceState.name == settings.name)).first()
        if state is None:
            state = SourceState(name=settings.name, type=settings.type)
            session.add(state)
            try:
                session.commit()
                session.refresh(state)  # the commit expired it
            except sa.exc.IntegrityError:  # another node created it first
                session.rollback()
                state = session.exec(
                    select(SourceState).where(SourceState.name == settings.name)
                ).one()
        session.expunge(state)
        return state


def backoff_delay(failures: int, interval: timedelta, retry_after: float | None) -> timedelta:
    """Exponential backoff with ±20% jitter, capped, and never sooner than Retry-After."""
    if failures >= CIRCUIT_THRESHOLD:
        delay = CIRCUIT_COOLDOWN
    else:
        delay = min(interval * (2 ** (failures - 1)), MAX_BACKOFF)
        delay = delay * random.uniform(0.8, 1.2)
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


def _record_failure(
    rt: Runtime,
    settings: SourceSettings,
    error: SourceError,
    now: datetime,
    lease: PollLease | None = None,
) -> PollReport:
    metrics.POLLS.labels(source=settings.name, outcome="error").inc()
    status = getattr(error, "status", None)
    excerpt = getattr(error, "snippet", "")
    log.warning(
        "source %s: poll failed: %s%s%s",
        settings.name,
        error,
        f" (HTTP {status})" if status else "",
        f" body: {excerpt!r}" if excerpt else "",
        extra={"source": settings.name},
    )
    with Session(rt.engine) as session:
        state = session.exec(
            select(SourceState).where(SourceState.name == settings.name).with_for_update()
        ).one()
        state.consecutive_failures += 1
        state.polls_total += 1
        state.last_poll_at = now
        state.last_error = snippet(str(error), 300)
        state.last_error_at = now
        state.items_last_poll = 0
        retry_after = error.retry_after if isinstance(error, FetchError) else None
        state.next_poll_after = now + backoff_delay(
            state.consecutive_failures, settings.interval, retry_after
        )
        if lease is not None:
            lease.give_back(state, rt.clock())
        session.add(state)
        session.commit()
    return PollReport(settings.name, error=str(error))


def commit_poll(
    rt: Runtime,
    settings: SourceSettings,
    matched: list[Matched],
    cursor: str | None,
    pages: int,
    now: datetime,
    *,
    bookkeeping: bool = True,
    presumed: Sequence[Scores] | None = None,
    lease: PollLease | None = None,
) -> PollReport:
    """Store, score and decide one poll's matched mentions in one transaction.

    ``presumed`` holds each matched mention's scores as a new mention, computed ahead by
    :func:`score_ahead`; without it every mention is scored here.
    """
    new = updated = alerts = 0
    with Session(rt.engine) as session:
        # Lock the source row: two nodes polling the same source serialize here. The same
        # statement says the poll's commit need not wait for the disk: should the
        # database crash before its WAL is written, the old cursor is what survives, and
        # the next poll fetches the same items again (if the source still serves them).
        # What writes because of the poll (the alert policy's deliveries, a click in the
        # console) commits in a transaction that waits, and so writes this one's WAL
        # before its own; a reader (a console page, the digest) may see rows that such a
        # crash then takes back, as it may see rows a later poll adds.
        lock = select(SourceState).where(SourceState.name == settings.name).with_for_update()
        state = session.execute(db.commit_without_flush(session, lock)).one()[0]
        existing = _existing_records(session, matched)
        # Read once per poll: the silences in force, and the brands' recent alert texts
        # and grouping keys.
        if rt.text_shapes.full():
            rt.text_shapes = TextShapes()
        since = now - rt.config.grouping.window
        filing = _Filing(
            session,
            now,
            RecentTexts(since, rt.text_shapes),
            RecentKeys(since),
        )
        changed = [
            record
            for item in matched
            if (record := existing.get((item.mention.source, item.mention.external_id))) is not None
            and _engagement_changed(record, item.mention)
        ]
        # What the updated mentions already have, read in one query each, not one per mention.
        history = _snapshot_history(session, changed)
        alerted = _alerts_by_mention(session, changed)
        # Score every mention first, then insert the new ones in one batch: a new
        # mention's only snapshot is the one it arrives with, and it has no alert yet.
        # New mentions go in as plain rows, not ORM objects: building and flushing one
        # object per mention cost more than scoring it.
        scored: list[tuple[MentionRecord | _NewMention, Scores, AlertRecord | None]] = []
        new_rows: list[dict[str, Any]] = []
        fresh: list[tuple[_NewMention, Mention]] = []
        for position, item in enumerate(matched):
            m = item.mention
            record = existing.get((m.source, m.external_id))
            if record is None:
                if presumed is not None:
                    scores = presumed[position]
                else:
                    scores = rt.scorer.score_new(m, brand=item.brand, vip=item.vip, now=now)
            elif _engagement_changed(record, m):
                _update_engagement(session, record, m, now)
                snapshots = [*history.get(record.id, []), Snapshot.of(m, now)]  # type: ignore[arg-type]
                scores = rt.scorer.score(
                    m, snapshots=snapshots, brand=item.brand, vip=item.vip, now=now
                )
            else:
                continue
            if record is None:
                row = _new_row(item, settings.name, now, scores)
                new_rows.append(row)
                fresh.append((_NewMention.of(row), m))
                scored.append((fresh[-1][0], scores, None))
                new += 1
            else:
                _apply_scores(record, scores)
                session.add(record)
                scored.append((record, scores, alerted.get(record.id)))  # type: ignore[arg-type]
                updated += 1
        # Decide in arrival order: incident grouping depends on which alert came first.
        decided = _decisions(rt.config, scored)
        _read_for_filing(session, filing, decided)
        # The new mentions go in while their alerts are filed: filing reads nothing of
        # them but their fields, and what it asks of the database waits for them.
        with _send_new_mentions(session, new_rows) as inserting:
            filed = [
                (
                    record,
                    decision,
                    *_file_alert(session, rt.config, record, scores, decision, now, alert, filing),
                )
                for record, scores, alert, decision in decided
            ]
            if new_rows:
                _store_ids(session, inserting.rows(), fresh, now)
        session.flush()  # the incidents' changes and the existing alerts' in one batch
        _insert_new_alerts(session, filed, filing.keys.write_query(session))
        for record, decision, alert, incident, silence_id in filed:
            _log_filed(record, decision, alert, incident, silence_id)
        alerts = len(filed)
        if bookkeeping:
            # A lease that ran out while this poll waited or fetched may have let another
            # node poll the source since, from a newer cursor: this poll's cursor would
            # move it back, so the row keeps the one it has.
            if cursor is not None and (lease is None or state.leased_by == lease.holder):
                state.cursor = cursor
            state.last_poll_at = now
            state.last_success_at = now
            state.consecutive_failures = 0
            state.next_poll_after = None
            state.items_last_poll = len(matched)
            state.polls_total += 1
            if lease is not None:
                lease.give_back(state, rt.clock())
            session.add(state)
        texts = alerted_texts((alert, record) for record, _, alert, _, _ in filed)
        session.commit()
    rt.text_shapes.mention_texts.update(texts)
    # A poll that found nothing is routine: `run` logs only polls with news.
    log.log(
        logging.INFO if new or updated or alerts else logging.DEBUG,
        "source %s: %d new, %d updated, %d alerts",
        settings.name,
        new,
        updated,
        alerts,
        extra={"source": settings.name},
    )
    return PollReport(settings.name, new=new, updated=updated, alerts=alerts, pages=pages)


def _read_for_filing(
    session: Session,
    filing: _Filing,
    decided: list[tuple[MentionRecord | _NewMention, Scores, AlertRecord | None, Decision]],
) -> None:
    """Read what filing the decided alerts needs: which incidents hold their grouping keys,
    the silences in force and each brand's recent alerts, in one round trip (on
    PostgreSQL, :class:`db.Sent`); those of their texts no earlier poll read; then, in one
    query, the incidents holding the keys and, when there are enough alerts, those of the
    recent alerts.

    Read before the poll's new mentions are sent (:func:`_send_new_mentions`), so that
    filing overlaps their insert instead of waiting for it to read these.
    """
    keys_by_brand: dict[str, list[str]] = {}
    for record, _, _, _ in decided:
        keys_by_brand.setdefault(record.brand, []).extend(
            grouping_keys(record.source, record.url, record.author, record.thread)
        )
    by_brand = Counter(record.brand for record, _, _, _ in decided)
    key_queries = {
        brand: filing.keys.queries(session, brand, keys) for brand, keys in keys_by_brand.items()
    }
    queries = [query for brand_queries in key_queries.values() for query in brand_queries]
    if decided:
        queries.append(ActiveSilences.query(filing.now))
    queries += [filing.recent.latest_query(brand) for brand in by_brand]
    if not queries:
        return
    with db.Sent(session, queries) as read:
        results = iter(range(len(queries)))
        incidents: set[int] = set()
        for brand, brand_queries in key_queries.items():
            rows = [row for _ in brand_queries for row in read.rows(next(results))]
            incidents |= filing.keys.found(brand, rows)
        if decided:
            filing.silences = ActiveSilences.of_rows(read.rows(next(results)))
        for brand, count in by_brand.items():
            filing.recent.expect(brand, count)
            incidents |= filing.recent.read(session, brand, read.rows(next(results)))
    filing.incidents += load_incidents(session, incidents)


def _send_new_mentions(session: Session, rows: list[dict[str, Any]]) -> db.Sent | nullcontext[None]:
    """Send the poll's new mentions (with, on PostgreSQL, their first snapshots): the
    insert's rows, read with :func:`_store_ids`, give each its id.

    Not through the ORM, which splits the rows wherever a column turns None. On
    PostgreSQL one statement does both (:func:`_mentions_with_snapshots`), and the server
    runs it while the poller files the alerts (:class:`db.Sent`): it maintains the
    mentions' text index, most of the poll's time in the database. Elsewhere one INSERT,
    RETURNING each row's id with its identity, run at once.
    """
    if not rows:
        return nullcontext()
    table = MentionRecord.__table__  # type: ignore[attr-defined]
    if db.on_postgresql(session):
        statement = _mentions_with_snapshots(tuple(rows[0]))
        return db.Sent(session, [(statement, db.unnest_arrays(table, rows))])
    return db.Sent(session, [(_INSERT_MENTIONS, rows)])


_INSERT_MENTIONS = MentionRecord.__table__.insert().returning(  # type: ignore[attr-defined]
    MentionRecord.id, MentionRecord.source, MentionRecord.external_id
)


def _store_ids(
    session: Session,
    inserted: list[Any],
    fresh: list[tuple[_NewMention, Mention]],
    now: datetime,
) -> None:
    """Give each new mention its id, from the insert's rows; elsewhere than PostgreSQL,
    insert their first snapshots now, in one statement."""
    ids = {(source, external_id): id_ for id_, source, external_id in inserted}
    for stored, m in fresh:
        stored.id = ids[m.source, m.external_id]
    if db.on_postgresql(session):
        return
    first_snapshots = [_snapshot_values(r.id, m, now) for r, m in fresh if m.has_counts]
    if first_snapshots:
        db.insert_rows(session, EngagementSnapshot.__table__, first_snapshots)  # type: ignore[attr-defined]


@functools.cache
def _mentions_with_snapshots(columns: tuple[str, ...]) -> Any:
    """``WITH m AS (INSERT INTO mentions ... RETURNING ...), s AS (INSERT INTO
    engagement_snapshots SELECT ... FROM m) SELECT id, source, external_id FROM m``.

    A new mention's first snapshot is its counts when it was first seen, with a count
    the source did not report as 0, and only when the source reported any
    (:func:`_snapshot_values`, ``Mention.has_counts``): all in the mention's row, so the
    snapshots need no parameters of their own and no round trip of their own (0.9 ms of
    the poll's time on the bench machine). They go in in the mentions' order, as the
    mentions' ids rise.
    """
    mentions = MentionRecord.__table__  # type: ignore[attr-defined]
    snapshots = EngagementSnapshot.__table__  # type: ignore[attr-defined]
    counts = ("likes", "reposts", "replies")
    returning = ("id", "source", "external_id", "first_seen_at", *counts)
    m = db.unnest_insert(mentions, columns, returning).cte("m")
    first = (
        sa.select(
            m.c.id,
            m.c.first_seen_at,
            *(sa.func.coalesce(m.c[name], 0) for name in counts),
        )
        .where(sa.or_(*(m.c[name].is_not(None) for name in counts)))
        .order_by(m.c.id)
    )
    s = snapshots.insert().from_select(["mention_id", "seen_at", *counts], first).cte("s")
    return sa.select(m.c.id, m.c.source, m.c.external_id).add_cte(s)


def _existing_records(
    session: Session, matched: list[Matched]
) -> dict[tuple[str, str], MentionRecord]:
    found: dict[tuple[str, str], MentionRecord] = {}
    by_source: dict[str, list[str]] = {}
    for item in matched:
        by_source.setdefault(item.mention.source, []).append(item.mention.external_id)
    for source, ids in by_source.items():
        for start in range(0, len(ids), 500):
            rows = session.exec(
                select(MentionRecord).where(_stored_as(session, source, ids[start : start + 500]))
            ).all()
            found.update({(r.source, r.external_id): r for r in rows})
    return found


def _stored_as(session: Session, source: str, external_ids: list[str]) -> Any:
    """The mentions stored under these identities.

    On PostgreSQL a semi-join on ``unnest``: one index probe per identity, whatever the
    statistics say. ``source = ... AND external_id = ANY(...)`` on a table not yet analyzed
    (a new database, or minutes of fast ingest) read every row of the source instead:
    17 ms per poll at 15,000 mentions.
    """
    if not db.on_postgresql(session):
        return sa.and_(
            MentionRecord.source == source,
            MentionRecord.external_id.in_(external_ids),  # type: ignore[attr-defined]
        )
    identities = sa.select(
        sa.literal(source, MentionRecord.__table__.c.source.type),  # type: ignore[attr-defined]
        sa.func.unnest(
            sa.bindparam(
                None,
                external_ids,
                type_=postgresql.ARRAY(MentionRecord.__table__.c.external_id.type),  # type: ignore[attr-defined]
            )
        ),
    )
    return sa.tuple_(MentionRecord.source, MentionRecord.external_id).in_(identities)


def _new_row(item: Matched, source_name: str, now: datetime, scores: Scores) -> dict[str, Any]:
    """A new mention's row in ``mentions``, scores included."""
    m = item.mention
    return {
        "source": m.source,
        "external_id": m.external_id,
        "source_name": source_name,
        "brand": item.brand,
        "url": m.url,
        "author": m.author,
        "author_followers": m.author_followers,
        "title": m.title,
        "text": m.text,
        "published_at": m.published_at,
        "first_seen_at": now,
        "rating": m.rating,
        "likes": m.likes,
        "reposts": m.reposts,
        "replies": m.replies,
        "engagement": m.engagement,
        "vip": item.vip,
        "thread": m.thread,
        **_score_values(scores),
    }


@dataclass(slots=True)
class _NewMention:
    """What deciding and filing read of a mention inserted as a plain row this poll."""

    id: int | None
    source: str
    source_name: str
    brand: str
    url: str | None
    author: str | None
    title: str | None
    text: str
    thread: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> _NewMention:
        return cls(
            None,
            row["source"],
            row["source_name"],
            row["brand"],
            row["url"],
            row["author"],
            row["title"],
            row["text"],
            row["thread"],
        )


def _engagement_changed(record: MentionRecord, m: Mention) -> bool:
    if not m.has_counts:
        return False
    return (record.likes, record.reposts, record.replies) != (m.likes, m.reposts, m.replies)


def _update_engagement(session: Session, record: MentionRecord, m: Mention, now: datetime) -> None:
    record.likes, record.reposts, record.replies = m.likes, m.reposts, m.replies
    record.engagement = m.engagement
    if m.author_followers is not None:
        record.author_followers = m.author_followers
    session.add(_snapshot_row(record.id, m, now))


def _snapshot_row(mention_id: int | None, m: Mention, now: datetime) -> EngagementSnapshot:
    return EngagementSnapshot(**_snapshot_values(mention_id, m, now))


def _snapshot_values(mention_id: int | None, m: Mention, now: datetime) -> dict[str, Any]:
    """A snapshot row as plain values: bulk INSERTs take these as they are."""
    assert mention_id is not None
    return {
        "mention_id": mention_id,
        "seen_at": now,
        "likes": m.likes or 0,
        "reposts": m.reposts or 0,
        "replies": m.replies or 0,
    }


def _ids(records: list[MentionRecord]) -> list[int]:
    return [r.id for r in records if r.id is not None]


def _snapshot_history(session: Session, records: list[MentionRecord]) -> dict[int, list[Snapshot]]:
    """Each mention's stored snapshots, oldest first."""
    history: dict[int, list[Snapshot]] = {}
    ids = _ids(records)
    for start in range(0, len(ids), 500):
        rows = session.exec(
            select(EngagementSnapshot)
            .where(db.one_of(session, EngagementSnapshot.mention_id, ids[start : start + 500]))
            .order_by(EngagementSnapshot.seen_at, EngagementSnapshot.id)  # type: ignore[arg-type]
        ).all()
        for r in rows:
            history.setdefault(r.mention_id, []).append(
                Snapshot(r.seen_at, r.likes, r.reposts, r.replies)
            )
    return history


def _alerts_by_mention(session: Session, records: list[MentionRecord]) -> dict[int, AlertRecord]:
    found: dict[int, AlertRecord] = {}
    ids = _ids(records)
    for start in range(0, len(ids), 500):
        rows = session.exec(
            select(AlertRecord).where(
                db.one_of(session, AlertRecord.mention_id, ids[start : start + 500])
            )
        ).all()
        found.update({a.mention_id: a for a in rows})
    return found


def _score_values(scores: Scores) -> dict[str, Any]:
    return {
        "sentiment": scores.sentiment,
        "complaint": scores.complaint,
        "virality": scores.virality,
        "expected_engagement": scores.expected_engagement,
        "category": scores.category,
        "severity": scores.severity,
        "reasons": json.dumps(scores.reasons, ensure_ascii=False),
        "language": scores.language,
    }


def _apply_scores(record: MentionRecord, scores: Scores) -> None:
    for name, value in _score_values(scores).items():
        setattr(record, name, value)


def _decisions(
    config: Config, scored: list[tuple[MentionRecord | _NewMention, Scores, AlertRecord | None]]
) -> list[tuple[MentionRecord | _NewMention, Scores, AlertRecord | None, Decision]]:
    """Each mention's alert decision, for those that raise or raise the severity of one."""
    out = []
    for record, scores, alert in scored:
        decision = decide(scores, config.thresholds, alert.severity if alert else None)
        if decision.action != "none":
            out.append((record, scores, alert, decision))
    return out


def _file_alert(
    session: Session,
    config: Config,
    record: MentionRecord | _NewMention,
    scores: Scores,
    decision: Decision,
    now: datetime,
    alert: AlertRecord | None,
    filing: _Filing,
) -> tuple[AlertRecord, Incident | None, int | None]:
    """Raise or raise the severity of this mention's alert, then file it in an incident.

    ``alert`` is the mention's existing alert, if any; a new one is returned without an
    id, outside the session, for :func:`_insert_new_alerts`. Returns the alert, its
    incident and the silence that holds it, if any. Nothing is sent here, and nothing is
    flushed: the alert policy (``emberwatch.alerts.policy``) decides when each channel
    hears, from what this transaction commits.
    """
    filed: AlertRecord
    if alert is None:
        filed = AlertRecord(
            mention_id=record.id,  # type: ignore[arg-type]
            brand=record.brand,
            source_name=record.source_name,
            category=scores.category,
            severity=scores.severity,
            reason=decision.reason,
            created_at=now,
            updated_at=now,
        )
    else:
        alert.severity, alert.category = scores.severity, scores.category
        alert.reason, alert.updated_at = decision.reason, now
        filed = alert
    facts = Facts(record.brand, record.source_name, record.source, filed.category, filed.severity)
    silence = filing.silences.matching(facts)
    metrics.ALERTS.labels(severity=filed.severity).inc()
    if silence is not None:
        filed.silenced_by = silence.id
        return filed, None, silence.id
    incident = attach(session, filed, record, config.grouping, now, filing.recent, filing.keys)
    return filed, incident, None


def _insert_new_alerts(
    session: Session,
    filed: list[
        tuple[MentionRecord | _NewMention, Decision, AlertRecord, Incident | None, int | None]
    ],
    new_keys: tuple[Any, Any] | None,
) -> None:
    """Insert the new alerts (those without an id), in filing order, in one statement and
    give each its id; and, in the same round trip (:class:`db.Sent`), the grouping keys
    the incidents took (``new_keys``, :meth:`RecentKeys.write_query`). Added to the
    session instead, the alerts went in one INSERT each.

    A new mention's alert was filed before the mention had its id: it takes it here."""
    new = []
    for record, _, alert, _, _ in filed:
        if alert.id is None:
            alert.mention_id = record.id  # type: ignore[assignment]
            new.append(alert)
    queries = [new_keys] if new_keys is not None else []
    if new:
        table = AlertRecord.__table__  # type: ignore[attr-defined]
        columns = [column.name for column in table.c if column.name != "id"]
        rows = [{name: getattr(alert, name) for name in columns} for alert in new]
        queries.insert(0, db.insert_query(session, table, rows, ("id", "mention_id")))
    if not queries:
        return
    with db.Sent(session, queries) as sent:
        inserted = sent.rows(0) if new else []
    # A mention has one alert at most, so the mention id says which row got which id.
    ids = {mention_id: alert_id for alert_id, mention_id in inserted}
    for alert in new:
        alert.id = ids[alert.mention_id]


def _log_filed(
    record: MentionRecord | _NewMention,
    decision: Decision,
    alert: AlertRecord,
    incident: Incident | None,
    silence_id: int | None,
) -> None:
    if incident is None:
        log.info("alert %s silenced by silence %s", alert.id, silence_id)
        return
    log.info(
        "alert %s (%s) in incident %s: %s",
        alert.id,
        decision.action,
        incident.id,
        decision.reason,
        extra={
            "source": record.source_name,
            "mention_id": record.id,
            "alert_id": alert.id,
            "incident_id": incident.id,
        },
    )


async def refresh_source(rt: Runtime, settings: SourceSettings) -> PollReport:
    """Re-read the engagement of this source's young mentions with the API's batch lookup.

    Updated counts go through the same store → score → decide path as a poll, so a post
    that starts spreading raises or escalates its alert. The cursor is left alone.
    """
    module = connector(settings.type)
    refresh = getattr(module, "refresh", None)
    if refresh is None:
        return PollReport(settings.name, skipped="no batch lookup for this source type")
    now = rt.clock()
    ids = await _in_thread(rt, _young_ids, rt.engine, settings.name, now - rt.config.refresh.window)
    if not ids:
        return PollReport(settings.name, skipped="nothing young to refresh")
    try:
        mentions = await refresh(rt.http, settings, ids, now)
    except SourceError as exc:
        log.warning("source %s: refresh failed: %s", settings.name, exc)
        return PollReport(settings.name, error=str(exc))
    asked = set(ids)  # a refresh updates what is stored; it never adds
    matched = match_stage([m for m in mentions if m.external_id in asked], rt.matchers, settings)
    return await _in_thread(
        rt, lambda: commit_poll(rt, settings, matched, None, 1, now, bookkeeping=False)
    )


def _young_ids(engine: Engine, source_name: str, since: datetime) -> list[str]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(MentionRecord.external_id).where(
                    MentionRecord.source_name == source_name,
                    MentionRecord.first_seen_at >= since,  # type: ignore[operator]
                )
            ).all()
        )


async def poll_all(
    rt: Runtime, only: str | None = None, *, force: bool = False
) -> list[PollReport]:
    """Poll every enabled source (or one) concurrently; one failing never stops the rest."""
    selected = [s for s in rt.config.sources if (s.name == only if only else s.enabled)]
    reports: list[PollReport] = [PollReport("")] * len(selected)
    limiter = anyio.CapacityLimiter(rt.config.max_concurrent_polls)

    async def one(index: int, settings: SourceSettings) -> None:
        async with limiter:
            reports[index] = await poll_source(rt, settings, force=force)

    async with anyio.create_task_group() as group:
        for index, settings in enumerate(selected):
            group.start_soon(one, index, settings)
    return reports
