import email as email_lib
import itertools
import re
from datetime import UTC, date, datetime, time, timedelta
from email import policy
from html import escape

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from emberwatch.alerts.links import verify
from emberwatch.config import validate_config
from emberwatch.demo.servers import MailCatcher
from emberwatch.digest import (
    DayVolume,
    build_digest,
    chart_bars,
    day_bounds,
    digest_day,
    digest_due,
    digest_message,
    enqueue_digest,
    last_queued_day,
    render,
    send_stored,
)
from emberwatch.models import (
    AlertRecord,
    ChannelHealth,
    Delivery,
    Incident,
    IncidentAction,
    MentionRecord,
    Rollup,
    Silence,
    SourceState,
)
from emberwatch.outbox import claim_due
from tests.helpers import make_config

DAY = date(2026, 11, 19)
ZONE = "Europe/Berlin"  # UTC+1 in November: local days start at 23:00 UTC the day before
NOW = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)  # 08:00 in Berlin, when the digest goes out
_ids = itertools.count(1)


def at(days: int = 0, hours: float = 12) -> datetime:
    """A moment ``hours`` into the local day ``DAY + days``."""
    return day_bounds(DAY + timedelta(days=days), ZONE)[0] + timedelta(hours=hours)


def mention(
    session: Session,
    seen: datetime,
    brand: str = "acme",
    source: str = "hn",
    sentiment: float | None = 0.0,
    **fields: object,
) -> MentionRecord:
    record = MentionRecord(
        source="hackernews",
        external_id=f"m{next(_ids)}",
        source_name=source,
        brand=brand,
        first_seen_at=seen,
        sentiment=sentiment,
        **fields,
    )
    session.add(record)
    session.flush()
    return record


def incident(session: Session, opened: datetime, **fields: object) -> Incident:
    values: dict[str, object] = {
        "brand": "acme",
        "source_name": "hn",
        "title": "Order lost",
        "severity": "warning",
        "category": "complaint",
        "opened_at": opened,
        "updated_at": opened,
    }
    values.update(fields)
    record = Incident(**values)
    session.add(record)
    session.flush()
    return record


def delivery(session: Session, created: datetime, **fields: object) -> Delivery:
    values: dict[str, object] = {
        "dedup_key": f"d{next(_ids)}",
        "channel": "slack",
        "created_at": created,
        "next_attempt_at": created,
    }
    values.update(fields)
    record = Delivery(**values)
    session.add(record)
    session.flush()
    return record


def digest_of(engine, now: datetime = NOW, config=None):
    return build_digest(engine, DAY, ZONE, now=now, config=config)


def by_name(rows):
    return {row.name: row for row in rows}


# -- days and scheduling ------------------------------------------------------------------


def test_a_local_day_spans_23_hours_when_clocks_spring_forward():
    start, end = day_bounds(date(2026, 3, 29), "Europe/London")
    assert (end - start).total_seconds() == 23 * 3600
    assert start == datetime(2026, 3, 29, 0, tzinfo=UTC)


def test_a_local_day_spans_25_hours_when_clocks_fall_back():
    start, end = day_bounds(date(2026, 10, 25), "Europe/Berlin")
    assert (end - start).total_seconds() == 25 * 3600


