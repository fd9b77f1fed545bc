"""Trustpilot service reviews of one business unit, through the public Business Units API.

API reference: "Business Units API (public)", "Get a business unit's reviews":
https://developers.trustpilot.com/business-units-api-(public) (rate limits:
https://developers.trustpilot.com/get-started/rate-limiting).

Request: ``GET {base_url}/v1/business-units/{businessUnitId}/reviews?perPage=100&page=N
&orderBy=createdat.desc[&language=…]`` with the API key in the ``apikey`` header (the API
also takes ``?apikey=``; the header keeps the key out of URLs and therefore out of logs).
Find a business unit id with ``GET /v1/business-units/find?name=example.com``.

Body: ``{"reviews": [{"id", "stars", "title", "text", "language", "createdAt",
"updatedAt", "experiencedAt", "consumer": {"id", "displayName", "displayLocation",
"numberOfReviews"}, "companyReply", "numberOfLikes", "isVerified", "links": [...]}],
"links": [{"href", "method", "rel": "next-page"}, ...]}``. A page past the last one is an
empty ``reviews`` list.

Field mapping:

==================================  ================================================
API field                           Mention field
==================================  ================================================
``id``                              external_id
(derived)                           url = ``https://www.trustpilot.com/reviews/{id}``
``consumer.displayName``            author (None for a deleted consumer)
(none)                              author_followers = None (``numberOfReviews`` is a
                                    review count, not an audience)
``title``                           title
``text``                            text (entities decoded)
``createdAt`` (ISO 8601, UTC)       published_at
``stars`` (1-5)                     rating
``numberOfLikes``                   likes ("useful" votes), when present
==================================  ================================================

Not mapped: ``companyReply`` (the business's own answer), ``language``, ``isVerified``,
``updatedAt``/``experiencedAt``; there are no reposts or replies.

Incremental polling: pages come newest first (``orderBy=createdat.desc``). The cursor is
``{"newest": <newest createdAt>, "ids": [ids at that instant]}``; a poll reads from page 1
and stops at the first review older than ``newest`` (listed ids at ``newest`` are skipped;
a first poll uses ``now - backfill``). When ``max_pages`` runs out first, the watermark
stays put and the cursor adds ``"resume": {"at": <next page>, ...}``: the next poll goes
on down the backlog from there (new reviews push the list down, so a few are re-read and
dropped by the store) and moves the watermark only once it reaches the old one.

Rate limits: Trustpilot asks clients to stay under 833 calls per 5 minutes and 10,000
calls per hour per key; calls also count against the API module's yearly allowance.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr, model_validator

from emberwatch.errors import ParseError
from emberwatch.mention import Mention, parse_timestamp
from emberwatch.sources import _http
from emberwatch.sources._fetched import Fetched
from emberwatch.sources._settings import SourceSettings

TYPE = "trustpilot"
REVIEW_URL = "https://www.trustpilot.com/reviews/{}"


class Settings(SourceSettings):
    type: Literal["trustpilot"]
    business_unit_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9]+$")
    api_key: SecretStr | None = None
    per_page: int = Field(default=100, ge=1, le=100)
    language: str | None = Field(default=None, description="Trustpilot language filter")
    base_url: str = "https://api.trustpilot.com"

    @model_validator(mode="after")
    def _require_api_key(self) -> Settings:
        if self.api_key is None or not self.api_key.get_secret_value():
            raise ValueError("api_key is required for Trustpilot")
        return self


def parse(body: bytes) -> list[Mention]:
    """Parse one page of a business unit's reviews."""
    return [_review_to_mention(review) for review in _page(body)["reviews"]]


def _page(body: bytes) -> dict[str, Any]:
    data = _http.load_json(body, source=TYPE)
    if not isinstance(data, dict) or not isinstance(data.get("reviews"), list):
        raise ParseError("trustpilot: expected an object with a 'reviews' list")
    links = data.get("links")
    if links is not None and not isinstance(links, list):
        raise ParseError("trustpilot: 'links' is not a list")
    return data


def _review_to_mention(review: Any) -> Mention:
    if not isinstance(review, dict) or not isinstance(review.get("id"), str) or not review["id"]:
        raise ParseError("trustpilot: a review lacks a string 'id'")
    review_id = review["id"]
    consumer = review.get("consumer")
    if consumer is not None and not isinstance(consumer, dict):
        raise ParseError(f"trustpilot: review {review_id}: 'consumer' is not an object")
    stars = review.get("stars")
    if stars is not None and (not isinstance(stars, int | float) or isinstance(stars, bool)):
        raise ParseError(f"trustpilot: review {review_id}: 'stars' is not a number")
    likes = review.get("numberOfLikes")
    if likes is not None and (not isinstance(likes, int) or isinstance(likes, bool)):
        raise ParseError(f"trustpilot: review {review_id}: 'numberOfLikes' is not an integer")
    created = _optional_str(review, "createdAt", review_id)
    try:
        published = parse_timestamp(created)
    except (ValueError, OverflowError):
        raise ParseError(f"trustpilot: review {review_id}: bad createdAt {created!r}") from None
    title = _optional_str(review, "title", review_id)
    return Mention(
        source=TYPE,
        external_id=review_id,
        url=REVIEW_URL.format(quote(review_id, safe="")),
        author=_optional_str(consumer or {}, "displayName", review_id) or None,
        author_followers=None,
        title=(html.unescape(title).strip() or None) if title else None,
        text=html.unescape(_optional_str(review, "text", review_id) or "").strip(),
        published_at=published,
        rating=float(stars) if stars is not None else None,
        likes=likes,
    )


