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
from emberwatch.sources import youtube

FIXTURES = Path(__file__).parent.parent / "fixtures" / "youtube"
BASE = "https://www.googleapis.test"
URL = f"{BASE}/youtube/v3/commentThreads"
NOW = datetime(2024, 6, 1, 15, 0, tzinfo=UTC)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def make_settings(**overrides: Any) -> youtube.Settings:
    values: dict[str, Any] = {
        "name": "acme-youtube",
        "type": "youtube",
        "video_id": "dQw4w9WgXcQ",
        "api_key": "test-key",
        "base_url": BASE,
    }
    values.update(overrides)
    return youtube.Settings(**values)


def thread(thread_id: str, published: datetime, likes: int = 0) -> dict[str, Any]:
    return {
        "kind": "youtube#commentThread",
        "id": thread_id,
        "snippet": {
            "videoId": "dQw4w9WgXcQ",
            "topLevelComment": {
                "kind": "youtube#comment",
                "id": thread_id,
                "snippet": {
                    "authorDisplayName": "@someone",
                    "textDisplay": f"text {thread_id}",
                    "likeCount": likes,
                    "publishedAt": published.isoformat().replace("+00:00", "Z"),
                },
            },
            "totalReplyCount": 0,
        },
    }


def listing(items: list[dict[str, Any]], token: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "youtube#commentThreadListResponse", "items": items}
    if token:
        body["nextPageToken"] = token
    return body


# parse


def test_it_maps_every_documented_field() -> None:
    first = youtube.parse(fixture("video_threads.json"))[0]

    assert first == Mention(
        source="youtube",
        external_id="UgzDE2tasfmrYLyNkGt4AaABAg",
        url="https://www.youtube.com/watch?v=dQw4w9WgXcQ&lc=UgzDE2tasfmrYLyNkGt4AaABAg",
        author="worried_owner",  # a handle is stored without its "@"
        author_followers=None,
        title=None,
        text="The new formula made my dog sick. Don't buy it!\nSee 1:23 & the label.",
        published_at=datetime(2024, 6, 1, 14, 3, 9, tzinfo=UTC),
        likes=1534,
        replies=87,
        thread="youtube:video:dQw4w9WgXcQ",
    )


def test_it_keeps_non_ascii_text() -> None:
    second = youtube.parse(fixture("video_threads.json"))[1]

    assert second.author == "Мария-к9т"
    assert second.text == "Очень понравилось, спасибо! 🐶"
    assert (second.likes, second.replies) == (0, 0)


def test_it_reads_a_comment_by_a_deleted_channel_with_missing_counts() -> None:
    third = youtube.parse(fixture("video_threads.json"))[2]

    assert third.author is None
    assert third.text == "first"  # textDisplay empty: falls back to textOriginal
    assert third.likes is None
    assert third.replies is None


def test_it_gives_no_permalink_to_a_thread_without_a_video() -> None:
    only = youtube.parse(fixture("channel_threads.json"))[0]

    assert only.url is None
    assert only.published_at == datetime(2024, 6, 2, 8, 0, tzinfo=UTC)


def test_it_reads_an_empty_page() -> None:
    assert youtube.parse(fixture("empty.json")) == []


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Sorry...</body></html>",
        b"",
        b'{"items": [{"id": "x", "snippet": {',
        fixture("error_quota_exceeded.json"),
        b'{"items": {}}',
        b'{"items": [], "nextPageToken": 5}',
        b'{"items": [{"snippet": {}}]}',
        b'{"items": [{"id": "x"}]}',
        b'{"items": [{"id": "x", "snippet": []}]}',
        b'{"items": [{"id": "x", "snippet": {"topLevelComment": {"snippet": "hi"}}}]}',
        b'{"items": [{"id": "x", "snippet": {"topLevelComment": {"snippet": {"likeCount": -1}}}}]}',
        b'{"items": [{"id": "x", "snippet": {"topLevelComment": {"snippet":'
        b' {"publishedAt": "today"}}}}]}',
        b'{"items": [{"id": "x", "snippet": {"topLevelComment": {"snippet":'
        b' {"publishedAt": "9999-12-31T23:59:59-08:00"}}}}]}',
        b'{"items": [{"id": "x", "snippet": {"totalReplyCount": true, "topLevelComment":'
        b' {"snippet": {"textDisplay": "a"}}}}]}',
    ],
)
def test_it_raises_parse_error_on_garbage_html_truncation_and_schema_drift(body: bytes) -> None:
    with pytest.raises(ParseError):
        youtube.parse(body)


KEYS = "items id snippet topLevelComment videoId textDisplay textOriginal likeCount"
KEYS += " publishedAt totalReplyCount authorDisplayName nextPageToken"


@settings(max_examples=200)
@given(keyed_json(KEYS))
def test_parse_of_api_shaped_json_returns_mentions_or_raises_parse_error(data: Any) -> None:
    assert_parse_returns_mentions_or_raises_parse_error(youtube, json.dumps(data).encode())


