"""The mastodon connector: parsing recorded statuses, polling with respx, refresh batching."""

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
from emberwatch.sources import mastodon

FIXTURES = Path(__file__).parent.parent / "fixtures" / "mastodon"
NOW = datetime(2024, 11, 5, 10, 30, tzinfo=UTC)
INSTANCE = "https://mastodon.social"
TAG_PATH = "/api/v1/timelines/tag/acme"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def make_settings(**overrides: Any) -> mastodon.Settings:
    values: dict[str, Any] = {"name": "acme-mastodon", "type": "mastodon", "hashtag": "acme"}
    values.update(overrides)
    return mastodon.Settings(**values)


def status(status_id: int, minutes_ago: float = 5) -> dict[str, Any]:
    created = (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    return {
        "id": str(status_id),
        "created_at": created,
        "content": f"<p>status {status_id}</p>",
        "account": {"acct": "alice", "followers_count": 10},
    }


def page(*ids: int, prev: str | None = None) -> httpx.Response:
    headers = {}
    if prev:
        headers["Link"] = (
            f'<{INSTANCE}{TAG_PATH}?max_id=1>; rel="next", <{INSTANCE}{TAG_PATH}?min_id={prev}>;'
            ' rel="prev"'
        )
    return httpx.Response(200, json=[status(i) for i in ids], headers=headers)


# -- parse ---------------------------------------------------------------------------------


def test_it_maps_a_status_from_the_tag_timeline() -> None:
    first = mastodon.parse(fixture("tag_timeline.json"))[0]

    assert first == Mention(
        source="mastodon",
        external_id="113432119982311842",
        url="https://mastodon.social/@alice/113432119982311842",
        author="alice",
        author_followers=1520,
        title=None,
        text="Third outage this week at #acme & nobody from support answers. "
        "<3 to the on-call folks though.",
        published_at=datetime(2024, 11, 5, 10, 15, 22, tzinfo=UTC),
        likes=30,
        reposts=14,
        replies=4,
        thread="mastodon:status:113432119982311842",
    )


def test_it_adds_quotes_to_reblogs_for_reposts() -> None:
    first = mastodon.parse(fixture("tag_timeline.json"))[0]

    assert first.reposts == 12 + 2


def test_it_falls_back_to_the_uri_and_keeps_non_ascii_paragraphs() -> None:
    second = mastodon.parse(fixture("tag_timeline.json"))[1]

    assert second.url == "https://mastodon.online/users/jos%C3%A9/statuses/113432087377000001"
    assert second.author == "josé@mastodon.online"
    assert second.text == "¿Alguien más con problemas con #acme?\n\nDesde ayer no funciona 😕"
    assert second.published_at == datetime(2024, 11, 5, 10, 7, 5, 123000, tzinfo=UTC)


def test_it_uses_the_content_warning_as_title_and_leaves_missing_counts_none() -> None:
    third = mastodon.parse(fixture("tag_timeline.json"))[2]

    assert third.title == "Product review (long)"
    assert third.likes is None
    assert third.replies is None
    assert third.reposts == 0


def test_it_reads_v2_search_results() -> None:
    assert len(mastodon.parse(fixture("search.json"))) == 2


def test_it_reads_an_empty_page_as_no_mentions() -> None:
    assert mastodon.parse(fixture("empty.json")) == []


def test_it_tolerates_a_status_without_optional_fields() -> None:
    (only,) = mastodon.parse(b'[{"id": "1"}]')

    assert only.text == ""
    assert only.author is None
    assert only.published_at is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x89PNG\r\n",
        b"<!DOCTYPE html><html><h1>502 Bad Gateway</h1></html>",
        fixture("tag_timeline.json")[:500],
        b'{"error": "Record not found"}',
        b"[1, 2]",
        b'[{"id": 113432119982311842}]',
        b'[{"id": "1", "favourites_count": "30"}]',
        b'[{"id": "1", "account": "alice"}]',
        b'[{"id": "1", "created_at": "yesterday"}]',
    ],
    ids=[
        "empty",
        "binary",
        "html",
        "truncated",
        "error-object",
        "not-statuses",
        "numeric-id",
        "count-as-string",
        "account-as-string",
        "bad-time",
    ],
)
def test_it_raises_parse_error_on_bodies_it_cannot_read(body: bytes) -> None:
    with pytest.raises(ParseError):
        mastodon.parse(body)


