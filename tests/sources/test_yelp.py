from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import respx
from hypothesis import given, settings
from pydantic import ValidationError
from tests.sources._properties import (
    assert_parse_returns_mentions_or_raises_parse_error,
    keyed_json,
)

from emberwatch.errors import FetchError, ParseError
from emberwatch.mention import Mention
from emberwatch.sources import yelp

FIXTURES = Path(__file__).parent.parent / "fixtures" / "yelp"
BASE = "https://api.yelp.test"
URL = f"{BASE}/v3/businesses/acme-coffee-san-francisco/reviews"
NOW = datetime(2024, 7, 5, 12, 0, tzinfo=UTC)
PACIFIC = ZoneInfo("America/Los_Angeles")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def make_settings(**overrides: Any) -> yelp.Settings:
    values: dict[str, Any] = {
        "name": "acme-yelp",
        "type": "yelp",
        "business_id": "acme-coffee-san-francisco",
        "api_key": "test-key",
        "base_url": BASE,
    }
    values.update(overrides)
    return yelp.Settings(**values)


def review(review_id: str, created: datetime) -> dict[str, Any]:
    local = created.astimezone(PACIFIC).strftime("%Y-%m-%d %H:%M:%S")
    return {
        "id": review_id,
        "url": f"https://www.yelp.com/biz/acme?hrid={review_id}",
        "text": f"text {review_id}",
        "rating": 4,
        "time_created": local,
        "user": {"id": "u", "profile_url": None, "image_url": None, "name": "U."},
    }


def page(reviews: list[dict[str, Any]], total: int) -> dict[str, Any]:
    return {"reviews": reviews, "total": total, "possible_languages": ["en"]}


# parse


def test_it_maps_every_documented_field() -> None:
    first = yelp.parse(fixture("reviews.json"))[0]

    assert first == Mention(
        source="yelp",
        external_id="xAG4O7l-t1ubbwVAlPnDKg",
        url=(
            "https://www.yelp.com/biz/acme-coffee-san-francisco?adjust_creative="
            "wpr6gw4FnptTrk1CeT8POg&hrid=xAG4O7l-t1ubbwVAlPnDKg&utm_campaign=yelp_api_v3"
            "&utm_medium=api_v3_business_reviews&utm_source=wpr6gw4FnptTrk1CeT8POg"
        ),
        author="Ella A.",
        author_followers=None,
        title=None,
        text=(
            "Waited 40 minutes for a cold brew & the barista was rude when I asked."
            " Won't be back..."
        ),
        published_at=datetime(2024, 7, 5, 1, 30, 5, tzinfo=UTC),
        rating=1.0,
    )


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (0, datetime(2024, 7, 5, 1, 30, 5, tzinfo=UTC)),  # PDT, UTC-7
        (1, datetime(2024, 1, 15, 15, 2, 44, tzinfo=UTC)),  # PST, UTC-8
        (2, datetime(2023, 12, 31, 7, 59, 59, tzinfo=UTC)),  # crosses the year in UTC
    ],
)
def test_it_reads_time_created_as_pacific_time(index: int, expected: datetime) -> None:
    assert yelp.parse(fixture("reviews.json"))[index].published_at == expected


def test_it_keeps_non_ascii_text() -> None:
    mention = yelp.parse(fixture("reviews.json"))[1]

    assert mention.author == "Amélie T."
    assert mention.text == "Café au lait parfait, croissant très frais. Service rapide 👍"


def test_it_maps_a_missing_user_to_no_author() -> None:
    mention = yelp.parse(fixture("reviews.json"))[2]

    assert mention.author is None
    assert mention.text == "Decent espresso.\nPricey though."


def test_it_reads_an_empty_page() -> None:
    assert yelp.parse(fixture("empty.json")) == []


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        b"",
        b'{"reviews": [{"id": "a"',
        fixture("error_business_not_found.json"),
        b'{"reviews": {}}',
        b'{"reviews": [], "total": "many"}',
        b'{"reviews": [{"text": "no id"}]}',
        b'{"reviews": [{"id": "a", "rating": "5"}]}',
        b'{"reviews": [{"id": "a", "time_created": 1720000000}]}',
        b'{"reviews": [{"id": "a", "time_created": "last tuesday"}]}',
        b'{"reviews": [{"id": "a", "user": "bob"}]}',
        b'{"reviews": [{"id": "a", "time_created": "9999-12-31 23:59:59"}]}',
        b'{"reviews": [{"id": "a", "user": {"name": 7}}]}',
    ],
)
def test_it_raises_parse_error_on_garbage_html_truncation_and_schema_drift(body: bytes) -> None:
    with pytest.raises(ParseError):
        yelp.parse(body)


KEYS = "reviews total id url text rating time_created user name"


@settings(max_examples=200)
@given(keyed_json(KEYS))
def test_parse_of_api_shaped_json_returns_mentions_or_raises_parse_error(data: Any) -> None:
    assert_parse_returns_mentions_or_raises_parse_error(yelp, json.dumps(data).encode())


# settings


def test_settings_require_an_api_key() -> None:
    with pytest.raises(ValidationError, match="api_key is required for Yelp Fusion"):
        make_settings(api_key=None)


