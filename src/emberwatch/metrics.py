"""Prometheus metrics: what the monitor did, and how healthy it is right now."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from emberwatch.models import Delivery, SourceState

REGISTRY = CollectorRegistry()

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


def refresh_gauges(engine: Engine, now: datetime) -> None:
    """Read the gauges from the database, which every node shares."""
    with Session(engine) as session:
        backlog, oldest = session.exec(
            select(sa.func.count(), sa.func.min(Delivery.created_at)).where(
                Delivery.status == "pending"
            )
        ).one()
        states = session.exec(select(SourceState)).all()
    OUTBOX_BACKLOG.set(backlog)
    if oldest is not None and oldest.tzinfo is None:  # SQLite returns aggregates naive
        oldest = oldest.replace(tzinfo=UTC)
    OUTBOX_OLDEST.set((now - oldest).total_seconds() if oldest else 0)
    for state in states:
        SOURCE_HEALTHY.labels(source=state.name).set(0 if state.consecutive_failures else 1)
        SOURCE_FAILURES.labels(source=state.name).set(state.consecutive_failures)


def exposition() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
