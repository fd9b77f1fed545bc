"""The bluesky connector: parsing recorded PostViews, polling with respx, refresh batching."""

from __future__ import annotations

import json
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
from emberwatch.sources import bluesky

FIXTURES = Path(__file__).parent.parent / "fixtures" / "bluesky"
NOW = datetime(2024, 11, 5, 10, 30, tzinfo=UTC)
PUBLIC = "https://public.api.bsky.app"
PDS = "https://bsky.social"
SEARCH = "/xrpc/app.bsky.feed.searchPosts"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def make_settings(**overrides: Any) -> bluesky.Settings:
    values: dict[str, Any] = {"name": "acme-bluesky", "type": "bluesky", "query": "acme"}
    values.update(overrides)
    return bluesky.Settings(**values)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def post(rkey: str, at: datetime) -> dict[str, Any]:
    return {
        "uri": f"at://did:plc:abc/app.bsky.feed.post/{rkey}",
        "cid": "bafyrei",
        "author": {"did": "did:plc:abc", "handle": "someone.bsky.social"},
        "record": {"$type": "app.bsky.feed.post", "text": f"post {rkey}", "createdAt": iso(at)},
        "indexedAt": iso(at),
    }


def results(*posts: dict[str, Any], more: bool = False) -> httpx.Response:
    body: dict[str, Any] = {"posts": list(posts)}
    if more:
        body["cursor"] = str(len(posts))
    return httpx.Response(200, json=body)


@pytest.fixture(autouse=True)
def _forget_sessions() -> None:
    bluesky._sessions.clear()


# -- parse ---------------------------------------------------------------------------------


def test_it_maps_a_post_view() -> None:
    first = bluesky.parse(fixture("search_latest.json"))[0]

    assert first == Mention(
        source="bluesky",
        external_id="at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3lab2cd7ypk2s",
        url="https://bsky.app/profile/carol.bsky.social/post/3lab2cd7ypk2s",
        author="carol.bsky.social",
        author_followers=None,
        title=None,
        text='Acme billed me twice & support says "soon" <3 weeks later>. Anyone else? #acme',
        published_at=datetime(2024, 11, 5, 10, 20, 11, 482000, tzinfo=UTC),
        likes=44,
        reposts=9 + 3,
        replies=6,
        thread="bluesky:post:at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3lab2cd7ypk2s",
    )


def test_it_maps_repost_and_quote_counts_to_reposts_even_without_quotes() -> None:
    second = bluesky.parse(fixture("search_latest.json"))[1]

    assert second.reposts == 0
    assert second.text == "Заказал у Acme — пришло сломанное. Ни ответа, ни привета. 😤"


def test_it_links_by_did_when_the_handle_is_invalid_and_leaves_counts_none() -> None:
    third = bluesky.parse(fixture("search_latest.json"))[2]

    assert third.author == "did:plc:4nysgz5dc2jzbmxbpiskoqg7"
    assert (
        third.url == "https://bsky.app/profile/did:plc:4nysgz5dc2jzbmxbpiskoqg7/post/3lab27vdyxs2k"
    )
    assert (third.likes, third.reposts, third.replies) == (None, None, None)


def test_it_falls_back_to_indexed_at_when_created_at_is_malformed() -> None:
    view = post("x", NOW)
    view["record"]["createdAt"] = "last tuesday"

    (mention,) = bluesky.parse(json.dumps({"posts": [view]}).encode())

    assert mention.published_at == NOW


def test_it_reads_an_empty_result_as_no_mentions() -> None:
    assert bluesky.parse(fixture("empty.json")) == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff\xfe\x00",
        b"<html><head><title>403 Forbidden</title></head></html>",
        fixture("search_latest.json")[:400],
        fixture("error_expired.json"),
        b'{"posts": {}}',
        b'{"posts": ["at://did:plc:abc/app.bsky.feed.post/1"]}',
        b'{"posts": [{"uri": "at://x", "likeCount": "44"}]}',
        b'{"posts": [{"uri": "at://x", "record": "hello"}]}',
        b'{"posts": [], "cursor": 3}',
    ],
    ids=[
        "empty",
        "binary",
        "html",
        "truncated",
        "xrpc-error",
        "posts-not-a-list",
        "post-not-an-object",
        "count-as-string",
        "record-as-string",
        "cursor-as-number",
    ],
)
def test_it_raises_parse_error_on_bodies_it_cannot_read(body: bytes) -> None:
    with pytest.raises(ParseError):
        bluesky.parse(body)


