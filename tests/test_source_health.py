"""Monitoring the monitor: unhealthy sources alert once per episode and on recovery;
young mentions are refreshed through the batch lookup and recorded as snapshots."""

from datetime import UTC, datetime, timedelta

import httpx
import respx
from sqlmodel import Session, select

from emberwatch.alerts.policy import evaluate
from emberwatch.ingest import Runtime, poll_source, refresh_source
from emberwatch.models import Delivery, EngagementSnapshot, MentionRecord, SourceState
from tests.conftest import fixture_bytes
from tests.helpers import make_config

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def health_config():
    return make_config(channels={"slack": {"webhook_url": "https://hooks.example/x"}})


def set_state(engine, **values):
    with Session(engine) as session:
        state = session.exec(select(SourceState).where(SourceState.name == "hn")).first()
        state = state or SourceState(name="hn", type="hackernews")
        for key, value in values.items():
            setattr(state, key, value)
        session.add(state)
        session.commit()


def notices(engine):
    with Session(engine) as session:
        return [d.kind for d in session.exec(select(Delivery).order_by(Delivery.id))]


def test_a_source_failing_past_the_limit_alerts_once_then_recovers_once(engine):
    config = health_config()  # interval 60 s, unhealthy after 3 intervals
    set_state(
        engine,
        last_poll_at=NOW,
        last_success_at=NOW - timedelta(minutes=2),
        consecutive_failures=2,
        last_error="hn: HTTP 503",
    )
    evaluate(engine, config, NOW)
    assert notices(engine) == []  # 2 minutes silent is within 3 intervals
    set_state(engine, last_poll_at=NOW, consecutive_failures=5)
    later = NOW + timedelta(minutes=2)
    evaluate(engine, config, later)
    evaluate(engine, config, later + timedelta(minutes=1))
    assert notices(engine) == ["source_unhealthy"]
    set_state(engine, last_success_at=later + timedelta(minutes=2), consecutive_failures=0)
    evaluate(engine, config, later + timedelta(minutes=2))
    evaluate(engine, config, later + timedelta(minutes=3))
    assert notices(engine) == ["source_unhealthy", "source_recovered"]


def test_a_fresh_install_does_not_page_about_a_source_it_has_not_polled(engine):
    config = health_config()
    set_state(engine)  # the row a first poll creates before it has an outcome
    for minutes in range(0, 60, 5):
        evaluate(engine, config, NOW + timedelta(minutes=minutes))
    assert notices(engine) == []


def test_a_source_that_never_succeeded_alerts_only_after_the_limit(engine):
    config = health_config()  # interval 60 s, unhealthy after 3 intervals
    set_state(engine, last_poll_at=NOW, consecutive_failures=1, last_error="hn: HTTP 503")
    evaluate(engine, config, NOW)
    set_state(engine, last_poll_at=NOW + timedelta(minutes=1), consecutive_failures=2)
    evaluate(engine, config, NOW + timedelta(minutes=2, seconds=59))
    assert notices(engine) == []  # the first failure used to page at once
    evaluate(engine, config, NOW + timedelta(minutes=3))
    assert notices(engine) == ["source_unhealthy"]


def test_a_restart_does_not_page_before_a_real_limit_has_passed(engine):
    config = health_config()
    # The process was down for a day: the last success is old, but nothing failed.
    yesterday = NOW - timedelta(days=1)
    set_state(engine, last_poll_at=yesterday, last_success_at=yesterday)
    restart = NOW
    evaluate(engine, config, restart)  # the first evaluation comes before the first poll
    evaluate(engine, config, restart + timedelta(minutes=2, seconds=59))
    assert notices(engine) == []
    # The first poll after the restart succeeds: no notice, and no "recovered" either.
    polled = restart + timedelta(minutes=2, seconds=59)
    set_state(engine, last_poll_at=polled, last_success_at=polled)
    evaluate(engine, config, polled + timedelta(seconds=1))
    evaluate(engine, config, polled + timedelta(minutes=1))
    assert notices(engine) == []


def test_a_restart_onto_a_failing_source_pages_after_the_limit_from_the_restart(engine):
    config = health_config()
    yesterday = NOW - timedelta(days=1)
    set_state(engine, last_poll_at=yesterday, last_success_at=yesterday)
    evaluate(engine, config, NOW)
    set_state(engine, last_poll_at=NOW + timedelta(seconds=5), consecutive_failures=1)
    evaluate(engine, config, NOW + timedelta(minutes=1))
    assert notices(engine) == []
    evaluate(engine, config, NOW + timedelta(minutes=3))
    assert notices(engine) == ["source_unhealthy"]


@respx.mock
async def test_refresh_reads_engagement_in_batches_and_records_snapshots(engine):
    config = make_config(
        sources=[{"name": "rd", "type": "reddit", "query": "acme", "interval": "5m"}]
    )
    listing = fixture_bytes("reddit", "search_new.json")
    now = datetime.fromtimestamp(1_730_800_000 + 3600, tz=UTC)  # an hour after the newest
    respx.get(url__regex=r"https://www\.reddit\.com/search\.json.*").mock(
        return_value=httpx.Response(200, content=listing)
    )
    async with httpx.AsyncClient() as http:
        rt = Runtime.build(config, engine, http, clock=lambda: now)
        first = await poll_source(rt, config.sources[0])
        assert first.new >= 1
        with Session(engine) as session:
            stored = session.exec(select(MentionRecord)).all()
        info = respx.get(url__regex=r"https://www\.reddit\.com/api/info.*").mock(
            return_value=httpx.Response(200, content=fixture_bytes("reddit", "info.json"))
        )
        rt.clock = lambda: now + timedelta(minutes=15)
        report = await refresh_source(rt, config.sources[0])
    assert info.call_count == 1  # every stored mention in one batch request
    assert report.updated >= 1
    with Session(engine) as session:
        snapshots = session.exec(select(EngagementSnapshot)).all()
        state = session.exec(select(SourceState)).one()
    assert len(snapshots) == len(stored) + 1  # one first sighting each, one refresh (57 → 812)
    assert state.polls_total == 1  # a refresh is not a poll: the cursor is untouched
