"""Replay: what would this config have sent for these mentions?

``emberwatch replay FILE.jsonl --config C`` reads normalized mentions (one JSON object a
line, as :meth:`emberwatch.mention.Mention.from_dict` reads them, with ``published_at``)
and runs them through the real code with a simulated clock:

- each mention is *seen* at its source's first poll at or after ``published_at`` (polls
  every ``interval`` of the configured source it names in ``source_name``, or of the
  first configured source of its ``source`` type), and again at each of its
  ``snapshots`` (``[{"at", "likes", "reposts", "replies"}]``) with those counts, as the
  engagement refresh would; one poll's sightings are one
  :func:`emberwatch.ingest.commit_poll` (match, store, score, decide, group);
- the alert policy, :func:`emberwatch.alerts.policy.evaluate`, runs after each poll
  that filed an alert (as ``run`` does) and on the ``evaluate_interval`` grid whenever a
  timer may have come due (see :class:`_Timers`); the digest is queued at its send time;
- what the policy writes to the outbox is what would have been sent: replay sends
  nothing, so nothing fails or retries, and every row counts as sent when it was queued.

All of it happens in a private SQLite database in memory; the configured database is
never opened. Nobody acknowledges, snoozes or resolves anything during a replay, so an
incident stays open: it escalates and repeats as the config says it would if no one
acted. Source health notices are not replayed (sources are taken to be healthy).
"""

from __future__ import annotations

import bisect
import concurrent.futures
import json
import logging
import math
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, select

from emberwatch import db as database
from emberwatch.alerts import policy
from emberwatch.alerts.decisions import (
    IncidentFacts,
    Notified,
    escalation_channels,
    needs_escalation,
    needs_notify,
    needs_retrigger,
)
from emberwatch.alerts.lifecycle import act
from emberwatch.alerts.routing import Facts, channels_for
from emberwatch.config import (
    Config,
    Route,
    address_channels,
    notifying_channels,
    paging_channels,
)
from emberwatch.digest import digest_due, enqueue_digest, last_queued_day
from emberwatch.errors import EmberwatchError
from emberwatch.ingest import Matched, Runtime, commit_poll, match_stage
from emberwatch.mention import Mention, parse_timestamp
from emberwatch.models import (
    AlertRecord,
    Delivery,
    EngagementSnapshot,
    Incident,
    NotificationState,
    Rollup,
    SourceState,
)
from emberwatch.scoring import Scorer, Scores
from emberwatch.scoring.pool import Presumed, score_as_new
from emberwatch.sources._settings import SourceSettings

log = logging.getLogger("emberwatch.replay")

DEFAULT_INTERVAL = timedelta(minutes=5)
# After the last sighting, the clock runs on this long, so that escalations and the
# group timers of the last incidents come due.
DRAIN = timedelta(hours=1)
DEFAULT_RESOLVE_AFTER = timedelta(hours=24)
# From this many sightings on (and with more than one core), new mentions are scored
# ahead in a worker process while the simulation stores, files and times alerts.
SCORE_AHEAD_FROM = 2000
# Polls are sent to the worker in runs of about this many mentions.
SCORE_AHEAD_CHUNK = 400