post_like = st.fixed_dictionaries(
    {"uri": st.text(max_size=40) | st.just("at://did:plc:a/app.bsky.feed.post/b")},
    optional={
        "author": json_values
        | st.fixed_dictionaries({}, optional={"did": json_values, "handle": json_values}),
        "record": json_values
        | st.fixed_dictionaries({}, optional={"text": json_values, "createdAt": json_values}),
        "indexedAt": json_values,
        "likeCount": json_values,
        "repostCount": json_values,
        "quoteCount": json_values,
        "replyCount": json_values,
    },
)


@settings(max_examples=200, deadline=None)
@given(json_values | st.fixed_dictionaries({"posts": st.lists(post_like, max_size=4)}))
def test_parse_never_raises_anything_but_parse_error_on_json(value: Any) -> None:
    assert_parse_returns_mentions_or_raises_parse_error(bluesky, json.dumps(value).encode())


# -- fetch ---------------------------------------------------------------------------------


async def test_a_first_poll_searches_latest_since_the_backfill() -> None:
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=PUBLIC) as mock:
            route = mock.get(SEARCH).mock(
                return_value=httpx.Response(200, content=fixture("search_last_page.json"))
            )
            fetched = await bluesky.fetch(client, make_settings(), None, NOW)

    params = route.calls.last.request.url.params
    assert params["q"] == "acme"
    assert params["sort"] == "latest"
    assert params["limit"] == "100"
    assert params["since"] == iso(NOW - timedelta(hours=24, minutes=2))
    assert "until" not in params
    assert "cursor" not in params
    assert len(fetched.mentions) == 1
    assert json.loads(fetched.cursor or "") == {"since": "2024-11-05T10:05:44.900Z", "gap": None}


async def test_it_pages_with_until_instead_of_the_cursor() -> None:
    newer, older = NOW - timedelta(minutes=1), NOW - timedelta(minutes=5)
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=PUBLIC) as mock:
            route = mock.get(SEARCH).mock(
                side_effect=[
                    results(post("b", newer), post("a", older), more=True),
                    results(post("a", older), post("z", older - timedelta(minutes=1))),
                ]
            )
            fetched = await bluesky.fetch(client, make_settings(), None, NOW)

    second = route.calls[1].request.url.params
    assert second["until"] == iso(older + timedelta(milliseconds=1))
    assert "cursor" not in second
    assert [m.external_id.rsplit("/", 1)[1] for m in fetched.mentions] == ["b", "a", "z"]
    assert json.loads(fetched.cursor or "")["since"] == iso(newer)


async def test_a_second_poll_asks_only_since_the_newest_post_minus_overlap() -> None:
    newest = NOW - timedelta(minutes=1)
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=PUBLIC) as mock:
            route = mock.get(SEARCH).mock(side_effect=[results(post("a", newest)), results()])
            first = await bluesky.fetch(client, make_settings(), None, NOW)
            await bluesky.fetch(client, make_settings(), first.cursor, NOW)

    assert route.calls[1].request.url.params["since"] == iso(newest - timedelta(minutes=2))


async def test_it_keeps_since_behind_a_gap_and_finishes_the_gap_next_poll() -> None:
    since = NOW - timedelta(hours=1)
    cursor = json.dumps({"since": iso(since), "gap": None})
    t1, t2, t3 = (NOW - timedelta(minutes=m) for m in (1, 2, 3))
    settings_ = make_settings(max_pages=1, overlap="0s")
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=PUBLIC) as mock:
            route = mock.get(SEARCH).mock(
                side_effect=[
                    results(post("c", t1), post("b", t2), more=True),
                    results(post("a", t3)),
                ]
            )
            cut_short = await bluesky.fetch(client, settings_, cursor, NOW)
            resumed = await bluesky.fetch(client, settings_, cut_short.cursor, NOW)

    gap_until = iso(t2 + timedelta(milliseconds=1))
    assert json.loads(cut_short.cursor or "") == {
        "since": iso(since),
        "gap": {"until": gap_until, "top": iso(t1)},
    }
    assert cut_short.notes
    resume_params = route.calls[1].request.url.params
    assert (resume_params["since"], resume_params["until"]) == (iso(since), gap_until)
    assert [m.external_id.rsplit("/", 1)[1] for m in resumed.mentions] == ["a"]
    assert json.loads(resumed.cursor or "") == {"since": iso(t1), "gap": None}


