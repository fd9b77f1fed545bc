from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
from emberwatch.sources import trustpilot

FIXTURES = Path(__file__).parent.parent / "fixtures" / "trustpilot"
BASE = "https://api.trustpilot.test"
UNIT = "507f191e810c19729de860ea"
URL = f"{BASE}/v1/business-units/{UNIT}/reviews"
NOW = datetime(2024, 3, 14, 9, 0, tzinfo=UTC)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def make_settings(**overrides: Any) -> trustpilot.Settings:
    values: dict[str, Any] = {
        "name": "acme-trustpilot",
        "type": "trustpilot",
        "business_unit_id": UNIT,
        "api_key": "test-key",
        "base_url": BASE,
    }
    values.update(overrides)
    return trustpilot.Settings(**values)


def review(review_id: str, created: datetime) -> dict[str, Any]:
    return {
        "id": review_id,
        "consumer": {"id": "c", "displayName": "C.", "numberOfReviews": 1},
        "stars": 4,
        "title": f"title {review_id}",
        "text": f"text {review_id}",
        "language": "en",
        "createdAt": created.isoformat().replace("+00:00", "Z"),
    }


# parse


def test_it_maps_every_documented_field() -> None:
    first = trustpilot.parse(fixture("reviews.json"))[0]

    assert first == Mention(
        source="trustpilot",
        external_id="65f1c2a9e1b2c3d4e5f60718",
        url="https://www.trustpilot.com/reviews/65f1c2a9e1b2c3d4e5f60718",
        author="Sam O'Neil",
        author_followers=None,
        title='Refund "processed" 6 weeks ago',
        text="Still no money back. Three emails & two calls, each time a different story.\nAvoid.",
        published_at=datetime(2024, 3, 13, 14, 5, 29, tzinfo=UTC),
        rating=1.0,
        likes=4,
    )


def test_it_keeps_non_ascii_text_and_maps_missing_likes_to_none() -> None:
    second = trustpilot.parse(fixture("reviews.json"))[1]

    assert second.author == "Łukasz Żółć"
    assert second.title == "Świetna obsługa"
    assert second.text == "Szybka dostawa, wszystko zgodnie z opisem. Polecam! 🙂"
    assert second.likes is None


def test_it_reads_a_review_by_a_deleted_consumer_without_a_title() -> None:
    third = trustpilot.parse(fixture("reviews.json"))[2]

    assert third.author is None
    assert third.title is None
    assert third.published_at == datetime(2024, 3, 10, 21, 17, 45, 123000, tzinfo=UTC)


def test_it_reads_an_empty_page() -> None:
    assert trustpilot.parse(fixture("empty_page.json")) == []


@pytest.mark.parametrize(
    "body",
    [
        b"<html><head><title>Access denied</title></head></html>",
        b"",
        b'{"reviews": [{"id": "a", "stars": ',
        fixture("error_unauthorized.json"),
        b'{"reviews": null}',
        b'{"reviews": [], "links": "next"}',
        b'{"reviews": [{"stars": 5}]}',
        b'{"reviews": [{"id": "a", "stars": "5"}]}',
        b'{"reviews": [{"id": "a", "numberOfLikes": 1.5}]}',
        b'{"reviews": [{"id": "a", "createdAt": "March"}]}',
        b'{"reviews": [{"id": "a", "createdAt": "9999-12-31T23:59:59-08:00"}]}',
        b'{"reviews": [{"id": "a", "createdAt": 1710000000}]}',
        b'{"reviews": [{"id": "a", "consumer": "bob"}]}',
        b'{"reviews": [{"id": "a", "text": ["x"]}]}',
    ],
)
def test_it_raises_parse_error_on_garbage_html_truncation_and_schema_drift(body: bytes) -> None:
    with pytest.raises(ParseError):
        trustpilot.parse(body)


KEYS = "reviews links id stars title text createdAt consumer displayName numberOfLikes"


@settings(max_examples=200)
@given(keyed_json(KEYS))
def test_parse_of_api_shaped_json_returns_mentions_or_raises_parse_error(
    data: Any,
) -> None:
    assert_parse_returns_mentions_or_raises_parse_error(trustpilot, json.dumps(data).encode())


# settings


def test_settings_require_an_api_key() -> None:
    with pytest.raises(ValidationError, match="api_key is required for Trustpilot"):
        make_settings(api_key=None)


# fetch


