import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
import sqlalchemy as sa
from sqlmodel import Session, func, select

from emberwatch import db as database
from emberwatch.alerts.policy import evaluate
from emberwatch.ingest import Runtime, backoff_delay, poll_all, poll_source
from emberwatch.models import (
    AlertRecord,
    Delivery,
    EngagementSnapshot,
    Incident,
    IncidentKey,
    MentionRecord,
    SourceState,
)
from emberwatch.scoring.pool import MIN_BATCH
from tests.helpers import ANGRY, HAPPY, HN_API, hn_hit, hn_page, make_config

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def count(engine, model, *where):
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()


def slack_config():
    # One route sends every severity to Slack: these tests are about when a channel hears,
    # not about the default routes (tests/alerts/test_routing.py covers those).
    return make_config(
        channels={"slack": {"webhook_url": "https://hooks.example/x"}},
        routes=[{"name": "all", "channels": ["slack"]}],
    )


@respx.mock
async def test_a_poll_stores_matched_mentions_once_and_alerts_on_the_angry_one(engine):
    respx.get(HN_API).mock(
        return_value=httpx.Response(
            200, json=hn_page(hn_hit("1", ANGRY), hn_hit("2", HAPPY), hn_hit("3", "unrelated post"))
        )
    )
    config = slack_config()
    async with httpx.AsyncClient() as http:
        rt = Runtime.build(config, engine, http, clock=lambda: NOW)
        first = await poll_source(rt, config.sources[0])
        second = await poll_source(rt, config.sources[0])
    assert (first.new, first.updated, first.alerts) == (2, 0, 1)
    assert (second.new, second.updated, second.alerts) == (0, 0, 0)
    assert count(engine, MentionRecord) == 2
    assert count(engine, AlertRecord) == 1
    assert count(engine, Incident) == 1
    # A poll only records; the alert policy decides when each channel hears.
    assert count(engine, Delivery) == 0
    evaluate(engine, config, NOW, flush=True)
    assert count(engine, Delivery, Delivery.channel == "slack") == 1
    with Session(engine) as session:
        angry = session.exec(select(MentionRecord).where(MentionRecord.external_id == "1")).one()
        assert angry.sentiment < -0.5 and angry.severity in ("warning", "critical")
        assert angry.published_at.tzinfo is not None


@respx.mock
async def test_changed_engagement_records_a_snapshot_and_rescoring(engine):
    route = respx.get(HN_API)
    route.side_effect = [
        httpx.Response(200, json=hn_page(hn_hit("1", HAPPY, points=3, comments=1))),
        httpx.Response(200, json=hn_page(hn_hit("1", HAPPY, points=50, comments=9))),
    ]
    config = make_config()
    async with httpx.AsyncClient() as http:
        clock = iter([NOW, NOW + timedelta(minutes=5)])
        rt = Runtime.build(config, engine, http, clock=lambda: next(clock))
        await poll_source(rt, config.sources[0])
        report = await poll_source(rt, config.sources[0])
    assert report.updated == 1
    with Session(engine) as session:
        mention = session.exec(select(MentionRecord)).one()
        assert (mention.likes, mention.replies, mention.engagement) == (50, 9, 59)
        snapshots = session.exec(
            select(EngagementSnapshot).order_by(EngagementSnapshot.seen_at)
        ).all()
        assert [(s.likes, s.replies) for s in snapshots] == [(3, 1), (50, 9)]


@respx.mock
async def test_a_failed_poll_keeps_stored_rows_and_backs_off(engine):
    route = respx.get(HN_API)
    route.side_effect = [
        httpx.Response(200, json=hn_page(hn_hit("1", ANGRY))),
        httpx.Response(429, headers={"Retry-After": "600"}),
    ]
    config = make_config()
    async with httpx.AsyncClient() as http:
        rt = Runtime.build(config, engine, http, clock=lambda: NOW)
        await poll_source(rt, config.sources[0])
        failed = await poll_source(rt, config.sources[0])
        skipped = await poll_source(rt, config.sources[0])
    assert failed.error and "HTTP 429" in failed.error
    assert skipped.skipped and "backing off" in skipped.skipped
    assert count(engine, MentionRecord) == 1
    with Session(engine) as session:
        state = session.exec(select(SourceState)).one()
        assert state.consecutive_failures == 1
        assert state.next_poll_after >= NOW + timedelta(seconds=600)
        assert state.cursor is not None and "HTTP 429" in state.last_error


