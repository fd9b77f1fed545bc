"""The x connector: parsing recorded v2 responses, polling with respx, refresh batching."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from tests.sources._properties import (
    assert_parse_returns_mentions_or_raises_parse_error,
    json_values,
)

from emberwatch.errors import FetchError, ParseError
from emberwatch.mention import Mention
from emberwatch.sources import x

FIXTURES = Path(__file__).parent.parent / "fixtures" / "x"
NOW = datetime(2024, 11, 5, 10, 30, tzinfo=UTC)
API = "https://api.x.com"
SEARCH = "/2/tweets/search/recent"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def make_settings(**overrides: Any) -> x.Settings:
    values: dict[str, Any] = {
        "name": "acme-x",
        "type": "x",
        "query": "acme -is:retweet",
        "bearer_token": "AAAA-bearer",
    }
    values.update(overrides)
    return x.Settings(**values)


def snowflake(moment: datetime, seq: int = 0) -> str:
    return str(((int(moment.timestamp() * 1000) - 1288834974657) << 22) | seq)


def id_at(minutes_ago: float) -> str:
    return snowflake(NOW - timedelta(minutes=minutes_ago))


def results(*ids: str, next_token: str | None = None) -> httpx.Response:
    meta: dict[str, Any] = {"result_count": len(ids)}
    if ids:
        meta.update(newest_id=max(ids, key=int), oldest_id=min(ids, key=int))
    if next_token:
        meta["next_token"] = next_token
    body: dict[str, Any] = {"meta": meta}
    if ids:
        body["data"] = [{"id": i, "text": f"post {i}", "author_id": "1"} for i in ids]
        body["includes"] = {"users": [{"id": "1", "username": "someone"}]}
    return httpx.Response(200, json=body)


# -- parse ---------------------------------------------------------------------------------


def test_it_maps_a_post_with_its_expanded_author() -> None:
    first = x.parse(fixture("search_recent.json"))[0]

    assert first == Mention(
        source="x",
        external_id="1853744343282618369",
        url="https://x.com/dana_rants/status/1853744343282618369",
        author="dana_rants",
        author_followers=2310,
        title=None,
        text="@AcmeSupport 3 weeks & no reply. Billed twice. This is <not> ok.",
        published_at=datetime(2024, 11, 5, 10, 21, 7, tzinfo=UTC),
        likes=88,
        reposts=14 + 3,
        replies=7,
        thread="x:conversation:1853744343282618369",
    )


def test_it_prefers_the_full_note_tweet_text_for_long_posts() -> None:
    second = x.parse(fixture("search_recent.json"))[1]

    assert second.text.endswith("Fin.")
    assert second.author == "leftacme"
    assert second.author_followers is None


def test_it_links_without_a_username_when_the_author_is_not_included() -> None:
    third = x.parse(fixture("search_recent.json"))[2]

    assert third.url == "https://x.com/i/web/status/1853738580308918272"
    assert third.author is None
    assert third.text == "アクメのサポート、対応が早くて助かった！"
    assert (third.likes, third.reposts, third.replies) == (None, None, None)


def test_it_reads_a_search_without_matches_as_no_mentions() -> None:
    assert x.parse(fixture("search_empty.json")) == []


def test_it_leaves_out_posts_the_lookup_could_not_find() -> None:
    (found,) = x.parse(fixture("lookup.json"))

    assert found.likes == 1200


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x1f\x8b\x08\x00",
        b"<html><body>Something went wrong</body></html>",
        fixture("search_recent.json")[:700],
        b'{"title": "Unauthorized", "detail": "Unauthorized"}',
        b'{"data": {"id": "1"}}',
        b'{"data": [{"id": 1853744343282618369}]}',
        b'{"data": [{"id": "abc"}]}',
        b'{"data": [{"id": "1", "public_metrics": {"like_count": "88"}}]}',
        b'{"data": [], "includes": {"users": [{"username": "no-id"}]}}',
        b'{"meta": {"result_count": 1, "next_token": 7}}',
        b'{"data": [{"id": "1", "created_at": "Tue Nov 05 10:21:07 +0000 2024"}]}',
    ],
    ids=[
        "empty",
        "binary",
        "html",
        "truncated",
        "problem-without-errors",
        "data-not-a-list",
        "numeric-id",
        "non-numeric-id",
        "metric-as-string",
        "user-without-id",
        "next-token-as-number",
        "v1-time-format",
    ],
)
def test_it_raises_parse_error_on_bodies_it_cannot_read(body: bytes) -> None:
    with pytest.raises(ParseError):
        x.parse(body)


metrics = st.fixed_dictionaries(
    {},
    optional={
        k: json_values for k in ("like_count", "retweet_count", "quote_count", "reply_count")
    },
)
post_like = st.fixed_dictionaries(
    {"id": st.from_regex(r"\A[0-9]{1,19}\Z") | json_values},
    optional={
        "text": json_values,
        "created_at": json_values,
        "author_id": json_values,
        "public_metrics": metrics | json_values,
        "note_tweet": json_values,
    },
)
body_like = st.fixed_dictionaries(
    {"data": st.lists(post_like, max_size=3)},
    optional={
        "includes": st.fixed_dictionaries(
            {"users": st.lists(json_values | st.fixed_dictionaries({"id": json_values}))}
        ),
        "meta": json_values,
    },
)


@settings(max_examples=200, deadline=None)
@given(json_values | body_like)
def test_parse_never_raises_anything_but_parse_error_on_json(value: Any) -> None:
    assert_parse_returns_mentions_or_raises_parse_error(x, json.dumps(value).encode())


# -- fetch ---------------------------------------------------------------------------------


async def test_a_first_poll_asks_for_the_backfill_window_with_author_expansions() -> None:
    newest = id_at(1)
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=API) as mock:
            route = mock.get(SEARCH).mock(return_value=results(newest, id_at(2)))
            fetched = await x.fetch(client, make_settings(), None, NOW)

    request = route.calls.last.request
    params = request.url.params
    assert request.headers["authorization"] == "Bearer AAAA-bearer"
    assert params["query"] == "acme -is:retweet"
    assert params["max_results"] == "100"
    assert params["start_time"] == "2024-11-04T10:30:00Z"
    assert params["expansions"] == "author_id"
    assert "public_metrics" in params["tweet.fields"].split(",")
    assert params["user.fields"] == "username,public_metrics"
    assert "since_id" not in params
    assert len(fetched.mentions) == 2
    assert json.loads(fetched.cursor or "") == {"since_id": newest, "start": None, "gap": None}


async def test_it_follows_next_token_until_the_results_run_out() -> None:
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=API) as mock:
            route = mock.get(SEARCH).mock(
                side_effect=[results(id_at(1), next_token="tok-2"), results(id_at(2))]
            )
            fetched = await x.fetch(client, make_settings(), None, NOW)

    assert route.calls[1].request.url.params["next_token"] == "tok-2"
    assert fetched.pages == 2
    assert len(fetched.mentions) == 2


async def test_a_second_poll_asks_only_for_posts_after_since_id() -> None:
    newest = id_at(5)
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=API) as mock:
            route = mock.get(SEARCH).mock(side_effect=[results(newest), results()])
            first = await x.fetch(client, make_settings(), None, NOW)
            second = await x.fetch(client, make_settings(), first.cursor, NOW)

    params = route.calls[1].request.url.params
    assert params["since_id"] == newest
    assert "start_time" not in params
    assert second.mentions == []
    assert json.loads(second.cursor or "")["since_id"] == newest


async def test_it_keeps_since_id_behind_a_gap_and_closes_it_with_until_id() -> None:
    since, top, oldest_read, rest = id_at(60), id_at(1), id_at(2), id_at(3)
    cursor = json.dumps({"since_id": since, "start": None, "gap": None})
    settings_ = make_settings(max_pages=1)
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=API) as mock:
            route = mock.get(SEARCH).mock(
                side_effect=[results(top, oldest_read, next_token="more"), results(rest)]
            )
            cut_short = await x.fetch(client, settings_, cursor, NOW)
            resumed = await x.fetch(client, settings_, cut_short.cursor, NOW)

    assert json.loads(cut_short.cursor or "") == {
        "since_id": since,
        "start": None,
        "gap": {"until_id": oldest_read, "top": top},
    }
    assert cut_short.notes
    params = route.calls[1].request.url.params
    assert (params["since_id"], params["until_id"]) == (since, oldest_read)
    assert "next_token" not in params
    assert [m.external_id for m in resumed.mentions] == [rest]
    assert json.loads(resumed.cursor or "") == {"since_id": top, "start": None, "gap": None}


async def test_a_cursor_older_than_the_search_window_restarts_at_its_edge() -> None:
    stale = snowflake(NOW - timedelta(days=9))
    cursor = json.dumps({"since_id": stale, "start": None, "gap": None})
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=API) as mock:
            route = mock.get(SEARCH).mock(return_value=results())
            fetched = await x.fetch(client, make_settings(), cursor, NOW)

    params = route.calls.last.request.url.params
    assert "since_id" not in params
    assert params["start_time"] == "2024-10-29T10:31:00Z"
    assert fetched.notes


async def test_it_reads_the_rate_limit_reset_header_on_429() -> None:
    reset = int(time.time()) + 600
    headers = {
        "x-rate-limit-limit": "450",
        "x-rate-limit-remaining": "0",
        "x-rate-limit-reset": str(reset),
    }
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=API) as mock:
            mock.get(SEARCH).mock(
                return_value=httpx.Response(429, headers=headers, content=fixture("error_429.json"))
            )
            with pytest.raises(FetchError) as caught:
                await x.fetch(client, make_settings(), None, NOW)

    assert caught.value.retry_after is not None
    assert 590 <= caught.value.retry_after <= 600


async def test_it_reports_an_invalid_request_as_permanent_with_the_problem_text() -> None:
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=API) as mock:
            mock.get(SEARCH).mock(
                return_value=httpx.Response(400, content=fixture("error_400.json"))
            )
            with pytest.raises(FetchError) as caught:
                await x.fetch(client, make_settings(), None, NOW)

    assert caught.value.retryable is False
    assert "since_id" in caught.value.snippet
    assert "AAAA-bearer" not in str(caught.value)


# -- refresh -------------------------------------------------------------------------------


async def test_refresh_batches_250_ids_into_3_lookups() -> None:
    ids = [str(1853700000000000000 + n) for n in range(250)]
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=API) as mock:
            route = mock.get("/2/tweets").mock(return_value=results())
            await x.refresh(client, make_settings(), ids, NOW)

    sizes = [len(call.request.url.params["ids"].split(",")) for call in route.calls]
    assert sizes == [100, 100, 50]
    assert route.calls.last.request.url.params["expansions"] == "author_id"


async def test_refresh_returns_current_metrics_and_omits_missing_posts() -> None:
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=API) as mock:
            mock.get("/2/tweets").mock(
                return_value=httpx.Response(200, content=fixture("lookup.json"))
            )
            refreshed = await x.refresh(
                client, make_settings(), ["1853744343282618369", "1853774000000000000"], NOW
            )

    assert [(m.external_id, m.likes, m.reposts, m.replies) for m in refreshed] == [
        ("1853744343282618369", 1200, 140 + 22, 61)
    ]


# -- settings ------------------------------------------------------------------------------


def test_settings_require_a_bearer_token() -> None:
    with pytest.raises(ValidationError, match="bearer_token is required for the X API"):
        make_settings(bearer_token=None)


def test_settings_never_show_the_bearer_token() -> None:
    assert "AAAA-bearer" not in repr(make_settings())
