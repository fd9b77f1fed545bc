from datetime import UTC, datetime, timedelta, timezone

import pytest

from emberwatch.mention import Mention, parse_timestamp


def test_json_round_trip_keeps_every_field_and_utc():
    m = Mention(
        "x",
        "9",
        "https://x.com/a/status/9",
        "a",
        10,
        None,
        "hi",
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        None,
        1,
        2,
        3,
    )
    data = m.to_dict()
    assert data["published_at"] == "2026-01-02T03:04:05Z"
    assert list(data) == [
        "source",
        "external_id",
        "url",
        "author",
        "author_followers",
        "title",
        "text",
        "published_at",
        "rating",
        "likes",
        "reposts",
        "replies",
    ]
    assert Mention.from_dict(data) == m


def test_from_dict_fills_missing_fields_with_none():
    m = Mention.from_dict({"text": "hello"})
    assert m.text == "hello" and m.url is None and m.likes is None and m.engagement == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T12:00:00+02:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (
            datetime(2026, 3, 1, 5, tzinfo=timezone(timedelta(hours=-5))),
            datetime(2026, 3, 1, 10, tzinfo=UTC),
        ),
        (None, None),
    ],
)
def test_timestamps_become_aware_utc(value, expected):
    assert parse_timestamp(value) == expected
