"""How every connector's poll fails: the same HTTP failures, the same classification.

One row per connector (two for Google's two APIs): the settings of a first poll and the
URL its first request goes to. Failures that depend on an API's own error bodies or
headers (a bad key, YouTube's quota, X's rate-limit reset) are tested in the connector's
own module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import respx

from emberwatch.errors import FetchError, ParseError
from emberwatch.sources import CONNECTORS as REGISTERED
from emberwatch.sources import (
    appstore,
    bluesky,
    google_places,
    hackernews,
    mastodon,
    reddit,
    rss,
    trustpilot,
    x,
    yelp,
    youtube,
)

NOW = datetime(2024, 5, 2, 18, 0, tzinfo=UTC)
FIXTURES = Path(__file__).parent.parent / "fixtures"


@dataclass(frozen=True)
class Connector:
    module: ModuleType
    settings: dict[str, Any]
    first_url: str

    async def fetch(self) -> None:
        settings = self.module.Settings(name="acme", type=self.module.TYPE, **self.settings)
        async with httpx.AsyncClient() as client:
            await self.module.fetch(client, settings, None, NOW)


PLACE = "ChIJN1t_tDeuEmsRUsoyG83frY4"
CONNECTORS = {
    "appstore": Connector(
        appstore,
        {"app_id": "1234567890", "base_url": "https://itunes.apple.test"},
        "https://itunes.apple.test/us/rss/customerreviews/page=1/id=1234567890"
        "/sortby=mostrecent/json",
    ),
    "bluesky": Connector(
        bluesky,
        {"query": "acme", "base_url": "https://bsky.test"},
        "https://bsky.test/xrpc/app.bsky.feed.searchPosts",
    ),
    "google_places": Connector(
        google_places,
        {"place_id": PLACE, "api_key": "test-key", "base_url": "https://places.googleapis.test"},
        f"https://places.googleapis.test/v1/places/{PLACE}",
    ),
    "google_places_legacy": Connector(
        google_places,
        {
            "place_id": PLACE,
            "api": "legacy",
            "api_key": "test-key",
            "legacy_base_url": "https://maps.googleapis.test",
        },
        "https://maps.googleapis.test/maps/api/place/details/json",
    ),
    "hackernews": Connector(
        hackernews,
        {"query": "acme", "base_url": "https://hn.test"},
        "https://hn.test/api/v1/search_by_date",
    ),
    "mastodon": Connector(
        mastodon,
        {"hashtag": "acme", "base_url": "https://mastodon.test"},
        "https://mastodon.test/api/v1/timelines/tag/acme",
    ),
    "reddit": Connector(
        reddit,
        {"query": "acme", "base_url": "https://reddit.test"},
        "https://reddit.test/search.json",
    ),
    "rss": Connector(rss, {"url": "https://news.test/feed.xml"}, "https://news.test/feed.xml"),
    "trustpilot": Connector(
        trustpilot,
        {
            "business_unit_id": "507f191e810c19729de860ea",
            "api_key": "test-key",
            "base_url": "https://api.trustpilot.test",
        },
        "https://api.trustpilot.test/v1/business-units/507f191e810c19729de860ea/reviews",
    ),
    "x": Connector(
        x,
        {"query": "acme", "bearer_token": "test-token", "base_url": "https://x.test"},
        "https://x.test/2/tweets/search/recent",
    ),
    "yelp": Connector(
        yelp,
        {"business_id": "acme-coffee", "api_key": "test-key", "base_url": "https://api.yelp.test"},
        "https://api.yelp.test/v3/businesses/acme-coffee/reviews",
    ),
    "youtube": Connector(
        youtube,
        {
            "video_id": "dQw4w9WgXcQ",
            "api_key": "test-key",
            "base_url": "https://yt.googleapis.test",
        },
        "https://yt.googleapis.test/youtube/v3/commentThreads",
    ),
}
GARBAGE = {
    "html": b"<html><body>maintenance</html>",
    "binary": b"\x00\xffnot json",
    "truncated": b'{"reviews": [{"id": "a"',
    "recorded_error_page": (FIXTURES / "appstore" / "error_page.html").read_bytes(),
}

each_connector = pytest.mark.parametrize("connector", CONNECTORS.values(), ids=list(CONNECTORS))


@each_connector
@respx.mock
async def test_it_raises_a_retryable_fetch_error_with_retry_after_on_429(
    connector: Connector,
) -> None:
    respx.get(connector.first_url).mock(
        return_value=httpx.Response(429, headers={"Retry-After": "120"})
    )

    with pytest.raises(FetchError) as caught:
        await connector.fetch()

    assert caught.value.retryable
    assert caught.value.status == 429
    assert caught.value.retry_after == 120.0


@each_connector
@pytest.mark.parametrize("status", [500, 502, 503])
@respx.mock
async def test_it_raises_a_retryable_fetch_error_on_5xx(connector: Connector, status: int) -> None:
    respx.get(connector.first_url).mock(return_value=httpx.Response(status, text="<html>down"))

    with pytest.raises(FetchError) as caught:
        await connector.fetch()

    assert caught.value.retryable
    assert caught.value.status == status


@each_connector
@respx.mock
async def test_it_turns_a_timeout_into_a_fetch_error(connector: Connector) -> None:
    respx.get(connector.first_url).mock(side_effect=httpx.ReadTimeout("slow"))

    with pytest.raises(FetchError, match="timed out") as caught:
        await connector.fetch()

    assert caught.value.retryable


@each_connector
@pytest.mark.parametrize("body", GARBAGE.values(), ids=list(GARBAGE))
@respx.mock
async def test_it_raises_parse_error_on_a_garbage_body_with_status_200(
    connector: Connector, body: bytes
) -> None:
    respx.get(connector.first_url).mock(return_value=httpx.Response(200, content=body))

    with pytest.raises(ParseError):
        await connector.fetch()


def test_every_registered_connector_has_a_row() -> None:
    assert {c.module.TYPE for c in CONNECTORS.values()} == set(REGISTERED)
