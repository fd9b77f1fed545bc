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
from emberwatch.sources import google_places

FIXTURES = Path(__file__).parent.parent / "fixtures" / "google_places"
NEW_BASE = "https://places.googleapis.test"
LEGACY_BASE = "https://maps.googleapis.test"
PLACE = "ChIJN1t_tDeuEmsRUsoyG83frY4"
NEW_URL = f"{NEW_BASE}/v1/places/{PLACE}"
LEGACY_URL = f"{LEGACY_BASE}/maps/api/place/details/json"
NOW = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def make_settings(**overrides: Any) -> google_places.Settings:
    values: dict[str, Any] = {
        "name": "acme-google",
        "type": "google_places",
        "place_id": PLACE,
        "api_key": "test-key",
        "base_url": NEW_BASE,
        "legacy_base_url": LEGACY_BASE,
    }
    values.update(overrides)
    return google_places.Settings(**values)


def new_review(review_id: str, published: datetime) -> dict[str, Any]:
    return {
        "name": f"places/{PLACE}/reviews/{review_id}",
        "rating": 4,
        "text": {"text": f"text {review_id}", "languageCode": "en"},
        "authorAttribution": {"displayName": "Someone"},
        "publishTime": published.isoformat().replace("+00:00", "Z"),
    }


# parse: Places API (New)


def test_it_maps_every_documented_field_of_a_new_api_review() -> None:
    first = google_places.parse(fixture("new_place_details.json"))[0]

    assert first == Mention(
        source="google_places",
        external_id=f"places/{PLACE}/reviews/ChZDSUhNMG9nS0VJQ0FnSUNkMGZYLUxREAE",
        url=(
            "https://www.google.com/maps/reviews/data=!4m6!14m5!1m4!2m3!1sChZDSUhNMG9nS0VJQ0Fn"
            "SUNkMGZYLUxREAE!2m1!1s0x0:0x8e9e0f0e3d7a1b2c"
        ),
        author="Priya Raman",
        author_followers=None,
        title=None,
        text="Coffee was fine but the line took 25 minutes & nobody apologised.",
        published_at=datetime(2024, 4, 25, 8, 15, 31, 123456, tzinfo=UTC),
        rating=2.0,
    )


def test_it_falls_back_to_the_place_link_and_keeps_non_ascii_text() -> None:
    second = google_places.parse(fixture("new_place_details.json"))[1]

    assert second.url == "https://maps.google.com/?cid=10281119596374313554"
    assert second.author == "Jürgen Müller"
    assert second.text == "Der beste Flat White der Stadt – und sehr freundliches Personal!"


def test_it_reads_a_rating_only_review_without_text() -> None:
    third = google_places.parse(fixture("new_place_details.json"))[2]

    assert third.text == ""
    assert third.rating == 4.0


def test_it_reads_a_new_api_place_without_reviews_as_empty() -> None:
    assert google_places.parse(fixture("new_no_reviews.json")) == []
    assert google_places.parse(b"{}") == []


# parse: legacy


def test_it_maps_every_documented_field_of_a_legacy_review() -> None:
    first = google_places.parse(fixture("legacy_place_details.json"))[0]

    assert first.external_id.startswith("legacy:")
    assert len(first.external_id) == len("legacy:") + 32
    assert first.url == "https://maps.google.com/?cid=10281119596374313554"
    assert first.author == "Marco Rossi"
    assert first.text == 'Ordered online, arrived cold. Asked for a refund & was told "no".'
    assert first.published_at == datetime(2024, 5, 1, 10, 40, tzinfo=UTC)
    assert first.rating == 1.0


def test_it_derives_a_stable_distinct_id_for_legacy_reviews() -> None:
    once = google_places.parse(fixture("legacy_place_details.json"))
    again = google_places.parse(fixture("legacy_place_details.json"))

    assert [m.external_id for m in once] == [m.external_id for m in again]
    assert len({m.external_id for m in once}) == 3


def test_it_reads_an_anonymous_legacy_review_without_author_url() -> None:
    third = google_places.parse(fixture("legacy_place_details.json"))[2]

    assert third.author == "A Google User"
    assert third.text == ""
    assert third.published_at == datetime(2024, 4, 11, 1, 46, 40, tzinfo=UTC)


def test_it_reads_a_legacy_place_without_reviews_as_empty() -> None:
    assert google_places.parse(fixture("legacy_no_reviews.json")) == []


@pytest.mark.parametrize(
    "name", ["legacy_request_denied.json", "legacy_over_query_limit.json", "legacy_not_found.json"]
)
def test_it_refuses_a_legacy_body_with_a_non_ok_status(name: str) -> None:
    with pytest.raises(ParseError, match="status"):
        google_places.parse(fixture(name))


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE html><html><title>Error 404 (Not Found)!!1</title></html>",
        b"",
        b'{"reviews": [{"name": "x"',
        b"[]",
        b'{"reviews": {"name": "x"}}',
        b'{"reviews": [{"rating": 5}]}',
        b'{"reviews": [{"name": "x", "rating": "5"}]}',
        b'{"reviews": [{"name": "x", "publishTime": "soon"}]}',
        b'{"reviews": [{"name": "x", "publishTime": "9999-12-31T23:59:59-08:00"}]}',
        b'{"reviews": [{"name": "x", "text": "flat"}]}',
        b'{"reviews": [{"name": "x", "authorAttribution": {"displayName": 1}}]}',
        b'{"status": "OK", "result": {"reviews": [{"time": "1714560000"}]}}',
        b'{"status": "OK", "result": {"reviews": [{"time": 1e300}]}}',
        b'{"status": "OK", "result": []}',
        b'{"status": "SOMETHING_NEW"}',
    ],
)
def test_it_raises_parse_error_on_garbage_html_truncation_and_schema_drift(body: bytes) -> None:
    with pytest.raises(ParseError):
        google_places.parse(body)