class ReplayInputError(EmberwatchError):
    """A line of the replayed file is not a mention replay can read."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path, self.line, self.reason = path, line, reason
        super().__init__(f"{path}:{line}: {reason}")


@dataclass(frozen=True)
class Sighting:
    """One mention as a poll of its source saw it, with the counts seen then."""

    at: datetime
    source_name: str | None
    mention: Mention


@dataclass(frozen=True)
class ChannelFigures:
    messages: int = 0
    incidents: int = 0
    rollups: int = 0
    rolled_up: int = 0  # notifications held back by the budget and summed up instead
    peak_per_hour: int = 0


@dataclass(frozen=True)
class ReplayResult:
    mentions: int
    alerts: int
    incidents: int
    channels: dict[str, ChannelFigures]
    start: datetime | None = None
    end: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "mentions": self.mentions,
            "alerts": self.alerts,
            "incidents": self.incidents,
            "channels": {
                name: {
                    "messages": figures.messages,
                    "peak_per_hour": figures.peak_per_hour,
                    "rollups": figures.rollups,
                }
                for name, figures in self.channels.items()
            },
        }

    def table(self) -> str:
        span = ""
        if self.start and self.end:
            span = f" from {self.start:%Y-%m-%d %H:%M}Z to {self.end:%Y-%m-%d %H:%M}Z"
        lines = [
            f"{self.mentions} mentions{span}: {self.alerts} alerts in {self.incidents} incidents",
            "",
        ]
        header = ("channel", "messages", "incidents", "rollups", "rolled up", "peak/hour")
        rows = [header] + [
            (
                name,
                str(f.messages),
                str(f.incidents),
                str(f.rollups),
                str(f.rolled_up),
                str(f.peak_per_hour),
            )
            for name, f in self.channels.items()
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for row in rows:
            cells = [row[0].ljust(widths[0])] + [
                cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
            ]
            lines.append("  ".join(cells))
        lines += [
            "",
            "rollups: summaries sent when a channel's max_per_hour was reached; rolled up: "
            "the messages they replaced.",
            "Nobody acknowledged anything: open incidents escalate and repeat as configured.",
        ]
        return "\n".join(lines)


# -- reading --------------------------------------------------------------------------------


def read_mentions(path: str | Path) -> list[Sighting]:
    """Every sighting the file describes, in time order; raises :class:`ReplayInputError`
    naming the first bad line."""
    shown = str(path)
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ReplayInputError(shown, 0, f"cannot read: {exc.strerror}") from None
    sightings: list[Sighting] = []
    seen: set[tuple[str, str]] = set()
    with handle:
        number = 0
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                sightings.extend(_sightings(line, shown, number, seen))
        except UnicodeDecodeError:
            raise ReplayInputError(shown, number + 1, "not UTF-8 text") from None
    sightings.sort(key=lambda s: s.at)  # stable: a mention's own sightings keep their order
    return sightings


def _sightings(
    line: str, shown: str, number: int, seen: set[tuple[str, str]]
) -> Iterator[Sighting]:
    def bad(reason: str) -> ReplayInputError:
        return ReplayInputError(shown, number, reason)

    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise bad(f"not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(data, dict):
        raise bad(f"expected a JSON object (a mention), got {type(data).__name__}")
    for key in ("source", "external_id"):
        if not isinstance(data.get(key), str | int) or str(data[key]) == "":
            raise bad(f"{key} is missing or empty")
    if not isinstance(data.get("text", ""), str | type(None)):
        raise bad("text must be a string")
    if data.get("published_at") in (None, ""):
        raise bad("published_at is missing: replay places each mention in time by it")
    for key in ("likes", "reposts", "replies", "author_followers"):
        if not _count_or_none(data.get(key)):
            raise bad(f"{key} must be a whole number >= 0, got {data[key]!r}")
    source_name = data.get("source_name")
    if source_name is not None and not isinstance(source_name, str):
        raise bad("source_name must be a string")
    try:
        mention = Mention.from_dict(data)
    except ValueError as exc:  # it names the field
        raise bad(str(exc)) from None
    assert mention.published_at is not None
    identity = (mention.source, mention.external_id)
    if identity in seen:
        raise bad(f"{mention.source} mention {mention.external_id!r} appears twice")
    seen.add(identity)
    snapshots = data.get("snapshots") or []
    if not isinstance(snapshots, list):
        raise bad("snapshots must be a list of {at, likes, reposts, replies}")
    counted: list[tuple[datetime, Mention]] = []
    for index, snapshot in enumerate(snapshots):
        where = f"snapshots[{index}]"
        if not isinstance(snapshot, dict):
            raise bad(f"{where} must be an object {{at, likes, reposts, replies}}")
        try:
            at = parse_timestamp(snapshot.get("at"))
        except (ValueError, TypeError, OverflowError, OSError) as exc:
            raise bad(f"{where}.at: {exc}") from None
        if at is None:
            raise bad(f"{where}.at is missing")
        counts = {key: snapshot.get(key) for key in ("likes", "reposts", "replies")}
        for key, value in counts.items():
            if not _count_or_none(value):
                raise bad(f"{where}.{key} must be a whole number >= 0 or null")
        counted.append((at, replace(mention, **counts)))
    counted.sort(key=lambda pair: pair[0])
    # First seen when published, with the counts of the last snapshot taken by then
    # (without snapshots: the counts the line gives, final counts or none).
    first = mention
    if counted:
        earlier = [m for at, m in counted if at <= mention.published_at]
        first = earlier[-1] if earlier else replace(mention, likes=None, reposts=None, replies=None)
    yield Sighting(mention.published_at, source_name, first)
    for at, seen_then in counted:
        if at > mention.published_at:
            yield Sighting(at, source_name, seen_then)


def _count_or_none(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# -- the simulation --------------------------------------------------------------------------


class _Clock:
    """The simulated clock the runtime and the policy read."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class _Schedule:
    """Which incidents the alert policy must look at on which tick of its grid.

    The policy runs every ``evaluate_interval`` over every open incident; a week holds
    tens of thousands of ticks and, since nobody acknowledges during a replay, hundreds
    of open incidents, so running each round in full would take hours. Yet an incident's
    timers can only come due at a time it stored (opened, told, escalated, re-triggered)
    plus a configured duration, at a quiet-hours boundary, or on the tick after something
    about it changed. After every change, :meth:`probe` asks the policy's own pure
    decisions (``needs_notify``, ``needs_escalation``, ``needs_retrigger``) at each of
    those candidate ticks, in order, and books the incident on the first one where a
    decision acts; the round at that tick then runs the real stages for the incidents
    booked on it. A round that does not act after all (quiet hours, a budget) is probed
    again from there, so nothing is skipped that the full grid would have done.
    """

    def __init__(self, config: Config, start: datetime) -> None:
        self.config = config
        self.start = start
        self.every = config.evaluate_interval
        self.durations = _durations(config)
        self.routes = config.effective_routes()
        self._booked: dict[datetime, set[int] | None] = {}
        self._ticks: list[datetime] = []

    def tick(self, moment: datetime) -> datetime:
        """The grid's first tick at or after ``moment``."""
        steps = math.ceil((moment - self.start) / self.every)
        return self.start + max(steps, 0) * self.every

    def book(self, moment: datetime, incidents: Iterable[int] | None) -> None:
        """Run a round at the tick at or after ``moment`` for these incidents (None:
        all of them)."""
        tick = self.tick(moment)
        if tick not in self._booked:
            bisect.insort(self._ticks, tick)
            self._booked[tick] = set()
        booked = self._booked[tick]
        if booked is None or incidents is None:
            self._booked[tick] = None
        else:
            booked.update(incidents)

    def next_tick(self) -> datetime | None:
        return self._ticks[0] if self._ticks else None

    def pop(self) -> tuple[datetime, set[int] | None]:
        tick = self._ticks.pop(0)
        return tick, self._booked.pop(tick)

    def probe(self, session: Session, incident_ids: Iterable[int], now: datetime) -> None:
        """Book each incident on the first tick after ``now`` where a timer acts.

        What the decisions read is read for all these incidents at once, with the
        policy's own batched readers."""
        ids = sorted(set(incident_ids))
        if not ids:
            return
        incidents: list[Incident] = []
        told: dict[int, dict[str, NotificationState]] = {}
        for chunk in policy._chunks(ids):
            incidents += session.exec(select(Incident).where(Incident.id.in_(chunk)))  # type: ignore[union-attr]
            for state in session.exec(
                select(NotificationState).where(NotificationState.incident_id.in_(chunk))  # type: ignore[attr-defined]
            ):
                told.setdefault(state.incident_id, {})[state.channel] = state
        incidents = [incident for incident in incidents if incident.status != "resolved"]
        leads, facts_of = policy._read(session, incidents, now)
        for incident in incidents:
            if incident.id not in leads:
                continue
            self._probe_one(
                session,
                incident,
                leads[incident.id],  # type: ignore[index]
                facts_of[incident.id],  # type: ignore[index]
                told.get(incident.id, {}),  # type: ignore[arg-type]
                now,
            )

    def _probe_one(
        self,
        session: Session,
        incident: Incident,
        lead: policy._Lead,
        facts: IncidentFacts,
        told: dict[str, NotificationState],
        now: datetime,
    ) -> None:
        config, escalation = self.config, self.config.escalation
        configured = set(config.channels.configured())
        pagers = [name for name in paging_channels() if name in configured]
        mailers = [name for name in address_channels() if name in configured]
        escalates_to = [
            name
            for name in escalation_channels(
                incident.severity, escalation, slack=bool(pagers), email=bool(mailers)
            )
            if name in configured
        ]
        if any(name in pagers for name in escalates_to):
            facts = replace(facts, owes_page=not policy._paged(session, incident, pagers))
        routing = Facts.of_incident(incident, lead)
        routed: list[tuple[Route, Notified | None]] = []
        for channel, route in channels_for(self.routes, routing).items():
            if channel not in notifying_channels():
                continue
            if getattr(config.channels, channel) is None:
                continue
            state = told.get(channel)
            last = None
            if state is not None and state.episode == incident.episode:
                last = Notified(
                    state.notified_at, state.severity, state.alert_count, state.engagement
                )
            routed.append((route, last))
        stored = [
            facts.opened_at,
            facts.last_escalated_at,
            facts.retriggered_at,
            facts.acknowledged_at,
            *(last.at for _, last in routed if last is not None),
        ]
        candidates = {now + self.every}
        candidates |= {moment + d for moment in stored if moment for d in self.durations}
        if facts.snoozed_until is not None:
            candidates.add(facts.snoozed_until)
        for tick in sorted({self.tick(c) for c in candidates if c > now}):
            if tick <= now:
                continue
            if (
                needs_retrigger(facts, escalation, tick).act
                or (escalates_to and needs_escalation(facts, escalation, tick).act)
                or any(needs_notify(facts, last, route, tick).act for route, last in routed)
            ):
                self.book(tick, [incident.id])  # type: ignore[list-item]
                return