@respx.mock
async def test_it_asks_for_newest_first_with_the_key_in_a_header() -> None:
    route = respx.get(URL).mock(return_value=httpx.Response(200, json={"reviews": []}))

    await trustpilot.fetch(httpx.AsyncClient(), make_settings(language="all"), None, NOW)

    request = route.calls.last.request
    assert request.headers["apikey"] == "test-key"
    assert "test-key" not in str(request.url)
    assert request.url.params["orderBy"] == "createdat.desc"
    assert request.url.params["perPage"] == "100"
    assert request.url.params["page"] == "1"
    assert request.url.params["language"] == "all"


@respx.mock
async def test_a_first_poll_backfills_one_day() -> None:
    respx.get(URL).mock(return_value=httpx.Response(200, content=fixture("reviews.json")))

    fetched = await trustpilot.fetch(httpx.AsyncClient(), make_settings(), None, NOW)

    assert [m.external_id for m in fetched.mentions] == ["65f1c2a9e1b2c3d4e5f60718"]
    assert fetched.pages == 1


@respx.mock
async def test_a_second_poll_stops_at_the_first_already_seen_review() -> None:
    seen_at = NOW - timedelta(hours=6)
    cursor = json.dumps({"newest": seen_at.isoformat(), "ids": ["seen"]})
    reviews = [review(f"n{i}", NOW - timedelta(minutes=i)) for i in range(3)]
    reviews += [review("seen", seen_at), review("older", seen_at - timedelta(hours=1))]
    page1 = respx.get(URL, params={"page": "1"}).mock(
        return_value=httpx.Response(200, json={"reviews": reviews})
    )
    page2 = respx.get(URL, params={"page": "2"}).mock(
        return_value=httpx.Response(200, json={"reviews": []})
    )

    fetched = await trustpilot.fetch(httpx.AsyncClient(), make_settings(per_page=5), cursor, NOW)

    assert [m.external_id for m in fetched.mentions] == ["n0", "n1", "n2"]
    assert page1.call_count == 1
    assert page2.call_count == 0
    assert json.loads(fetched.cursor or "") == {"newest": NOW.isoformat(), "ids": ["n0"]}


@respx.mock
async def test_a_full_page_of_new_reviews_leads_to_the_next_page() -> None:
    cursor = json.dumps({"newest": (NOW - timedelta(hours=6)).isoformat(), "ids": []})
    page1 = [review(f"n{i}", NOW - timedelta(minutes=i)) for i in range(2)]
    respx.get(URL, params={"page": "1"}).mock(
        return_value=httpx.Response(200, json={"reviews": page1})
    )
    respx.get(URL, params={"page": "2"}).mock(
        return_value=httpx.Response(200, json={"reviews": [review("n2", NOW - timedelta(hours=1))]})
    )

    fetched = await trustpilot.fetch(httpx.AsyncClient(), make_settings(per_page=2), cursor, NOW)

    assert [m.external_id for m in fetched.mentions] == ["n0", "n1", "n2"]
    assert fetched.pages == 2


@respx.mock
async def test_it_resumes_at_the_next_page_when_max_pages_stops_it_short() -> None:
    watermark = NOW - timedelta(days=1)
    cursor = json.dumps({"newest": watermark.isoformat(), "ids": []})
    everything = [review(f"r{i}", NOW - timedelta(minutes=i)) for i in range(5)]

    def respond(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        return httpx.Response(200, json={"reviews": everything[(number - 1) * 2 : number * 2]})

    route = respx.get(URL).mock(side_effect=respond)
    short = make_settings(per_page=2, max_pages=1)

    first = await trustpilot.fetch(httpx.AsyncClient(), short, cursor, NOW)
    second = await trustpilot.fetch(httpx.AsyncClient(), short, first.cursor, NOW)
    third = await trustpilot.fetch(httpx.AsyncClient(), short, second.cursor, NOW)

    assert [m.external_id for m in first.mentions + second.mentions + third.mentions] == [
        "r0",
        "r1",
        "r2",
        "r3",
        "r4",
    ]
    assert json.loads(second.cursor or "")["newest"] == watermark.isoformat()
    assert json.loads(third.cursor or "") == {"newest": NOW.isoformat(), "ids": ["r0"]}
    assert [c.request.url.params["page"] for c in route.calls] == ["1", "2", "3"]


@respx.mock
async def test_it_raises_a_permanent_fetch_error_on_a_bad_key() -> None:
    respx.get(URL).mock(
        return_value=httpx.Response(401, content=fixture("error_unauthorized.json"))
    )

    with pytest.raises(FetchError) as caught:
        await trustpilot.fetch(httpx.AsyncClient(), make_settings(), None, NOW)

    assert not caught.value.retryable
    assert "test-key" not in str(caught.value) + caught.value.snippet + caught.value.detail
