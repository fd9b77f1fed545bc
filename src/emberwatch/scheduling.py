"""Scheduling: each node's own timers, and the leases by which nodes share the polls.

Every node runs the same timers, in memory, with APScheduler 3 (``AsyncIOScheduler``, its
in-memory job store; every call into APScheduler lives in this module):

- **poll**, every ``DISPATCH_TICK``: claim the sources that are due and poll them side by
  side, at most ``max_concurrent_polls`` requests to sources at once (a poll takes a slot
  for each request, not while it reads its state or commits; see
  :func:`emberwatch.sources._http.slots_for_requests`). A node claims up to twice that
  many, so a finished request hands its slot to the next claimed source without waiting
  for the database, and claims again at once when fewer than half the slots' worth are
  waiting;
- **leases**, every ``RENEW_EVERY``: extend the leases of the polls in flight;
- **refresh** (per source with a batch lookup), **evaluate**, **deliver**, **digest**;
- **database**, every ``RETRY``: while the database is unavailable, probe it;
- **heartbeat**, every ``heartbeat_interval``: one "alive" line with what the node did
  since the last one. Between heartbeats a node logs only what happened: polls with news,
  alerts, deliveries, errors. A quiet node is quiet.

On SIGHUP (see ``run_monitor``'s ``reloads``) the node reads its config file again. A file
that does not validate is refused with one line, and the running configuration stays. A
valid one is compared with the running one (:mod:`emberwatch.reload`) and swapped in
between jobs: polls and deliveries in flight finish with the configuration they started
with; new sources are polled at once and removed ones are no longer claimed (their rows,
mentions and history stay); the scorer and brand matchers are rebuilt when brands or
thresholds changed (the scoring processes restart with them); routes, channels and timer
intervals apply from the next round. The database, ``[http]``, ``[actions]`` and
``scoring_processes`` are kept until a restart, and the reload line says so.

Nodes coordinate through Emberwatch's own ``sources`` table, never through the timers. A
source is claimed for one poll with a lease: in one transaction, ``SELECT … FOR UPDATE
SKIP LOCKED`` the rows whose ``poll_due_at`` has come, whose lease has run out and whose
backoff (``next_poll_after``) is over, then set ``lease_until``/``leased_by``. The poll
then commits as before (see :mod:`emberwatch.ingest`), and the same transaction gives
the lease back and moves ``poll_due_at`` one interval on, keeping the source's phase. So
each source is polled once per interval across the cluster; the lease of a node that dies
runs out within ``LEASE`` of its last renewal and another node takes the source. On
SQLite (one node) the same statements run.

The alert policy and the outbox were already cluster-safe: evaluation takes an advisory
lock, delivery claims rows with ``FOR UPDATE SKIP LOCKED``, the digest has a unique key.

A database outage is ridden out (:class:`emberwatch.db.Availability`): one line, jobs skip
their database work, ``/readyz`` says not ready, a poll cut off commits nothing and keeps
its lease until it runs out; when the probe succeeds, work resumes. An outage longer than
``database_outage_limit`` stops the node with one line and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import functools
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import sqlalchemy as sa
from anyio.abc import ObjectReceiveStream
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine

from emberwatch import db as database
from emberwatch import labels, logs, reload
from emberwatch.alerts.policy import evaluate
from emberwatch.config import Config, load_config
from emberwatch.db import Availability, cluster_lock
from emberwatch.delivery import DeliveryReport, deliver_due
from emberwatch.digest import digest_due, enqueue_digest, last_queued_day
from emberwatch.errors import ConfigError, EmberwatchError
from emberwatch.ingest import PollLease, PollReport, Runtime, poll_source, refresh_source
from emberwatch.matching import build_matchers
from emberwatch.models import SourceState
from emberwatch.sources import connector
from emberwatch.sources._http import slots_for_requests
from emberwatch.web import serve

log = logging.getLogger("emberwatch.scheduling")

DRAIN_TIMEOUT = 30.0
DISPATCH_TICK = 0.25  # how often a node looks for due sources (a finished poll looks at once)
LEASE = timedelta(seconds=3)  # a dead node's sources move on this long after its last renewal
RENEW_EVERY = 0.5
CLAIM_AHEAD = 2  # a node holds leases on up to this many times max_concurrent_polls
RETRY = 2.0  # seconds between database probes during an outage
DIGEST_CHECK = timedelta(minutes=1)

_SOURCES = SourceState.__table__.c  # type: ignore[attr-defined]


# -- decisions ------------------------------------------------------------------------------


def next_due(due: datetime | None, interval: timedelta, now: datetime) -> datetime:
    """When a source polled for the slot ``due`` is next due: one interval on, keeping its
    phase. Slots already past (a poll that hung, a node that was down) are skipped, not
    made up: the next poll reads everything they would have."""
    base = due or now
    following = base + interval
    if following <= now:
        following = base + ((now - base) // interval + 1) * interval
    return following


def _jitter(configured: timedelta, interval: timedelta) -> float | None:
    # Jitter spreads polls out; never more than a tenth of the interval, or polls drift.
    seconds = min(configured.total_seconds(), interval.total_seconds() / 10)
    return seconds or None


# -- leases (blocking: run in a worker thread) ----------------------------------------------


def ensure_sources(engine: Engine, config: Config, now: datetime) -> set[str]:
    """Give every enabled source a row and a first due time (now plus up to its jitter);
    rows other nodes already made are kept as they are. Returns the names of the rows
    this configuration does not poll (removed or disabled sources, or another node's)."""
    enabled = [s for s in config.sources if s.enabled]
    with engine.begin() as connection:
        known = dict(connection.execute(sa.select(_SOURCES.name, _SOURCES.poll_due_at)).all())
        for source in enabled:
            jitter = _jitter(config.poll_jitter, source.interval) or 0.0
            first = now + timedelta(seconds=random.uniform(0, jitter))
            if source.name not in known:
                insert = _insert_ignoring_conflict(engine).values(
                    name=source.name,
                    type=source.type,
                    poll_due_at=first,
                    consecutive_failures=0,
                    items_last_poll=0,
                    polls_total=0,
                )
                connection.execute(insert)
            elif known[source.name] is None:
                connection.execute(
                    SourceState.__table__.update()  # type: ignore[attr-defined]
                    .where(_SOURCES.name == source.name, _SOURCES.poll_due_at.is_(None))
                    .values(poll_due_at=first)
                )
    return known.keys() - {s.name for s in enabled}


def _insert_ignoring_conflict(engine: Engine) -> Any:
    table = SourceState.__table__  # type: ignore[attr-defined]
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing(index_elements=["name"])


@dataclass(frozen=True)
class Claim:
    """A source leased for one poll: the schedule slot the poll is for, and the source's
    cursor as the claim read it (no other node writes it while the lease holds)."""

    name: str
    due: datetime | None
    cursor: str | None


def claim_due_sources(
    engine: Engine,
    names: Collection[str],
    holder: str,
    now: datetime,
    limit: int,
    *,
    ignored: set[str] | None = None,
    busy: Collection[str] = (),
) -> list[Claim]:
    """Lease up to ``limit`` of these sources whose poll is due.

    ``FOR UPDATE SKIP LOCKED`` (on PostgreSQL) lets nodes claim side by side, each row once.

    The query names what it leaves out, not what it may take: ``ignored`` (rows of sources
    not in ``names``; a due row found outside ``names`` is added to it and left alone) and
    ``busy`` (this node's polls in flight, in case a lease of theirs lapsed). Naming every
    source instead made a 1,000-parameter query that psycopg parsed again at each claim:
    a sixth of the interpreter's time in a round of 1,000 sources on PostgreSQL.
    """
    if not names or limit <= 0:
        return []
    ignored = set() if ignored is None else ignored
    claimed: list[tuple[int, Claim]] = []
    with engine.begin() as connection:
        while len(claimed) < limit:
            excluded = ignored.union(busy, (claim.name for _, claim in claimed))
            rows = connection.execute(_due(now, limit - len(claimed), excluded)).all()
            strangers = {row.name for row in rows if row.name not in names}
            claimed += [
                (row.id, Claim(row.name, row.poll_due_at, row.cursor))
                for row in rows
                if row.name in names
            ]
            ignored |= strangers
            if not strangers:
                break  # every row found was ours: fewer than asked means nothing more is due
        if claimed:
            connection.execute(
                SourceState.__table__.update()  # type: ignore[attr-defined]
                .where(_SOURCES.id.in_([id for id, _ in claimed]))
                .values(lease_until=now + LEASE, leased_by=holder)
            )
    return [claim for _, claim in claimed]


def _due(now: datetime, limit: int, excluded: set[str]) -> Any:
    conditions = [
        sa.or_(_SOURCES.poll_due_at.is_(None), _SOURCES.poll_due_at <= now),
        sa.or_(_SOURCES.lease_until.is_(None), _SOURCES.lease_until <= now),
        sa.or_(_SOURCES.next_poll_after.is_(None), _SOURCES.next_poll_after <= now),
    ]
    if excluded:
        conditions.append(_SOURCES.name.not_in(sorted(excluded)))
    return (
        sa.select(_SOURCES.id, _SOURCES.name, _SOURCES.poll_due_at, _SOURCES.cursor)
        .where(*conditions)
        .order_by(_SOURCES.poll_due_at.asc().nulls_first(), _SOURCES.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def renew_leases(engine: Engine, names: list[str], holder: str, now: datetime) -> None:
    if not names:
        return
    with engine.begin() as connection:
        connection.execute(
            SourceState.__table__.update()  # type: ignore[attr-defined]
            .where(_SOURCES.name.in_(names), _SOURCES.leased_by == holder)
            .values(lease_until=now + LEASE)
        )


def release_source(engine: Engine, name: str, holder: str, following: datetime | None) -> None:
    """Give the lease back; with ``following``, that is the source's next due slot."""
    values: dict[str, Any] = {"lease_until": None, "leased_by": None}
    if following is not None:
        values["poll_due_at"] = following
    with engine.begin() as connection:
        connection.execute(
            SourceState.__table__.update()  # type: ignore[attr-defined]
            .where(_SOURCES.name == name, _SOURCES.leased_by == holder)
            .values(**values)
        )


def release_all(engine: Engine, holder: str) -> None:
    """On shutdown: the polls this node did not finish are due again at once elsewhere."""
    with engine.begin() as connection:
        connection.execute(
            SourceState.__table__.update()  # type: ignore[attr-defined]
            .where(_SOURCES.leased_by == holder)
            .values(lease_until=None, leased_by=None)
        )


def claim_refresh(engine: Engine, name: str, now: datetime, every: timedelta) -> bool:
    """Claim this source's engagement refresh for one interval, if no node has yet."""
    with engine.begin() as connection:
        claimed = connection.execute(
            SourceState.__table__.update()  # type: ignore[attr-defined]
            .where(
                _SOURCES.name == name,
                sa.or_(_SOURCES.refresh_due_at.is_(None), _SOURCES.refresh_due_at <= now),
            )
            .values(refresh_due_at=now + every)
        )
        return bool(claimed.rowcount)


# -- the node -------------------------------------------------------------------------------


@dataclass
class Tally:
    """What a node did since its last heartbeat."""

    since: float = field(default_factory=time.monotonic)
    polls: int = 0
    failed_polls: int = 0
    new: int = 0
    updated: int = 0
    alerts: int = 0
    sent: int = 0
    failed_deliveries: int = 0

    def count_poll(self, report: PollReport) -> None:
        if report.skipped:
            return
        self.polls += 1
        self.failed_polls += report.error is not None
        self.new += report.new
        self.updated += report.updated
        self.alerts += report.alerts

    def count_deliveries(self, report: DeliveryReport) -> None:
        self.sent += report.sent
        self.failed_deliveries += report.failed


@dataclass
class _Monitor:
    runtime: Runtime
    availability: Availability
    tasks: anyio.abc.TaskGroup
    slots: anyio.CapacityLimiter
    on_report: Callable[[PollReport], None] | None = None
    identity: str = field(default_factory=lambda: _identity())
    stopping: bool = False
    fatal: str | None = None
    stop: anyio.Event = field(default_factory=anyio.Event)
    # Sources this node holds a lease on (polling, or waiting for a slot), by name.
    in_flight: dict[str, Claim] = field(default_factory=dict)
    idle: anyio.Event = field(default_factory=anyio.Event)
    dispatching: bool = False
    again: bool = False
    jobs_running: int = 0  # timer jobs in progress (shutdown waits for them)
    known: frozenset[str] = frozenset()
    ignored: set[str] = field(default_factory=set)  # rows of sources this node does not poll
    evaluating: anyio.Lock = field(default_factory=anyio.Lock)
    delivering: anyio.Lock = field(default_factory=anyio.Lock)
    scheduler: AsyncIOScheduler | None = None
    tally: Tally = field(default_factory=lambda: Tally())

    @property
    def config(self) -> Config:
        return self.runtime.config

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    async def db(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run blocking database work in a thread (one at a time on SQLite)."""
        return await anyio.to_thread.run_sync(function, *args, limiter=self.runtime.transactions())

    def ready(self) -> str | None:
        return self.availability.not_ready()


async def _guarded(monitor: _Monitor, name: str, work: Callable[[], Awaitable[Any]]) -> None:
    """Run one job's work: skipped while the database is down or the node stops; a
    database failure starts an outage (one line); anything else is logged, never raised
    into APScheduler."""
    if monitor.stopping or not monitor.availability.up:
        return
    monitor.jobs_running += 1
    try:
        await work()
    except Exception as exc:
        if database.is_unavailable(exc):
            monitor.availability.failed(exc)
        else:
            log.exception("%s: unexpected error", name)
    finally:
        monitor.jobs_running -= 1


async def _dispatch(monitor: _Monitor) -> None:
    """Claim due sources for this node's free poll slots and start their polls."""
    if monitor.dispatching:
        monitor.again = True  # the running dispatch looks once more before it returns
        return
    monitor.dispatching = True
    try:
        await _guarded(monitor, "poll", lambda: _claim_and_start(monitor))
    finally:
        monitor.dispatching = False


async def _claim_and_start(monitor: _Monitor) -> None:
    config = monitor.config
    while not monitor.stopping:
        monitor.again = False
        enabled = frozenset(s.name for s in config.sources if s.enabled)
        if enabled != monitor.known:
            now = monitor.runtime.clock()
            monitor.ignored = await monitor.db(ensure_sources, monitor.engine, config, now)
            monitor.known = enabled
        free = CLAIM_AHEAD * config.max_concurrent_polls - len(monitor.in_flight)
        claimed = await monitor.db(
            functools.partial(
                claim_due_sources,
                ignored=monitor.ignored,
                busy=list(monitor.in_flight),
            ),
            monitor.engine,
            enabled,
            monitor.identity,
            monitor.runtime.clock(),
            free,
        )
        for claim in claimed:
            monitor.in_flight[claim.name] = claim
            monitor.tasks.start_soon(_poll, monitor, claim)
        # Fewer claimed than free: nothing more is due. All slots taken: a finished poll
        # dispatches again. Either way, look once more only if asked to meanwhile.
        if not monitor.again:
            return


async def _poll(monitor: _Monitor, claim: Claim) -> None:
    rt = monitor.runtime
    name = claim.name
    settings = rt.config.source(name)
    report: PollReport | None = None
    try:
        if settings is None:  # no longer configured: its lease runs out by itself
            return
        # The claim read the cursor and checked the backoff: the poll reads no state first.
        slot_after = functools.partial(next_due, claim.due, settings.interval)
        lease = PollLease(monitor.identity, slot_after, cursor=claim.cursor)
        try:
            if monitor.stopping:
                return
            with slots_for_requests(monitor.slots):
                report = await poll_source(rt, settings, lease=lease)
        except Exception as exc:
            # Nothing of this poll committed: its lease runs out and it is polled again.
            if database.is_unavailable(exc):
                monitor.availability.failed(exc)
                return
            log.exception("source %s: unexpected error in the poll job", name)
        if report is None or report.skipped:
            # The poll's transaction did not give the lease back: do it here.
            following = lease.next_due(rt.clock())
            try:
                await monitor.db(release_source, rt.engine, name, monitor.identity, following)
            except Exception as exc:
                if not database.is_unavailable(exc):
                    raise
                monitor.availability.failed(exc)
                return
    finally:
        monitor.in_flight.pop(name, None)
        if not monitor.in_flight:
            monitor.idle.set()
            monitor.idle = anyio.Event()
    if not monitor.stopping and _running_low(monitor):
        monitor.tasks.start_soon(_dispatch, monitor)
    if report is None:
        return
    monitor.tally.count_poll(report)
    if monitor.on_report is not None:
        monitor.on_report(report)
    if report.alerts:
        # New alerts don't wait for the next timer round: the first spark is the point.
        await _evaluate_job(monitor)


def _running_low(monitor: _Monitor) -> bool:
    """Whether the claimed sources waiting for a slot are down to half the node's slots:
    then a finished poll claims more at once (otherwise the next tick does), so a busy
    node claims in batches rather than one source per finished poll."""
    limit = monitor.config.max_concurrent_polls
    return len(monitor.in_flight) <= CLAIM_AHEAD * limit - max(1, limit // 2)


async def _renew_job(monitor: _Monitor) -> None:
    names = list(monitor.in_flight)
    if not names:
        return

    async def renew() -> None:
        now = monitor.runtime.clock()
        await monitor.db(renew_leases, monitor.engine, names, monitor.identity, now)

    await _guarded(monitor, "leases", renew)


async def _refresh_job(monitor: _Monitor, source_name: str) -> None:
    rt = monitor.runtime
    settings = rt.config.source(source_name)
    if settings is None:
        return

    async def refresh() -> None:
        every = rt.config.refresh.interval
        if not await monitor.db(claim_refresh, rt.engine, source_name, rt.clock(), every):
            return  # another node refreshes it this interval
        with slots_for_requests(monitor.slots):  # a refresh asks the source's API too
            report = await refresh_source(rt, settings)
        monitor.tally.alerts += report.alerts
        if report.alerts:
            await _evaluate_job(monitor)

    await _guarded(monitor, f"refresh {source_name}", refresh)


async def _evaluate_job(monitor: _Monitor) -> None:
    rt = monitor.runtime

    async def run() -> None:
        async with monitor.evaluating:
            done = await anyio.to_thread.run_sync(_evaluate_once, rt)
        if any(done.values()):
            log.info("alert policy: %s", ", ".join(f"{k} {v}" for k, v in done.items() if v))
            await _deliver_job(monitor)

    await _guarded(monitor, "evaluate", run)


def _evaluate_once(rt: Runtime) -> dict[str, int]:
    # One node at a time evaluates the alert policy; the others skip this round.
    with cluster_lock(rt.engine, "emberwatch-evaluate") as held:
        return evaluate(rt.engine, rt.config, rt.clock()) if held else {}


async def _deliver_job(monitor: _Monitor) -> None:
    rt = monitor.runtime

    async def run() -> None:
        async with monitor.delivering:
            report = await deliver_due(rt.config, rt.engine, rt.http, rt.clock())
        monitor.tally.count_deliveries(report)
        done = {
            "sent": report.sent,
            "retrying": report.retrying,
            "failed": report.failed,
            "expired": report.expired,
        }
        if any(done.values()):
            log.info("deliveries: %s", ", ".join(f"{v} {k}" for k, v in done.items() if v))

    await _guarded(monitor, "deliver", run)


async def _digest_job(monitor: _Monitor) -> None:
    """Checked every minute: queue yesterday's digest once the local send time has come."""
    rt = monitor.runtime
    digest = rt.config.channels.digest
    if digest is None:
        return

    async def run() -> None:
        now = rt.clock()
        last = await anyio.to_thread.run_sync(last_queued_day, rt.engine)
        day = digest_due(now, digest.send_at, digest.timezone, last)
        if day is not None and await anyio.to_thread.run_sync(enqueue_digest, rt.engine, day, now):
            log.info("digest for %s queued", day)
            await _deliver_job(monitor)

    await _guarded(monitor, "digest", run)


async def _database_job(monitor: _Monitor) -> None:
    """During an outage: probe the database; resume when it answers, give up past the limit."""
    availability = monitor.availability
    if availability.up or monitor.stopping:
        return
    if await anyio.to_thread.run_sync(availability.check):
        monitor.tasks.start_soon(_dispatch, monitor)
        monitor.tasks.start_soon(_deliver_job, monitor)
        return
    if availability.exceeded():
        limit = monitor.config.database_outage_limit
        monitor.fatal = (
            f"database unavailable for more than {_seconds(limit)} "
            f"(database_outage_limit): {availability.why}; exiting"
        )
        monitor.stop.set()


def _seconds(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds / 60:g} min" if seconds >= 120 else f"{seconds:g} s"


async def _heartbeat_job(monitor: _Monitor) -> None:
    """One line every ``heartbeat_interval``: the node is alive, and what it did."""
    tally, monitor.tally = monitor.tally, Tally()
    log.info(
        "alive: %s",
        heartbeat_line(
            tally,
            sources=sum(s.enabled for s in monitor.config.sources),
            seconds=time.monotonic() - tally.since,
            database=monitor.availability.not_ready(),
        ),
    )


def heartbeat_line(tally: Tally, *, sources: int, seconds: float, database: str | None) -> str:
    """ "12 sources, 340 polls, 18 new mentions, 2 alerts, 3 deliveries in the last 5 min;
    database ok" (failures and updates are named only when there were some)."""
    polls = _count(tally.polls, "poll")
    if tally.failed_polls:
        polls += f" ({tally.failed_polls} failed)"
    mentions = f"{tally.new} new mentions"
    if tally.updated:
        mentions += f" ({tally.updated} updated)"
    deliveries = _count(tally.sent, "delivery", "deliveries")
    if tally.failed_deliveries:
        deliveries += f" ({tally.failed_deliveries} failed)"
    window = _seconds(timedelta(seconds=round(seconds)))
    return (
        f"{_count(sources, 'source')}, {polls}, {mentions}, {_count(tally.alerts, 'alert')}, "
        f"{deliveries} in the last {window}; database {database or 'ok'}"
    )


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


# -- reloading the configuration --------------------------------------------------------------


async def _reload_on_request(monitor: _Monitor, reloads: ObjectReceiveStream[str]) -> None:
    """Reload from each path received (one per SIGHUP), one reload at a time."""
    async for path in reloads:
        if monitor.stopping:
            return
        await reload_config(monitor, path)


async def reload_config(monitor: _Monitor, path: str) -> bool:
    """Read ``path`` again and swap it in; one line either way. True when it was taken.

    Built in full before anything changes, then swapped in with no ``await`` between: a
    job sees the old configuration or the new one, never half of each.
    """
    try:
        config = await anyio.to_thread.run_sync(load_config, path)
    except ConfigError as exc:
        problems = "; ".join(problem.render(exc.path) for problem in exc.problems)
        log.error("reload refused: %s; keeping the running configuration", problems)
        return False
    old = monitor.config
    changes = reload.compare(old, config)
    if changes.none:
        log.info("reload: no changes")
        return True
    config = reload.keep_restart_keys(old, config)
    monitor.runtime.transactions()  # made here, on the event loop: both runtimes share it
    try:
        runtime = await anyio.to_thread.run_sync(_reconfigured, monitor.runtime, config)
    except Exception as exc:  # a config that validates but cannot be built: keep the old
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        log.error("reload refused: %s: %s; keeping the running configuration", path, why)
        return False
    if runtime.scorer is not monitor.runtime.scorer and runtime.scoring_pool is not None:
        # Later batches go to fresh processes with the new scorer; batches already sent
        # finish in the old ones.
        runtime.scoring_pool.scorer = runtime.scorer
        runtime.scoring_pool.renew()
    monitor.runtime = runtime
    monitor.slots.total_tokens = config.max_concurrent_polls
    monitor.availability.limit = config.database_outage_limit
    if monitor.scheduler is not None:
        _retime(monitor.scheduler, monitor, old)
    log.info("%s", changes.line())
    if not monitor.stopping:
        monitor.tasks.start_soon(_dispatch, monitor)  # new sources are polled at once
    return True


def _reconfigured(runtime: Runtime, config: Config) -> Runtime:
    """A runtime for ``config`` that shares ``runtime``'s engine, HTTP client, scoring
    processes, text cache and SQLite writer slot. Polls in flight keep the old runtime.
    The scorer and brand matchers are rebuilt when what they are built from changed
    (as :meth:`Runtime.build` builds them), keeping the learned layer."""
    old = runtime.config
    scorer, matchers = runtime.scorer, runtime.matchers
    if old.brands != config.brands or old.thresholds != config.thresholds:
        scorer = labels.scorer_for(config, runtime.scorer.learned)
        matchers = build_matchers(config.brands)
    return dataclasses.replace(runtime, config=config, scorer=scorer, matchers=matchers)


def _retime(scheduler: AsyncIOScheduler, monitor: _Monitor, old: Config) -> None:
    """Give the timers whose interval changed their new one, and the sources that came
    or went their refresh timers."""
    config = monitor.config
    for id, interval in _intervals(config).items():
        if interval != _intervals(old)[id]:
            scheduler.reschedule_job(
                id, trigger=IntervalTrigger(seconds=interval.total_seconds(), timezone=UTC)
            )
    _refresh_jobs(scheduler, monitor, retime=config.refresh.interval != old.refresh.interval)


def _intervals(config: Config) -> dict[str, timedelta]:
    return {
        "evaluate": config.evaluate_interval,
        "deliver": config.delivery.interval,
        "heartbeat": config.heartbeat_interval,
    }


async def run_monitor(
    runtime: Runtime,
    stop: anyio.Event,
    on_report: Callable[[PollReport], None] | None = None,
    *,
    serve_http: bool = True,
    reloads: ObjectReceiveStream[str] | None = None,
) -> None:
    """Run every timer until ``stop`` is set, then let in-flight polls finish.

    Each path received on ``reloads`` (``emberwatch run`` sends its config file's on
    SIGHUP) is read again and swapped in, or refused with one line.

    Raises :class:`EmberwatchError` (one line) when the database stayed unavailable past
    ``database_outage_limit``.
    """
    config = runtime.config
    availability = Availability(runtime.engine, limit=config.database_outage_limit, retry=RETRY)
    logs.quiet_libraries()
    with single_node_guard(runtime.engine):
        async with anyio.create_task_group() as tasks:
            slots = anyio.CapacityLimiter(config.max_concurrent_polls)
            monitor = _Monitor(runtime, availability, tasks, slots, on_report)
            tasks.start_soon(_forward_stop, stop, monitor)
            runner = None
            if config.http is not None and serve_http:
                runner = await serve(config, runtime.engine, runtime.clock, ready=monitor.ready)
            scheduler = AsyncIOScheduler(
                event_loop=asyncio.get_running_loop(),
                timezone=UTC,
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            )
            monitor.scheduler = scheduler
            _add_jobs(scheduler, monitor)
            scheduler.start()
            if reloads is not None:
                tasks.start_soon(_reload_on_request, monitor, reloads)
            log.info(
                "monitor started: %s; heartbeat every %s%s",
                _count(sum(s.enabled for s in config.sources), "source"),
                _seconds(config.heartbeat_interval),
                "; SIGHUP reloads the config" if reloads is not None else "",
            )
            try:
                await monitor.stop.wait()
                log.info("stopping: letting in-flight polls finish")
                monitor.stopping = True
                scheduler.pause()
                with anyio.move_on_after(DRAIN_TIMEOUT):
                    while monitor.in_flight:
                        await monitor.idle.wait()
                    while monitor.jobs_running:  # an evaluation or delivery round
                        await anyio.sleep(0.05)
                scheduler.shutdown(wait=False)
                if availability.up:
                    with anyio.move_on_after(5):
                        await monitor.db(release_all, runtime.engine, monitor.identity)
            finally:
                tasks.cancel_scope.cancel()
                if runner is not None:
                    await runner.cleanup()
    if monitor.fatal is not None:
        raise EmberwatchError(monitor.fatal)
    log.info("monitor stopped")


async def _forward_stop(stop: anyio.Event, monitor: _Monitor) -> None:
    await stop.wait()
    monitor.stop.set()


def _add_jobs(scheduler: AsyncIOScheduler, monitor: _Monitor) -> None:
    config = monitor.config
    now = datetime.now(UTC)

    def every(seconds: float, job: Callable[..., Any], id: str, *, start: bool = True) -> None:
        first = {"next_run_time": now} if start else {}  # else one interval from now
        scheduler.add_job(
            job,
            IntervalTrigger(seconds=seconds, timezone=UTC),
            args=(monitor,),
            id=id,
            **first,
        )

    every(DISPATCH_TICK, _dispatch, "poll")
    every(RENEW_EVERY, _renew_job, "leases")
    every(RETRY, _database_job, "database")
    every(config.evaluate_interval.total_seconds(), _evaluate_job, "evaluate")
    every(config.delivery.interval.total_seconds(), _deliver_job, "deliver")
    every(DIGEST_CHECK.total_seconds(), _digest_job, "digest")
    every(config.heartbeat_interval.total_seconds(), _heartbeat_job, "heartbeat", start=False)
    _refresh_jobs(scheduler, monitor)


def _refresh_jobs(scheduler: AsyncIOScheduler, monitor: _Monitor, *, retime: bool = False) -> None:
    """One refresh timer per enabled source whose connector refreshes engagement: added
    for sources that have none, removed for sources no longer configured or enabled."""
    config = monitor.config
    wanted = {
        f"refresh:{source.name}": source.name
        for source in config.sources
        if source.enabled and hasattr(connector(source.type), "refresh")
    }
    now = datetime.now(UTC)
    for job in scheduler.get_jobs():
        if job.id.startswith("refresh:") and (job.id not in wanted or retime):
            job.remove()
    for id, name in wanted.items():
        if scheduler.get_job(id) is None:
            scheduler.add_job(
                _refresh_job,
                IntervalTrigger(
                    seconds=config.refresh.interval.total_seconds(),
                    start_date=now + config.refresh.interval,
                    timezone=UTC,
                ),
                args=(monitor, name),
                id=id,
            )


@contextmanager
def single_node_guard(engine: Engine) -> Iterator[None]:
    """SQLite serves one node: a second ``run`` on the same file is refused, clearly.

    PostgreSQL needs no guard: nodes share the polls through leases on ``sources``.
    """
    if engine.dialect.name != "sqlite" or not engine.url.database:
        yield
        return
    lock_path = Path(f"{engine.url.database}.node-lock")
    handle = lock_path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise EmberwatchError(
            f"another emberwatch node ({holder}) is already running on the SQLite database "
            f"{engine.url.database}; SQLite serves a single node. To run several nodes, "
            "point database_url at PostgreSQL."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{socket.gethostname()} pid {os.getpid()}")
    handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{os.urandom(2).hex()}"
