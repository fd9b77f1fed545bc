from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given, settings
from tests.sources._properties import (
    assert_parse_returns_mentions_or_raises_parse_error,
    keyed_json,
)

from emberwatch.errors import ParseError
from emberwatch.mention import Mention
from emberwatch.sources import appstore

FIXTURES = Path(__file__).parent.parent / "fixtures" / "appstore"
BASE = "https://itunes.apple.test"
NOW = datetime(2024, 5, 2, 18, 0, tzinfo=UTC)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def make_settings(**overrides: Any) -> appstore.Settings:
    values: dict[str, Any] = {
        "name": "acme-ios",
        "type": "appstore",
        "app_id": "1234567890",
        "country": "us",
        "base_url": BASE,
    }
    values.update(overrides)
    return appstore.Settings(**values)


def page_url(page: int) -> str:
    return f"{BASE}/us/rss/customerreviews/page={page}/id=1234567890/sortby=mostrecent/json"


def review(review_id: str, updated: datetime) -> dict[str, Any]:
    return {
        "author": {"name": {"label": f"user{review_id}"}, "label": ""},
        "updated": {"label": updated.isoformat()},
        "im:rating": {"label": "3"},
        "id": {"label": review_id},
        "title": {"label": f"title {review_id}"},
        "content": {"label": f"text {review_id}", "attributes": {"type": "text"}},
    }


def feed(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"feed": {"entry": entries, "title": {"label": "iTunes Store: Customer Reviews"}}}


def full_page(start: int, newest: datetime) -> dict[str, Any]:
    """50 reviews a minute apart, the first ``start`` minutes before ``newest``."""
    return feed([review(f"r{start + i}", newest - timedelta(minutes=start + i)) for i in range(50)])


# parse


def test_it_maps_every_documented_field_and_skips_the_apps_own_entry() -> None:
    mentions = appstore.parse(fixture("reviews_page1.json"))

    assert [m.external_id for m in mentions] == ["11122233344", "11122233300", "11122233211"]
    first = mentions[0]
    assert first == Mention(
        source="appstore",
        external_id="11122233344",
        url="https://itunes.apple.com/us/review?id=1234567890&type=Purple%20Software",
        author="latte_lover_42",
        author_followers=None,
        title="App charged me twice & support won't answer",
        text=(
            "I ordered a latte and was charged twice. Support hasn't replied in 3 days"
            " & the refund button does nothing."
        ),
        published_at=datetime(2024, 5, 2, 16, 15, 42, tzinfo=UTC),
        rating=1.0,
        likes=12,
    )


def test_it_keeps_non_ascii_text_and_line_breaks() -> None:
    mention = appstore.parse(fixture("reviews_page1.json"))[1]

    assert mention.author == "コーヒー好き"
    assert mention.title == "便利なアプリ ☕️"
    assert mention.text == "注文がとても簡単です。\nでも時々アプリが落ちます。"


def test_it_maps_missing_optional_fields_to_none_and_reduces_html_content() -> None:
    mention = appstore.parse(fixture("reviews_page1.json"))[2]

    assert mention.title is None
    assert mention.likes is None
    assert mention.text == "Fast pickup, great rewards."
    assert mention.published_at == datetime(2024, 5, 2, 5, 40, tzinfo=UTC)


def test_it_reads_a_single_entry_object_as_one_review() -> None:
    mentions = appstore.parse(fixture("single_entry.json"))

    assert len(mentions) == 1
    assert mentions[0].external_id == "10999888777"
    assert mentions[0].author == "Zoë B."
    assert mentions[0].rating == 2.0


def test_it_reads_a_feed_without_entries_as_an_empty_page() -> None:
    assert appstore.parse(fixture("empty_page.json")) == []


@pytest.mark.parametrize(
    "body",
    [
        fixture("error_page.html"),
        b"",
        b'{"feed": {"entry": [',
        b"[]",
        b'{"feed": []}',
        b'{"feed": {"entry": "nope"}}',
        b'{"feed": {"entry": [{"im:rating": {"label": "5"}}]}}',
        b'{"feed": {"entry": [{"im:rating": {"label": 5}, "id": {"label": "1"}}]}}',
        b'{"feed": {"entry": [{"im:rating": {"label": "five"}, "id": {"label": "1"}}]}}',
        b'{"feed": {"entry": [{"im:rating": {"label": "5"}, "id": {"label": "1"},'
        b' "updated": {"label": "yesterday"}}]}}',
        b'{"feed": {"entry": [{"im:rating": {"label": "5"}, "id": {"label": "1"},'
        b' "updated": {"label": "9999-12-31T23:59:59-08:00"}}]}}',
        b'{"feed": {"entry": [{"im:rating": {"label": "5"}, "id": {"label": "1"},'
        b' "author": "bob"}]}}',
    ],
)
def test_it_raises_parse_error_on_garbage_html_truncation_and_schema_drift(body: bytes) -> None:
    with pytest.raises(ParseError):
        appstore.parse(body)


