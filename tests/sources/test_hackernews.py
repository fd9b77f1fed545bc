import json
from datetime import UTC, datetime

import httpx
import pytest
import respx
from tests.conftest import fixture_bytes

from emberwatch.errors import FetchError, ParseError
from emberwatch.sources import hackernews

NOW = datetime(2026, 11, 20, 13, tzinfo=UTC)
API = "https://hn.algolia.com/api/v1/search_by_date"


def settings(**overrides):
    return hackernews.Settings(name="hn", type="hackernews", query="acme", **overrides)


def test_it_maps_stories_and_comments():
    comment, story = hackernews.parse(fixture_bytes("hackernews", "search_by_date.json"))
    assert story.external_id == "41000002"
    assert story.url == "https://news.ycombinator.com/item?id=41000002"
    assert (story.likes, story.replies, story.reposts) == (60, 25, None)
    assert story.published_at == datetime.fromtimestamp(1795176000, tz=UTC)
    assert story.text == ""
    assert comment.title == "Re: Acme blames courier for delivery delay"
    assert (
        comment.text
        == "Same with Acme here: order #A-51022 still missing.\nNo reply to two tickets."
    )
    assert comment.likes is None and comment.author == "kettle_fan"


def test_an_empty_page_is_no_mentions():
    assert hackernews.parse(fixture_bytes("hackernews", "empty.json")) == []


@pytest.mark.parametrize(
    "body",
    [
        b"<html>502 Bad Gateway</html>",
        b'{"hits": {}}',
        b'{"hits": [{"title": "no id"}]}',
        b'{"hits": [',
        b"[]",
    ],
)
def test_garbage_and_schema_drift_raise_parse_error(body):
    with pytest.raises(ParseError):
        hackernews.parse(body)


def page(hits, number, pages):
    return {"hits": hits, "page": number, "nbPages": pages, "hitsPerPage": 2}


def hit(object_id, created):
    return {
        "objectID": str(object_id),
        "created_at_i": created,
        "title": "Acme",
        "author": "a",
        "points": 1,
    }


@respx.mock
async def test_it_pages_until_caught_up_and_advances_the_cursor():
    route = respx.get(API).mock(
        side_effect=[
            httpx.Response(200, json=page([hit(3, 300), hit(2, 200)], 0, 2)),
            httpx.Response(200, json=page([hit(1, 100)], 1, 2)),
        ]
    )
    async with httpx.AsyncClient() as client:
        fetched = await hackernews.fetch(client, settings(), json.dumps({"since": 50}), NOW)
    assert [m.external_id for m in fetched.mentions] == ["3", "2", "1"]
    assert json.loads(fetched.cursor) == {"since": 300}
    assert route.calls[0].request.url.params["numericFilters"] == "created_at_i>=50"
    assert route.calls[1].request.url.params["page"] == "1"


@respx.mock
async def test_stopping_at_max_pages_keeps_the_old_cursor_so_nothing_is_skipped():
    respx.get(API).mock(return_value=httpx.Response(200, json=page([hit(3, 300)], 0, 5)))
    async with httpx.AsyncClient() as client:
        fetched = await hackernews.fetch(
            client, settings(max_pages=1), json.dumps({"since": 50}), NOW
        )
    assert json.loads(fetched.cursor) == {"since": 50}
    assert "backlog remains" in fetched.notes[0]


@respx.mock
async def test_first_poll_backfills_the_configured_window():
    route = respx.get(API).mock(return_value=httpx.Response(200, json=page([], 0, 0)))
    async with httpx.AsyncClient() as client:
        await hackernews.fetch(client, settings(backfill="2h"), None, NOW)
    since = int(NOW.timestamp()) - 7200
    assert route.calls.last.request.url.params["numericFilters"] == f"created_at_i>={since}"


@respx.mock
async def test_a_5xx_is_retryable_and_names_the_step():
    respx.get(API).mock(return_value=httpx.Response(503, text="<html>upstream down</html>"))
    async with httpx.AsyncClient() as client:
        with pytest.raises(FetchError, match=r"hn: GET search_by_date page 0: HTTP 503") as caught:
            await hackernews.fetch(client, settings(), None, NOW)
    assert caught.value.retryable and "upstream down" in caught.value.snippet


@respx.mock
async def test_an_html_body_with_200_is_a_parse_error():
    respx.get(API).mock(return_value=httpx.Response(200, text="<html>captcha</html>"))
    async with httpx.AsyncClient() as client:
        with pytest.raises(ParseError, match="captcha"):
            await hackernews.fetch(client, settings(), None, NOW)