async def test_it_signs_in_once_and_searches_through_the_pds() -> None:
    settings_ = make_settings(identifier="acme-monitor.bsky.social", app_password="abcd-efgh")
    # The fixture's token expires at 2024-11-05T11:40Z, after NOW.
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=PDS) as mock:
            session = mock.post("/xrpc/com.atproto.server.createSession").mock(
                return_value=httpx.Response(200, content=fixture("session.json"))
            )
            search = mock.get(SEARCH).mock(return_value=results())
            await bluesky.fetch(client, settings_, None, NOW)
            await bluesky.fetch(client, settings_, None, NOW)

    assert session.call_count == 1
    assert json.loads(session.calls.last.request.content) == {
        "identifier": "acme-monitor.bsky.social",
        "password": "abcd-efgh",
    }
    assert search.call_count == 2
    assert search.calls.last.request.headers["authorization"].startswith("Bearer eyJ0eXAi")


async def test_an_expired_token_is_dropped_so_the_next_poll_signs_in_again() -> None:
    settings_ = make_settings(identifier="acme-monitor.bsky.social", app_password="abcd-efgh")
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=PDS) as mock:
            session = mock.post("/xrpc/com.atproto.server.createSession").mock(
                return_value=httpx.Response(200, content=fixture("session.json"))
            )
            mock.get(SEARCH).mock(
                side_effect=[
                    httpx.Response(400, content=fixture("error_expired.json")),
                    results(),
                ]
            )
            with pytest.raises(FetchError) as caught:
                await bluesky.fetch(client, settings_, None, NOW)
            await bluesky.fetch(client, settings_, None, NOW)

    assert caught.value.retryable is False
    assert "abcd-efgh" not in str(caught.value)
    assert session.call_count == 2


async def test_it_treats_a_disabled_public_search_as_permanent() -> None:
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=PUBLIC) as mock:
            mock.get(SEARCH).mock(return_value=httpx.Response(403, text="Forbidden"))
            with pytest.raises(FetchError) as caught:
                await bluesky.fetch(client, make_settings(), None, NOW)

    assert caught.value.status == 403
    assert caught.value.retryable is False


# -- refresh -------------------------------------------------------------------------------


async def test_refresh_batches_60_uris_into_3_get_posts_requests() -> None:
    uris = [f"at://did:plc:abc/app.bsky.feed.post/{n}" for n in range(60)]
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=PUBLIC) as mock:
            route = mock.get("/xrpc/app.bsky.feed.getPosts").mock(return_value=results())
            await bluesky.refresh(client, make_settings(), uris, NOW)

    sizes = [len(call.request.url.params.get_list("uris")) for call in route.calls]
    assert sizes == [25, 25, 10]


async def test_refresh_returns_current_counts_and_omits_deleted_posts() -> None:
    kept = "at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3lab2cd7ypk2s"
    gone = "at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3deleted"
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=PUBLIC) as mock:
            mock.get("/xrpc/app.bsky.feed.getPosts").mock(
                return_value=httpx.Response(200, content=fixture("get_posts.json"))
            )
            refreshed = await bluesky.refresh(client, make_settings(), [kept, gone], NOW)

    assert [(m.external_id, m.likes, m.reposts, m.replies) for m in refreshed] == [
        (kept, 901, 120 + 33, 40)
    ]


# -- settings ------------------------------------------------------------------------------


def test_settings_require_an_app_password_with_an_identifier() -> None:
    with pytest.raises(ValidationError, match="app_password is required"):
        make_settings(identifier="acme-monitor.bsky.social")


def test_settings_require_an_identifier_with_an_app_password() -> None:
    with pytest.raises(ValidationError, match="identifier"):
        make_settings(app_password="abcd-efgh")


@pytest.mark.parametrize(
    "reply",
    [
        {"root": {"uri": "at://did:plc:a/app.bsky.feed.post/1"}, "parent": "oops"},
        {"root": None, "parent": {"uri": "at://did:plc:a/app.bsky.feed.post/1"}},
    ],
)
def test_a_reply_keys_on_its_root_or_else_its_parent(reply: dict[str, Any]) -> None:
    body = json.loads(fixture("search_latest.json"))
    body["posts"][0]["record"]["reply"] = reply
    post = bluesky.parse(json.dumps(body).encode())[0]
    assert post.thread == "bluesky:post:at://did:plc:a/app.bsky.feed.post/1"


@pytest.mark.parametrize("reply", ["not an object", {"root": {"uri": 7}}, {"root": {}}])
def test_a_malformed_reply_ref_is_read_as_no_ref_not_a_bad_page(reply: Any) -> None:
    # Records are free-form: one author's odd record must not lose the page.
    body = json.loads(fixture("search_latest.json"))
    body["posts"][0]["record"]["reply"] = reply
    post = bluesky.parse(json.dumps(body).encode())[0]
    assert post.thread == f"bluesky:post:{post.external_id}"