@respx.mock
async def test_one_broken_source_does_not_stop_the_others(engine):
    respx.get(HN_API).mock(return_value=httpx.Response(200, text="<html>oops</html>"))
    respx.get("https://feeds.example/acme.xml").mock(
        return_value=httpx.Response(
            200,
            text='<rss version="2.0"><channel><title>t</title><item><guid>g1</guid>'
            f"<title>{ANGRY}</title></item></channel></rss>",
        )
    )
    config = make_config(
        sources=[
            {"name": "hn", "type": "hackernews", "query": "acme", "base_url": "https://hn.example"},
            {"name": "feed", "type": "rss", "url": "https://feeds.example/acme.xml"},
        ]
    )
    async with httpx.AsyncClient() as http:
        reports = await poll_all(Runtime.build(config, engine, http, clock=lambda: NOW))
    by_name = {r.source: r for r in reports}
    assert "not JSON" in by_name["hn"].error
    assert by_name["feed"].new == 1 and by_name["feed"].error is None


@respx.mock
async def test_a_rising_severity_notifies_again_once(engine):
    respx.get(HN_API).side_effect = [
        httpx.Response(200, json=hn_page(hn_hit("1", ANGRY, points=1))),
        httpx.Response(200, json=hn_page(hn_hit("1", ANGRY, points=5000, comments=900))),
        httpx.Response(200, json=hn_page(hn_hit("1", ANGRY, points=6000, comments=950))),
    ]
    config = slack_config()
    async with httpx.AsyncClient() as http:
        rt = Runtime.build(config, engine, http, clock=lambda: NOW)
        for _ in range(3):
            await poll_source(rt, config.sources[0])
            evaluate(engine, config, NOW)
    assert count(engine, AlertRecord) == 1
    with Session(engine) as session:
        incident = session.exec(select(Incident)).one()
        keys = sorted(d.dedup_key for d in session.exec(select(Delivery)))
    assert incident.severity == "critical"
    # The first poll's warning waits out group_wait; the rise to critical cuts through.
    assert keys == ["notify:1:1:slack:1"]


@pytest.mark.parametrize(
    ("failures", "retry_after", "low", "high"),
    [
        (1, None, 48, 72),
        (3, None, 192, 288),
        (1, 900, 900, 900),
        (5, None, 1800, 1800),
    ],
)
def test_backoff_grows_exponentially_and_honours_retry_after(failures, retry_after, low, high):
    delay = backoff_delay(failures, timedelta(seconds=60), retry_after).total_seconds()
    assert low <= delay <= high


def _stored_outcome(engine):
    with Session(engine) as session:
        mentions = session.exec(select(MentionRecord).order_by(MentionRecord.external_id)).all()
        alerts = session.exec(select(AlertRecord).order_by(AlertRecord.id)).all()
        return (
            [
                (m.external_id, m.sentiment, m.complaint, m.virality, m.severity, m.reasons)
                for m in mentions
            ],
            [(a.mention_id, a.severity, a.category, a.reason, a.incident_id) for a in alerts],
        )