def test_the_digest_reports_on_the_previous_local_day():
    assert digest_day(datetime(2026, 11, 20, 7, 0, tzinfo=UTC), "Europe/Berlin") == date(
        2026, 11, 19
    )
    assert digest_day(datetime(2026, 11, 20, 23, 30, tzinfo=UTC), "Asia/Tokyo") == date(
        2026, 11, 20
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "send_at", "zone", "last_queued", "expected"),
    [
        # An ordinary day in London (GMT): due from 08:00, once.
        (utc(2026, 11, 20, 7, 59), time(8), "Europe/London", None, None),
        (utc(2026, 11, 20, 8, 0), time(8), "Europe/London", None, date(2026, 11, 19)),
        (utc(2026, 11, 20, 8, 1), time(8), "Europe/London", date(2026, 11, 19), None),
        # Restarts: down at send time, back later the same day -> queued then; the next
        # morning before send time -> nothing yet.
        (
            utc(2026, 11, 20, 15, 0),
            time(8),
            "Europe/London",
            date(2026, 11, 18),
            date(2026, 11, 19),
        ),
        (utc(2026, 11, 20, 23, 59), time(8), "Europe/London", None, date(2026, 11, 19)),
        (utc(2026, 11, 21, 0, 1), time(8), "Europe/London", date(2026, 11, 19), None),
        # A day already queued by hand (the demo queues today's) is never queued again.
        (utc(2026, 11, 20, 9, 0), time(8), "Europe/London", date(2026, 11, 20), None),
        # Spring forward, 2026-03-29: 01:00 GMT jumps to 02:00 BST, so 01:30 never shows.
        # It fires at the jump, once.
        (utc(2026, 3, 29, 0, 59), time(1, 30), "Europe/London", None, None),
        (utc(2026, 3, 29, 1, 0), time(1, 30), "Europe/London", None, date(2026, 3, 28)),
        (utc(2026, 3, 29, 1, 30), time(1, 30), "Europe/London", date(2026, 3, 28), None),
        (utc(2026, 3, 29, 6, 59), time(8), "Europe/London", None, None),
        (utc(2026, 3, 29, 7, 0), time(8), "Europe/London", None, date(2026, 3, 28)),
        # Fall back, 2026-10-25: 02:00 BST goes back to 01:00 GMT, so 01:30 shows twice.
        # It fires at the first, not again at the second, and a restart inside the
        # repeated hour does not wait for the second.
        (utc(2026, 10, 25, 0, 29), time(1, 30), "Europe/London", None, None),
        (utc(2026, 10, 25, 0, 30), time(1, 30), "Europe/London", None, date(2026, 10, 24)),
        (utc(2026, 10, 25, 1, 30), time(1, 30), "Europe/London", date(2026, 10, 24), None),
        (utc(2026, 10, 25, 1, 10), time(1, 30), "Europe/London", None, date(2026, 10, 24)),
        (utc(2026, 10, 25, 7, 59), time(8), "Europe/London", None, None),
        (utc(2026, 10, 25, 8, 0), time(8), "Europe/London", None, date(2026, 10, 24)),
        # New York (EST, UTC-5): the local day, not the UTC day, decides.
        (utc(2026, 11, 20, 12, 59), time(8), "America/New_York", None, None),
        (utc(2026, 11, 20, 13, 0), time(8), "America/New_York", None, date(2026, 11, 19)),
        (
            utc(2026, 11, 21, 3, 0),
            time(8),
            "America/New_York",
            date(2026, 11, 18),
            date(2026, 11, 19),
        ),
        # New York springs forward on 2026-03-08: 02:00 EST jumps to 03:00 EDT.
        (utc(2026, 3, 8, 6, 59), time(2, 30), "America/New_York", None, None),
        (utc(2026, 3, 8, 7, 0), time(2, 30), "America/New_York", None, date(2026, 3, 7)),
    ],
)
def test_digest_due_fires_once_a_local_day_at_send_time(now, send_at, zone, last_queued, expected):
    assert digest_due(now, send_at, zone, last_queued) == expected


@pytest.mark.parametrize(
    ("send_at", "zone", "start"),
    [
        (time(1, 30), "Europe/London", utc(2026, 3, 28, 12)),
        (time(1, 30), "Europe/London", utc(2026, 10, 24, 12)),
        (time(8), "Europe/London", utc(2026, 10, 24, 12)),
        (time(2, 30), "America/New_York", utc(2026, 3, 7, 12)),
    ],
)
def test_polling_every_minute_across_a_clock_change_queues_each_day_exactly_once(
    send_at, zone, start
):
    queued: list[date] = []
    for minute in range(2 * 24 * 60):
        day = digest_due(
            start + timedelta(minutes=minute), send_at, zone, max(queued, default=None)
        )
        if day is not None:
            queued.append(day)
    # Started at noon: the day before is queued at once, then one a day at send time.
    first = start.date() - timedelta(days=1)
    assert queued == [first + timedelta(days=n) for n in range(3)]


def test_each_day_is_queued_exactly_once(engine):
    now = datetime(2026, 11, 20, 8, tzinfo=UTC)
    assert enqueue_digest(engine, date(2026, 11, 19), now) is True
    assert enqueue_digest(engine, date(2026, 11, 19), now) is False
    assert enqueue_digest(engine, date(2026, 11, 20), now) is True


def test_the_last_queued_day_is_the_newest_digest_in_the_outbox(engine):
    assert last_queued_day(engine) is None
    with Session(engine) as session:
        delivery(session, NOW, dedup_key="digest:not-a-date", channel="digest")
        session.commit()
    assert last_queued_day(engine) is None
    enqueue_digest(engine, date(2026, 11, 18), NOW)
    enqueue_digest(engine, date(2026, 11, 19), NOW)
    enqueue_digest(engine, date(2026, 11, 9), NOW)
    assert last_queued_day(engine) == date(2026, 11, 19)


# -- what it says -------------------------------------------------------------------------


def test_a_quiet_day_still_renders_a_digest_that_says_so(engine):
    subject, text, html = render(build_digest(engine, date(2026, 11, 19), "UTC"))
    assert "0 mentions" in subject and "quiet day" in text and "quiet day" in html
    assert "All clear" in text and "All clear" in html


