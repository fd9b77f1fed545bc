"""Yelp reviews of one business, through the Yelp Fusion (now "Yelp Places") API.

API reference: "Business Reviews", https://docs.developer.yelp.com/reference/v3_business_reviews
(authentication: https://docs.developer.yelp.com/docs/places-authentication).

Request: ``GET {base_url}/v3/businesses/{business_id}/reviews?limit=…&offset=…
&sort_by=newest[&locale=…]`` with ``Authorization: Bearer {api_key}``. ``business_id`` is
the business's id or alias (the part after ``/biz/`` in its Yelp URL).

Body: ``{"reviews": [{"id", "url", "text", "rating", "time_created", "user": {"id",
"profile_url", "image_url", "name"}}], "total", "possible_languages"}``; errors are
``{"error": {"code", "description"}}`` with a 4xx/5xx status. ``text`` is an excerpt of
the review (about 160 characters), not the whole review; most plans return at most three
reviews per business in all, whatever ``limit`` and ``offset`` ask for.

Field mapping:

====================================  ==========================================
API field                             Mention field
====================================  ==========================================
``id``                                external_id
``url``                               url
``user.name``                         author (None when the user is absent)
(none)                                author_followers = None
(none)                                title = None
``text``                              text (entities decoded)
``time_created``                      published_at: "YYYY-MM-DD HH:MM:SS", "in PST"
                                      per the docs, read as Pacific time
                                      (America/Los_Angeles, so PDT in summer) and
                                      converted to UTC
``rating`` (1-5)                      rating
====================================  ==========================================

Not mapped: ``user.id``, ``user.profile_url`` and ``user.image_url`` (no Mention field);
the reviews endpoint gives no likes, reposts or replies.

Incremental polling: reviews come newest first (``sort_by=newest``) in ``offset`` pages.
The cursor is ``{"newest": <newest time_created, UTC ISO>, "ids": [ids at that instant]}``;
a poll reads from offset 0 and stops at the first review older than ``newest`` (reviews
at ``newest`` whose ids are listed are skipped). A first poll uses ``now - backfill`` as
the watermark. When ``max_pages`` runs out first, the watermark is kept and the cursor
gains ``"resume": {"at": <offset>, ...}`` so the next poll carries on down the backlog
before the watermark moves; nothing between two polls is skipped (reviews posted in the
meantime push the list down and are re-read, and the store drops repeats). The
watermark logic is shared by the review connectors: ``emberwatch.sources._watermark``.

Rate limits: a daily call allowance set by the plan (see
https://docs.developer.yelp.com/docs/places-rate-limiting) plus a per-second limit; both
answer 429 (``TOO_MANY_REQUESTS_PER_SECOND`` / ``ACCESS_LIMIT_REACHED``). The
``RateLimit-DailyLimit``, ``RateLimit-Remaining`` and ``RateLimit-ResetTime`` headers say
where a key stands. One call per poll, hourly, is the sensible default.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, model_validator

from emberwatch.errors import ParseError
from emberwatch.mention import Mention, normalize_author
from emberwatch.sources._fetched import Fetched
from emberwatch.sources._json import load_json, opt
from emberwatch.sources._settings import SourceSettings
from emberwatch.sources._watermark import Walk

# httpx and the HTTP helper are imported where a request is sent, so that
# `emberwatch sources parse` loads neither (tests/test_startup.py).
if TYPE_CHECKING:
    import httpx

TYPE = "yelp"
PACIFIC = ZoneInfo("America/Los_Angeles")


class Settings(SourceSettings):
    type: Literal["yelp"]
    business_id: str = Field(min_length=1, description="Yelp business id or alias")
    api_key: SecretStr | None = None
    locale: str | None = Field(default=None, pattern=r"^[a-z]{2}_[A-Z]{2}$")
    page_size: int = Field(default=50, ge=1, le=50)
    base_url: str = "https://api.yelp.com"

    @model_validator(mode="after")
    def _require_api_key(self) -> Settings:
        if self.api_key is None or not self.api_key.get_secret_value():
            raise ValueError("api_key is required for Yelp Fusion")
        return self


def parse(body: bytes) -> list[Mention]:
    """Parse one page of a business's reviews."""
    return [_review_to_mention(review) for review in _page(body)["reviews"]]


def _page(body: bytes) -> dict[str, Any]:
    data = load_json(body, source=TYPE)
    if not isinstance(data, dict) or not isinstance(data.get("reviews"), list):
        raise ParseError("yelp: expected an object with a 'reviews' list")
    opt(data, "total", int, TYPE)
    return data


def _review_to_mention(review: Any) -> Mention:
    if not isinstance(review, dict) or not isinstance(review.get("id"), str) or not review["id"]:
        raise ParseError("yelp: a review lacks a string 'id'")
    review_id = review["id"]
    where = f"yelp: review {review_id}"
    user = opt(review, "user", dict, where) or {}
    rating = opt(review, "rating", (int, float), where)
    return Mention(
        source=TYPE,
        external_id=review_id,
        url=opt(review, "url", str, where),
        author=normalize_author(TYPE, opt(user, "name", str, where)),
        author_followers=None,
        title=None,
        text=html.unescape(opt(review, "text", str, where) or "").strip(),
        published_at=_pacific_time(review.get("time_created"), review_id),
        rating=float(rating) if rating is not None else None,
    )


def _pacific_time(value: Any, review_id: str) -> datetime | None:
    """``time_created`` is a naive "YYYY-MM-DD HH:MM:SS" in Pacific time."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ParseError(f"yelp: review {review_id}: 'time_created' is not a string")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ParseError(f"yelp: review {review_id}: bad time_created {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=PACIFIC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ParseError(f"yelp: review {review_id}: time_created out of range") from None


async def fetch(
    client: httpx.AsyncClient, settings: Settings, cursor: str | None, now: datetime
) -> Fetched:
    """One poll: newest-first offset pages down to the watermark; see the module docstring."""
    from emberwatch.sources import _http

    walk = Walk(cursor, now - settings.backfill)
    offset = int(walk.resume_at or 0)
    url = f"{settings.base_url.rstrip('/')}/v3/businesses/{quote(settings.business_id, safe='')}"
    api_key = settings.api_key.get_secret_value() if settings.api_key else ""
    pages = 0
    caught_up = False
    while pages < settings.max_pages:
        params: dict[str, Any] = {
            "limit": settings.page_size,
            "offset": offset,
            "sort_by": "newest",
        }
        if settings.locale:
            params["locale"] = settings.locale
        response = await _http.get(
            client,
            f"{url}/reviews",
            source=settings.name,
            step=f"GET reviews offset {offset}",
            params=params,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=settings.timeout.total_seconds(),
        )
        pages += 1
        data = _page(response.content)
        batch = [_review_to_mention(review) for review in data["reviews"]]
        offset += len(batch)
        total = data.get("total")
        if walk.take(batch) or not batch or (total is not None and offset >= total):
            caught_up = True
            break
    if not caught_up:
        walk.notes.append(f"stopped at max_pages={settings.max_pages}; resuming at {offset}")
    return Fetched(
        mentions=walk.mentions,
        cursor=walk.cursor(caught_up=caught_up, resume_at=offset),
        pages=pages,
        notes=walk.notes,
    )
