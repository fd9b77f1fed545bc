"""Prometheus metrics: what the monitor did, and how healthy it is right now.

Counters and histograms count what this process did; the gauges that describe shared
state (outbox, sources, channels, the database) are read from the database at each
scrape, so every node reports the same figures. The registry also carries the standard
``process_*``, ``python_gc_*`` and ``python_info`` collectors and ``emberwatch_build_info``.
deploy/prometheus/emberwatch-rules.yml holds alert rules over these names.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime
from importlib import metadata

import sqlalchemy as sa
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from emberwatch import db as database
from emberwatch.models import ChannelHealth, Delivery, SourceState

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()
# What the default registry would hold: process_* (CPU, memory, open files, start time),
# python_gc_* and python_info.
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)


def _version() -> str:
    try:
        return metadata.version("emberwatch")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


BUILD_INFO = Info("emberwatch_build", "The running Emberwatch release", registry=REGISTRY)
BUILD_INFO.info({"version": _version()})

POLLS = Counter(
    "emberwatch_polls", "Polls by source and outcome", ["source", "outcome"], registry=REGISTRY
)
POLL_SECONDS = Histogram(
    "emberwatch_poll_duration_seconds",
    "Duration of one poll",
    ["source"],
    registry=REGISTRY,
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
MENTIONS = Counter(
    "emberwatch_mentions_ingested", "New mentions stored", ["source"], registry=REGISTRY
)
ALERTS = Counter("emberwatch_alerts", "Alerts raised by severity", ["severity"], registry=REGISTRY)
DELIVERY_ATTEMPTS = Counter(
    "emberwatch_delivery_attempts",
    "Delivery attempts by channel and outcome",
    ["channel", "outcome"],
    registry=REGISTRY,
)
INCIDENT_ACTIONS = Counter(
    "emberwatch_incident_actions",
    "Acknowledge, snooze and resolve actions",
    ["action", "via"],
    registry=REGISTRY,
)
OUTBOX_BACKLOG = Gauge(
    "emberwatch_outbox_backlog", "Deliveries waiting to be sent", registry=REGISTRY
)
OUTBOX_OLDEST = Gauge(
    "emberwatch_outbox_oldest_age_seconds",
    "Age of the oldest waiting delivery",
    registry=REGISTRY,
)
SOURCE_HEALTHY = Gauge(
    "emberwatch_source_healthy",
    "1 when the source's last poll succeeded",
    ["source"],
    registry=REGISTRY,
)
SOURCE_FAILURES = Gauge(
    "emberwatch_source_consecutive_failures",
    "Failed polls in a row",
    ["source"],
    registry=REGISTRY,
)
SOURCE_LAST_SUCCESS = Gauge(
    "emberwatch_source_last_success_timestamp_seconds",
    "Unix time of the source's last successful poll (absent until it has one)",
    ["source"],
    registry=REGISTRY,
)
CHANNEL_BROKEN = Gauge(
    "emberwatch_channel_broken",
    "1 while the channel is broken (e.g. a Slack webhook answering 404), else 0",
    ["channel"],
    registry=REGISTRY,
)
DATABASE_READY = Gauge(
    "emberwatch_database_ready",
    "1 when the database answered this scrape and its schema is current (as /readyz asks)",
    registry=REGISTRY,
)


def refresh_gauges(engine: Engine, now: datetime) -> None:
    """Read the gauges from the database, which every node shares.

    When the database does not answer, ``emberwatch_database_ready`` drops to 0 and the
    other gauges keep their last values, so the scrape still carries the process metrics.
    """
    try:
        current = database.current_revision(engine)
        with Session(engine) as session:
            backlog, oldest = session.exec(
                select(sa.func.count(), sa.func.min(Delivery.created_at)).where(
                    Delivery.status == "pending"
                )
            ).one()
            states = session.exec(select(SourceState)).all()
            channels = session.exec(select(ChannelHealth)).all()
    except sa.exc.SQLAlchemyError as exc:
        log.debug("metrics: database unavailable: %s", type(exc).__name__)
        DATABASE_READY.set(0)
        return
    DATABASE_READY.set(1 if current == _head_revision() else 0)
    OUTBOX_BACKLOG.set(backlog)
    oldest = _aware(oldest)
    OUTBOX_OLDEST.set((now - oldest).total_seconds() if oldest else 0)
    for state in states:
        SOURCE_HEALTHY.labels(source=state.name).set(0 if state.consecutive_failures else 1)
        SOURCE_FAILURES.labels(source=state.name).set(state.consecutive_failures)
        last_success = _aware(state.last_success_at)
        if last_success is not None:
            SOURCE_LAST_SUCCESS.labels(source=state.name).set(last_success.timestamp())
    for health in channels:
        CHANNEL_BROKEN.labels(channel=health.channel).set(1 if health.broken_since else 0)


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite returns timestamps (and aggregates of them) naive; they are UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


@functools.cache
def _head_revision() -> str:
    return database.head_revision()


def exposition() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
