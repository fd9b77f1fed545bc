import json
from datetime import UTC, datetime

import httpx
import pytest
import respx
from tests.conftest import fixture_bytes

from emberwatch.errors import FetchError, ParseError
from emberwatch.sources import rss

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def settings(**overrides):
    return rss.Settings(name="news", type="rss", url="https://feeds.example/acme.xml", **overrides)


def test_it_reads_google_alerts_atom_and_unwraps_redirect_links():
    first, second = rss.parse(fixture_bytes("rss", "google_alerts.atom"))
    assert first.url == "https://news.example.com/acme-delays"
    assert first.title == "Acme customers say deliveries are weeks late"
    assert first.text.startswith(
        "Several Acme customers report orders arriving weeks late & support"
    )
    assert first.author is None
    assert first.published_at == datetime(2026, 11, 20, 9, tzinfo=UTC)
    assert first.external_id == "tag:google.com,2013:googlealerts/feed:9876543210"
    assert second.title == "Café owner praises Acme kettles – «très bien»"
    assert second.published_at == datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    assert second.text.endswith("☕")


def test_it_reads_rss2_with_html_descriptions_and_missing_fields():
    recall, undated = rss.parse(fixture_bytes("rss", "news.rss"))
    assert recall.text == "Acme said the lid may crack.\n\nRefunds are offered."
    assert recall.author == "Jo Reporter"
    assert recall.published_at == datetime(2026, 11, 20, 13, tzinfo=UTC)
    assert (recall.likes, recall.reposts, recall.replies, recall.rating) == (None, None, None, None)
    assert undated.published_at is None
    assert undated.external_id == "https://news.example.com/no-guid"


def test_it_stores_an_rss2_author_by_name_not_email():
    # RSS 2.0's <author> is "email (name)". feedparser's own split mangles addresses whose
    # top-level domain is longer than four letters ("ple (Dana W."), so it is not used.
    authors = [m.author for m in rss.parse(fixture_bytes("rss", "reviews.rss"))]
    assert authors == ["maria.k", "Maria.K", "Dana W.", "tom.r@reviews.test"]


def test_it_stores_an_atom_author_by_name_when_an_email_comes_with_it():
    feed = (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        b"<entry><id>urn:1</id><title>Acme</title><author><name>Maria K</name>"
        b"<email>maria.k@reviews.example</email></author></entry></feed>"
    )
    assert rss.parse(feed)[0].author == "Maria K"


def test_an_empty_feed_is_no_mentions():
    assert rss.parse(fixture_bytes("rss", "empty.rss")) == []


@pytest.mark.parametrize(
    "body", [b"", b"<html><body>Login</body></html>", b'{"a": 1}', b"\xff\xfe\x00"]
)
def test_non_feeds_raise_parse_error(body):
    with pytest.raises(ParseError):
        rss.parse(body)


@respx.mock
async def test_fetch_sends_conditional_headers_and_handles_304():
    route = respx.get("https://feeds.example/acme.xml").mock(
        return_value=httpx.Response(304, headers={"ETag": '"v1"'})
    )
    async with httpx.AsyncClient() as client:
        cursor = json.dumps({"etag": '"v1"', "modified": "Fri, 20 Nov 2026 08:00:00 GMT"})
        fetched = await rss.fetch(client, settings(), cursor, NOW)
    assert fetched.mentions == [] and fetched.cursor is None
    assert route.calls.last.request.headers["If-None-Match"] == '"v1"'


@respx.mock
async def test_first_fetch_backfills_only_the_configured_window():
    respx.get("https://feeds.example/acme.xml").mock(
        return_value=httpx.Response(
            200, content=fixture_bytes("rss", "news.rss"), headers={"ETag": '"v2"'}
        )
    )
    async with httpx.AsyncClient() as client:
        fetched = await rss.fetch(client, settings(backfill="1h"), None, NOW)
    # The recall (13:00Z) is in the future of NOW-1h; the undated item is kept.
    assert [m.external_id for m in fetched.mentions] == [
        "https://news.example.com/acme-recall",
        "https://news.example.com/no-guid",
    ]
    assert json.loads(fetched.cursor)["etag"] == '"v2"'


@respx.mock
async def test_a_timeout_is_a_retryable_fetch_error():
    respx.get("https://feeds.example/acme.xml").mock(side_effect=httpx.ReadTimeout("slow"))
    async with httpx.AsyncClient() as client:
        with pytest.raises(FetchError, match="news: GET feed: timed out") as caught:
            await rss.fetch(client, settings(), None, NOW)
    assert caught.value.retryable