def _optional_str(node: dict[str, Any], key: str, review_id: str) -> str | None:
    value = node.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ParseError(f"trustpilot: review {review_id}: {key!r} is not a string")


class _Walk:
    """Newest-first reading down to a watermark, resumable; see the module docstring.

    The same small state machine is used by every review connector: ``take`` each page in
    order, then ``cursor`` says where the next poll starts.
    """

    def __init__(self, cursor: str | None, floor: datetime) -> None:
        self.newest, self.ids = floor, []
        self.resume_at: Any = None
        self.notes: list[str] = []
        if cursor:
            try:
                state = json.loads(cursor)
                self.newest = _moment(state["newest"])
                self.ids = [str(i) for i in state.get("ids", [])]
                resume = state.get("resume")
                if resume:
                    self.resume_at = resume["at"]
                    self.top, self.top_ids = _moment(resume["top"]), list(resume["top_ids"])
            except (ValueError, TypeError, KeyError, AttributeError):
                self.newest, self.ids, self.resume_at = floor, [], None
                self.notes.append("unreadable cursor; starting over from the backfill window")
        if self.resume_at is None:
            self.top, self.top_ids = self.newest, list(self.ids)
        self.mentions: list[Mention] = []

    def take(self, batch: list[Mention]) -> bool:
        """Keep the unseen mentions of one page; True once one older than the watermark."""
        for mention in batch:
            when = mention.published_at
            if when is not None and when < self.newest:
                return True
            if when == self.newest and mention.external_id in self.ids:
                continue
            self.mentions.append(mention)
            if when is not None and when > self.top:
                self.top, self.top_ids = when, [mention.external_id]
            elif when == self.top and mention.external_id not in self.top_ids:
                self.top_ids.append(mention.external_id)
        return False

    def cursor(self, *, caught_up: bool, resume_at: Any = None) -> str:
        """Advance the watermark when caught up; otherwise keep it and resume later."""
        if caught_up:
            return json.dumps({"newest": self.top.isoformat(), "ids": self.top_ids})
        return json.dumps(
            {
                "newest": self.newest.isoformat(),
                "ids": self.ids,
                "resume": {"at": resume_at, "top": self.top.isoformat(), "top_ids": self.top_ids},
            }
        )


def _moment(value: Any) -> datetime:
    moment = parse_timestamp(value)
    if moment is None:
        raise ValueError("missing timestamp")
    return moment


async def fetch(
    client: httpx.AsyncClient, settings: Settings, cursor: str | None, now: datetime
) -> Fetched:
    """One poll: newest-first pages down to the watermark; see the module docstring."""
    walk = _Walk(cursor, now - settings.backfill)
    page = int(walk.resume_at or 1)
    url = (
        f"{settings.base_url.rstrip('/')}/v1/business-units/"
        f"{quote(settings.business_unit_id, safe='')}/reviews"
    )
    api_key = settings.api_key.get_secret_value() if settings.api_key else ""
    pages = 0
    caught_up = False
    while pages < settings.max_pages:
        params: dict[str, Any] = {
            "perPage": settings.per_page,
            "page": page,
            "orderBy": "createdat.desc",
        }
        if settings.language:
            params["language"] = settings.language
        response = await _http.get(
            client,
            url,
            source=settings.name,
            step=f"GET reviews page {page}",
            params=params,
            headers={"apikey": api_key, "Accept": "application/json"},
            timeout=settings.timeout.total_seconds(),
        )
        pages += 1
        data = _page(response.content)
        batch = [_review_to_mention(review) for review in data["reviews"]]
        page += 1
        # A short page is the last; the "next-page" link is not relied on to say so.
        if walk.take(batch) or len(batch) < settings.per_page:
            caught_up = True
            break
    if not caught_up:
        walk.notes.append(f"stopped at max_pages={settings.max_pages}; resuming at page {page}")
    return Fetched(
        mentions=walk.mentions,
        cursor=walk.cursor(caught_up=caught_up, resume_at=page),
        pages=pages,
        notes=walk.notes,
    )
