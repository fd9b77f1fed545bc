"""YouTube comments on one video or across one channel, through the YouTube Data API v3.

API reference: "CommentThreads: list",
https://developers.google.com/youtube/v3/docs/commentThreads/list, and the resource at
https://developers.google.com/youtube/v3/docs/commentThreads; errors:
https://developers.google.com/youtube/v3/docs/errors.

Request: ``GET {base_url}/youtube/v3/commentThreads?part=snippet&videoId=…`` (or
``allThreadsRelatedToChannelId=…`` for every video of a channel) ``&order=time
&maxResults=100&textFormat=html[&pageToken=…]``, with the API key in the
``X-Goog-Api-Key`` header (Google APIs also take ``?key=``; the header keeps it out of
URLs and logs). ``refresh`` re-reads known threads with ``commentThreads?part=snippet
&id=a,b,c`` (at most 50 ids a call).

Body: ``{"kind": "youtube#commentThreadListResponse", "nextPageToken"?, "pageInfo",
"items": [{"kind": "youtube#commentThread", "id", "snippet": {"channelId", "videoId",
"topLevelComment": {"id", "snippet": {"authorDisplayName", "authorChannelUrl",
"textDisplay", "textOriginal", "likeCount", "publishedAt", "updatedAt", ...}},
"canReply", "totalReplyCount", "isPublic"}}]}``. Errors are ``{"error": {"code",
"message", "errors": [{"domain", "reason", "message"}]}}``.

Field mapping:

================================================  =====================================
API field                                         Mention field
================================================  =====================================
``id`` (the thread id = the top comment's id)     external_id
``snippet.videoId`` + ``topLevelComment.id``      url = ``https://www.youtube.com/watch?
                                                  v={videoId}&lc={commentId}`` (None
                                                  when the thread has no video)
``…snippet.authorDisplayName``                    author
(none)                                            author_followers = None
(none)                                            title = None
``…snippet.textDisplay`` (HTML; else              text (HTML reduced to plain text,
``textOriginal``)                                 entities decoded)
``…snippet.publishedAt``                          published_at
``…snippet.likeCount``                            likes
``snippet.totalReplyCount``                       replies
``snippet.videoId``                               thread = ``youtube:video:{videoId}``
                                                  (every comment on a video shares it;
                                                  None without a video)
================================================  =====================================

Not mapped: ``authorChannelUrl``/``authorChannelId`` (no Mention field), ``updatedAt``,
``canReply``, ``isPublic``; there are no ratings or reposts.

Incremental polling: ``order=time`` lists threads newest first. The cursor is
``{"newest": <newest publishedAt>, "ids": [ids at that instant]}``; a poll follows
``nextPageToken`` from the first page and stops at the first thread older than
``newest`` (threads at ``newest`` whose ids are listed are skipped; a first poll uses
``now - backfill``). When ``max_pages`` runs out first, the watermark is kept and the
cursor adds ``"resume": {"at": <nextPageToken>, ...}``, so the next poll continues down
the backlog and moves the watermark only once it gets there; if YouTube no longer
accepts the saved token (400), the poll starts again from the top with the old watermark
rather than skip anything. The watermark logic is shared by the review connectors:
``emberwatch.sources._watermark``.

Rate limits: a project gets 10,000 quota units a day by default; ``commentThreads.list``
costs 1 unit a call, so 100 comments cost 1 unit. The quota resets at midnight Pacific
time. ``quotaExceeded`` (and ``rateLimitExceeded``) arrive as HTTP 403, told apart from
auth failures by ``error.errors[].reason`` in the body: they are raised as retryable
FetchErrors, with ``retry_after`` set to the next midnight Pacific for ``quotaExceeded``
(YouTube gives no wait for ``rateLimitExceeded``, so the scheduler's backoff applies).
``commentsDisabled`` (403) is permanent and says so ("comments disabled").
"""

from __future__ import annotations

import json
import re
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, model_validator

from emberwatch.errors import FetchError, ParseError
from emberwatch.mention import Mention, conversation, normalize_author, parse_timestamp
from emberwatch.sources._fetched import Fetched
from emberwatch.sources._json import load_json, opt
from emberwatch.sources._settings import SourceSettings
from emberwatch.sources._text import html_to_text
from emberwatch.sources._watermark import Walk

