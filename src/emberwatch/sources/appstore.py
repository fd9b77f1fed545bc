"""Apple App Store customer reviews, from the iTunes customer-reviews RSS feed in JSON.

API: Apple's legacy iTunes RSS "customerreviews" feed. Apple does not document it any more
(the current RSS generator, https://rss.marketingtools.apple.com, has no reviews feed); the
format below was checked against recorded responses in public projects that read it.

Request: ``GET {base_url}/{country}/rss/customerreviews/page={n}/id={app_id}
/sortby=mostrecent/json``, with ``n`` from 1 to 10 and 50 reviews a page, so the feed
reaches the 500 most recent reviews of one storefront (``country``) and no further. No key.

Body: ``{"feed": {"entry": [...], "link": [...], ...}}``. ``entry`` is a list, a single
object when a page holds exactly one entry, and absent when the page is empty. Older
responses put the app itself first on page 1 (an entry with ``im:name`` and no
``im:rating``); it is skipped. Every value is wrapped: ``{"label": "..."}``.

Field mapping:

=====================================  ==========================================
API field                              Mention field
=====================================  ==========================================
``id.label``                           external_id
``link.attributes.href``               url (the app's review page: Apple gives no
                                       per-review permalink)
``author.name.label``                  author
(none)                                 author_followers = None
``title.label``                        title
``content.label``                      text (``type="html"`` reduced to plain text;
                                       entities decoded either way)
``updated.label`` (ISO 8601, offset)   published_at, converted to UTC
``im:rating.label`` ("1"-"5")          rating
``im:voteSum.label``                   likes ("helpful" votes)
=====================================  ==========================================

Not mapped: ``im:voteCount`` (all votes, helpful or not: no Mention field fits),
``im:version`` (the app version reviewed) and ``author.uri`` (the reviewer's profile).
There are no reposts or replies.

Incremental polling: the feed is newest first, so a poll pages from page 1 and stops at
the first review older than the cursor's watermark. The cursor is
``{"newest": <newest updated, ISO>, "ids": [ids at that instant]}``: a review is already
seen when it is older than ``newest``, or at ``newest`` with its id in ``ids`` (such
reviews are skipped without stopping, since ties come in any order). A first poll starts
with the watermark at ``now - backfill``. If ``max_pages`` (at most 10, the feed's own
limit) runs out before an old review is reached, the watermark is *not* moved: the cursor
keeps it and adds ``"resume": {"at": next page, "top": ..., "top_ids": [...]}``, so the
next poll continues down the backlog from that page (new reviews arriving meanwhile push
the list down, which only re-reads a few, and the store drops repeats) and only moves the
watermark to ``top`` once it reaches the old one; the poll after that collects what
arrived during the catch-up. Past page 10 nothing older is reachable; that is noted.
The watermark logic is shared by the review connectors: ``emberwatch.sources._watermark``.

Rate limits: none published. The feed is CDN-cached and answers 403/503 when hit hard;
an hourly interval per app and country is plenty.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from emberwatch.errors import ParseError
from emberwatch.mention import Mention, normalize_author, parse_timestamp
from emberwatch.sources._fetched import Fetched
from emberwatch.sources._json import load_json, opt
from emberwatch.sources._settings import SourceSettings
from emberwatch.sources._text import html_to_text
from emberwatch.sources._watermark import Walk

# httpx and the HTTP helper are imported where a request is sent, so that
# `emberwatch sources parse` loads neither (tests/test_startup.py).
if TYPE_CHECKING:
    import httpx

TYPE = "appstore"
PAGE_SIZE = 50
LAST_PAGE = 10


class Settings(SourceSettings):
    type: Literal["appstore"]
    app_id: str = Field(pattern=r"^\d+$", description="the numeric id in the App Store URL")
    country: str = Field(
        default="us", pattern=r"^[a-z]{2}$", description="storefront, e.g. us, gb, jp"
    )
    base_url: str = "https://itunes.apple.com"

    @field_validator("country", mode="before")
    @classmethod
    def _lowercase_country(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


def parse(body: bytes) -> list[Mention]:
    """Parse one page of the customer-reviews feed into mentions."""
    data = load_json(body, source=TYPE)
    if not isinstance(data, dict) or not isinstance(data.get("feed"), dict):
        raise ParseError("appstore: expected an object with a 'feed' object")
    entries = data["feed"].get("entry")
    if entries is None:
        return []
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list):
        raise ParseError("appstore: 'feed.entry' is neither a list nor an object")
    mentions = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ParseError("appstore: an entry is not an object")
        if "im:rating" not in entry:
            continue  # the app's own entry, first on page 1 in older responses
        mentions.append(_entry_to_mention(entry))
    return mentions


def _entry_to_mention(entry: dict[str, Any]) -> Mention:
    external_id = _label(entry, "id")
    if not external_id:
        raise ParseError("appstore: a review lacks 'id.label'")
    rating_label = _label(entry, "im:rating")
    try:
        rating = float(rating_label) if rating_label else None
        published = parse_timestamp(_label(entry, "updated"))
    except (ValueError, OverflowError, OSError):
        raise ParseError(f"appstore: review {external_id}: bad rating or date") from None
    content = entry.get("content")
    content_type = _attribute(content, "type")
    raw_text = _label(entry, "content") or ""
    text = html_to_text(raw_text) if content_type == "html" else html.unescape(raw_text).strip()
    author = opt(entry, "author", dict, f"appstore: review {external_id}") or {}
    return Mention(
        source=TYPE,
        external_id=external_id,
        url=_attribute(entry.get("link"), "href"),
        author=normalize_author(TYPE, _label(author, "name")),
        author_followers=None,
        title=html.unescape(_label(entry, "title") or "").strip() or None,
        text=text,
        published_at=published,
        rating=rating,
        likes=_count(_label(entry, "im:voteSum"), external_id),
    )


def _label(node: dict[str, Any], key: str) -> str | None:
    """The ``label`` of ``node[key]``; None when absent, ParseError when mistyped."""
    value = opt(node, key, dict, TYPE)
    return None if value is None else opt(value, "label", str, f"appstore: {key!r}")


def _attribute(node: Any, name: str) -> str | None:
    if isinstance(node, list):  # some feeds list several links; take the first
        node = node[0] if node else None
    if node is None:
        return None
    attributes = node.get("attributes") if isinstance(node, dict) else None
    if attributes is None:
        return None
    if not isinstance(attributes, dict):
        raise ParseError("appstore: 'attributes' is not an object")
    value = attributes.get(name)
    if value is None or isinstance(value, str):
        return value
    raise ParseError(f"appstore: attribute {name!r} is not a string")


def _count(label: str | None, external_id: str) -> int | None:
    if label is None or label == "":
        return None
    try:
        return int(label)
    except ValueError:
        raise ParseError(f"appstore: review {external_id}: bad vote count") from None


async def fetch(
    client: httpx.AsyncClient, settings: Settings, cursor: str | None, now: datetime
) -> Fetched:
    """One poll: newest-first pages down to the watermark; see the module docstring."""
    from emberwatch.sources import _http

    walk = Walk(cursor, now - settings.backfill)
    page = int(walk.resume_at or 1)
    base = settings.base_url.rstrip("/")
    pages = 0
    caught_up = False
    while pages < settings.max_pages:
        response = await _http.get(
            client,
            f"{base}/{settings.country}/rss/customerreviews/page={page}"
            f"/id={settings.app_id}/sortby=mostrecent/json",
            source=settings.name,
            step=f"GET reviews page {page}",
            timeout=settings.timeout.total_seconds(),
        )
        pages += 1
        batch = parse(response.content)
        # A short page is the last one (less one: page 1 may carry the app's own entry).
        if walk.take(batch) or len(batch) < PAGE_SIZE - 1:
            caught_up = True
            break
        if page == LAST_PAGE:
            caught_up = True
            walk.notes.append("read page 10, the feed's end; older reviews are not reachable")
            break
        page += 1
    if not caught_up:
        walk.notes.append(f"stopped at max_pages={settings.max_pages}; resuming at page {page}")
    return Fetched(
        mentions=walk.mentions,
        cursor=walk.cursor(caught_up=caught_up, resume_at=page),
        pages=pages,
        notes=walk.notes,
    )