status_like = st.dictionaries(
    st.sampled_from(
        [
            *("id", "created_at", "url", "uri", "content", "spoiler_text", "account"),
            *("favourites_count", "reblogs_count", "replies_count", "quotes_count"),
        ]
    ),
    json_values
    | st.fixed_dictionaries({}, optional={"acct": json_values, "followers_count": json_values}),
)


@settings(max_examples=200, deadline=None)
@given(json_values | st.lists(status_like, max_size=4))
def test_parse_never_raises_anything_but_parse_error_on_json(value: Any) -> None:
    assert_parse_returns_mentions_or_raises_parse_error(mastodon, json.dumps(value).encode())


# -- fetch: hashtag ------------------------------------------------------------------------


async def test_a_first_poll_starts_from_a_snowflake_id_at_the_backfill_time() -> None:
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=INSTANCE) as mock:
            route = mock.get(TAG_PATH).mock(return_value=page(7, 6, 5, prev="7"))
            fetched = await mastodon.fetch(client, make_settings(), None, NOW)

    params = route.calls.last.request.url.params
    expected = int((NOW - timedelta(hours=24)).timestamp() * 1000) << 16
    assert params["min_id"] == str(expected)
    assert params["limit"] == "40"
    assert [m.external_id for m in fetched.mentions] == ["5", "6", "7"]
    assert json.loads(fetched.cursor or "") == {"min_id": "7"}


async def test_it_pages_forward_with_the_link_header_min_id() -> None:
    settings_ = make_settings(limit=2)
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=INSTANCE) as mock:
            route = mock.get(TAG_PATH).mock(
                side_effect=[page(12, 11, prev="12"), page(14, 13, prev="14"), page(15, prev="15")]
            )
            fetched = await mastodon.fetch(client, settings_, json.dumps({"min_id": "10"}), NOW)

    assert [call.request.url.params["min_id"] for call in route.calls] == ["10", "12", "14"]
    assert [m.external_id for m in fetched.mentions] == ["11", "12", "13", "14", "15"]
    assert json.loads(fetched.cursor or "") == {"min_id": "15"}
    assert fetched.notes == []


async def test_a_second_poll_asks_only_for_statuses_after_the_cursor() -> None:
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=INSTANCE) as mock:
            route = mock.get(TAG_PATH).mock(side_effect=[page(21, 20), page(22)])
            first = await mastodon.fetch(client, make_settings(), None, NOW)
            second = await mastodon.fetch(client, make_settings(), first.cursor, NOW)

    assert route.calls[1].request.url.params["min_id"] == "21"
    assert [m.external_id for m in second.mentions] == ["22"]


async def test_max_pages_advances_only_as_far_as_it_read() -> None:
    settings_ = make_settings(limit=2, max_pages=1)
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=INSTANCE) as mock:
            mock.get(TAG_PATH).mock(return_value=page(12, 11))
            fetched = await mastodon.fetch(client, settings_, json.dumps({"min_id": "10"}), NOW)

    assert json.loads(fetched.cursor or "") == {"min_id": "12"}
    assert fetched.notes


async def test_a_first_poll_drops_statuses_older_than_the_backfill() -> None:
    old = status(3, minutes_ago=3 * 24 * 60)
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=INSTANCE) as mock:
            mock.get(TAG_PATH).mock(return_value=httpx.Response(200, json=[status(4), old]))
            fetched = await mastodon.fetch(client, make_settings(), None, NOW)

    assert [m.external_id for m in fetched.mentions] == ["4"]


async def test_it_sends_the_token_with_timeline_requests_when_given() -> None:
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=INSTANCE) as mock:
            route = mock.get(TAG_PATH).mock(return_value=page())
            await mastodon.fetch(client, make_settings(access_token="tok"), None, NOW)

    assert route.calls.last.request.headers["authorization"] == "Bearer tok"


# -- fetch: search -------------------------------------------------------------------------