def _durations(config: Config) -> tuple[timedelta, ...]:
    found = {config.escalation.after, config.escalation.retrigger_after}
    for route in config.effective_routes():
        found |= {route.group_wait, route.group_interval, route.repeat_interval}
    return tuple(sorted(found | {timedelta(0)}))


def _quiet_boundaries(config: Config, start: datetime, end: datetime) -> list[datetime]:
    """Every moment a route's quiet hours begin or end between ``start`` and ``end``."""
    moments: list[datetime] = []
    for route in config.effective_routes():
        quiet = route.quiet_hours
        if quiet is None:
            continue
        zone = ZoneInfo(quiet.timezone)
        day = start.astimezone(zone).date() - timedelta(days=1)
        while day <= end.astimezone(zone).date() + timedelta(days=1):
            for clock in (quiet.start, quiet.end):
                moment = datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)
                if start <= moment <= end:
                    moments.append(moment)
            day += timedelta(days=1)
    return moments


def _digest_moments(config: Config, start: datetime, end: datetime) -> list[datetime]:
    digest = config.channels.digest
    if digest is None:
        return []
    zone = ZoneInfo(digest.timezone)
    moments = []
    day = start.astimezone(zone).date()
    while day <= end.astimezone(zone).date():
        moment = datetime.combine(day, digest.send_at, tzinfo=zone).astimezone(UTC)
        if start < moment <= end:
            moments.append(moment)
        day += timedelta(days=1)
    return moments


