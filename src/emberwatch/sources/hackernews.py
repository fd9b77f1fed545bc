"""Hacker News stories and comments through Algolia's ``search_by_date`` API.

API: ``GET {base_url}/api/v1/search_by_date?query=…&tags=(story,comment)
&numericFilters=created_at_i>=T&hitsPerPage=…&page=N``, newest first; the body has
``hits``, ``page``, ``nbPages`` and ``hitsPerPage``.

Field mapping: ``objectID`` → external_id, ``https://news.ycombinator.com/item?id=…`` →
url, ``author`` → author, ``title`` (stories; ``story_title`` for comments, prefixed
"Re:") → title, ``story_text``/``comment_text`` (HTML) → text, ``created_at_i`` →
published_at, ``points`` → likes, ``num_comments`` → replies, ``story_id`` → thread
(``hackernews:story:<id>``; a story is its own, so a story and its comments share one key;
a hit without ``story_id`` falls back to ``parent_id`` for a comment, its own id for a
story). Algolia carries no follower counts, ratings or reposts.

Incremental polling: the cursor is the newest ``created_at_i`` seen; the next poll asks
for ``created_at_i>=cursor`` (``>=`` so an item in the same second is not skipped; the
store drops the repeat) and pages until caught up or ``max_pages``. When it stops at
``max_pages`` it keeps the old cursor, so the backlog is read again rather than skipped.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from emberwatch.errors import ParseError
from emberwatch.mention import Mention, conversation, normalize_author, parse_timestamp
from emberwatch.sources._fetched import Fetched
from emberwatch.sources._json import load_json
from emberwatch.sources._settings import SourceSettings
from emberwatch.sources._text import html_to_text

# httpx and the HTTP helper are imported where a request is sent, so that
# `emberwatch sources parse` loads neither (tests/test_startup.py).
if TYPE_CHECKING:
    import httpx

TYPE = "hackernews"
ITEM_URL = "https://news.ycombinator.com/item?id={}"


class Settings(SourceSettings):
    type: Literal["hackernews"]
    query: str = Field(min_length=1)
    tags: str = "(story,comment)"
    hits_per_page: int = Field(default=100, ge=1, le=1000)
    base_url: str = "https://hn.algolia.com"


def parse(body: bytes) -> list[Mention]:
    """Parse one page of Algolia search results."""
    return [_hit_to_mention(hit) for hit in _page(body)["hits"]]


def _page(body: bytes) -> dict[str, Any]:
    data = load_json(body, source=TYPE)
    if not isinstance(data, dict) or not isinstance(data.get("hits"), list):
        raise ParseError("hackernews: expected an object with a 'hits' list")
    return data


def _hit_to_mention(hit: Any) -> Mention:
    if not isinstance(hit, dict) or not hit.get("objectID"):
        raise ParseError("hackernews: a hit lacks 'objectID'")
    try:
        published = (
            parse_timestamp(hit["created_at_i"])
            if isinstance(hit.get("created_at_i"), int | float)
            else parse_timestamp(hit.get("created_at"))
        )
    except (ValueError, OverflowError, OSError):
        raise ParseError(f"hackernews: hit {hit['objectID']}: bad created_at") from None
    title = hit.get("title")
    if not title and hit.get("story_title"):
        title = f"Re: {hit['story_title']}"
    text = hit.get("comment_text") or hit.get("story_text") or ""
    return Mention(
        source=TYPE,
        external_id=str(hit["objectID"]),
        url=ITEM_URL.format(hit["objectID"]),
        author=normalize_author(TYPE, _str_or_none(hit.get("author"))),
        author_followers=None,
        title=html_to_text(_str_or_none(title)) or None,
        text=html_to_text(_str_or_none(text)),
        published_at=published,
        likes=_int_or_none(hit.get("points")),
        replies=_int_or_none(hit.get("num_comments")),
        thread=_thread(hit),
    )


def _thread(hit: dict[str, Any]) -> str:
    """The story a hit belongs to. Algolia sends ``story_id`` on stories and comments; a
    comment without it is keyed by its parent (the story, for a top-level comment)."""
    for field in ("story_id", "parent_id"):
        value = hit.get(field)
        if isinstance(value, int | str) and not isinstance(value, bool) and str(value).strip():
            return conversation(TYPE, "story", str(value).strip())
    return conversation(TYPE, "story", hit["objectID"])


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def fetch(
    client: httpx.AsyncClient, settings: Settings, cursor: str | None, now: datetime
) -> Fetched:
    from emberwatch.sources import _http

    since = (
        int(json.loads(cursor)["since"]) if cursor else int((now - settings.backfill).timestamp())
    )
    url = settings.base_url.rstrip("/") + "/api/v1/search_by_date"
    mentions: list[Mention] = []
    newest = since
    page = 0
    caught_up = False
    while page < settings.max_pages:
        response = await _http.get(
            client,
            url,
            source=settings.name,
            step=f"GET search_by_date page {page}",
            params={
                "query": settings.query,
                "tags": settings.tags,
                "numericFilters": f"created_at_i>={since}",
                "hitsPerPage": settings.hits_per_page,
                "page": page,
            },
            timeout=settings.timeout.total_seconds(),
        )
        data = _page(response.content)
        batch = [_hit_to_mention(hit) for hit in data["hits"]]
        mentions.extend(batch)
        for hit in data["hits"]:
            if isinstance(hit.get("created_at_i"), int):
                newest = max(newest, hit["created_at_i"])
        page += 1
        if not batch or page >= int(data.get("nbPages") or 0):
            caught_up = True
            break
    notes = [] if caught_up else [f"stopped at max_pages={settings.max_pages}; backlog remains"]
    next_cursor = (
        json.dumps({"since": newest}) if caught_up else (cursor or json.dumps({"since": since}))
    )
    return Fetched(mentions=mentions, cursor=next_cursor, pages=page, notes=notes)