def test_counts_compare_with_the_day_before_and_the_7_day_average(engine):
    with Session(engine) as session:
        mention(session, at(0, 0.5), sentiment=-0.05)  # negative, at its threshold
        mention(session, at(0, 10), sentiment=-0.9)
        mention(session, at(0, 23.5), sentiment=0.05)  # positive, at its threshold
        mention(session, at(0), brand="globex", source="reddit", sentiment=None)
        mention(session, at(1, 0.5), sentiment=-0.9)  # the next local day: not counted
        for days in range(-7, 0):  # one a day in the 7 days before: the average is 1
            mention(session, at(days), sentiment=0.0)
        for _ in range(5):  # 8 days before: in the chart, not in the average
            mention(session, at(-8), sentiment=-0.5)
        session.commit()
    digest = digest_of(engine)

    assert digest.mentions == 4
    assert (digest.total.previous, digest.total.week_average, digest.total.delta) == (1, 1.0, "+3")
    assert digest.total.trend == "↑"
    acme = by_name(digest.by_brand)["acme"]
    assert (acme.today, acme.previous, acme.week_average, acme.delta) == (3, 1, 1.0, "+2")
    globex = by_name(digest.by_brand)["globex"]
    assert (globex.today, globex.previous, globex.week_average) == (1, 0, 0.0)
    assert [c.name for c in digest.by_source] == ["hn", "reddit"]
    sentiment = by_name(digest.by_sentiment)
    assert [c.name for c in digest.by_sentiment] == ["negative", "neutral", "positive", "unscored"]
    assert (sentiment["negative"].today, sentiment["negative"].previous) == (2, 0)
    assert (sentiment["neutral"].today, sentiment["neutral"].week_average) == (0, 1.0)
    assert sentiment["neutral"].delta == "−1"
    assert sentiment["positive"].today == 1 and sentiment["unscored"].today == 1

    assert len(digest.daily) == 14 and digest.daily[-1].day == DAY
    assert [v.mentions for v in digest.daily[-9:]] == [5, 1, 1, 1, 1, 1, 1, 1, 4]
    assert digest.daily[-9].negative_share == 1.0 and digest.daily[-1].negative_share == 0.5
    assert digest.daily[0].negative_share is None

    subject, text, _html = render(digest)
    assert "4 mentions" in subject
    assert "Mentions: 4 (+3 vs 1 the day before, ↑ 7-day average 1.0)" in text
    assert re.search(r"acme\s+3\s+1\s+\+2\s+1\.0 ↑", text)


def test_chart_bars_are_proportional_to_the_busiest_day_and_empty_days_have_none():
    days = [DAY - timedelta(days=n) for n in range(5, -1, -1)]
    daily = [
        DayVolume(days[0], mentions=10, negative=5),
        DayVolume(days[1], mentions=5, negative=0),
        DayVolume(days[2], mentions=0, negative=0),
        DayVolume(days[3], mentions=1, negative=1),
        DayVolume(days[4], mentions=3, negative=3),
        DayVolume(days[5], mentions=4, negative=1),
    ]
    bars = chart_bars(daily, height=80)
    assert [b.height for b in bars] == [80, 40, 0, 8, 24, 32]
    assert [b.negative_height for b in bars] == [40, 0, 0, 8, 24, 8]
    assert [b.reported for b in bars] == [False] * 5 + [True]
    assert [b.label for b in bars] == ["14 Nov", "15 Nov", "16 Nov", "17 Nov", "18 Nov", "19 Nov"]
    assert bars[2].negative_share is None and bars[0].negative_share == 0.5


def test_a_day_far_below_the_busiest_still_shows_one_pixel():
    daily = [DayVolume(DAY - timedelta(days=1), 1000, 0), DayVolume(DAY, 1, 1)]
    assert [(b.height, b.negative_height) for b in chart_bars(daily, height=80)] == [
        (80, 0),
        (1, 1),
    ]


def test_an_empty_fortnight_draws_no_bar_and_says_nothing_was_heard(engine):
    digest = digest_of(engine)
    assert all(b.height == 0 for b in chart_bars(digest.daily))
    _subject, _text, html = render(digest)
    chart = _chart_table(html)
    assert "nothing heard" in chart and "bgcolor" not in chart
    assert chart.count("<td") == 3 * 14  # mentions, negative share, day


def _chart_table(html: str) -> str:
    start = html.index("<caption")
    end = html.index("</table>", html.index("Day</th>", start))  # after the bars' tables
    return html[html.rindex("<table", 0, start) : end]