def _settings_for(config: Config) -> Callable[[Sighting], SourceSettings]:
    """Which configured source polls a sighting: the one it names, else the first of its
    type; a type the config has no source for gets a stand-in with default settings."""
    by_name = {s.name: s for s in config.sources}
    by_type: dict[str, SourceSettings] = {}
    for settings in config.sources:
        by_type.setdefault(settings.type, settings)
    made: dict[str, SourceSettings] = {}

    def settings_for(sighting: Sighting) -> SourceSettings:
        if sighting.source_name in by_name:
            return by_name[sighting.source_name]
        kind = sighting.mention.source
        if kind in by_type:
            return by_type[kind]
        if kind not in made:
            made[kind] = SourceSettings(name=f"replay-{kind}", type=kind, base_url="replay:")
        return made[kind]

    return settings_for


class _ScoredAhead:
    """Every poll's matched mentions scored as new ones in a worker process, ahead of
    the simulation: :func:`emberwatch.ingest.commit_poll` takes them as ``presumed``
    (what the live poller's scoring process gives it) and scores in the simulation only
    the mentions it has stored before. The worker holds a copy of the runtime's scorer,
    so its scores are the ones the simulation would compute. If the worker fails, the
    simulation scores the rest itself."""

    def __init__(self, scorer: Scorer, polls: list[tuple[datetime, list[Matched]]]) -> None:
        self._executor = concurrent.futures.ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_install_scorer,
            initargs=(scorer,),
        )
        self._futures: list[tuple[int, concurrent.futures.Future[list[list[Scores]]]]] = []
        self._done: dict[int, list[Scores]] = {}
        self.failed = False
        run: list[tuple[datetime, list[Presumed]]] = []
        first = size = 0
        for index, (at, matched) in enumerate(polls):
            run.append((at, [Presumed(m.mention, m.brand, m.vip) for m in matched]))
            size += len(matched)
            if size >= SCORE_AHEAD_CHUNK or index == len(polls) - 1:
                self._futures.append((first, self._executor.submit(_score_polls, run)))
                run, first, size = [], index + 1, 0
        self._futures.reverse()  # popped from the end, in poll order

    def scores(self, index: int) -> list[Scores] | None:
        """The scores of poll ``index``'s matched mentions (polls are asked in order);
        None when the worker failed."""
        if self.failed:
            return None
        while index not in self._done and self._futures:
            first, future = self._futures.pop()
            try:
                runs = future.result()
            except Exception as exc:  # a dead worker: score the rest here
                log.warning("replay: scoring process failed (%s); scoring here", exc)
                self.failed = True
                self.close()
                return None
            for offset, scored in enumerate(runs):
                self._done[first + offset] = scored
        return self._done.pop(index, None)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


