"""Prometheus metrics: gauges read from the shared database, counters from the worker."""

from datetime import timedelta

import httpx
from sqlmodel import Session

from emberwatch import metrics
from emberwatch.models import SourceState
from emberwatch.outbox import deliver_due, enqueue
from tests.alerts.test_incidents import T0
from tests.helpers import make_config


def sample(name: str, **labels) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels or None)


def test_it_reports_the_outbox_backlog_and_its_oldest_age(engine):
    with Session(engine) as session:
        enqueue(session, dedup_key="a", channel="slack", now=T0)
        enqueue(session, dedup_key="b", channel="slack", now=T0 + timedelta(minutes=1))
        session.commit()
    metrics.refresh_gauges(engine, T0 + timedelta(minutes=5))
    assert sample("emberwatch_outbox_backlog") == 2
    assert sample("emberwatch_outbox_oldest_age_seconds") == 300


def test_an_empty_outbox_has_no_backlog_and_no_age(engine):
    metrics.refresh_gauges(engine, T0)
    assert sample("emberwatch_outbox_backlog") == 0
    assert sample("emberwatch_outbox_oldest_age_seconds") == 0


def test_it_reports_each_sources_health(engine):
    with Session(engine) as session:
        session.add(SourceState(name="metrics-ok", type="rss"))
        session.add(SourceState(name="metrics-bad", type="rss", consecutive_failures=3))
        session.commit()
    metrics.refresh_gauges(engine, T0)
    assert sample("emberwatch_source_healthy", source="metrics-ok") == 1
    assert sample("emberwatch_source_healthy", source="metrics-bad") == 0
    assert sample("emberwatch_source_consecutive_failures", source="metrics-bad") == 3


async def test_the_worker_counts_delivery_outcomes(engine):
    config = make_config(channels={"slack": {"webhook_url": "http://127.0.0.1:9/hook"}})
    with Session(engine) as session:
        enqueue(session, dedup_key="n", channel="slack", kind="rollup", now=T0)
        session.commit()
    before = sample("emberwatch_delivery_attempts_total", channel="slack", outcome="pending") or 0

    def refuse(request):
        return httpx.Response(500, text="oops")

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        report = await deliver_due(config, engine, http, T0)
    assert report.retrying == 1
    after = sample("emberwatch_delivery_attempts_total", channel="slack", outcome="pending")
    assert after == before + 1
