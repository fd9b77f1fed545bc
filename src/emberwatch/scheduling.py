"""Scheduling with APScheduler 4. Every call into APScheduler lives in this module.

Each enabled source polls on its own interval (with jitter), the outbox is drained
continuously, and the daily digest is queued at its local time in its IANA zone.

Jobs find the runtime through a context variable set by :func:`run_monitor`, so the job
functions are plain module-level functions (what a persistent data store needs).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

import anyio
from apscheduler import AsyncScheduler, ConflictPolicy
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from emberwatch.channels.digest import digest_day, enqueue_digest
from emberwatch.outbox import deliver_due
from emberwatch.pipeline import PollReport, Runtime, poll_source

log = logging.getLogger("emberwatch.scheduling")

DRAIN_TIMEOUT = 30.0


@dataclass
class _Monitor:
    runtime: Runtime
    on_report: Callable[[PollReport], None] | None = None
    stopping: bool = False
    in_flight: int = 0
    idle: anyio.Event = field(default_factory=anyio.Event)


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


async def _deliver_job() -> None:
    monitor = _MONITOR.get()
    if monitor.stopping:
        return
    rt = monitor.runtime
    await deliver_due(rt.config, rt.engine, rt.http, rt.clock())


async def _digest_job() -> None:
    monitor = _MONITOR.get()
    rt = monitor.runtime
    digest = rt.config.channels.digest
    if digest is None:
        return
    now = rt.clock()
    day = digest_day(now, digest.timezone)
    if await anyio.to_thread.run_sync(enqueue_digest, rt.engine, day, now):
        log.info("digest for %s queued", day)


async def run_monitor(
    runtime: Runtime,
    stop: anyio.Event,
    on_report: Callable[[PollReport], None] | None = None,
) -> None:
    """Run every schedule until ``stop`` is set, then let in-flight polls finish."""
    monitor = _Monitor(runtime, on_report)
    token = _MONITOR.set(monitor)
    config = runtime.config
    try:
        async with AsyncScheduler(identity=_identity(), cleanup_interval=None) as scheduler:
            await scheduler.configure_task(_poll_job, max_running_jobs=None)
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
            await scheduler.add_schedule(
                _deliver_job,
                IntervalTrigger(seconds=config.delivery.interval.total_seconds()),
                id="deliver",
                conflict_policy=ConflictPolicy.replace,
            )
            if config.channels.digest is not None:
                digest = config.channels.digest
                await scheduler.add_schedule(
                    _digest_job,
                    CronTrigger(
                        hour=digest.send_at.hour,
                        minute=digest.send_at.minute,
                        timezone=ZoneInfo(digest.timezone),
                    ),
                    id="digest",
                    conflict_policy=ConflictPolicy.replace,
                )
            await scheduler.start_in_background()
            log.info("monitor started: %d sources", sum(s.enabled for s in config.sources))
            await stop.wait()
            log.info("stopping: letting in-flight polls finish")
            monitor.stopping = True
            with anyio.move_on_after(DRAIN_TIMEOUT):
                while monitor.in_flight:
                    await monitor.idle.wait()
            await scheduler.stop()
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
