"""RSS 2.0 and Atom feeds (news, blogs, Google Alerts), read with feedparser.

Field mapping: ``id``/``guid`` → external_id (the link when a feed has no id), ``link`` →
url (Google Alerts' redirect links are unwrapped to the article), ``author`` → author
(the name alone: RSS 2.0's ``maria.k@reviews.test (maria.k)`` is stored as ``maria.k``),
``title`` → title, ``content``/``summary`` → text (HTML reduced to plain text),
``published``/``updated`` → published_at. Feeds carry no followers, ratings or engagement.

Incremental polling: the cursor keeps the feed's ``ETag`` and ``Last-Modified`` so an
unchanged feed costs a ``304``. A feed always returns its latest N items, so every poll
sees the whole window; the store's unique key makes re-seen items harmless.
"""

from __future__ import annotations

import calendar
import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qs, urlparse

import feedparser

from emberwatch.errors import ParseError
from emberwatch.mention import Mention, normalize_author
from emberwatch.sources._fetched import Fetched
from emberwatch.sources._settings import SourceSettings
from emberwatch.sources._text import feed_text, html_to_text, snippet

# httpx and the HTTP helper are imported where a request is sent, so that
# `emberwatch sources parse` loads neither (tests/test_startup.py).
if TYPE_CHECKING:
    import httpx

TYPE = "rss"


class Settings(SourceSettings):
    type: Literal["rss"]
    url: str
    # A feed's URL is its whole API; base_url is kept for the shared shape and unused.
    base_url: str = ""


def parse(body: bytes) -> list[Mention]:
    """Parse an RSS or Atom document into mentions."""
    if not isinstance(body, bytes | bytearray):
        raise ParseError("rss: body must be bytes")
    try:
        feed = feedparser.parse(bytes(body), sanitize_html=False, resolve_relative_uris=False)
    except Exception as exc:  # feedparser wraps many parsers; any failure is a bad body
        raise ParseError(f"rss: cannot parse feed: {type(exc).__name__}") from None
    if not feed.get("version") and not feed.entries:
        raise ParseError(f"rss: not an RSS or Atom feed: {snippet(body)!r}")
    return [_entry_to_mention(entry) for entry in feed.entries]


def _entry_to_mention(entry: feedparser.FeedParserDict) -> Mention:
    link = _unwrap_google_redirect(entry.get("link"))
    # Each field as the type the feed gave it: HTML is decoded once, plain text not at all.
    title = _field(entry, "title") or None
    text = ""
    for content in entry.get("content") or []:
        if content.get("value"):
            text = feed_text(content["value"], content.get("type"))
            break
    if not text:
        text = _field(entry, "summary")
    external_id = entry.get("id") or link
    if not external_id:
        digest = hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()[:24]
        external_id = f"sha256:{digest}"
    return Mention(
        source=TYPE,
        external_id=str(external_id),
        url=link,
        author=_author(entry),
        author_followers=None,
        title=title,
        text=text,
        published_at=_entry_time(entry),
    )


def _field(entry: feedparser.FeedParserDict, key: str) -> str:
    detail = entry.get(f"{key}_detail") or {}
    return feed_text(entry.get(key), detail.get("type"))


def _author(entry: feedparser.FeedParserDict) -> str | None:
    """The author's name, from the ``author`` text as the feed wrote it (feedparser renders
    an Atom author with an email as "name (email)"). Not from feedparser's
    ``author_detail``: its address pattern allows top-level domains of at most four
    letters, so ``dana.w@reviews.example (Dana W.)`` comes out as the name "ple (Dana W."."""
    return normalize_author(TYPE, html_to_text(entry.get("author")) or None)


def _entry_time(entry: feedparser.FeedParserDict) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            # feedparser normalizes to a UTC struct_time.
            return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    return None


def _unwrap_google_redirect(link: str | None) -> str | None:
    if not link:
        return None
    parsed = urlparse(link)
    if parsed.netloc.endswith("google.com") and parsed.path == "/url":
        target = parse_qs(parsed.query).get("url")
        if target:
            return target[0]
    return link


async def fetch(
    client: httpx.AsyncClient, settings: Settings, cursor: str | None, now: datetime
) -> Fetched:
    from emberwatch.sources import _http

    state = json.loads(cursor) if cursor else {}
    headers = {"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9"}
    if state.get("etag"):
        headers["If-None-Match"] = state["etag"]
    if state.get("modified"):
        headers["If-Modified-Since"] = state["modified"]
    response = await _http.get(
        client,
        settings.url,
        source=settings.name,
        step="GET feed",
        headers=headers,
        timeout=settings.timeout.total_seconds(),
    )
    if response.status_code == 304:
        return Fetched(mentions=[], cursor=None, pages=1, notes=["not modified"])
    mentions = parse(response.content)
    if not cursor:
        oldest = now - settings.backfill
        mentions = [m for m in mentions if m.published_at is None or m.published_at >= oldest]
    new_state = {
        "etag": response.headers.get("etag"),
        "modified": response.headers.get("last-modified"),
    }
    return Fetched(mentions=mentions, cursor=json.dumps(new_state), pages=1)