def test_the_chart_is_table_cells_with_numbers_and_labels_not_an_image(engine):
    with Session(engine) as session:
        for _ in range(4):
            mention(session, at(0), sentiment=0.5)
        mention(session, at(0), sentiment=-0.5)  # today: 5 mentions, 1 negative
        mention(session, at(-3), sentiment=-0.5)  # 3 days before: 1 of 1 negative
        session.commit()
    _subject, _text, html = render(digest_of(engine))
    assert "<img" not in html and "data:image" not in html
    chart = _chart_table(html)
    assert "Mentions per day, last 14 days" in chart and "nothing heard" not in chart
    # Today's bar: 80 px, 16 of them red (negative) under 64 in the reported day's blue.
    assert 'height="64" bgcolor="#4a6fa5"' in chart and 'height="16" bgcolor="#c0392b"' in chart
    # 3 days before: 1 of 5 -> 16 px, all negative; every other day has no bar.
    assert chart.count('bgcolor="#c0392b"') == 2 and chart.count('bgcolor="#c0c7d0"') == 0
    day_labels = re.findall(r">(?:<strong>)?(\d\d [A-Z][a-z]{2})<", chart)
    assert day_labels[0] == "06 Nov" and day_labels[-1] == "19 Nov" and len(day_labels) == 14
    assert "<strong>19 Nov</strong>" in chart and "<strong>5</strong>" in chart
    assert ">20%<" in chart and ">100%<" in chart and chart.count(">–<") == 12


def test_the_email_carries_the_chart_in_its_html_without_an_attachment(engine):
    message = digest_message(
        digest_of(engine), sender="ew@acme.example", recipients=["ops@acme.example"]
    )
    html = message.get_body(("html",)).get_content()
    assert "Mentions per day" in html and "cid:" not in html
    assert [p.get_content_type() for p in message.walk() if not p.is_multipart()] == [
        "text/plain",
        "text/html",
    ]


def test_open_incidents_are_listed_with_their_age(engine):
    with Session(engine) as session:
        incident(session, NOW - timedelta(hours=26), severity="warning", title="Kettle recall")
        incident(
            session,
            NOW - timedelta(minutes=90),
            severity="critical",
            title="Viral thread",
            status="acknowledged",
            acknowledged_at=NOW - timedelta(minutes=80),
        )
        incident(session, at(-3), status="resolved", resolved_at=at(-2), title="Old news")
        session.commit()
    digest = digest_of(engine)
    assert [(i.title, i.severity, i.age) for i in digest.open_incidents] == [
        ("Viral thread", "critical", timedelta(minutes=90)),
        ("Kettle recall", "warning", timedelta(hours=26)),
    ]
    subject, text, html = render(digest)
    assert "2 open incidents" in subject
    assert "WARNING acme: Kettle recall (triggered, open 1d 2h)" in text
    assert "1h 30m" in html and "Old news" not in text


def test_time_to_acknowledge_and_to_resolve_are_median_and_worst_of_the_day(engine):
    with Session(engine) as session:
        for minutes in (10, 20, 60):
            opened = at(0, 9)
            incident(session, opened, acknowledged_at=opened + timedelta(minutes=minutes))
        opened = at(0, 1)
        incident(
            session,
            opened,
            status="resolved",
            acknowledged_at=opened + timedelta(minutes=5),
            resolved_at=opened + timedelta(hours=2),
        )
        # Acknowledged the day before and resolved the next day: neither counts.
        opened = at(-1, 20)
        incident(
            session,
            opened,
            status="resolved",
            acknowledged_at=opened + timedelta(hours=1),
            resolved_at=at(1, 2),
        )
        session.commit()
    digest = digest_of(engine)
    ack, resolve = digest.time_to_acknowledge, digest.time_to_resolve
    assert (ack.count, ack.median, ack.worst) == (4, timedelta(minutes=15), timedelta(hours=1))
    assert (resolve.count, resolve.median, resolve.worst) == (
        1,
        timedelta(hours=2),
        timedelta(hours=2),
    )
    _subject, text, _html = render(digest)
    assert "Time to acknowledge: median 15m, worst 1h 00m over 4" in text
    assert "Time to resolve:     median 2h 00m, worst 2h 00m over 1" in text


def test_escalations_of_the_day_are_listed(engine):
    with Session(engine) as session:
        incident(
            session, at(-1), title="Escalated by count", escalations=2, last_escalated_at=at(0)
        )
        by_action = incident(session, at(0, 2), title="Escalated by action")
        session.add(
            IncidentAction(
                incident_id=by_action.id, action="escalate", actor="timer", via="timer", at=at(0, 3)
            )
        )
        incident(
            session,
            at(-5),
            title="Escalated long ago",
            status="resolved",
            resolved_at=at(-4),
            escalations=1,
            last_escalated_at=at(-5, 13),
        )
        session.commit()
    digest = digest_of(engine)
    assert sorted((e.title, e.escalations) for e in digest.escalated) == [
        ("Escalated by action", 1),
        ("Escalated by count", 2),
    ]
    _subject, text, _html = render(digest)
    assert "Escalated (2)" in text and "escalated x2" in text