_ahead_scorer: Scorer | None = None


def _install_scorer(scorer: Scorer) -> None:
    global _ahead_scorer
    _ahead_scorer = scorer


def _score_polls(run: list[tuple[datetime, list[Presumed]]]) -> list[list[Scores]]:
    assert _ahead_scorer is not None
    return [score_as_new(_ahead_scorer, batch, now) for now, batch in run]


def _private_engine() -> sa.Engine:
    """A migrated SQLite database in memory, one connection shared by every session."""
    engine = sa.create_engine(
        "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
    )
    database.upgrade(engine)
    return engine


def replay(
    config: Config,
    sightings: Iterable[Sighting],
    *,
    resolve_after: timedelta | None = DEFAULT_RESOLVE_AFTER,
    progress: Callable[[int, int], None] | None = None,
    score_ahead: bool | None = None,
) -> ReplayResult:
    """Run the sightings through the pipeline and the alert policy with a simulated
    clock in a private database; return what the outbox would have sent.

    ``resolve_after``: each incident (episode) is resolved this long after it opened,
    as someone would eventually do (None: never, and open incidents repeat all along).
    ``score_ahead``: score new mentions in a worker process (see :class:`_ScoredAhead`);
    None: when there are :data:`SCORE_AHEAD_FROM` sightings or more and a second core.
    The figures are the same either way.
    """
    # Score in this process: polls are small, and nothing else runs beside the replay.
    config = config.model_copy(update={"scoring_processes": 0})
    sightings = list(sightings)
    mentions = len({(s.mention.source, s.mention.external_id) for s in sightings})
    if not sightings:
        return ReplayResult(0, 0, 0, {r: ChannelFigures() for r in _channels(config)})
    polls = _polls(sightings, _settings_for(config))
    start, end = polls[0][0], polls[-1][0] + DRAIN
    engine = _private_engine()
    clock = _Clock(start)
    runtime = Runtime.build(config, engine, None, clock)  # type: ignore[arg-type]  # no fetching
    with Session(engine) as session:
        for settings in {s.name: s for _, s, _ in polls}.values():
            session.add(SourceState(name=settings.name, type=settings.type))
        session.commit()
    schedule = _Schedule(config, start)
    for moment in _quiet_boundaries(config, start, end):
        schedule.book(moment, None)
    digests = {schedule.tick(moment) for moment in _digest_moments(config, start, end)}
    for tick in digests:
        schedule.book(tick, ())
    resolving: dict[datetime, set[tuple[int, int]]] = {}

    def file_resolve(session: Session, incident_ids: Iterable[int]) -> None:
        if resolve_after is None:
            return
        for incident_id in incident_ids:
            incident = session.get(Incident, incident_id)
            if incident is None or incident.status == "resolved":
                continue
            tick = schedule.tick(incident.opened_at + resolve_after)
            resolving.setdefault(tick, set()).add((incident_id, incident.episode))
            schedule.book(tick, ())

    def run_round(now: datetime, only: set[int] | None) -> None:
        clock.now = now
        for incident_id, episode in sorted(resolving.pop(now, ())):
            act(
                engine,
                incident_id,
                "resolve",
                actor="replay",
                via="replay",
                now=now,
                episode=episode,
            )
        done = policy.evaluate(engine, config, now, incidents=only)
        with Session(engine) as session:
            looked_at = only if only is not None else _open_incidents(session)
            schedule.probe(session, looked_at, now)
            if done.get("notify_stage"):
                first = session.exec(
                    select(sa.func.min(Rollup.created_at)).where(Rollup.delivery_id.is_(None))  # type: ignore[union-attr]
                ).one()
                if first is not None:
                    schedule.book(_aware(first) + policy.ROLLUP_EVERY, ())
        if now in digests:
            _queue_digest(engine, config, now)

    def run_due(until: datetime) -> None:
        while (tick := schedule.next_tick()) is not None and tick <= until:
            run_round(*schedule.pop())

    total = len(polls)
    matched_polls = [
        (at, settings, match_stage([s.mention for s in seen], runtime.matchers, settings))
        for at, settings, seen in polls
    ]
    if score_ahead is None:
        score_ahead = len(sightings) >= SCORE_AHEAD_FROM and (os.cpu_count() or 1) > 1
    ahead = (
        _ScoredAhead(runtime.scorer, [(at, matched) for at, _, matched in matched_polls])
        if score_ahead
        else None
    )
    try:
        for index, (at, settings, matched) in enumerate(matched_polls):
            run_due(at)
            clock.now = at
            presumed = ahead.scores(index) if ahead is not None else None
            report = commit_poll(
                runtime, settings, matched, None, 1, at, bookkeeping=False, presumed=presumed
            )
            if report.alerts or report.updated:
                with Session(engine) as session:
                    touched = _touched(session, at)
                    file_resolve(session, touched)
                if report.alerts:
                    run_round(at, touched)  # new alerts don't wait for the next round, as in run
                else:
                    with Session(engine) as session:
                        schedule.probe(session, touched, at)
            if progress is not None and (index % 200 == 0 or index == total - 1):
                progress(index + 1, total)
    finally:
        if ahead is not None:
            ahead.close()
    run_due(end)
    result = _figures(engine, config, mentions)
    engine.dispose()
    return replace(result, start=start, end=end)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _open_incidents(session: Session) -> set[int]:
    return set(
        session.exec(select(Incident.id).where(Incident.status != "resolved")).all()  # type: ignore[arg-type]
    )


