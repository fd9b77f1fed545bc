"""Posts on X found with the X API v2 recent search, with their authors expanded.

API reference: X API v2 docs, "Search Posts: recent search"
(https://docs.x.com/x-api/posts/search-recent-posts), "Post lookup by IDs"
(https://docs.x.com/x-api/posts/get-posts-by-ids), fields and expansions
(https://docs.x.com/x-api/fundamentals/fields, .../expansions), pagination
(https://docs.x.com/x-api/fundamentals/pagination), error bodies
(https://docs.x.com/x-api/fundamentals/response-codes-and-errors) and rate limits
(https://docs.x.com/x-api/fundamentals/rate-limits).

Requests (``Authorization: Bearer <bearer_token>``, an app-only token; required):

- search: ``GET {base_url}/2/tweets/search/recent?query=…&max_results=100
  &tweet.fields=created_at,public_metrics,author_id,conversation_id,note_tweet
  &expansions=author_id&user.fields=username,public_metrics`` plus ``since_id`` (or
  ``start_time`` on a first poll), ``until_id`` when finishing a gap, and ``next_token``
  for the following pages. The body is ``{"data"?: [Post], "includes"?: {"users": [User]},
  "meta": {"newest_id"?, "oldest_id"?, "result_count", "next_token"?}}``; ``data`` is
  absent when nothing matched;
- refresh: ``GET {base_url}/2/tweets?ids=…`` (up to 100 ids, same fields). Missing or
  deleted posts come back in ``errors`` ("Not Found Error") and are left out.

Errors are ``{"title", "detail", "type", "status"}`` (or ``{"errors": [...]}``) with a 4xx/5xx
status; ``_http`` turns the status into a FetchError and keeps an excerpt of the body.

Field mapping:

============================================  =====================================
X field                                       Mention field
============================================  =====================================
``id``                                        external_id
—                                             url: ``https://x.com/<username>/status/<id>``
                                              (``/i/web/status/<id>`` without a user)
``includes.users[].username`` via author_id   author
``includes.users[].public_metrics``           author_followers
``.followers_count`` via author_id
—                                             title (posts have none: None)
``note_tweet.text``, else ``text``            text (``&amp;``, ``&lt;``, ``&gt;`` decoded)
``created_at``                                published_at
``public_metrics.like_count``                 likes
``public_metrics.retweet_count + quote_count``  reposts
``public_metrics.reply_count``                replies
``conversation_id``                           thread: ``x:conversation:<id>`` (the
                                              first post's id, so a post and its
                                              replies share it; the post's own id
                                              when absent)
============================================  =====================================

Incremental polling. Search answers newest first. The cursor is ``{"since_id", "start",
"gap"}``: a poll asks for ``since_id`` (the newest id read) and follows ``next_token``
until no token is left, bounded by ``max_pages``. A first poll uses ``start_time = now -
backfill``. If ``max_pages`` stops a poll first, ``since_id`` stays and the gap is stored
as ``{"until_id": <oldest id read>, "top": <newest id read>}``; the next poll asks for
``since_id … until_id`` to finish it before ``since_id`` moves to ``top``. Recent search
only reaches seven days back, so a start time, ``since_id`` or gap older than that is
moved to the window's edge (with a note; what lay before it can no longer be read).
Post ids are Snowflakes, so their time is ``(id >> 22) + 1288834974657`` ms.

Rate limits: per app, in 15-minute windows, set by the access tier (for example 450
recent-search requests per 15 minutes on Pro, far fewer on Basic), plus a monthly cap on
posts read. Responses carry ``x-rate-limit-limit``, ``x-rate-limit-remaining`` and
``x-rate-limit-reset`` (epoch seconds), which ``_http`` turns into ``retry_after``.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, model_validator

from emberwatch.errors import ParseError
from emberwatch.mention import Mention, conversation, normalize_author, parse_timestamp
from emberwatch.sources._fetched import Fetched
from emberwatch.sources._json import load_json, opt
from emberwatch.sources._settings import SourceSettings

# httpx and the HTTP helper are imported where a request is sent, so that
# `emberwatch sources parse` loads neither (tests/test_startup.py).
if TYPE_CHECKING:
    import httpx

TYPE = "x"
LOOKUP_BATCH = 100
SEARCH_WINDOW = timedelta(days=7)
POST_URL = "https://x.com/{}/status/{}"
ANONYMOUS_POST_URL = "https://x.com/i/web/status/{}"
_TWITTER_EPOCH_MS = 1288834974657
_FIELDS = {
    "tweet.fields": "created_at,public_metrics,author_id,conversation_id,note_tweet",
    "expansions": "author_id",
    "user.fields": "username,public_metrics",
}


class Settings(SourceSettings):
    type: Literal["x"]
    query: str = Field(min_length=1, max_length=4096)
    max_results: int = Field(default=100, ge=10, le=100)
    bearer_token: SecretStr | None = None
    base_url: str = "https://api.x.com"

    @model_validator(mode="after")
    def _require_token(self) -> Settings:
        if self.bearer_token is None:
            raise ValueError("bearer_token is required for the X API")
        return self


# -- parsing -------------------------------------------------------------------------------


def parse(body: bytes) -> list[Mention]:
    """Parse a recent-search or post-lookup response into mentions."""
    posts, _meta = _page(body)
    return [mention for _id, mention in posts]


def _page(body: bytes) -> tuple[list[tuple[int, Mention]], dict[str, Any]]:
    data = load_json(body, source=TYPE)
    if not isinstance(data, dict) or not ({"data", "meta", "errors"} & data.keys()):
        raise ParseError("x: expected an object with 'data', 'meta' or 'errors'")
    includes = opt(data, "includes", dict, "x: response") or {}
    users: dict[str, dict[str, Any]] = {}
    for user in opt(includes, "users", list, "x: includes") or []:
        if not isinstance(user, dict) or not isinstance(user.get("id"), str):
            raise ParseError("x: an included user is not an object with an 'id'")
        users[user["id"]] = user
    meta = opt(data, "meta", dict, "x: response") or {}
    for key in ("next_token", "newest_id", "oldest_id"):
        opt(meta, key, str, "x: meta")
    posts = [_post(post, users) for post in opt(data, "data", list, "x: response") or []]
    return posts, meta


def _post(post: Any, users: dict[str, dict[str, Any]]) -> tuple[int, Mention]:
    if not isinstance(post, dict):
        raise ParseError("x: a post is not an object")
    post_id = opt(post, "id", str, "x: post")
    if not post_id or not post_id.isdigit():
        raise ParseError("x: a post lacks a numeric 'id'")
    where = f"x: post {post_id}"
    try:
        published = parse_timestamp(opt(post, "created_at", str, where))
    except ValueError:
        raise ParseError(f"{where}: bad created_at") from None
    note = opt(post, "note_tweet", dict, where) or {}
    text = opt(note, "text", str, where) or opt(post, "text", str, where) or ""
    metrics = opt(post, "public_metrics", dict, where) or {}
    author_id = opt(post, "author_id", str, where)
    user = users.get(author_id or "", {})
    username = normalize_author(TYPE, opt(user, "username", str, where))
    user_metrics = opt(user, "public_metrics", dict, where) or {}
    reposts = opt(metrics, "retweet_count", int, where)
    quotes = opt(metrics, "quote_count", int, where)
    if quotes is not None:
        reposts = (reposts or 0) + quotes
    mention = Mention(
        source=TYPE,
        external_id=post_id,
        url=POST_URL.format(username, post_id) if username else ANONYMOUS_POST_URL.format(post_id),
        author=username,
        author_followers=opt(user_metrics, "followers_count", int, where),
        title=None,
        text=html.unescape(text),
        published_at=published,
        likes=opt(metrics, "like_count", int, where),
        reposts=reposts,
        replies=opt(metrics, "reply_count", int, where),
        thread=conversation(
            TYPE, "conversation", opt(post, "conversation_id", str, where) or post_id
        ),
    )
    return int(post_id), mention


# -- HTTP ----------------------------------------------------------------------------------


def _snowflake_time(post_id: str) -> datetime:
    return datetime.fromtimestamp(((int(post_id) >> 22) + _TWITTER_EPOCH_MS) / 1000, tz=UTC)


def _x_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _get(
    client: httpx.AsyncClient, settings: Settings, path: str, params: dict[str, Any], step: str
) -> httpx.Response:
    from emberwatch.sources import _http

    assert settings.bearer_token is not None
    return await _http.get(
        client,
        settings.base_url.rstrip("/") + path,
        source=settings.name,
        step=step,
        params=params,
        headers={"Authorization": f"Bearer {settings.bearer_token.get_secret_value()}"},
        timeout=settings.timeout.total_seconds(),
    )


def _load_cursor(cursor: str | None) -> dict[str, Any]:
    empty: dict[str, Any] = {"since_id": None, "start": None, "gap": None}
    if not cursor:
        return empty
    try:
        state = json.loads(cursor)
        since_id, start, gap = state.get("since_id"), state.get("start"), state.get("gap")
        if since_id is not None and not (isinstance(since_id, str) and since_id.isdigit()):
            return empty
        if gap is not None and not (
            str(gap.get("until_id")).isdigit() and str(gap.get("top")).isdigit()
        ):
            return empty
        start_time = parse_timestamp(start) if isinstance(start, str) else None
        return {"since_id": since_id, "start": start_time, "gap": gap}
    except (ValueError, AttributeError):
        return empty


async def fetch(
    client: httpx.AsyncClient, settings: Settings, cursor: str | None, now: datetime
) -> Fetched:
    """One poll: everything newer than ``since_id`` (or the stored gap), newest first."""
    state = _load_cursor(cursor)
    since_id: str | None = state["since_id"]
    gap: dict[str, str] | None = state["gap"]
    notes: list[str] = []
    # The API refuses times and ids older than its window; stay a minute inside it.
    floor = now - SEARCH_WINDOW + timedelta(minutes=1)
    if gap and _snowflake_time(gap["until_id"]) < floor:
        notes.append("the unread gap aged out of the 7-day search window")
        since_id, gap = gap["top"], None
    start: datetime | None = state["start"] or now - settings.backfill
    if since_id and _snowflake_time(since_id) < floor:
        notes.append("cursor is older than the 7-day search window; posts before it are lost")
        since_id, gap, start = None, None, floor
    params: dict[str, Any] = {"query": settings.query, "max_results": settings.max_results}
    params.update(_FIELDS)
    if since_id:
        params["since_id"] = since_id
        start = None
    else:
        start = max(start or floor, floor)
        params["start_time"] = _x_time(start)
    if gap:
        params["until_id"] = gap["until_id"]
    mentions: list[Mention] = []
    newest: int | None = None
    oldest: int | None = None
    next_token: str | None = None
    pages = 0
    caught_up = False
    while pages < settings.max_pages:
        page_params = {**params, **({"next_token": next_token} if next_token else {})}
        response = await _get(
            client, settings, "/2/tweets/search/recent", page_params, f"GET search page {pages}"
        )
        pages += 1
        posts, meta = _page(response.content)
        for post_id, mention in posts:
            mentions.append(mention)
            newest = post_id if newest is None else max(newest, post_id)
            oldest = post_id if oldest is None else min(oldest, post_id)
        next_token = meta.get("next_token")
        if not next_token:
            caught_up = True
            break
    ids = [int(i) for i in (since_id, gap["top"] if gap else None, newest) if i is not None]
    top = int(gap["top"]) if gap else (max(ids) if ids else None)
    next_state: dict[str, Any] = {"since_id": since_id, "start": None, "gap": None}
    if start is not None:
        next_state["start"] = start.isoformat()
    if caught_up:
        if top is not None:
            next_state = {"since_id": str(top), "start": None, "gap": None}
    else:
        notes.append(f"stopped at max_pages={settings.max_pages}; the backlog is read next poll")
        until_id = oldest if oldest is not None else (int(gap["until_id"]) if gap else None)
        if until_id is not None and top is not None:
            next_state["gap"] = {"until_id": str(until_id), "top": str(top)}
    return Fetched(mentions=mentions, cursor=json.dumps(next_state), pages=pages, notes=notes)


async def refresh(
    client: httpx.AsyncClient, settings: Settings, external_ids: list[str], now: datetime
) -> list[Mention]:
    """Current metrics for stored posts: post lookup, 100 ids a request."""
    ids = list(dict.fromkeys(i for i in external_ids if i.isdigit()))
    mentions: list[Mention] = []
    for start in range(0, len(ids), LOOKUP_BATCH):
        batch = ids[start : start + LOOKUP_BATCH]
        response = await _get(
            client, settings, "/2/tweets", {"ids": ",".join(batch), **_FIELDS}, "GET tweets"
        )
        mentions.extend(parse(response.content))
    return mentions
