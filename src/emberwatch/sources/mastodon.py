"""Mastodon statuses on one instance: a hashtag timeline, or full-text search with a token.

API reference: Mastodon API documentation, https://docs.joinmastodon.org/methods/timelines/
(``GET /api/v1/timelines/tag/:hashtag``), https://docs.joinmastodon.org/methods/search/
(``GET /api/v2/search``), https://docs.joinmastodon.org/methods/statuses/ (``GET
/api/v1/statuses?id[]=…``, 4.3+, and ``GET /api/v1/statuses/:id``), the Status entity at
https://docs.joinmastodon.org/entities/Status/ and paging at
https://docs.joinmastodon.org/api/guidelines/#pagination.

Requests:

- hashtag: ``GET {base_url}/api/v1/timelines/tag/<hashtag>?min_id=…&limit=40``; a token is
  sent when given (some instances only show timelines to signed-in users);
- search: ``GET {base_url}/api/v2/search?q=…&type=statuses&resolve=false&min_id=…
  &limit=40&offset=N`` with ``Authorization: Bearer <access_token>`` (required: Mastodon
  answers statuses searches only for signed-in users, and only finds posts its full-text
  index covers);
- refresh: ``GET {base_url}/api/v1/statuses?id[]=…&id[]=…``, 20 ids a request. Servers
  older than 4.3 answer that with 404; refresh then falls back to one ``GET
  /api/v1/statuses/:id`` per id and leaves out ids that answer 404.

Field mapping (Status entity):

==========================  =====================================================
Mastodon field              Mention field
==========================  =====================================================
``id``                      external_id (the instance-local id; refresh needs it)
``url`` (``uri`` if null)   url
``account.acct``            author (``user`` if local, ``user@host`` if remote)
``account.followers_count`` author_followers
``spoiler_text``            title (the content warning), None if empty
``content`` (HTML)          text (tags dropped, entities decoded)
``created_at``              published_at
``favourites_count``        likes
``reblogs_count``           reposts (plus ``quotes_count`` where the server sends it)
``replies_count``           replies
``in_reply_to_id``          thread: ``mastodon:status:<in_reply_to_id>`` for a reply,
                            ``mastodon:status:<id>`` for a post, so a post and its
                            replies share one key. Mastodon's Status names no
                            conversation root: a reply to a reply takes its
                            parent's key when the parent is on the same page, else
                            keys on the parent; where the server sends a root
                            (Pleroma, Akkoma), ``pleroma.context`` →
                            ``mastodon:context:<context>``
==========================  =====================================================

Incremental polling. The hashtag timeline is read oldest-first with ``min_id``: each
request returns the statuses immediately newer than ``min_id``, and the next page's
``min_id`` comes from the ``Link: <…min_id=X>; rel="prev"`` header (or the page's newest
id). The cursor ``{"min_id": X}`` is the newest id actually read, so a poll cut short by
``max_pages`` simply continues from there next time: no gap is possible. A first poll
starts from ``min_id = (now - backfill in ms) << 16``, since Mastodon ids are Snowflake
ids that begin with a millisecond timestamp (servers with other id schemes should
be given a short ``backfill``).

Search results cannot be walked oldest-first, so search pages with ``offset`` among the
statuses newer than ``min_id``; the cursor moves to the newest id only once every page
has been read. If ``max_pages`` stops the walk first, the cursor stays put and the next
poll reads the same range again (repeats are dropped by the store).

Rate limits: 300 requests per 5 minutes per account (or per IP address without a token)
by default; instances may change it. Responses carry ``X-RateLimit-Limit``,
``X-RateLimit-Remaining`` and ``X-RateLimit-Reset``; the reset is an ISO 8601 time, which
``_http`` does not read (it reads ``Retry-After`` and numeric resets), so a Mastodon 429
may come back with ``retry_after`` None and the scheduler's own backoff applies.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, quote, urlparse

from pydantic import Field, SecretStr, field_validator, model_validator

from emberwatch.errors import FetchError, ParseError
from emberwatch.mention import Mention, conversation, normalize_author, parse_timestamp
from emberwatch.sources._fetched import Fetched
from emberwatch.sources._json import load_json, opt
from emberwatch.sources._settings import SourceSettings
from emberwatch.sources._text import html_to_text

# httpx and the HTTP helper are imported where a request is sent, so that
# `emberwatch sources parse` loads neither (tests/test_startup.py).
if TYPE_CHECKING:
    import httpx

TYPE = "mastodon"
STATUSES_BATCH = 20


class Settings(SourceSettings):
    type: Literal["mastodon"]
    hashtag: str | None = Field(default=None, pattern=r"^#?[^\s#]+$")
    query: str | None = Field(default=None, min_length=1)
    access_token: SecretStr | None = None
    limit: int = Field(default=40, ge=1, le=40)
    base_url: str = "https://mastodon.social"

    @field_validator("hashtag")
    @classmethod
    def _strip_hash(cls, value: str | None) -> str | None:
        return value.lstrip("#") if value else value

    @model_validator(mode="after")
    def _check_mode(self) -> Settings:
        if (self.hashtag is None) == (self.query is None):
            raise ValueError("set exactly one of hashtag (tag timeline) or query (search)")
        if self.query is not None and self.access_token is None:
            raise ValueError("access_token is required for Mastodon search (query)")
        return self


# -- parsing -------------------------------------------------------------------------------


def parse(body: bytes) -> list[Mention]:
    """Parse a list of Statuses, a v2 search result or a single Status into mentions."""
    return [mention for _id, mention in _statuses(body)]


def _statuses(body: bytes) -> list[tuple[str, Mention]]:
    data = load_json(body, source=TYPE)
    if isinstance(data, dict) and "statuses" in data:
        data = data["statuses"]
    elif isinstance(data, dict) and "id" in data:
        data = [data]
    if not isinstance(data, list):
        raise ParseError("mastodon: expected a list of statuses")
    return _thread_on_page([_status(status) for status in data])


def _thread_on_page(statuses: list[tuple[str, Mention]]) -> list[tuple[str, Mention]]:
    """A reply to a reply on the same page takes its parent's conversation, up the chain
    as far as the page goes, so a thread read in one poll shares one key."""
    thread_of = {status_id: mention.thread for status_id, mention in statuses}
    prefix = conversation(TYPE, "status", "")
    out = []
    for status_id, mention in statuses:
        thread, seen = mention.thread, {status_id}
        while thread and thread.startswith(prefix):
            parent = thread.removeprefix(prefix)
            if parent in seen or parent not in thread_of:
                break
            seen.add(parent)
            thread = thread_of[parent]
        if thread != mention.thread:
            mention = replace(mention, thread=thread)
        out.append((status_id, mention))
    return out


def _status(status: Any) -> tuple[str, Mention]:
    if not isinstance(status, dict):
        raise ParseError("mastodon: a status is not an object")
    status_id = opt(status, "id", str, "mastodon: status")
    if not status_id:
        raise ParseError("mastodon: a status lacks 'id'")
    where = f"mastodon: status {status_id}"
    try:
        published = parse_timestamp(opt(status, "created_at", str, where))
    except ValueError:
        raise ParseError(f"{where}: bad created_at") from None
    account = opt(status, "account", dict, where) or {}
    reposts = opt(status, "reblogs_count", int, where)
    quotes = opt(status, "quotes_count", int, where)
    if quotes is not None:
        reposts = (reposts or 0) + quotes
    mention = Mention(
        source=TYPE,
        external_id=status_id,
        url=opt(status, "url", str, where) or opt(status, "uri", str, where),
        author=normalize_author(TYPE, opt(account, "acct", str, where)),
        author_followers=opt(account, "followers_count", int, where),
        title=html_to_text(opt(status, "spoiler_text", str, where)) or None,
        text=html_to_text(opt(status, "content", str, where)),
        published_at=published,
        likes=opt(status, "favourites_count", int, where),
        reposts=reposts,
        replies=opt(status, "replies_count", int, where),
        thread=_thread(status, status_id, where),
    )
    return status_id, mention


def _thread(status: dict[str, Any], status_id: str, where: str) -> str:
    """The conversation's root where the server names it, else the status replied to,
    else the status itself (a post starts its own conversation)."""
    extra = opt(status, "pleroma", dict, where) or {}
    context = opt(extra, "context", str, where)
    if context:
        return conversation(TYPE, "context", context)
    parent = opt(status, "in_reply_to_id", (str, int), where)
    return conversation(TYPE, "status", parent if parent not in (None, "") else status_id)


def _id_key(status_id: str) -> tuple[int, str]:
    # Mastodon ids are decimal strings of varying length; compare by length, then text.
    return len(status_id), status_id


# -- HTTP ----------------------------------------------------------------------------------


def _snowflake_at(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000) << 16)


def _headers(settings: Settings) -> dict[str, str]:
    if settings.access_token is None:
        return {}
    return {"Authorization": f"Bearer {settings.access_token.get_secret_value()}"}


async def _get(
    client: httpx.AsyncClient,
    settings: Settings,
    path: str,
    params: dict[str, Any] | None,
    step: str,
) -> httpx.Response:
    from emberwatch.sources import _http

    return await _http.get(
        client,
        settings.base_url.rstrip("/") + path,
        source=settings.name,
        step=step,
        params=params,
        headers=_headers(settings),
        timeout=settings.timeout.total_seconds(),
    )


def _prev_min_id(response: httpx.Response) -> str | None:
    url = response.links.get("prev", {}).get("url")
    if not url:
        return None
    values = parse_qs(urlparse(url).query).get("min_id")
    return values[0] if values else None


def _load_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        min_id = json.loads(cursor).get("min_id")
    except (ValueError, AttributeError):
        return None
    return min_id if isinstance(min_id, str) and min_id else None


async def fetch(
    client: httpx.AsyncClient, settings: Settings, cursor: str | None, now: datetime
) -> Fetched:
    """One poll of the hashtag timeline (oldest-first) or of search (offset pages)."""
    stored = _load_cursor(cursor)
    min_id = stored or _snowflake_at(now - settings.backfill)
    if settings.hashtag is not None:
        mentions, next_min_id, pages, caught_up = await _walk_timeline(client, settings, min_id)
        notes = [] if caught_up else ["stopped at max_pages; reading continues next poll"]
    else:
        mentions, newest, pages, caught_up = await _walk_search(client, settings, min_id)
        next_min_id = newest if caught_up and newest else min_id
        notes = [] if caught_up else ["stopped at max_pages; the same range is read next poll"]
    if stored is None:
        oldest = now - settings.backfill
        mentions = [m for m in mentions if m.published_at is None or m.published_at >= oldest]
    return Fetched(
        mentions=mentions, cursor=json.dumps({"min_id": next_min_id}), pages=pages, notes=notes
    )


async def _walk_timeline(
    client: httpx.AsyncClient, settings: Settings, min_id: str
) -> tuple[list[Mention], str, int, bool]:
    path = f"/api/v1/timelines/tag/{quote(settings.hashtag or '', safe='')}"
    mentions: list[Mention] = []
    pages = 0
    while pages < settings.max_pages:
        response = await _get(
            client,
            settings,
            path,
            {"min_id": min_id, "limit": settings.limit},
            f"GET tag timeline page {pages}",
        )
        pages += 1
        statuses = _statuses(response.content)
        if not statuses:
            return mentions, min_id, pages, True
        # The page holds the statuses just after min_id, newest first; oldest first reads
        # better downstream.
        mentions.extend(mention for _id, mention in reversed(statuses))
        newest = max((status_id for status_id, _m in statuses), key=_id_key)
        min_id = _prev_min_id(response) or newest
        if len(statuses) < settings.limit:
            return mentions, min_id, pages, True
    return mentions, min_id, pages, False


async def _walk_search(
    client: httpx.AsyncClient, settings: Settings, min_id: str
) -> tuple[list[Mention], str | None, int, bool]:
    mentions: list[Mention] = []
    newest: str | None = None
    pages = 0
    while pages < settings.max_pages:
        response = await _get(
            client,
            settings,
            "/api/v2/search",
            {
                "q": settings.query,
                "type": "statuses",
                "resolve": "false",
                "min_id": min_id,
                "limit": settings.limit,
                "offset": len(mentions),
            },
            f"GET search page {pages}",
        )
        pages += 1
        statuses = _statuses(response.content)
        mentions.extend(mention for _id, mention in statuses)
        for status_id, _mention in statuses:
            if newest is None or _id_key(status_id) > _id_key(newest):
                newest = status_id
        if len(statuses) < settings.limit:
            return mentions, newest, pages, True
    return mentions, newest, pages, False


async def refresh(
    client: httpx.AsyncClient, settings: Settings, external_ids: list[str], now: datetime
) -> list[Mention]:
    """Current counts for stored statuses: 20 ids a request, or one by one before 4.3."""
    ids = list(dict.fromkeys(external_ids))
    mentions: list[Mention] = []
    for start in range(0, len(ids), STATUSES_BATCH):
        batch = ids[start : start + STATUSES_BATCH]
        try:
            response = await _get(
                client, settings, "/api/v1/statuses", {"id[]": batch}, "GET statuses"
            )
        except FetchError as exc:
            if exc.status not in (404, 405):
                raise
            return mentions + await _refresh_one_by_one(client, settings, ids[start:])
        mentions.extend(parse(response.content))
    return mentions


async def _refresh_one_by_one(
    client: httpx.AsyncClient, settings: Settings, ids: list[str]
) -> list[Mention]:
    mentions: list[Mention] = []
    for status_id in ids:
        try:
            response = await _get(
                client,
                settings,
                f"/api/v1/statuses/{quote(status_id, safe='')}",
                None,
                "GET status",
            )
        except FetchError as exc:
            if exc.status == 404:
                continue
            raise
        mentions.extend(parse(response.content))
    return mentions
