"""Prometheus metrics: gauges read from the shared database, counters from the worker."""

from datetime import UTC, datetime, timedelta

import httpx
import respx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session

from emberwatch import metrics
from emberwatch.delivery import deliver_due
from emberwatch.ingest import Runtime, poll_source
from emberwatch.models import ChannelHealth, SourceState
from emberwatch.outbox import enqueue
from tests.alerts.test_incidents import T0
from tests.helpers import HAPPY, HN_API, hn_hit, hn_page, make_config


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


def _scrape_samples(body: str) -> dict[str, list]:
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            samples.setdefault(s.name, []).append(s)
    return samples


@respx.mock
async def test_metrics_after_a_poll_carry_process_build_info_and_the_sources_last_success(
    engine,
):
    polled_at = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
    respx.get(HN_API).mock(return_value=httpx.Response(200, json=hn_page(hn_hit("1", HAPPY))))
    config = make_config()
    async with httpx.AsyncClient() as http:
        await poll_source(
            Runtime.build(config, engine, http, clock=lambda: polled_at), config.sources[0]
        )
    source = config.sources[0].name

    # What GET /metrics serves (the handler refreshes the gauges, then exposes the registry;
    # tests/test_web.py covers the route and who may read it).
    metrics.refresh_gauges(engine, polled_at)
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    samples = _scrape_samples(body.decode())

    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= samples.keys()
    assert "python_info" in samples
    [build] = samples["emberwatch_build_info"]
    assert build.labels == {"version": "0.1.0"} and build.value == 1
    [last] = [
        s
        for s in samples["emberwatch_source_last_success_timestamp_seconds"]
        if s.labels == {"source": source}
    ]
    assert last.value == polled_at.timestamp()
    assert samples["emberwatch_database_ready"][0].value == 1


def test_a_source_that_never_succeeded_has_no_last_success(engine):
    with Session(engine) as session:
        session.add(SourceState(name="metrics-never", type="rss", consecutive_failures=2))
        session.commit()
    metrics.refresh_gauges(engine, T0)
    assert (
        sample("emberwatch_source_last_success_timestamp_seconds", source="metrics-never") is None
    )
    assert sample("emberwatch_source_consecutive_failures", source="metrics-never") == 2


def test_it_reports_broken_and_healed_channels(engine):
    with Session(engine) as session:
        session.add(ChannelHealth(channel="metrics-broken", broken_since=T0, last_error="404"))
        session.add(ChannelHealth(channel="metrics-healed", broken_since=None))
        session.commit()
    metrics.refresh_gauges(engine, T0)
    assert sample("emberwatch_channel_broken", channel="metrics-broken") == 1
    assert sample("emberwatch_channel_broken", channel="metrics-healed") == 0


def test_an_unreachable_database_is_not_ready_and_the_scrape_still_works(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/no/such/dir/emberwatch.db")
    metrics.refresh_gauges(engine, T0)
    assert sample("emberwatch_database_ready") == 0
    body, _content_type = metrics.exposition()
    assert b"process_cpu_seconds_total" in body


def test_a_database_with_an_old_schema_is_not_ready(engine):
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
    metrics.refresh_gauges(engine, T0)
    assert sample("emberwatch_database_ready") == 0