def test_failed_and_expired_deliveries_and_broken_channels_are_said_loudly_first(engine):
    with Session(engine) as session:
        delivery(
            session,
            at(0, 8),
            status="failed",
            kind="alert",
            recipient="#brand-alerts",
            attempts=8,
            last_error="slack: post webhook: HTTP 500",
        )
        delivery(
            session,
            at(-1, 20),
            expires_at=at(0, 2),  # retried the day before, given up at its deadline
            status="expired",
            channel="email",
            kind="escalation",
            recipient="oncall@acme.example",
            last_error="email: send: SMTP 451 try later",
        )
        delivery(session, at(-3), status="failed", last_error="long ago")
        delivery(session, at(0), status="sent")
        session.add(
            ChannelHealth(
                channel="slack", broken_since=at(0, 6), last_error="slack: HTTP 404 no_service"
            )
        )
        session.add(ChannelHealth(channel="email", broken_since=None))
        session.commit()
    digest = digest_of(engine)
    assert [(f.status, f.channel, f.kind, f.recipient) for f in digest.failed_deliveries] == [
        ("failed", "slack", "alert", "#brand-alerts"),
        ("expired", "email", "escalation", "oncall@acme.example"),
    ]
    assert [r.channel for r in digest.broken_channels] == ["slack"]

    subject, text, html = render(digest)
    assert "BROKEN CHANNEL: slack" in subject
    assert text.index("NEEDS ATTENTION") < text.index("Mentions:")
    assert "channel slack is BROKEN since 2026-11-19 06:00: slack: HTTP 404 no_service" in text
    assert "2 deliveries failed or expired" in text
    assert "expired: email escalation to oncall@acme.example after 0 attempts" in text
    assert "SMTP 451 try later" in text and "long ago" not in text
    assert html.index("Needs attention") < html.index("mentions (")
    assert "slack: post webhook: HTTP 500" in html


def test_silenced_and_rolled_up_counts_are_shown(engine):
    with Session(engine) as session:
        silence = Silence(
            matchers='{"brand": "acme"}',
            starts_at=at(-1),
            ends_at=at(2),
            comment="planned outage",
            created_by="ops",
            created_at=at(-1),
        )
        session.add(silence)
        story = incident(session, at(0, 1))
        session.flush()
        for n in range(3):
            record = mention(session, at(0, 2 + n))
            session.add(
                AlertRecord(
                    mention_id=record.id,
                    incident_id=story.id,
                    silenced_by=silence.id if n < 2 else None,
                    brand="acme",
                    source_name="hn",
                    category="complaint",
                    severity="warning",
                    reason="test",
                    created_at=at(0, 2 + n),
                    updated_at=at(0, 2 + n),
                )
            )
        for channel, when in [
            ("slack", 3),
            ("slack", 4),
            ("slack", 5),
            ("email", 6),
            ("slack", -3),
        ]:
            session.add(
                Rollup(
                    channel=channel,
                    incident_id=story.id,
                    brand="acme",
                    source_name="hn",
                    category="complaint",
                    created_at=at(0, when),
                )
            )
        session.commit()
    digest = digest_of(engine)
    assert digest.silenced == 2 and len(digest.alerts) == 3
    assert digest.rolled_up == {"email": 1, "slack": 3}
    _subject, text, html = render(digest)
    assert "Silenced alerts: 2" in text and "Rolled up: email 1, slack 3" in text
    assert "Silenced alerts: <strong>2</strong>" in html


def sources_config(*names: str, **overrides: object):
    return make_config(
        sources=[
            {"name": name, "type": "rss", "url": f"https://{name}.example/feed", "interval": "60s"}
            for name in names
        ],
        http={"secret": "s" * 20, "public_url": "https://ew.acme.example"},
        **overrides,
    )


def test_sources_are_judged_as_the_alert_policy_judges_them(engine):
    config = sources_config("reddit", "rss", "hn", "new")
    with Session(engine) as session:
        session.add(  # failing for an hour: unhealthy
            SourceState(
                name="reddit",
                type="reddit",
                last_poll_at=NOW,
                consecutive_failures=30,
                last_success_at=at(0, 1),
                last_error="reddit: fetch: HTTP 503",
                unhealthy_since=NOW - timedelta(hours=1),
            )
        )
        # Two days without a poll, not seen by a running evaluator yet: failing.
        session.add(
            SourceState(name="rss", type="rss", last_poll_at=at(-2), last_success_at=at(-2))
        )
        session.add(
            SourceState(name="hn", type="hackernews", last_poll_at=NOW, last_success_at=NOW)
        )
        session.add(SourceState(name="gone", type="rss", consecutive_failures=9))  # not configured
        session.commit()
    digest = digest_of(engine, config=config)
    assert [(s.name, s.status) for s in digest.sources] == [
        ("reddit", "unhealthy"),
        ("rss", "failing"),
        ("new", "pending"),  # configured, never polled
    ]
    _subject, text, html = render(digest)
    assert "UNHEALTHY reddit (reddit): 30 failed polls in a row for 60 min" in text
    assert "HTTP 503" in text and "gone" not in text
    assert "PENDING new (rss): waiting for its first poll" in text
    assert "1 source unhealthy: reddit" in text and "1 source failing: rss" in text
    assert "<strong>UNHEALTHY</strong> <strong>reddit</strong>" in html