# httpx and the HTTP helper are imported where a request is sent, so that
# `emberwatch sources parse` loads neither (tests/test_startup.py).
if TYPE_CHECKING:
    import httpx

TYPE = "youtube"
WATCH_URL = "https://www.youtube.com/watch?v={}&lc={}"
MAX_IDS_PER_CALL = 50
PACIFIC = ZoneInfo("America/Los_Angeles")
_FRACTION = re.compile(r"(\.\d{6})\d+")

# 403 ``reason`` values that are not auth failures: (message suffix, retryable). Quota
# errors wait for the daily reset; YouTube sends no Retry-After for the per-minute ones.
_REASONS = {
    "quotaExceeded": ("quota exceeded", True),
    "dailyLimitExceeded": ("quota exceeded", True),
    "rateLimitExceeded": ("rate limited", True),
    "userRateLimitExceeded": ("rate limited", True),
    "commentsDisabled": ("comments disabled", False),
}
_DAILY_QUOTA = {"quotaExceeded", "dailyLimitExceeded"}


class Settings(SourceSettings):
    type: Literal["youtube"]
    video_id: str | None = Field(default=None, min_length=1)
    channel_id: str | None = Field(default=None, min_length=1)
    api_key: SecretStr | None = None
    page_size: int = Field(default=100, ge=1, le=100)
    base_url: str = "https://www.googleapis.com"

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if (self.video_id is None) == (self.channel_id is None):
            raise ValueError("set exactly one of video_id or channel_id")
        if self.api_key is None or not self.api_key.get_secret_value():
            raise ValueError("api_key is required for YouTube Data API")
        return self


def parse(body: bytes) -> list[Mention]:
    """Parse one page of ``commentThreads.list`` results."""
    return [_thread_to_mention(item) for item in _page(body)["items"]]


def _page(body: bytes) -> dict[str, Any]:
    data = load_json(body, source=TYPE)
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise ParseError("youtube: expected an object with an 'items' list")
    opt(data, "nextPageToken", str, TYPE)
    return data


def _thread_to_mention(item: Any) -> Mention:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        raise ParseError("youtube: a thread lacks a string 'id'")
    thread_id = item["id"]
    where = f"youtube: thread {thread_id}"
    thread = opt(item, "snippet", dict, where) or {}
    top = opt(thread, "topLevelComment", dict, where) or {}
    comment = opt(top, "snippet", dict, where) or {}
    if not thread or not comment:
        raise ParseError(f"youtube: thread {thread_id} lacks its top-level comment snippet")
    comment_id = opt(top, "id", str, where) or thread_id
    video_id = opt(thread, "videoId", str, where) or opt(comment, "videoId", str, where)
    display = opt(comment, "textDisplay", str, where)
    text = html_to_text(display) if display else (opt(comment, "textOriginal", str, where) or "")
    try:
        published = _rfc3339(comment.get("publishedAt"))
    except (ValueError, OverflowError):
        raise ParseError(f"youtube: thread {thread_id}: bad publishedAt") from None
    return Mention(
        source=TYPE,
        external_id=thread_id,
        url=_permalink(video_id, comment_id),
        author=normalize_author(TYPE, opt(comment, "authorDisplayName", str, where)),
        author_followers=None,
        title=None,
        text=text.strip(),
        published_at=published,
        likes=_count(comment, "likeCount", thread_id),
        replies=_count(thread, "totalReplyCount", thread_id),
        thread=conversation(TYPE, "video", video_id) if video_id else None,
    )


def _permalink(video_id: str | None, comment_id: str) -> str | None:
    if not video_id:
        return None
    return WATCH_URL.format(quote(video_id, safe=""), quote(comment_id, safe=""))


def _count(node: dict[str, Any], key: str, thread_id: str) -> int | None:
    value = node.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if (
        isinstance(value, str) and value.isascii() and value.isdigit()
    ):  # uint64 fields may come as strings
        return int(value)
    raise ParseError(f"youtube: thread {thread_id}: {key!r} is not a count")


