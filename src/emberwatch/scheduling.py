"""Scheduling with APScheduler 4. Every call into APScheduler lives in this module.

Each enabled source polls on its own interval (with jitter) and, where its API has a batch
lookup, refreshes young mentions' engagement; the alert policy's timers are evaluated
every few seconds; the outbox is drained continuously; and every minute the daily digest
is checked against its local send time (a pure check that survives restarts and DST).

Jobs find the runtime through a context variable set by :func:`run_monitor`, so the job
functions are plain module-level functions (what a persistent data store needs).
"""

from __future__ import annotations

import contextvars
import fcntl
import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from apscheduler import AsyncScheduler, ConflictPolicy, ScheduleLookupError
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine

from emberwatch.alerts.pipeline import evaluate
from emberwatch.channels.digest import digest_due, enqueue_digest, last_queued_day
from emberwatch.config import Config
from emberwatch.db import cluster_lock
from emberwatch.errors import EmberwatchError
from emberwatch.outbox import deliver_due
from emberwatch.pipeline import PollReport, Runtime, poll_source, refresh_source
from emberwatch.sources import connector
from emberwatch.web import serve

log = logging.getLogger("emberwatch.scheduling")

DRAIN_TIMEOUT = 30.0
LEASE = timedelta(seconds=20)
CLEANUP_INTERVAL = timedelta(seconds=30)
DIGEST_CHECK = timedelta(minutes=1)


@dataclass
class _Monitor:
    runtime: Runtime
    on_report: Callable[[PollReport], None] | None = None
    stopping: bool = False
    in_flight: int = 0
    idle: anyio.Event = field(default_factory=anyio.Event)
    evaluating: anyio.Lock = field(default_factory=anyio.Lock)
    delivering: anyio.Lock = field(default_factory=anyio.Lock)


_MONITOR: contextvars.ContextVar[_Monitor] = contextvars.ContextVar("emberwatch_monitor")


async def _poll_job(source_name: str) -> None:
    monitor = _MONITOR.get()
    settings = monitor.runtime.config.source(source_name)
    if monitor.stopping or settings is None:
        return
    monitor.in_flight += 1
    try:
        report = await poll_source(monitor.runtime, settings)
    finally:
        monitor.in_flight -= 1
        if monitor.in_flight == 0:
            monitor.idle.set()
            monitor.idle = anyio.Event()
    if monitor.on_report is not None:
        monitor.on_report(report)
    if report.alerts:
        # New alerts don't wait for the next timer round: the first spark is the point.
        await _evaluate_job()


async def _refresh_job(source_name: str) -> None:
    monitor = _MONITOR.get()
    settings = monitor.runtime.config.source(source_name)
    if monitor.stopping or settings is None:
        return
    report = await refresh_source(monitor.runtime, settings)
    if report.alerts:
        await _evaluate_job()


async def _evaluate_job() -> None:
    monitor = _MONITOR.get()
    if monitor.stopping:
        return
    rt = monitor.runtime
    async with monitor.evaluating:
        done = await anyio.to_thread.run_sync(_evaluate_once, rt)
    if any(done.values()):
        log.info("alert policy: %s", ", ".join(f"{k} {v}" for k, v in done.items() if v))
        await _deliver_job()


def _evaluate_once(rt: Runtime) -> dict[str, int]:
    # One node at a time evaluates the alert policy; the others skip this round.
    with cluster_lock(rt.engine, "emberwatch-evaluate") as held:
        return evaluate(rt.engine, rt.config, rt.clock()) if held else {}


async def _deliver_job() -> None:
    monitor = _MONITOR.get()
    if monitor.stopping:
        return
    rt = monitor.runtime
    async with monitor.delivering:
        await deliver_due(rt.config, rt.engine, rt.http, rt.clock())


async def _digest_job() -> None:
    """Checked every minute: queue yesterday's digest once the local send time has come."""
    monitor = _MONITOR.get()
    rt = monitor.runtime
    digest = rt.config.channels.digest
    if digest is None or monitor.stopping:
        return
    now = rt.clock()
    last = await anyio.to_thread.run_sync(last_queued_day, rt.engine)
    day = digest_due(now, digest.send_at, digest.timezone, last)
    if day is not None and await anyio.to_thread.run_sync(enqueue_digest, rt.engine, day, now):
        log.info("digest for %s queued", day)
        await _deliver_job()


async def run_monitor(
    runtime: Runtime,
    stop: anyio.Event,
    on_report: Callable[[PollReport], None] | None = None,
    *,
    serve_http: bool = True,
) -> None:
    """Run every schedule until ``stop`` is set, then let in-flight polls finish."""
    monitor = _Monitor(runtime, on_report)
    token = _MONITOR.set(monitor)
    config = runtime.config
    try:
        async with AsyncExitStack() as stack:
            stack.enter_context(single_node_guard(runtime.engine))
            # Nodes starting together would race to create APScheduler's tables and to
            # (re)place the shared schedules: take turns.
            with cluster_lock(runtime.engine, "emberwatch-scheduler-start", wait=True):
                scheduler = await stack.enter_async_context(
                    AsyncScheduler(
                        **await _shared_stores(runtime.engine, stack), identity=_identity()
                    )
                )
                await _set_up(scheduler, config)
            runner = None
            if config.http is not None and serve_http:
                runner = await serve(config, runtime.engine, runtime.clock)
            await scheduler.start_in_background()
            log.info("monitor started: %d sources", sum(s.enabled for s in config.sources))
            await stop.wait()
            log.info("stopping: letting in-flight polls finish")
            monitor.stopping = True
            with anyio.move_on_after(DRAIN_TIMEOUT):
                while monitor.in_flight:
                    await monitor.idle.wait()
            await scheduler.stop()
            if runner is not None:
                await runner.cleanup()
    finally:
        _MONITOR.reset(token)
    log.info("monitor stopped")