def search_settings(**overrides: Any) -> mastodon.Settings:
    values: dict[str, Any] = {"hashtag": None, "query": "acme", "access_token": "tok"}
    return make_settings(**{**values, **overrides})


async def test_search_pages_with_offset_and_moves_the_cursor_once_caught_up() -> None:
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=INSTANCE) as mock:
            route = mock.get("/api/v2/search").mock(
                side_effect=[
                    httpx.Response(200, json={"statuses": [status(30), status(29)]}),
                    httpx.Response(200, json={"statuses": [status(28)]}),
                ]
            )
            fetched = await mastodon.fetch(
                client, search_settings(limit=2), json.dumps({"min_id": "20"}), NOW
            )

    first, second = (call.request for call in route.calls)
    assert first.headers["authorization"] == "Bearer tok"
    assert first.url.params["type"] == "statuses"
    assert first.url.params["min_id"] == "20"
    assert [first.url.params["offset"], second.url.params["offset"]] == ["0", "2"]
    assert len(fetched.mentions) == 3
    assert json.loads(fetched.cursor or "") == {"min_id": "30"}


async def test_search_cut_short_keeps_its_cursor() -> None:
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=INSTANCE) as mock:
            mock.get("/api/v2/search").mock(
                return_value=httpx.Response(200, json={"statuses": [status(30), status(29)]})
            )
            fetched = await mastodon.fetch(
                client, search_settings(limit=2, max_pages=1), json.dumps({"min_id": "20"}), NOW
            )

    assert json.loads(fetched.cursor or "") == {"min_id": "20"}
    assert fetched.notes


# -- fetch: failures -----------------------------------------------------------------------


async def test_it_reports_a_rejected_token_as_permanent_without_the_token() -> None:
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=INSTANCE) as mock:
            mock.get("/api/v2/search").mock(
                return_value=httpx.Response(401, json={"error": "The access token is invalid"})
            )
            with pytest.raises(FetchError) as caught:
                await mastodon.fetch(client, search_settings(access_token="sekrit"), None, NOW)

    assert caught.value.retryable is False
    assert "sekrit" not in str(caught.value)


# -- refresh -------------------------------------------------------------------------------


async def test_refresh_batches_45_ids_into_3_requests() -> None:
    ids = [str(100 + n) for n in range(45)]
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=INSTANCE) as mock:
            route = mock.get("/api/v1/statuses").mock(return_value=httpx.Response(200, json=[]))
            await mastodon.refresh(client, make_settings(), ids, NOW)

    sizes = [len(call.request.url.params.get_list("id[]")) for call in route.calls]
    assert sizes == [20, 20, 5]


async def test_refresh_returns_current_counts() -> None:
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=INSTANCE) as mock:
            mock.get("/api/v1/statuses").mock(
                return_value=httpx.Response(200, content=fixture("statuses.json"))
            )
            (refreshed,) = await mastodon.refresh(
                client, make_settings(), ["113432119982311842", "404404"], NOW
            )

    assert (refreshed.likes, refreshed.reposts, refreshed.replies) == (480, 95 + 7, 41)


async def test_refresh_falls_back_to_one_by_one_on_servers_before_4_3() -> None:
    async with httpx.AsyncClient() as client:
        with respx.mock(base_url=INSTANCE) as mock:
            mock.get("/api/v1/statuses").mock(
                return_value=httpx.Response(404, json={"error": "Record not found"})
            )
            mock.get("/api/v1/statuses/1").mock(return_value=httpx.Response(200, json=status(1)))
            mock.get("/api/v1/statuses/2").mock(
                return_value=httpx.Response(404, json={"error": "Record not found"})
            )
            refreshed = await mastodon.refresh(client, make_settings(), ["1", "2"], NOW)

    assert [m.external_id for m in refreshed] == ["1"]


# -- settings ------------------------------------------------------------------------------


def test_settings_require_a_token_to_search() -> None:
    with pytest.raises(ValidationError, match="access_token is required"):
        make_settings(hashtag=None, query="acme")


def test_settings_take_exactly_one_of_hashtag_and_query() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        make_settings(query="acme", access_token="tok")


def test_settings_accept_a_hashtag_written_with_its_hash() -> None:
    assert make_settings(hashtag="#acme").hashtag == "acme"
