"""The reddit connector: parsing recorded listings, polling with respx, refresh batching."""

from __future__ import annotations

import json
from datetime import UTC, datetime
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
from emberwatch.sources import reddit

FIXTURES = Path(__file__).parent.parent / "fixtures" / "reddit"
NOW = datetime(2024, 11, 5, 10, 30, tzinfo=UTC)
SITE = "https://www.reddit.com"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def make_settings(**overrides: Any) -> reddit.Settings:
    values: dict[str, Any] = {"name": "acme-reddit", "type": "reddit", "query": "acme"}
    values.update(overrides)
    return reddit.Settings(**values)


def post(post_id: str, created: float) -> dict[str, Any]:
    return {
        "kind": "t3",
        "data": {
            "id": post_id,
            "name": f"t3_{post_id}",
            "title": f"post {post_id}",
            "selftext": "",
            "author": "someone",
            "permalink": f"/r/acme/comments/{post_id}/post/",
            "created_utc": created,
            "score": 1,
            "num_comments": 0,
        },
    }


def listing(*children: dict[str, Any], after: str | None = None) -> httpx.Response:
    return httpx.Response(
        200,
        json={"kind": "Listing", "data": {"after": after, "before": None, "children": children}},
    )


@pytest.fixture(autouse=True)
def _forget_tokens() -> None:
    reddit._tokens.clear()


# -- parse ---------------------------------------------------------------------------------


def test_it_maps_a_post_from_search_results() -> None:
    first = reddit.parse(fixture("search_new.json"))[0]

    assert first == Mention(
        source="reddit",
        external_id="t3_1gk4a9z",
        url="https://www.reddit.com/r/smallbusiness/comments/1gk4a9z/acme_support_ghosted_me/",
        author="tired_customer_42",
        author_followers=None,
        title="Acme support ghosted me for 3 weeks & now charges twice",
        text='Ordered a widget, got billed twice. Support says "working on it" <sigh>',
        published_at=datetime(2024, 11, 5, 9, 46, 40, tzinfo=UTC),
        likes=57,
        reposts=2,
        replies=23,
        thread="reddit:post:1gk4a9z",
    )


def test_it_maps_deleted_authors_to_none_and_keeps_non_ascii_text() -> None:
    second = reddit.parse(fixture("search_new.json"))[1]

    assert second.author is None
    assert second.title == "Acme über alles? Erfahrungen mit dem Kundendienst 🇩🇪"
    assert second.url == "https://www.reddit.com/r/de/comments/1gk3m2b/acme_über_alles/"


def test_it_blanks_removed_text_and_leaves_missing_counts_as_none() -> None:
    third = reddit.parse(fixture("search_new.json"))[2]

    assert third.text == ""
    assert third.replies is None
    assert third.reposts is None
    assert third.likes == 0
    assert third.published_at == datetime(2024, 11, 5, 4, 13, 20, tzinfo=UTC)


def test_it_titles_comments_after_their_post() -> None:
    live, removed = reddit.parse(fixture("subreddit_comments.json"))

    assert live.external_id == "t1_lvn2c7d"
    assert live.title == "Re: Acme support ghosted me for 3 weeks & now charges twice"
    assert live.text == "Same here > 2 weeks. Filed a chargeback — worked for me."
    assert live.likes == 12
    assert live.replies is None
    assert removed.author is None
    assert removed.text == ""
    assert removed.likes == -3


def test_it_reads_an_empty_listing_as_no_mentions() -> None:
    assert reddit.parse(fixture("empty.json")) == []


def test_it_skips_children_of_other_kinds() -> None:
    body = json.dumps(
        {
            "kind": "Listing",
            "data": {"after": None, "children": [{"kind": "more", "data": {"count": 3}}]},
        }
    ).encode()

    assert reddit.parse(body) == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x00\xff garbage",
        b"<!doctype html><html><body>Too Many Requests</body></html>",
        fixture("search_new.json")[:300],
        b'{"kind": "t3", "data": {}}',
        b'{"kind": "Listing", "data": {"children": {}}}',
        b'{"kind": "Listing", "data": {"children": [{"kind": "t3", "data": {"id": 5}}]}}',
        b'{"kind": "Listing", "data": {"children": [{"kind": "t3", "data": {"id": "a",'
        b' "score": "57"}}]}}',
        b'{"kind": "Listing", "data": {"children": [{"kind": "t3", "data": {"id": "a",'
        b' "created_utc": 1e300}}]}}',
    ],
    ids=[
        "empty",
        "binary",
        "html",
        "truncated",
        "not-a-listing",
        "children-not-a-list",
        "id-not-a-string",
        "score-not-a-number",
        "time-out-of-range",
    ],
)
def test_it_raises_parse_error_on_bodies_it_cannot_read(body: bytes) -> None:
    with pytest.raises(ParseError):
        reddit.parse(body)


