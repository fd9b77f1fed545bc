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
dropped by the store) and moves the watermark only once it reaches the old one. The
watermark logic is shared by the review connectors: ``emberwatch.sources._watermark``.

Rate limits: Trustpilot asks clients to stay under 833 calls per 5 minutes and 10,000
calls per hour per key; calls also count against the API module's yearly allowance.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, model_validator

from emberwatch.errors import ParseError
from emberwatch.mention import Mention, normalize_author, parse_timestamp
from emberwatch.sources._fetched import Fetched
from emberwatch.sources._json import load_json, opt
from emberwatch.sources._settings import SourceSettings
from emberwatch.sources._watermark import Walk

# httpx and the HTTP helper are imported where a request is sent, so that
# `emberwatch sources parse` loads neither (tests/test_startup.py).
if TYPE_CHECKING:
    import httpx

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
    data = load_json(body, source=TYPE)
    if not isinstance(data, dict) or not isinstance(data.get("reviews"), list):
        raise ParseError("trustpilot: expected an object with a 'reviews' list")
    opt(data, "links", list, TYPE)
    return data


def _review_to_mention(review: Any) -> Mention:
    if not isinstance(review, dict) or not isinstance(review.get("id"), str) or not review["id"]:
        raise ParseError("trustpilot: a review lacks a string 'id'")
    review_id = review["id"]
    where = f"trustpilot: review {review_id}"
    consumer = opt(review, "consumer", dict, where) or {}
    stars = opt(review, "stars", (int, float), where)
    likes = opt(review, "numberOfLikes", int, where)
    created = opt(review, "createdAt", str, where)
    try:
        published = parse_timestamp(created)
    except (ValueError, OverflowError):
        raise ParseError(f"{where}: bad createdAt {created!r}") from None
    title = opt(review, "title", str, where)
    return Mention(
        source=TYPE,
        external_id=review_id,
        url=REVIEW_URL.format(quote(review_id, safe="")),
        author=normalize_author(TYPE, opt(consumer, "displayName", str, where)),
        author_followers=None,
        title=(html.unescape(title).strip() or None) if title else None,
        text=html.unescape(opt(review, "text", str, where) or "").strip(),
        published_at=published,
        rating=float(stars) if stars is not None else None,
        likes=likes,
    )


async def fetch(
    client: httpx.AsyncClient, settings: Settings, cursor: str | None, now: datetime
) -> Fetched:
    """One poll: newest-first pages down to the watermark; see the module docstring."""
    from emberwatch.sources import _http

    walk = Walk(cursor, now - settings.backfill)
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