def _touched(session: Session, now: datetime) -> set[int]:
    """The incidents a poll at ``now`` changed: filed an alert in, or saw a mention of
    grow (its engagement is what the spread rule reads)."""
    filed = session.exec(select(Incident.id).where(Incident.updated_at == now)).all()
    grown = session.exec(
        select(AlertRecord.incident_id)
        .join(EngagementSnapshot, EngagementSnapshot.mention_id == AlertRecord.mention_id)  # type: ignore[arg-type]
        .where(EngagementSnapshot.seen_at == now, AlertRecord.incident_id.is_not(None))  # type: ignore[union-attr]
    ).all()
    return {i for i in (*filed, *grown) if i is not None}


def _queue_digest(engine: sa.Engine, config: Config, now: datetime) -> None:
    digest = config.channels.digest
    assert digest is not None
    day = digest_due(now, digest.send_at, digest.timezone, last_queued_day(engine))
    if day is not None:
        enqueue_digest(engine, day, now)


def _polls(
    sightings: list[Sighting], settings_for: Callable[[Sighting], SourceSettings]
) -> list[tuple[datetime, SourceSettings, list[Sighting]]]:
    """The sightings grouped into polls: each source polls every ``interval`` (on a grid
    from the Unix epoch), and a sighting is made by the first poll at or after it."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    grouped: dict[tuple[datetime, str], tuple[SourceSettings, list[Sighting]]] = {}
    for sighting in sightings:
        settings = settings_for(sighting)
        interval = settings.interval if settings.interval > timedelta(0) else DEFAULT_INTERVAL
        at = epoch + math.ceil((sighting.at - epoch) / interval) * interval
        key = (at, settings.name)
        if key not in grouped:
            grouped[key] = (settings, [])
        grouped[key][1].append(sighting)
    polls = []
    for (at, _), (settings, seen) in sorted(grouped.items(), key=lambda item: item[0]):
        # A poll sees each mention once, with its latest counts.
        latest = {(s.mention.source, s.mention.external_id): s for s in seen}
        polls.append((at, settings, list(latest.values())))
    return polls


def _channels(config: Config) -> list[str]:
    return config.channels.configured()


def _figures(engine: sa.Engine, config: Config, mentions: int) -> ReplayResult:
    with Session(engine) as session:
        alerts = session.exec(select(sa.func.count()).select_from(AlertRecord)).one()
        incidents = session.exec(select(sa.func.count()).select_from(Incident)).one()
        rows = session.exec(
            select(
                Delivery.channel,
                Delivery.kind,
                Delivery.dedup_key,
                Delivery.recipient,
                Delivery.incident_id,
                Delivery.created_at,
            )
        ).all()
        held = Counter(session.exec(select(Rollup.channel)).all())
    channels: dict[str, ChannelFigures] = {}
    for name in _channels(config):
        messages: dict[str, tuple[datetime, int | None, str]] = {}
        for channel, kind, key, recipient, incident_id, created_at in rows:
            if channel != name:
                continue
            if recipient is not None and key.endswith(f":{recipient}"):
                key = key[: -len(recipient) - 1]  # an email to N people is one message
            messages.setdefault(key, (created_at, incident_id, kind))
        times = sorted(at for at, _, _ in messages.values())
        told = {incident for _, incident, _ in messages.values() if incident is not None}
        channels[name] = ChannelFigures(
            messages=len(messages),
            incidents=incidents if config.channel(name).summary else len(told),
            rollups=sum(1 for _, _, kind in messages.values() if kind == "rollup"),
            rolled_up=held.get(name, 0),
            peak_per_hour=_peak(times, timedelta(hours=1)),
        )
    return ReplayResult(mentions, alerts, incidents, channels)


def _peak(times: list[datetime], window: timedelta) -> int:
    """The most of these (sorted) moments in any window of this length."""
    best = first = 0
    for last, moment in enumerate(times):
        while moment - times[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


__all__ = [
    "ChannelFigures",
    "ReplayInputError",
    "ReplayResult",
    "Sighting",
    "read_mentions",
    "replay",
]
