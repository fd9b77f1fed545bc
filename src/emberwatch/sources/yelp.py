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
meantime push the list down and are re-read, and the store drops repeats).

Rate limits: a daily call allowance set by the plan (see
https://docs.developer.yelp.com/docs/places-rate-limiting) plus a per-second limit; both
answer 429 (``TOO_MANY_REQUESTS_PER_SECOND`` / ``ACCESS_LIMIT_REACHED``). The
``RateLimit-DailyLimit``, ``RateLimit-Remaining`` and ``RateLimit-ResetTime`` headers say
where a key stands. One call per poll, hourly, is the sensible default.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
from pydantic import Field, SecretStr, model_validator

from emberwatch.errors import ParseError
from emberwatch.mention import Mention, parse_timestamp
from emberwatch.sources import _http
from emberwatch.sources._fetched import Fetched
from emberwatch.sources._settings import SourceSettings

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
    data = _http.load_json(body, source=TYPE)
    if not isinstance(data, dict) or not isinstance(data.get("reviews"), list):
        raise ParseError("yelp: expected an object with a 'reviews' list")
    total = data.get("total")
    if total is not None and (not isinstance(total, int) or isinstance(total, bool)):
        raise ParseError("yelp: 'total' is not an integer")
    return data


def _review_to_mention(review: Any) -> Mention:
    if not isinstance(review, dict) or not isinstance(review.get("id"), str) or not review["id"]:
        raise ParseError("yelp: a review lacks a string 'id'")
    review_id = review["id"]
    user = review.get("user")
    if user is not None and not isinstance(user, dict):
        raise ParseError(f"yelp: review {review_id}: 'user' is not an object")
    rating = review.get("rating")
    if rating is not None and (not isinstance(rating, int | float) or isinstance(rating, bool)):
        raise ParseError(f"yelp: review {review_id}: 'rating' is not a number")
    return Mention(
        source=TYPE,
        external_id=review_id,
        url=_optional_str(review, "url", review_id),
        author=_optional_str(user or {}, "name", review_id) or None,
        author_followers=None,
        title=None,
        text=html.unescape(_optional_str(review, "text", review_id) or "").strip(),
        published_at=_pacific_time(review.get("time_created"), review_id),
        rating=float(rating) if rating is not None else None,
    )


def _optional_str(node: dict[str, Any], key: str, review_id: str) -> str | None:
    value = node.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ParseError(f"yelp: review {review_id}: {key!r} is not a string")


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
    """One poll: newest-first offset pages down to the watermark; see the module docstring."""
    walk = _Walk(cursor, now - settings.backfill)
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