# settings


def test_settings_require_an_api_key() -> None:
    with pytest.raises(ValidationError, match="api_key is required for YouTube Data API"):
        make_settings(api_key=None)


@pytest.mark.parametrize("overrides", [{"video_id": None}, {"channel_id": "UCacme"}])
def test_settings_require_exactly_one_of_video_and_channel(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of video_id or channel_id"):
        make_settings(**overrides)


# fetch


@respx.mock
async def test_it_lists_a_channels_threads_newest_first_with_the_key_in_a_header() -> None:
    route = respx.get(URL).mock(return_value=httpx.Response(200, content=fixture("empty.json")))
    source = make_settings(video_id=None, channel_id="UCacmeAcmeAcmeAcmeAcme01")

    await youtube.fetch(httpx.AsyncClient(), source, None, NOW)

    request = route.calls.last.request
    assert request.headers["X-Goog-Api-Key"] == "test-key"
    assert "test-key" not in str(request.url)
    assert request.url.params["allThreadsRelatedToChannelId"] == "UCacmeAcmeAcmeAcmeAcme01"
    assert request.url.params["order"] == "time"
    assert request.url.params["part"] == "snippet"
    assert request.url.params["maxResults"] == "100"
    assert "videoId" not in request.url.params


@respx.mock
async def test_a_first_poll_follows_page_tokens_until_the_backfill_window_ends() -> None:
    page1 = listing([thread("a", NOW - timedelta(hours=1))], token="T2")
    page2 = listing([thread("b", NOW - timedelta(hours=2)), thread("c", NOW - timedelta(days=2))])
    route = respx.get(URL).mock(
        side_effect=[httpx.Response(200, json=page1), httpx.Response(200, json=page2)]
    )

    fetched = await youtube.fetch(httpx.AsyncClient(), make_settings(), None, NOW)

    assert [m.external_id for m in fetched.mentions] == ["a", "b"]
    assert route.calls[1].request.url.params["pageToken"] == "T2"
    assert json.loads(fetched.cursor or "") == {
        "newest": (NOW - timedelta(hours=1)).isoformat(),
        "ids": ["a"],
    }


@respx.mock
async def test_a_second_poll_stops_at_the_first_already_seen_thread() -> None:
    seen_at = NOW - timedelta(minutes=30)
    cursor = json.dumps({"newest": seen_at.isoformat(), "ids": ["seen"]})
    page = listing(
        [
            thread("new", NOW - timedelta(minutes=1)),
            thread("seen", seen_at),
            thread("old", NOW - timedelta(hours=1)),
        ],
        token="MORE",
    )
    route = respx.get(URL).mock(return_value=httpx.Response(200, json=page))

    fetched = await youtube.fetch(httpx.AsyncClient(), make_settings(), cursor, NOW)

    assert [m.external_id for m in fetched.mentions] == ["new"]
    assert route.call_count == 1


@respx.mock
async def test_it_resumes_from_the_saved_page_token_when_max_pages_stops_it_short() -> None:
    watermark = NOW - timedelta(days=1)
    cursor = json.dumps({"newest": watermark.isoformat(), "ids": []})
    route = respx.get(URL).mock(
        side_effect=[
            httpx.Response(200, json=listing([thread("a", NOW)], token="T2")),
            httpx.Response(200, json=listing([thread("b", NOW - timedelta(hours=3))])),
        ]
    )
    short = make_settings(max_pages=1)

    first = await youtube.fetch(httpx.AsyncClient(), short, cursor, NOW)
    second = await youtube.fetch(httpx.AsyncClient(), short, first.cursor, NOW)

    assert json.loads(first.cursor or "")["resume"]["at"] == "T2"
    assert json.loads(first.cursor or "")["newest"] == watermark.isoformat()
    assert [m.external_id for m in second.mentions] == ["b"]
    assert route.calls[1].request.url.params["pageToken"] == "T2"
    assert json.loads(second.cursor or "") == {"newest": NOW.isoformat(), "ids": ["a"]}


@respx.mock
async def test_it_starts_again_from_the_top_when_the_saved_token_is_refused() -> None:
    watermark = NOW - timedelta(days=1)
    cursor = json.dumps(
        {
            "newest": watermark.isoformat(),
            "ids": [],
            "resume": {"at": "STALE", "top": NOW.isoformat(), "top_ids": ["a"]},
        }
    )
    route = respx.get(URL).mock(
        side_effect=[
            httpx.Response(400, content=fixture("error_invalid_page_token.json")),
            httpx.Response(
                200, json=listing([thread("a", NOW), thread("old", watermark - timedelta(1))])
            ),
        ]
    )

    fetched = await youtube.fetch(httpx.AsyncClient(), make_settings(), cursor, NOW)

    assert [m.external_id for m in fetched.mentions] == ["a"]
    assert "pageToken" not in route.calls[1].request.url.params
    assert "refused" in fetched.notes[0]


@respx.mock
async def test_it_treats_quota_exceeded_as_retryable_until_midnight_pacific() -> None:
    respx.get(URL).mock(
        return_value=httpx.Response(403, content=fixture("error_quota_exceeded.json"))
    )

    with pytest.raises(FetchError) as caught:
        await youtube.fetch(httpx.AsyncClient(), make_settings(), None, NOW)

    assert caught.value.retryable
    assert "quota exceeded" in str(caught.value)
    # NOW is 08:00 PDT, so the quota resets in 16 hours.
    assert caught.value.retry_after == 16 * 3600


def google_error(reason: str, message: str = "Request failed.") -> dict[str, Any]:
    return {
        "error": {
            "code": 403,
            "message": message,
            "errors": [{"message": message, "domain": "youtube", "reason": reason}],
        }
    }


@respx.mock
async def test_it_reports_disabled_comments_as_permanent_and_not_as_an_auth_failure() -> None:
    respx.get(URL).mock(
        return_value=httpx.Response(403, content=fixture("error_comments_disabled.json"))
    )

    with pytest.raises(FetchError) as caught:
        await youtube.fetch(httpx.AsyncClient(), make_settings(), None, NOW)

    assert not caught.value.retryable
    assert str(caught.value).endswith("HTTP 403 (comments disabled)")
    assert "auth failed" not in str(caught.value)
    assert "test-key" not in str(caught.value) + caught.value.snippet + caught.value.detail


@respx.mock
async def test_it_keeps_a_forbidden_403_an_auth_failure() -> None:
    respx.get(URL).mock(return_value=httpx.Response(403, content=fixture("error_forbidden.json")))

    with pytest.raises(FetchError) as caught:
        await youtube.fetch(httpx.AsyncClient(), make_settings(), None, NOW)

    assert not caught.value.retryable
    assert "auth failed" in str(caught.value)
    assert "test-key" not in str(caught.value) + caught.value.snippet + caught.value.detail


@pytest.mark.parametrize(
    ("body", "suffix", "retryable", "retry_after"),
    [
        # The reason decides, wherever it stands in the body and whatever the message says.
        (google_error("quotaExceeded", "x" * 500), "(quota exceeded)", True, 16 * 3600),
        (google_error("dailyLimitExceeded"), "(quota exceeded)", True, 16 * 3600),
        (google_error("rateLimitExceeded"), "(rate limited)", True, None),
        (google_error("userRateLimitExceeded"), "(rate limited)", True, None),
        (google_error("commentsDisabled", "x" * 500), "(comments disabled)", False, None),
        (
            google_error("forbidden", "you have exceeded your rate limit"),
            "(auth failed)",
            False,
            None,
        ),
        ({"error": "not Google's shape"}, "(auth failed)", False, None),
    ],
)
@respx.mock
async def test_it_classifies_a_403_by_the_error_reason(
    body: dict[str, Any], suffix: str, retryable: bool, retry_after: float | None
) -> None:
    respx.get(URL).mock(return_value=httpx.Response(403, json=body))

    with pytest.raises(FetchError) as caught:
        await youtube.fetch(httpx.AsyncClient(), make_settings(), None, NOW)

    assert str(caught.value).endswith(f"HTTP 403 {suffix}")
    assert caught.value.retryable is retryable
    assert caught.value.retry_after == retry_after


# refresh


@respx.mock
async def test_refresh_rereads_engagement_fifty_ids_a_call() -> None:
    ids = [f"t{i}" for i in range(120)]

    def respond(request: httpx.Request) -> httpx.Response:
        wanted = request.url.params["id"].split(",")
        return httpx.Response(200, json=listing([thread(i, NOW, likes=7) for i in wanted]))

    route = respx.get(URL).mock(side_effect=respond)

    mentions = await youtube.refresh(httpx.AsyncClient(), make_settings(), ids, NOW)

    assert [m.external_id for m in mentions] == ids
    assert {m.likes for m in mentions} == {7}
    assert [len(c.request.url.params["id"].split(",")) for c in route.calls] == [50, 50, 20]
    assert all("maxResults" not in c.request.url.params for c in route.calls)


@respx.mock
async def test_refresh_leaves_out_deleted_threads() -> None:
    respx.get(URL).mock(return_value=httpx.Response(200, json=listing([thread("kept", NOW)])))

    mentions = await youtube.refresh(httpx.AsyncClient(), make_settings(), ["kept", "gone"], NOW)

    assert [m.external_id for m in mentions] == ["kept"]


async def test_refresh_of_nothing_makes_no_call() -> None:
    assert await youtube.refresh(httpx.AsyncClient(), make_settings(), [], NOW) == []