thing_data = st.dictionaries(
    st.sampled_from(
        [
            *("id", "name", "title", "selftext", "body", "author", "permalink", "created_utc"),
            *("score", "num_comments", "num_crossposts", "link_title"),
        ]
    ),
    json_values,
)
listings = st.builds(
    lambda kinds, datas, after: {
        "kind": "Listing",
        "data": {
            "after": after,
            "children": [{"kind": k, "data": d} for k, d in zip(kinds, datas, strict=False)],
        },
    },
    st.lists(st.sampled_from(["t1", "t3", "more"]), max_size=4),
    st.lists(thing_data, max_size=4),
    json_values,
)


@settings(max_examples=200, deadline=None)
@given(json_values | listings)
def test_parse_never_raises_anything_but_parse_error_on_json(value: Any) -> None:
    assert_parse_returns_mentions_or_raises_parse_error(reddit, json.dumps(value).encode())


# -- fetch ---------------------------------------------------------------------------------


async def test_a_first_poll_searches_newest_first_and_stops_at_the_backfill() -> None:
    old = NOW.timestamp() - 2 * 86400
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=SITE) as mock:
            route = mock.get("/search.json").mock(
                return_value=listing(
                    post("c", NOW.timestamp() - 60),
                    post("b", NOW.timestamp() - 120),
                    post("a", old),
                )
            )
            fetched = await reddit.fetch(client, make_settings(), None, NOW)

    assert [m.external_id for m in fetched.mentions] == ["t3_c", "t3_b"]
    params = route.calls.last.request.url.params
    assert params["q"] == "acme"
    assert params["sort"] == "new"
    assert params["limit"] == "100"
    assert "after" not in params
    assert route.calls.last.request.headers["user-agent"].startswith("python:emberwatch")
    assert json.loads(fetched.cursor or "") == {"since": NOW.timestamp() - 60, "gap": None}


async def test_it_pages_with_after_until_it_reaches_items_it_has_seen() -> None:
    since = NOW.timestamp() - 3600
    cursor = json.dumps({"since": since, "gap": None})
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=SITE) as mock:
            route = mock.get("/search.json").mock(
                side_effect=[
                    listing(post("d", since + 300), post("c", since + 200), after="t3_c"),
                    listing(post("b", since + 100), post("a", since - 500), after="t3_a"),
                ]
            )
            fetched = await reddit.fetch(client, make_settings(overlap="0s"), cursor, NOW)

    assert [m.external_id for m in fetched.mentions] == ["t3_d", "t3_c", "t3_b"]
    assert route.call_count == 2
    assert route.calls[1].request.url.params["after"] == "t3_c"
    assert fetched.pages == 2
    assert json.loads(fetched.cursor or "")["since"] == since + 300


async def test_a_second_poll_asks_only_for_what_is_new() -> None:
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=SITE) as mock:
            route = mock.get("/search.json").mock(
                side_effect=[
                    listing(post("b", NOW.timestamp() - 600), post("a", NOW.timestamp() - 900)),
                    listing(
                        post("c", NOW.timestamp() - 10),
                        post("b", NOW.timestamp() - 600),
                        post("a", NOW.timestamp() - 900),
                    ),
                ]
            )
            first = await reddit.fetch(client, make_settings(overlap="0s"), None, NOW)
            second = await reddit.fetch(client, make_settings(overlap="0s"), first.cursor, NOW)

    assert [m.external_id for m in first.mentions] == ["t3_b", "t3_a"]
    assert [m.external_id for m in second.mentions] == ["t3_c", "t3_b"]
    assert route.call_count == 2


async def test_it_keeps_the_cursor_behind_a_gap_and_resumes_it_next_poll() -> None:
    since = NOW.timestamp() - 3600
    cursor = json.dumps({"since": since, "gap": None})
    settings_ = make_settings(max_pages=1, overlap="0s")
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=SITE) as mock:
            route = mock.get("/search.json").mock(
                side_effect=[
                    listing(post("f", since + 600), post("e", since + 500), after="t3_e"),
                    listing(post("d", since + 400), post("c", since - 1), after="t3_c"),
                ]
            )
            cut_short = await reddit.fetch(client, settings_, cursor, NOW)
            resumed = await reddit.fetch(client, settings_, cut_short.cursor, NOW)

    assert json.loads(cut_short.cursor or "") == {
        "since": since,
        "gap": {"after": "t3_e", "top": since + 600},
    }
    assert cut_short.notes
    assert route.calls[1].request.url.params["after"] == "t3_e"
    assert [m.external_id for m in resumed.mentions] == ["t3_d"]
    assert json.loads(resumed.cursor or "") == {"since": since + 600, "gap": None}