@respx.mock
async def test_a_large_poll_scored_in_a_worker_stores_what_the_poller_would(tmp_path):
    texts = [ANGRY, HAPPY, f"{ANGRY} This is the third time.", "Acme is fine I guess"]
    hits = [
        hn_hit(str(i), texts[i % 4], points=i, comments=i % 3, author=f"u{i % 7}")
        for i in range(MIN_BATCH + 10)
    ]
    later = [hn_hit(h["objectID"], h["title"], points=(h["points"] + 1) * 40) for h in hits[:5]]
    outcomes = []
    for scoring_processes in (0, 1):
        respx.get(HN_API).side_effect = [
            httpx.Response(200, json=hn_page(*hits)),
            httpx.Response(200, json=hn_page(*later, *hits[5:])),
        ]
        engine = database.create_db_engine(f"sqlite:///{tmp_path / f'{len(outcomes)}.db'}")
        database.upgrade(engine)
        config = make_config(scoring_processes=scoring_processes)
        clock = iter([NOW, NOW + timedelta(minutes=5)])
        async with httpx.AsyncClient() as http:
            rt = Runtime.build(config, engine, http, clock=clock.__next__)
            try:
                first = await poll_source(rt, config.sources[0])
                second = await poll_source(rt, config.sources[0])
                used_a_worker = rt.scoring_pool is not None and rt.scoring_pool._executor
            finally:
                rt.close()
        assert (first.new, second.updated) == (MIN_BATCH + 10, 5)
        assert bool(used_a_worker) == (scoring_processes > 0)
        outcomes.append(_stored_outcome(engine))
        engine.dispose()
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1], "the batch raises alerts"


async def test_sqlite_runs_one_poll_transaction_at_a_time_postgresql_many(engine):
    async with httpx.AsyncClient() as http:
        rt = Runtime.build(make_config(), engine, http)
        limiter = rt.transactions()
        if engine.dialect.name == "sqlite":
            assert limiter is not None and limiter.total_tokens == 1
            assert rt.transactions() is limiter  # one limiter for every poll
        else:
            assert limiter is None


@pytest.mark.parametrize(
    ("title", "author", "stored_title", "stored_author"),
    [
        # PostgreSQL refuses NUL in text; the mention drops it.
        ("Acme lost\u0000 my order", "ev\u0000il", "Acme lost my order", "evil"),
        # An unpaired "\\ud800" escape decodes to a lone surrogate, which neither
        # database's driver can encode; the mention makes it U+FFFD.
        ("Acme lost \ud800 my order", "ev\udfffil", "Acme lost \ufffd my order", "ev\ufffdil"),
    ],
    ids=["nul", "lone surrogate"],
)
@respx.mock
async def test_a_character_no_database_stores_does_not_fail_the_poll(
    engine, title, author, stored_title, stored_author
):
    body = json.dumps(hn_page(hn_hit("1", title, author=author)))  # escaped as \\uXXXX
    respx.get(HN_API).mock(return_value=httpx.Response(200, content=body.encode()))
    config = slack_config()
    async with httpx.AsyncClient() as http:
        rt = Runtime.build(config, engine, http, clock=lambda: NOW)
        report = await poll_source(rt, config.sources[0])
    assert report.new == 1
    with Session(engine) as session:
        stored = session.exec(select(MentionRecord)).one()
    assert (stored.title, stored.author) == (stored_title, stored_author)


def _every_row(engine):
    """Every column of every row the pipeline writes, in id order."""
    tables = (MentionRecord, EngagementSnapshot, AlertRecord, Incident, IncidentKey, SourceState)
    with engine.connect() as connection:
        return {
            model.__tablename__: [
                dict(row)
                for row in connection.execute(
                    sa.select(model.__table__).order_by(model.__table__.c.id)
                ).mappings()
            ]
            for model in tables
        }


