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
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import anyio
from apscheduler import AsyncScheduler, ConflictPolicy
from apscheduler.triggers.interval import IntervalTrigger

from emberwatch.alerts.pipeline import evaluate
from emberwatch.channels.digest import digest_due, enqueue_digest, last_queued_day
from emberwatch.outbox import deliver_due
from emberwatch.pipeline import PollReport, Runtime, poll_source, refresh_source
from emberwatch.sources import connector
from emberwatch.web import serve

log = logging.getLogger("emberwatch.scheduling")

DRAIN_TIMEOUT = 30.0
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
        done = await anyio.to_thread.run_sync(evaluate, rt.engine, rt.config, rt.clock())
    if any(done.values()):
        log.info("alert policy: %s", ", ".join(f"{k} {v}" for k, v in done.items() if v))
        await _deliver_job()


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
        async with AsyncScheduler(identity=_identity(), cleanup_interval=None) as scheduler:
            await scheduler.configure_task(_poll_job, max_running_jobs=None)
            await scheduler.configure_task(_refresh_job, max_running_jobs=None)
            await scheduler.configure_task(_evaluate_job, max_running_jobs=1)
            await scheduler.configure_task(_deliver_job, max_running_jobs=1)
            await scheduler.configure_task(_digest_job, max_running_jobs=1)
            for source in config.sources:
                if not source.enabled:
                    continue
                await scheduler.add_schedule(
                    _poll_job,
                    IntervalTrigger(seconds=source.interval.total_seconds()),
                    id=f"poll:{source.name}",
                    kwargs={"source_name": source.name},
                    max_jitter=_jitter(config.poll_jitter, source.interval),
                    conflict_policy=ConflictPolicy.replace,
                )
                if hasattr(connector(source.type), "refresh"):
                    await scheduler.add_schedule(
                        _refresh_job,
                        IntervalTrigger(
                            seconds=config.refresh.interval.total_seconds(),
                            start_time=datetime.now(UTC) + config.refresh.interval,
                        ),
                        id=f"refresh:{source.name}",
                        kwargs={"source_name": source.name},
                        conflict_policy=ConflictPolicy.replace,
                    )
            for job, every, name in (
                (_evaluate_job, config.evaluate_interval, "evaluate"),
                (_deliver_job, config.delivery.interval, "deliver"),
                (_digest_job, DIGEST_CHECK, "digest"),
            ):
                await scheduler.add_schedule(
                    job,
                    IntervalTrigger(seconds=every.total_seconds()),
                    id=name,
                    conflict_policy=ConflictPolicy.replace,
                )
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


def _jitter(configured: timedelta, interval: timedelta) -> float | None:
    # Jitter spreads polls out; never more than a tenth of the interval, or polls drift.
    seconds = min(configured.total_seconds(), interval.total_seconds() / 10)
    return seconds or None


def _identity() -> str:
    import os
    import socket

    return f"{socket.gethostname()}-{os.getpid()}"