def test_vip_mentions_of_the_day_are_listed(engine):
    with Session(engine) as session:
        mention(
            session,
            at(0, 9),
            vip=True,
            author="@bigbuyer",
            text="Second time this month the Acme order is late. " + "Really. " * 40,
            url="https://hn.example/item?id=1",
            sentiment=-0.6,
        )
        mention(session, at(0, 10), vip=True, author="@fan", text="Love it", url="javascript:x")
        mention(session, at(-1), vip=True, author="@yesterday", text="old")
        mention(session, at(0), author="@nobody", text="not a vip")
        session.commit()
    digest = digest_of(engine)
    assert [(v.author, v.sentiment) for v in digest.vip_mentions] == [
        ("@bigbuyer", "negative"),
        ("@fan", "neutral"),
    ]
    big = digest.vip_mentions[0]
    assert big.excerpt.startswith("Second time this month") and len(big.excerpt) <= 160
    _subject, text, html = render(digest)
    assert "@bigbuyer about acme on hn (negative): Second time" in text
    assert "https://hn.example/item?id=1" in text
    assert 'href="https://hn.example/item?id=1"' in html and "javascript:x" not in html


def test_top_complaint_themes_come_with_an_example_and_a_lesson(engine):
    texts = [
        ("My Acme parcel never arrived, still waiting", -0.6, "complaint"),
        ("Where is my order? Two weeks late", -0.4, "complaint"),
        ("Order is late again and support never replied", -0.7, "complaint"),
        ("The kettle arrived smashed", -0.5, "complaint"),
        ("Charged twice for one kettle, want a refund", 0.0, "complaint"),
        ("I am upset", -0.5, "other"),  # negative but no theme
        ("Delivery was late but the kettle is great", 0.8, "praise"),  # not a complaint
    ]
    with Session(engine) as session:
        for i, (text, sentiment, category) in enumerate(texts):
            mention(
                session,
                at(0, 1 + i),
                text=text,
                sentiment=sentiment,
                category=category,
                engagement=100 - i,
            )
        mention(session, at(-1), text="late late late", sentiment=-0.9, category="complaint")
        session.commit()
    digest = digest_of(engine)
    assert digest.complaints == 6
    assert [(t.theme, t.count) for t in digest.themes] == [
        ("late or missing delivery", 3),
        ("damaged or broken product", 1),
        ("refund or billing", 1),
        ("no answer from support", 1),
    ]
    late = digest.themes[0]
    assert late.example == "My Acme parcel never arrived, still waiting"  # the most engaged
    assert "tell customers proactively" in late.lesson
    _subject, text, html = render(digest)
    assert "3 x late or missing delivery" in text
    assert 'e.g. "My Acme parcel never arrived, still waiting"' in text
    assert "Lesson: check courier hand-offs" in html


def test_mention_text_is_escaped_in_html_and_plain_in_text(engine):
    evil = "<script>alert(1)</script> & my order never arrived"
    with Session(engine) as session:
        mention(session, at(0), vip=True, author="<b>x</b>", text=evil, sentiment=-0.5)
        incident(session, at(0), title="<img src=x onerror=alert(1)>")
        session.commit()
    _subject, text, html = render(digest_of(engine))
    assert "<script>" not in html and "<b>x</b>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; my order never arrived" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert evil in text and "<img src=x onerror=alert(1)>" in text


def test_building_the_digest_takes_a_handful_of_queries(engine):
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        digest_of(engine)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert len(statements) <= 10


# -- sending ------------------------------------------------------------------------------


@pytest.fixture
def catcher():
    server = MailCatcher().start()
    yield server
    server.stop()