@respx.mock
async def test_postgresql_stores_every_column_as_sqlite_does(engine, tmp_path):
    # PostgreSQL inserts through unnest() over one array per column (emberwatch.db.insert_rows):
    # texts that need quoting in an array, missing counts and authors, and a re-poll that
    # updates engagement and raises alerts must come out as SQLite's plain INSERTs store them.
    odd = 'Acme "quoted", back\\slash, {braces}, NULL, ünïcode 😀 and a\ttab'
    first = [
        hn_hit("1", ANGRY, points=3, comments=1, author="a"),
        hn_hit("2", HAPPY, points=None, comments=None),
        hn_hit("3", odd, points=0, comments=0, author="b"),
        hn_hit("4", f"{ANGRY} Second time this week.", points=7, comments=None, author="a"),
        hn_hit("5", "Acme is fine I guess", points=None, comments=2, author=""),
    ]
    second = [
        hn_hit("1", ANGRY, points=300, comments=80, author="a"),
        hn_hit("3", odd, points=250, comments=40, author="b"),
        hn_hit("6", f"{ANGRY} Still no refund.", points=1, comments=0, author="c"),
    ]
    reference = database.create_db_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    database.upgrade(reference)
    stored = []
    for target in (reference, engine):
        respx.get(HN_API).side_effect = [
            httpx.Response(200, json=hn_page(*first)),
            httpx.Response(200, json=hn_page(*second)),
        ]
        config = make_config()
        clock = iter([NOW, NOW + timedelta(minutes=30)])
        async with httpx.AsyncClient() as http:
            rt = Runtime.build(config, target, http, clock=clock.__next__)
            reports = [await poll_source(rt, config.sources[0]) for _ in range(2)]
        assert [(r.new, r.updated) for r in reports] == [(5, 0), (1, 2)]
        stored.append(_every_row(target))
    reference.dispose()
    assert stored[1] == stored[0]
    assert stored[0]["alerts"] and stored[0]["incident_keys"]
    # Four first ones, two updates, and the new mention of the second poll.
    assert len(stored[0]["engagement_snapshots"]) == 7


@respx.mock
async def test_a_poll_reads_the_incidents_its_alerts_may_join_in_one_query(engine):
    # Near-duplicates of earlier alerts join their incidents: with many alerts in a poll,
    # the brand's candidate incidents are read together, not one Session.get each.
    complaints = [
        f"Acme lost my order number {k}, terrible awful service, refund now" for k in range(6)
    ]
    first = [hn_hit(str(k), text, author=f"a{k}") for k, text in enumerate(complaints)]
    again = [hn_hit(str(10 + k), text, author=f"b{k}") for k, text in enumerate(complaints)]
    respx.get(HN_API).side_effect = [
        httpx.Response(200, json=hn_page(*first)),
        httpx.Response(200, json=hn_page(*again)),
    ]
    config = make_config()
    clock = iter([NOW, NOW + timedelta(minutes=5)])
    by_id: list[str] = []

    def watch(_conn, _cursor, statement, *_args):
        one_row = "incidents.id = %(pk_1)s" in statement or "incidents.id = ?" in statement
        if statement.lstrip().startswith("SELECT incidents.id") and one_row:
            by_id.append(statement)

    async with httpx.AsyncClient() as http:
        rt = Runtime.build(config, engine, http, clock=clock.__next__)
        first_report = await poll_source(rt, config.sources[0])
        sa.event.listen(engine, "before_cursor_execute", watch)
        try:
            second_report = await poll_source(rt, config.sources[0])
        finally:
            sa.event.remove(engine, "before_cursor_execute", watch)
    assert first_report.alerts == second_report.alerts == 6
    with Session(engine) as session:
        alerts = session.exec(select(AlertRecord).order_by(AlertRecord.id)).all()
    joined = {a.incident_id for a in alerts[6:]}
    assert joined <= {a.incident_id for a in alerts[:6]}  # every one joined an incident
    assert by_id == []


@respx.mock
async def test_a_poll_whose_lease_ran_out_leaves_the_newer_cursor_alone(engine):
    from emberwatch.ingest import PollLease

    respx.get(HN_API).mock(return_value=httpx.Response(200, json=hn_page(hn_hit("1", ANGRY))))
    config = slack_config()
    name = config.sources[0].name
    async with httpx.AsyncClient() as http:
        rt = Runtime.build(config, engine, http, clock=lambda: NOW)
        await poll_source(rt, config.sources[0])
        with Session(engine) as session:
            state = session.exec(select(SourceState).where(SourceState.name == name)).one()
            fetched_from = state.cursor
            assert fetched_from is not None
            # Another node took the lease after this one's ran out, and polled further.
            state.leased_by, state.cursor = "node-b", "9999999999"
            session.add(state)
            session.commit()
        lease = PollLease(holder="node-a", next_due=lambda now: now, cursor=fetched_from)
        await poll_source(rt, config.sources[0], lease=lease)
    with Session(engine) as session:
        state = session.exec(select(SourceState).where(SourceState.name == name)).one()
        assert (state.cursor, state.leased_by) == ("9999999999", "node-b")