def test_settings_never_show_the_api_key() -> None:
    assert "test-key" not in repr(make_settings())


# fetch


@respx.mock
async def test_it_sends_the_bearer_key_and_asks_for_newest_first() -> None:
    route = respx.get(URL).mock(return_value=httpx.Response(200, json=page([], 0)))

    await yelp.fetch(httpx.AsyncClient(), make_settings(locale="fr_FR"), None, NOW)

    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer test-key"
    assert request.url.params["sort_by"] == "newest"
    assert request.url.params["offset"] == "0"
    assert request.url.params["locale"] == "fr_FR"


@respx.mock
async def test_a_first_poll_keeps_only_reviews_inside_the_backfill_window() -> None:
    reviews = [review("a", NOW - timedelta(hours=2)), review("b", NOW - timedelta(days=2))]
    respx.get(URL).mock(return_value=httpx.Response(200, json=page(reviews, 2)))

    fetched = await yelp.fetch(httpx.AsyncClient(), make_settings(), None, NOW)

    assert [m.external_id for m in fetched.mentions] == ["a"]
    assert json.loads(fetched.cursor or "") == {
        "newest": (NOW - timedelta(hours=2)).isoformat(),
        "ids": ["a"],
    }


@respx.mock
async def test_a_second_poll_stops_at_the_first_already_seen_review() -> None:
    seen_at = NOW - timedelta(hours=3)
    cursor = json.dumps({"newest": seen_at.isoformat(), "ids": ["seen"]})
    reviews = [
        review("new", NOW - timedelta(minutes=10)),
        review("seen", seen_at),
        review("old", NOW - timedelta(hours=4)),
    ]
    route = respx.get(URL).mock(return_value=httpx.Response(200, json=page(reviews, 200)))

    fetched = await yelp.fetch(httpx.AsyncClient(), make_settings(), cursor, NOW)

    assert [m.external_id for m in fetched.mentions] == ["new"]
    assert route.call_count == 1


@respx.mock
async def test_it_pages_by_offset_and_resumes_where_max_pages_stopped_it() -> None:
    cursor = json.dumps({"newest": (NOW - timedelta(days=1)).isoformat(), "ids": []})
    everything = [review(f"r{i}", NOW - timedelta(minutes=i)) for i in range(5)]

    def respond(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        return httpx.Response(200, json=page(everything[offset : offset + 2], 5))

    route = respx.get(URL).mock(side_effect=respond)
    short = make_settings(page_size=2, max_pages=2)

    first = await yelp.fetch(httpx.AsyncClient(), short, cursor, NOW)
    second = await yelp.fetch(httpx.AsyncClient(), short, first.cursor, NOW)

    assert [m.external_id for m in first.mentions] == ["r0", "r1", "r2", "r3"]
    assert json.loads(first.cursor or "")["resume"]["at"] == 4
    assert json.loads(first.cursor or "")["newest"] == (NOW - timedelta(days=1)).isoformat()
    assert [m.external_id for m in second.mentions] == ["r4"]
    assert json.loads(second.cursor or "") == {"newest": NOW.isoformat(), "ids": ["r0"]}
    assert [c.request.url.params["offset"] for c in route.calls] == ["0", "2", "4"]


@respx.mock
async def test_it_raises_a_permanent_fetch_error_for_an_unknown_business() -> None:
    respx.get(URL).mock(
        return_value=httpx.Response(404, content=fixture("error_business_not_found.json"))
    )

    with pytest.raises(FetchError) as caught:
        await yelp.fetch(httpx.AsyncClient(), make_settings(), None, NOW)

    assert not caught.value.retryable
    assert "test-key" not in str(caught.value) + caught.value.snippet + caught.value.detail


@respx.mock
async def test_it_waits_for_the_daily_reset_when_the_daily_allowance_is_spent() -> None:
    reset = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=5)
    respx.get(URL).mock(
        return_value=httpx.Response(
            429,
            headers={
                "RateLimit-DailyLimit": "300",
                "RateLimit-Remaining": "0",
                "RateLimit-ResetTime": reset.isoformat(),
            },
            content=fixture("error_access_limit_reached.json"),
        )
    )

    with pytest.raises(FetchError) as caught:
        await yelp.fetch(httpx.AsyncClient(), make_settings(), None, NOW)

    assert caught.value.retryable
    assert caught.value.retry_after is not None
    assert 5 * 3600 - 60 < caught.value.retry_after <= 5 * 3600


@respx.mock
async def test_it_leaves_the_wait_to_the_scheduler_on_a_per_second_429() -> None:
    respx.get(URL).mock(
        return_value=httpx.Response(
            429,
            headers={"RateLimit-Remaining": "250", "RateLimit-ResetTime": NOW.isoformat()},
            content=fixture("error_too_many_requests.json"),
        )
    )

    with pytest.raises(FetchError) as caught:
        await yelp.fetch(httpx.AsyncClient(), make_settings(), None, NOW)

    assert caught.value.retryable
    assert caught.value.retry_after is None
    assert "TOO_MANY_REQUESTS_PER_SECOND" in caught.value.detail