async def test_a_queued_digest_is_sent_with_text_and_html_holding_the_chart(engine, catcher):
    config = validate_config(
        {
            "brands": [{"name": "acme", "include": ["Acme"]}],
            "channels": {
                "email": {
                    "host": "127.0.0.1",
                    "port": catcher.port,
                    "security": "none",
                    "sender": "ew@acme.example",
                    "recipients": ["marketing@acme.example"],
                },
                "digest": {"recipients": ["ops@acme.example"], "timezone": ZONE},
            },
        },
        "t.toml",
        {},
    )
    with Session(engine) as session:
        mention(session, at(0), text="<script>x</script> parcel never arrived", sentiment=-0.5)
        session.commit()
    assert enqueue_digest(engine, DAY, NOW) is True
    [item] = claim_due(engine, NOW, timedelta(minutes=5))
    assert item.channel == "digest" and item.payload == {"date": "2026-11-19"}

    await send_stored(config, engine, item)

    [raw] = catcher.messages
    received = email_lib.message_from_bytes(raw, policy=policy.default)
    assert received["To"] == "ops@acme.example"
    assert received["Subject"].startswith("[Emberwatch] Daily digest for 2026-11-19: 1 mentions")
    assert received.is_multipart()
    text = received.get_body(("plain",)).get_content()
    html = received.get_body(("html",)).get_content()
    assert "late or missing delivery" in text and "&lt;script&gt;" in html
    assert "Mentions per day, last 14 days" in html


# -- the first line: the state of the day -------------------------------------------------


def _nothing(session):
    pass


def _healthy_source(session):
    session.add(SourceState(name="hn", type="hackernews", last_poll_at=NOW, last_success_at=NOW))


def _open_by_severity(session):
    _healthy_source(session)
    incident(session, NOW - timedelta(minutes=90), severity="critical", title="Viral thread")
    incident(
        session,
        NOW - timedelta(hours=26),
        severity="warning",
        status="acknowledged",
        acknowledged_at=NOW - timedelta(hours=25),
    )
    incident(session, NOW - timedelta(hours=3), severity="warning", brand="globex")
    incident(session, NOW - timedelta(minutes=5), severity="info")


def _escalated(session):
    _healthy_source(session)
    for hours in (5, 4, 3):
        incident(session, NOW - timedelta(hours=hours), escalations=2, last_escalated_at=at(0))
    incident(session, NOW - timedelta(hours=2), severity="critical", escalations=1)


def _all_acknowledged(session):
    _healthy_source(session)
    incident(session, NOW - timedelta(hours=1), status="acknowledged", acknowledged_at=NOW)


def _failed_delivery(session):
    _healthy_source(session)
    delivery(session, at(0, 8), status="failed", last_error="slack: post webhook: HTTP 500")


def _broken_channel(session):
    _healthy_source(session)
    session.add(ChannelHealth(channel="slack", broken_since=at(0, 6), last_error="HTTP 404"))


def _unhealthy_source(session):
    session.add(
        SourceState(
            name="hn",
            type="hackernews",
            last_poll_at=NOW,
            last_success_at=NOW - timedelta(hours=2),
            consecutive_failures=12,
            unhealthy_since=NOW - timedelta(hours=2),
        )
    )


def _failing_source(session):
    session.add(
        SourceState(
            name="hn",
            type="hackernews",
            last_poll_at=NOW,
            last_success_at=NOW - timedelta(minutes=1),
            consecutive_failures=1,
        )
    )


def _pending_source(session):  # a fresh install: the source has not been polled yet
    pass


def _restarted(session):  # the process was down a day; the first poll is still to come
    session.add(
        SourceState(name="hn", type="hackernews", last_poll_at=at(-1), last_success_at=at(-1))
    )


@pytest.mark.parametrize(
    ("setup", "first_line", "state"),
    [
        (
            _healthy_source,
            "All clear: no open incident, no failed delivery, every source healthy",
            "clear",
        ),
        (
            _pending_source,
            "All clear: no open incident, no failed delivery, every source healthy "
            "(1 source pending its first poll: hn)",
            "clear",
        ),
        (
            _open_by_severity,
            "4 open incidents (1 critical, 2 warning, 1 info); 3 unacknowledged, the oldest "
            "#3 (warning, globex) open 3h 00m",
            "critical",
        ),
        (
            _escalated,
            "4 open incidents (1 critical, 3 warning); 4 unacknowledged, the oldest "
            "#1 (warning, acme) open 5h 00m; 4 escalated without acknowledgement",
            "critical",
        ),
        (_all_acknowledged, "1 open incident (1 warning); all acknowledged", "warning"),
        (_failed_delivery, "No open incident; 1 delivery failed or expired", "attention"),
        (_broken_channel, "No open incident; channel slack BROKEN", "critical"),
        (_unhealthy_source, "No open incident; 1 source unhealthy: hn", "attention"),
        (_failing_source, "No open incident; 1 source failing: hn", "attention"),
    ],
)
def test_the_first_line_is_the_state_of_the_day(engine, setup, first_line, state):
    with Session(engine) as session:
        setup(session)
        session.commit()
    digest = digest_of(engine, config=sources_config("hn"))
    assert digest.headline == first_line and digest.state == state
    _subject, text, html = render(digest)
    assert text.splitlines()[0] == first_line
    body = html[html.index("<body") :]
    first = re.search(r"<p[^>]*><strong>(.*?)</strong></p>", body)
    assert first is not None and first.start() < body.index("<h2")
    assert first.group(1) == escape(first_line)


