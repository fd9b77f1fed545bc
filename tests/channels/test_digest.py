from datetime import UTC, date, datetime

from emberwatch.channels.digest import build_digest, day_bounds, digest_day, enqueue_digest, render


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


def test_each_day_is_queued_exactly_once(engine):
    now = datetime(2026, 11, 20, 8, tzinfo=UTC)
    assert enqueue_digest(engine, date(2026, 11, 19), now) is True
    assert enqueue_digest(engine, date(2026, 11, 19), now) is False
    assert enqueue_digest(engine, date(2026, 11, 20), now) is True


def test_a_quiet_day_still_renders_a_digest_that_says_so(engine):
    subject, text, html = render(build_digest(engine, date(2026, 11, 19), "UTC"))
    assert "0 mentions" in subject and "quiet day" in text and "quiet day" in html