KEYS = "reviews name text originalText authorAttribution displayName publishTime rating"
KEYS += " status result author_url author_name time url googleMapsUri"


@settings(max_examples=200)
@given(keyed_json(KEYS))
def test_parse_of_api_shaped_json_returns_mentions_or_raises_parse_error(
    data: Any,
) -> None:
    assert_parse_returns_mentions_or_raises_parse_error(google_places, json.dumps(data).encode())


# settings


def test_settings_require_an_api_key() -> None:
    with pytest.raises(ValidationError, match="api_key is required for Google Places"):
        make_settings(api_key=None)


# fetch: new


@respx.mock
async def test_it_sends_the_key_and_field_mask_as_headers_to_the_new_api() -> None:
    route = respx.get(NEW_URL).mock(return_value=httpx.Response(200, json={}))

    await google_places.fetch(httpx.AsyncClient(), make_settings(language="de"), None, NOW)

    request = route.calls.last.request
    assert request.headers["X-Goog-Api-Key"] == "test-key"
    assert request.headers["X-Goog-FieldMask"] == "reviews,googleMapsUri"
    assert request.url.params["languageCode"] == "de"
    assert "test-key" not in str(request.url)


@respx.mock
async def test_it_keeps_only_unseen_reviews_whatever_order_they_come_in() -> None:
    seen_at = NOW - timedelta(hours=5)
    cursor = json.dumps({"newest": seen_at.isoformat(), "ids": [f"places/{PLACE}/reviews/seen"]})
    reviews = [
        new_review("old", NOW - timedelta(days=9)),
        new_review("new", NOW - timedelta(hours=1)),
        new_review("seen", seen_at),
    ]
    respx.get(NEW_URL).mock(return_value=httpx.Response(200, json={"reviews": reviews}))

    fetched = await google_places.fetch(httpx.AsyncClient(), make_settings(), cursor, NOW)

    assert [m.external_id for m in fetched.mentions] == [f"places/{PLACE}/reviews/new"]
    assert json.loads(fetched.cursor or "")["newest"] == (NOW - timedelta(hours=1)).isoformat()
    assert fetched.notes == []


@respx.mock
async def test_it_warns_when_all_five_reviews_are_new() -> None:
    reviews = [new_review(f"r{i}", NOW - timedelta(minutes=i)) for i in range(5)]
    respx.get(NEW_URL).mock(return_value=httpx.Response(200, json={"reviews": reviews}))

    fetched = await google_places.fetch(httpx.AsyncClient(), make_settings(), None, NOW)

    assert len(fetched.mentions) == 5
    assert "missed" in fetched.notes[0]


@respx.mock
async def test_it_raises_a_permanent_fetch_error_when_the_new_api_denies_access() -> None:
    respx.get(NEW_URL).mock(
        return_value=httpx.Response(403, content=fixture("new_error_permission_denied.json"))
    )

    with pytest.raises(FetchError) as caught:
        await google_places.fetch(httpx.AsyncClient(), make_settings(), None, NOW)

    assert not caught.value.retryable


# fetch: legacy


@respx.mock
async def test_it_asks_the_legacy_api_for_the_newest_reviews() -> None:
    route = respx.get(LEGACY_URL).mock(
        return_value=httpx.Response(200, content=fixture("legacy_place_details.json"))
    )
    source = make_settings(api="legacy", backfill="3d")

    fetched = await google_places.fetch(httpx.AsyncClient(), source, None, NOW)

    params = route.calls.last.request.url.params
    assert params["place_id"] == PLACE
    assert params["fields"] == "reviews,url"
    assert params["reviews_sort"] == "newest"
    assert params["key"] == "test-key"
    assert [m.author for m in fetched.mentions] == ["Marco Rossi"]


@pytest.mark.parametrize(
    ("name", "retryable", "label"),
    [
        ("legacy_over_query_limit.json", True, "rate limited"),
        ("legacy_request_denied.json", False, "auth failed"),
        ("legacy_not_found.json", False, "not found"),
    ],
)
@respx.mock
async def test_it_classifies_a_legacy_non_ok_status_sent_with_http_200(
    name: str, retryable: bool, label: str
) -> None:
    respx.get(LEGACY_URL).mock(return_value=httpx.Response(200, content=fixture(name)))

    with pytest.raises(FetchError) as caught:
        await google_places.fetch(httpx.AsyncClient(), make_settings(api="legacy"), None, NOW)

    assert caught.value.retryable is retryable
    assert label in str(caught.value)
    assert "test-key" not in str(caught.value) + caught.value.snippet + caught.value.detail