@pytest.mark.parametrize(
    ("mode", "path"),
    [("new", "/r/acme/new.json"), ("comments", "/r/acme/comments.json")],
)
async def test_it_reads_a_subreddits_newest_posts_or_comments(mode: str, path: str) -> None:
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=SITE) as mock:
            route = mock.get(path).mock(
                side_effect=[
                    httpx.Response(200, content=fixture("subreddit_comments.json")),
                    httpx.Response(200, content=fixture("empty.json")),
                ]
            )
            settings_ = make_settings(mode=mode, query=None, subreddit="acme")
            fetched = await reddit.fetch(client, settings_, None, NOW)

    assert route.calls[1].request.url.params["after"] == "t1_lvn0a11"
    assert len(fetched.mentions) == 2


async def test_a_subreddit_search_restricts_to_the_subreddit() -> None:
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=SITE) as mock:
            route = mock.get("/r/acme/search.json").mock(return_value=listing())
            await reddit.fetch(client, make_settings(subreddit="acme"), None, NOW)

    assert route.calls.last.request.url.params["restrict_sr"] == "1"


async def test_it_uses_an_app_only_oauth_token_when_credentials_are_given() -> None:
    settings_ = make_settings(client_id="my-app", client_secret="s3cret")
    async with httpx.AsyncClient() as client:
        with respx.mock() as mock:
            token = mock.post(f"{SITE}/api/v1/access_token").mock(
                return_value=httpx.Response(200, content=fixture("token.json"))
            )
            search = mock.get("https://oauth.reddit.com/search").mock(return_value=listing())
            await reddit.fetch(client, settings_, None, NOW)
            await reddit.fetch(client, settings_, None, NOW)

    assert token.call_count == 1
    token_request = token.calls.last.request
    assert token_request.content == b"grant_type=client_credentials"
    assert token_request.headers["authorization"].startswith("Basic ")
    assert search.call_count == 2
    assert search.calls.last.request.headers["authorization"].startswith("bearer eyJ")


async def test_it_reports_a_refused_token_without_the_secret() -> None:
    settings_ = make_settings(client_id="my-app", client_secret="s3cret")
    async with httpx.AsyncClient() as client:
        with respx.mock() as mock:
            mock.post(f"{SITE}/api/v1/access_token").mock(
                return_value=httpx.Response(401, json={"message": "Unauthorized", "error": 401})
            )
            with pytest.raises(FetchError) as caught:
                await reddit.fetch(client, settings_, None, NOW)

    assert caught.value.retryable is False
    assert "s3cret" not in str(caught.value)


async def test_it_reads_reddits_ratelimit_reset_seconds_on_429() -> None:
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-used": "100", "x-ratelimit-reset": "42"}
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=SITE) as mock:
            mock.get("/search.json").mock(return_value=httpx.Response(429, headers=headers))
            with pytest.raises(FetchError) as caught:
                await reddit.fetch(client, make_settings(), None, NOW)

    assert caught.value.retry_after == 42.0


# -- refresh -------------------------------------------------------------------------------


async def test_refresh_batches_250_fullnames_into_3_info_requests() -> None:
    ids = [f"t3_{n:x}" for n in range(250)]
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=SITE) as mock:
            route = mock.get("/api/info.json").mock(
                return_value=httpx.Response(200, content=fixture("empty.json"))
            )
            await reddit.refresh(client, make_settings(), ids, NOW)

    sizes = [len(call.request.url.params["id"].split(",")) for call in route.calls]
    assert sizes == [100, 100, 50]


async def test_refresh_returns_current_scores_and_omits_what_reddit_lacks() -> None:
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=SITE) as mock:
            mock.get("/api/info.json").mock(
                return_value=httpx.Response(200, content=fixture("info.json"))
            )
            mentions = await reddit.refresh(
                client, make_settings(), ["t3_1gk4a9z", "t1_lvn2c7d", "t3_gone"], NOW
            )

    assert [(m.external_id, m.likes, m.replies) for m in mentions] == [
        ("t3_1gk4a9z", 812, 241),
        ("t1_lvn2c7d", 98, None),
    ]


# -- settings ------------------------------------------------------------------------------


def test_settings_require_a_query_to_search() -> None:
    with pytest.raises(ValidationError, match="query is required"):
        make_settings(query=None)


def test_settings_require_a_subreddit_for_new_posts() -> None:
    with pytest.raises(ValidationError, match="subreddit is required"):
        make_settings(mode="new", query=None)


def test_settings_require_both_oauth_credentials() -> None:
    with pytest.raises(ValidationError, match="client_secret is required"):
        make_settings(client_id="my-app")