async def _set_up(scheduler: AsyncScheduler, config: Config) -> None:
    """Define the tasks and the shared schedules (once per cluster, whoever comes first).

    Polls carry a misfire grace of half their interval: a poll job whose node died before
    running it is dropped rather than run late beside the next interval's poll (which
    re-reads the same items, since the dead poll never advanced the cursor).
    """
    await scheduler.configure_task(_poll_job, max_running_jobs=None)
    await scheduler.configure_task(_refresh_job, max_running_jobs=None)
    await scheduler.configure_task(_evaluate_job, max_running_jobs=1)
    await scheduler.configure_task(_deliver_job, max_running_jobs=1)
    await scheduler.configure_task(_digest_job, max_running_jobs=1)
    for source in config.sources:
        if not source.enabled:
            continue
        await _ensure_schedule(
            scheduler,
            _poll_job,
            IntervalTrigger(seconds=source.interval.total_seconds()),
            id=f"poll:{source.name}",
            kwargs={"source_name": source.name},
            max_jitter=_jitter(config.poll_jitter, source.interval),
            misfire_grace_time=source.interval / 2,
        )
        if hasattr(connector(source.type), "refresh"):
            await _ensure_schedule(
                scheduler,
                _refresh_job,
                IntervalTrigger(
                    seconds=config.refresh.interval.total_seconds(),
                    start_time=datetime.now(UTC) + config.refresh.interval,
                ),
                id=f"refresh:{source.name}",
                kwargs={"source_name": source.name},
                misfire_grace_time=config.refresh.interval / 2,
            )
    for job, every, name in (
        (_evaluate_job, config.evaluate_interval, "evaluate"),
        (_deliver_job, config.delivery.interval, "deliver"),
        (_digest_job, DIGEST_CHECK, "digest"),
    ):
        await _ensure_schedule(
            scheduler, job, IntervalTrigger(seconds=every.total_seconds()), id=name
        )


async def _ensure_schedule(
    scheduler: AsyncScheduler,
    func: Callable[..., Any],
    trigger: IntervalTrigger,
    *,
    id: str,
    **options: Any,
) -> None:
    """Add a schedule, or keep the one another node already shares if it is the same.

    Replacing an identical schedule would reset its next fire time and poll twice when
    nodes start together; a changed interval or argument does replace it.
    """
    try:
        existing = await scheduler.get_schedule(id)
    except ScheduleLookupError:
        existing = None
    if (
        existing is not None
        and _same_interval(existing.trigger, trigger)
        and (dict(existing.kwargs) == dict(options.get("kwargs") or {}))
    ):
        return
    await scheduler.add_schedule(
        func, trigger, id=id, conflict_policy=ConflictPolicy.replace, **options
    )


def _same_interval(old: object, new: IntervalTrigger) -> bool:
    fields = ("weeks", "days", "hours", "minutes", "seconds", "microseconds")
    return isinstance(old, IntervalTrigger) and all(
        getattr(old, f) == getattr(new, f) for f in fields
    )


def _jitter(configured: timedelta, interval: timedelta) -> float | None:
    # Jitter spreads polls out; never more than a tenth of the interval, or polls drift.
    seconds = min(configured.total_seconds(), interval.total_seconds() / 10)
    return seconds or None


@contextmanager
def single_node_guard(engine: Engine) -> Iterator[None]:
    """SQLite serves one node: a second ``run`` on the same file is refused, clearly.

    PostgreSQL needs no guard: nodes share work through APScheduler's data store.
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


async def _shared_stores(engine: Engine, stack: AsyncExitStack) -> dict[str, Any]:
    """On PostgreSQL, APScheduler's own SQLAlchemy data store and psycopg event broker.

    Every node then sees the same schedules and jobs: each fire of a schedule becomes one
    job, acquired by one node under a lease; a killed node's jobs pass to the others when
    their lease runs out. On SQLite, the in-memory defaults (one node).
    """
    if engine.dialect.name != "postgresql":
        return {}
    from apscheduler.datastores.sqlalchemy import SQLAlchemyDataStore
    from apscheduler.eventbrokers.psycopg import PsycopgEventBroker
    from sqlalchemy.ext.asyncio import create_async_engine

    async_engine = create_async_engine(engine.url, pool_pre_ping=True)
    stack.push_async_callback(async_engine.dispose)
    return {
        "data_store": SQLAlchemyDataStore(async_engine),
        "event_broker": PsycopgEventBroker.from_async_sqla_engine(async_engine),
        # Leases and clean-up decide how fast a killed node's work moves on.
        "lease_duration": LEASE,
        "cleanup_interval": CLEANUP_INTERVAL,
    }


def _identity() -> str:
    import os
    import socket

    return f"{socket.gethostname()}-{os.getpid()}"