def _rfc3339(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("not a string")
    return parse_timestamp(_FRACTION.sub(r"\1", value))


def _url(settings: Settings) -> str:
    return f"{settings.base_url.rstrip('/')}/youtube/v3/commentThreads"


def _headers(settings: Settings) -> dict[str, str]:
    api_key = settings.api_key.get_secret_value() if settings.api_key else ""
    return {"X-Goog-Api-Key": api_key, "Accept": "application/json"}


async def _get(
    client: httpx.AsyncClient, settings: Settings, params: dict[str, Any], step: str, now: datetime
) -> dict[str, Any]:
    from emberwatch.sources import _http

    try:
        response = await _http.get(
            client,
            _url(settings),
            source=settings.name,
            step=step,
            params=params,
            headers=_headers(settings),
            timeout=settings.timeout.total_seconds(),
        )
    except FetchError as error:
        raise _refine(error, now) from None
    return _page(response.content)


def _refine(error: FetchError, now: datetime) -> FetchError:
    """YouTube sends quota and rate limits as 403; tell them from real auth failures.

    The decision reads ``error.errors[].reason`` from the body kept in ``error.detail``
    (see ``_REASONS``); a 403 with none of those reasons stays an auth failure.
    """
    if error.status != 403:
        return error
    step = error.message.removesuffix(" (auth failed)")
    for reason in _reasons(error.detail):
        if reason in _REASONS:
            what, retryable = _REASONS[reason]
            wait = _seconds_to_pacific_midnight(now) if reason in _DAILY_QUOTA else None
            return FetchError(
                f"{step} ({what})",
                status=403,
                retryable=retryable,
                retry_after=wait,
                snippet=error.snippet,
                detail=error.detail,
            )
    return error


def _reasons(detail: str) -> list[str]:
    """The ``reason`` of each entry of ``error.errors`` in a Google API error body."""
    try:
        entries = json.loads(detail)["error"]["errors"]
    except (ValueError, TypeError, KeyError):
        return []
    if not isinstance(entries, list):
        return []
    return [
        e["reason"] for e in entries if isinstance(e, dict) and isinstance(e.get("reason"), str)
    ]


def _seconds_to_pacific_midnight(now: datetime) -> float:
    local = now.astimezone(PACIFIC)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=PACIFIC)
    return max(0.0, (midnight - now).total_seconds())


async def fetch(
    client: httpx.AsyncClient, settings: Settings, cursor: str | None, now: datetime
) -> Fetched:
    """One poll: newest-first pages down to the watermark; see the module docstring."""
    walk = Walk(cursor, now - settings.backfill)
    token: str | None = walk.resume_at if isinstance(walk.resume_at, str) else None
    base: dict[str, Any] = {
        "part": "snippet",
        "order": "time",
        "maxResults": settings.page_size,
        "textFormat": "html",
    }
    if settings.video_id:
        base["videoId"] = settings.video_id
    else:
        base["allThreadsRelatedToChannelId"] = settings.channel_id
    pages = 0
    caught_up = False
    while pages < settings.max_pages:
        params = {**base, "pageToken": token} if token else base
        try:
            data = await _get(client, settings, params, f"GET commentThreads page {pages + 1}", now)
        except FetchError as error:
            if not (token and pages == 0 and error.status == 400):
                raise
            walk.restart()
            walk.notes.append("saved page token refused; reading again from the newest")
            token = None
            continue
        pages += 1
        token = data.get("nextPageToken")
        batch = [_thread_to_mention(item) for item in data["items"]]
        if walk.take(batch) or not token:
            caught_up = True
            break
    if not caught_up:
        walk.notes.append(f"stopped at max_pages={settings.max_pages}; resuming next poll")
    return Fetched(
        mentions=walk.mentions,
        cursor=walk.cursor(caught_up=caught_up, resume_at=token),
        pages=pages,
        notes=walk.notes,
    )


async def refresh(
    client: httpx.AsyncClient, settings: Settings, external_ids: list[str], now: datetime
) -> list[Mention]:
    """Re-read known threads (likes, reply counts) with ``id=``, 50 ids a call.

    Threads that were deleted or made private are simply absent from the result.
    """
    mentions: list[Mention] = []
    for start in range(0, len(external_ids), MAX_IDS_PER_CALL):
        chunk = external_ids[start : start + MAX_IDS_PER_CALL]
        params = {"part": "snippet", "id": ",".join(chunk), "textFormat": "html"}
        data = await _get(client, settings, params, f"GET commentThreads by id ({len(chunk)})", now)
        mentions.extend(_thread_to_mention(item) for item in data["items"])
    return mentions