KEYS = "feed entry id label im:rating updated content attributes type author name title link"


@settings(max_examples=200)
@given(keyed_json(KEYS))
def test_parse_of_api_shaped_json_returns_mentions_or_raises_parse_error(data: Any) -> None:
    assert_parse_returns_mentions_or_raises_parse_error(appstore, json.dumps(data).encode())


# settings


def test_settings_lowercase_the_country_and_reject_a_non_numeric_app_id() -> None:
    assert make_settings(country="GB").country == "gb"
    with pytest.raises(ValueError, match="app_id"):
        make_settings(app_id="com.acme.coffee")


# fetch


@respx.mock
async def test_a_first_poll_backfills_until_a_review_older_than_the_backfill_window() -> None:
    entries = [review("new1", NOW - timedelta(hours=1)), review("new2", NOW - timedelta(hours=5))]
    entries.append(review("old", NOW - timedelta(days=3)))
    route = respx.get(page_url(1)).mock(return_value=httpx.Response(200, json=feed(entries)))

    fetched = await appstore.fetch(httpx.AsyncClient(), make_settings(), None, NOW)

    assert [m.external_id for m in fetched.mentions] == ["new1", "new2"]
    assert route.call_count == 1
    assert json.loads(fetched.cursor or "") == {
        "newest": (NOW - timedelta(hours=1)).isoformat(),
        "ids": ["new1"],
    }


@respx.mock
async def test_a_second_poll_stops_at_the_first_already_seen_review() -> None:
    seen_at = NOW - timedelta(hours=2)
    cursor = json.dumps({"newest": seen_at.isoformat(), "ids": ["seen"]})
    entries = [
        review("fresh", NOW - timedelta(minutes=5)),
        review("tie", seen_at),
        review("seen", seen_at),
        review("older", NOW - timedelta(hours=3)),
    ]
    page1 = respx.get(page_url(1)).mock(return_value=httpx.Response(200, json=feed(entries)))
    page2 = respx.get(page_url(2)).mock(return_value=httpx.Response(200, json=feed([])))

    fetched = await appstore.fetch(httpx.AsyncClient(), make_settings(), cursor, NOW)

    assert [m.external_id for m in fetched.mentions] == ["fresh", "tie"]
    assert page1.call_count == 1
    assert page2.call_count == 0
    assert json.loads(fetched.cursor or "")["ids"] == ["fresh"]


@respx.mock
async def test_it_pages_on_until_it_reaches_the_watermark() -> None:
    cursor = json.dumps({"newest": (NOW - timedelta(minutes=70)).isoformat(), "ids": []})
    respx.get(page_url(1)).mock(return_value=httpx.Response(200, json=full_page(0, NOW)))
    respx.get(page_url(2)).mock(return_value=httpx.Response(200, json=full_page(50, NOW)))

    fetched = await appstore.fetch(httpx.AsyncClient(), make_settings(), cursor, NOW)

    assert len(fetched.mentions) == 71
    assert fetched.pages == 2
    assert fetched.notes == []


@respx.mock
async def test_it_keeps_the_watermark_and_resumes_when_max_pages_stops_it_short() -> None:
    watermark = NOW - timedelta(minutes=120)
    cursor = json.dumps({"newest": watermark.isoformat(), "ids": []})
    respx.get(page_url(1)).mock(return_value=httpx.Response(200, json=full_page(0, NOW)))
    respx.get(page_url(2)).mock(return_value=httpx.Response(200, json=full_page(50, NOW)))
    respx.get(page_url(3)).mock(return_value=httpx.Response(200, json=full_page(100, NOW)))

    first = await appstore.fetch(httpx.AsyncClient(), make_settings(max_pages=2), cursor, NOW)

    state = json.loads(first.cursor or "")
    assert len(first.mentions) == 100
    assert state["newest"] == watermark.isoformat()
    assert state["resume"] == {"at": 3, "top": NOW.isoformat(), "top_ids": ["r0"]}
    assert "max_pages=2" in first.notes[0]

    second = await appstore.fetch(
        httpx.AsyncClient(), make_settings(max_pages=2), first.cursor, NOW
    )

    assert [m.external_id for m in second.mentions] == [f"r{i}" for i in range(100, 121)]
    assert json.loads(second.cursor or "") == {"newest": NOW.isoformat(), "ids": ["r0"]}