def test_a_restart_before_the_first_poll_is_not_reported_unhealthy(engine):
    with Session(engine) as session:
        _restarted(session)
        session.commit()
    # The digest goes out a minute after a restart: the old last success is "failing"
    # (overdue), never "unhealthy", until a running evaluator has seen it for 3 intervals.
    digest = digest_of(engine, config=sources_config("hn"))
    assert [s.status for s in digest.sources] == ["failing"]
    assert "unhealthy" not in digest.headline


def test_without_config_a_never_polled_source_is_pending_not_unhealthy(engine):
    with Session(engine) as session:
        session.add(SourceState(name="hn", type="hackernews"))
        session.commit()
    digest = digest_of(engine)
    assert digest.headline.startswith("All clear")
    assert "pending its first poll: hn" in digest.headline


def _post(session, opened, url, **fields):
    story = incident(session, opened, **fields)
    record = mention(session, opened, url=url)
    session.add(
        AlertRecord(
            mention_id=record.id,
            incident_id=story.id,
            brand="acme",
            source_name="hn",
            category="complaint",
            severity=story.severity,
            reason="test",
            created_at=opened,
            updated_at=opened,
        )
    )
    return story


def test_every_incident_row_links_to_its_post_and_its_signed_action_pages(engine):
    config = sources_config("hn")
    with Session(engine) as session:
        _post(
            session, NOW - timedelta(hours=1), "https://hn.example/item?id=7", severity="critical"
        )
        acked = _post(
            session,
            NOW - timedelta(hours=2),
            "javascript:alert(1)",
            status="acknowledged",
            acknowledged_at=NOW - timedelta(hours=1),
            acknowledged_by="ana",
        )
        session.add(
            IncidentAction(
                incident_id=acked.id,
                action="snooze",
                actor="bo",
                via="link",
                at=NOW - timedelta(minutes=30),
            )
        )
        acked.snoozed_until = NOW + timedelta(minutes=30)
        session.add(acked)
        session.commit()
    digest = digest_of(engine, config=config)
    critical, snoozed = digest.open_incidents
    assert critical.post_url == "https://hn.example/item?id=7"
    assert snoozed.post_url is None  # not an http(s) link: never put in an href
    assert snoozed.handled == "snoozed by bo until 2026-11-20 07:30Z"
    ack = critical.links["ack"]
    query = dict(part.split("=") for part in ack.split("?")[1].split("&"))
    assert ack.startswith(f"https://ew.acme.example/actions/{critical.id}/1/ack?")
    assert verify("s" * 20, critical.id, 1, "ack", query["who"], query["sig"])

    _subject, text, html = render(digest)
    assert "post:        https://hn.example/item?id=7" in text
    assert f"acknowledge: {ack}" in text
    assert f"resolve:     {snoozed.links['resolve']}" in text
    assert snoozed.links["ack"] not in text  # it is acknowledged already
    assert "(snoozed by bo until 2026-11-20 07:30Z, open 2h 00m)" in text
    assert 'href="https://hn.example/item?id=7"' in html
    assert f'href="{escape(ack)}">acknowledge</a>' in html
    assert "javascript:" not in html


def test_severity_is_a_word_as_well_as_a_colour(engine):
    with Session(engine) as session:
        incident(session, NOW - timedelta(hours=1), severity="critical", title="Viral")
        incident(session, NOW - timedelta(hours=1), severity="warning", title="Late")
        session.commit()
    _subject, text, html = render(digest_of(engine))
    assert "CRITICAL acme: Viral" in text and "WARNING acme: Late" in text
    # Without colour (tags and styles stripped) the word is still there, in its row.
    rows = [re.sub(r"<[^>]+>", " ", row) for row in re.findall(r"<tr.*?</tr>", html, re.S)]
    assert any("CRITICAL" in row and "Viral" in row for row in rows)
    assert any("WARNING" in row and "Late" in row for row in rows)
    assert "background: #c0392b" in html and "background: #b9770e" in html


def test_who_resolved_what_that_day_is_shown(engine):
    with Session(engine) as session:
        incident(
            session,
            at(0, 1),
            status="resolved",
            resolved_at=at(0, 3),
            resolved_by="ana",
            title="Courier lost it",
        )
        session.commit()
    _subject, text, html = render(digest_of(engine))
    assert "Courier lost it (resolved by ana at 2026-11-19 03:00, after 2h 00m)" in text
    assert "resolved by <strong>ana</strong>" in html
