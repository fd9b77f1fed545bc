"""Google reviews of one place, from Place Details: Places API (New) or the legacy API.

API references:

- Places API (New), "Place Details (New)":
  https://developers.google.com/maps/documentation/places/web-service/place-details and the
  ``Review`` resource in https://developers.google.com/maps/documentation/places/web-service/reference/rest/v1/places
- legacy Places API, "Place Details (Legacy)":
  https://developers.google.com/maps/documentation/places/web-service/legacy/details

Requests (``api`` picks one):

- ``new``: ``GET {base_url}/v1/places/{place_id}[?languageCode=…]`` with headers
  ``X-Goog-Api-Key: {api_key}`` and ``X-Goog-FieldMask: reviews,googleMapsUri``. Body:
  ``{"reviews": [{"name", "relativePublishTimeDescription", "rating", "text": {"text",
  "languageCode"}, "originalText": {...}, "authorAttribution": {"displayName", "uri",
  "photoUri"}, "publishTime", "googleMapsUri"}], "googleMapsUri"}``; both keys are left
  out when empty. Errors are HTTP statuses with ``{"error": {"code", "message", "status"}}``.
- ``legacy``: ``GET {legacy_base_url}/maps/api/place/details/json?place_id=…
  &fields=reviews,url&reviews_sort=newest&key=…[&language=…]``. Body: ``{"result":
  {"reviews": [{"author_name", "author_url", "rating", "relative_time_description",
  "text", "time", "language", ...}], "url"}, "status": "OK", "html_attributions": []}``.
  Failures come with HTTP 200 and a non-OK ``status`` plus ``error_message``; ``fetch``
  classifies them (``OVER_QUERY_LIMIT``/``UNKNOWN_ERROR`` retryable; ``REQUEST_DENIED``,
  ``INVALID_REQUEST``, ``NOT_FOUND``, ``ZERO_RESULTS`` permanent) and ``parse`` rejects
  them as not a review page.

Both return **at most 5 reviews** and offer no paging, so a place that gets more than 5
reviews between two polls loses the excess; only the legacy API can sort them newest
first (``reviews_sort=newest``); the new API returns its 5 "most relevant", which may
leave a new review out altogether. ``api = "new"`` is the default because Google no longer
lets new projects enable the legacy API; where a project still has it, ``legacy`` is the
better fit for monitoring.

Field mapping:

===========================================  ==========================================
API field (new / legacy)                     Mention field
===========================================  ==========================================
``name`` / derived (see below)               external_id
``googleMapsUri`` (review, else place)       url
  / ``result.url`` (the place page)
``authorAttribution.displayName``            author
  / ``author_name``
(none)                                       author_followers = None, title = None
``text.text`` (else ``originalText.text``)   text (entities decoded; the localized
  / ``text``                                 variant, as Google shows it)
``publishTime`` (RFC 3339) / ``time`` (Unix)  published_at
``rating``                                   rating
===========================================  ==========================================

Legacy reviews have no id. The derived one is ``legacy:`` + the first 32 hex digits of
SHA-256 of ``author_url`` (the reviewer's contributor page; author name and text when
absent) and ``time``: stable while the review is unchanged; an edited review (new
``time``) comes back as a new mention. A review read through both APIs gets two ids.
Not mapped: ``relative_time_description``, ``language``, profile photos; no likes,
reposts or replies are given.

Incremental polling: the cursor is ``{"newest": <newest review time, ISO>, "ids": [ids at
that instant]}`` (``now - backfill`` on a first poll). The 5 reviews are sorted newest
first locally and kept down to the first one older than ``newest``. If all 5 are newer, a
note warns that reviews may have been missed: nothing older can be asked for, so the
watermark moves on. (The watermark logic is shared: ``emberwatch.sources._watermark``.)

Rate limits: per-minute request quotas per project and API method, shown and adjustable
in the Google Cloud console; 429 (new) or ``OVER_QUERY_LIMIT`` (legacy) past them. Every
call is billed: reviews put Place Details in the priciest (Atmosphere/Enterprise +
Atmosphere) SKU, so poll a place hourly at most.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, model_validator

from emberwatch.errors import FetchError, ParseError
from emberwatch.mention import Mention, normalize_author, parse_timestamp
from emberwatch.sources._fetched import Fetched
from emberwatch.sources._json import load_json, opt
from emberwatch.sources._settings import SourceSettings
from emberwatch.sources._text import snippet
from emberwatch.sources._watermark import Walk

# httpx and the HTTP helper are imported where a request is sent, so that
# `emberwatch sources parse` loads neither (tests/test_startup.py).
if TYPE_CHECKING:
    import httpx

TYPE = "google_places"
MAX_REVIEWS = 5
FIELD_MASK = "reviews,googleMapsUri"
_FRACTION = re.compile(r"(\.\d{6})\d+")
REVIEW = f"{TYPE}: a review"  # opens the messages about a review's fields

# Legacy ``status`` values that are failures: (message suffix, retryable).
_LEGACY_FAILURES = {
    "OVER_QUERY_LIMIT": ("rate limited", True),
    "UNKNOWN_ERROR": ("server error", True),
    "REQUEST_DENIED": ("auth failed", False),
    "INVALID_REQUEST": ("invalid request", False),
    "NOT_FOUND": ("not found", False),
    "ZERO_RESULTS": ("not found", False),
}


class Settings(SourceSettings):
    type: Literal["google_places"]
    place_id: str = Field(min_length=1)
    api: Literal["legacy", "new"] = "new"
    api_key: SecretStr | None = None
    language: str | None = Field(default=None, description="e.g. en, de, pt-BR")
    base_url: str = "https://places.googleapis.com"
    legacy_base_url: str = "https://maps.googleapis.com"

    @model_validator(mode="after")
    def _require_api_key(self) -> Settings:
        if self.api_key is None or not self.api_key.get_secret_value():
            raise ValueError("api_key is required for Google Places")
        return self


def parse(body: bytes) -> list[Mention]:
    """Parse a Place Details body from either API; non-OK legacy bodies raise ParseError."""
    data = load_json(body, source=TYPE)
    if not isinstance(data, dict):
        raise ParseError("google_places: expected a JSON object")
    if "status" in data or "result" in data:
        return _parse_legacy(data)
    return _parse_new(data)


def _parse_new(data: dict[str, Any]) -> list[Mention]:
    reviews = data.get("reviews", [])
    if not isinstance(reviews, list):
        raise ParseError("google_places: 'reviews' is not a list")
    place_url = opt(data, "googleMapsUri", str, TYPE)
    return [_new_review(review, place_url) for review in reviews]


def _new_review(review: Any, place_url: str | None) -> Mention:
    if not isinstance(review, dict) or not isinstance(review.get("name"), str):
        raise ParseError("google_places: a review lacks a string 'name'")
    name = review["name"]
    author = opt(review, "authorAttribution", dict, TYPE) or {}
    text = _localized(review, "text") or _localized(review, "originalText") or ""
    try:
        published = _rfc3339(review.get("publishTime"))
    except (ValueError, OverflowError):
        raise ParseError(f"google_places: review {name}: bad publishTime") from None
    return Mention(
        source=TYPE,
        external_id=name,
        url=opt(review, "googleMapsUri", str, TYPE) or place_url,
        author=normalize_author(TYPE, opt(author, "displayName", str, TYPE)),
        author_followers=None,
        title=None,
        text=html.unescape(text).strip(),
        published_at=published,
        rating=_rating(review),
    )


def _parse_legacy(data: dict[str, Any]) -> list[Mention]:
    status = data.get("status")
    if status != "OK":
        detail = data.get("error_message")
        raise ParseError(f"google_places: status {status!r}: {detail!r}")
    result = opt(data, "result", dict, TYPE) or {}
    reviews = result.get("reviews", [])
    if not isinstance(reviews, list):
        raise ParseError("google_places: 'result.reviews' is not a list")
    place_url = opt(result, "url", str, TYPE)
    return [_legacy_review(review, place_url) for review in reviews]


def _legacy_review(review: Any, place_url: str | None) -> Mention:
    if not isinstance(review, dict):
        raise ParseError("google_places: a review is not an object")
    author_url = opt(review, "author_url", str, TYPE)
    author = opt(review, "author_name", str, TYPE)
    text = opt(review, "text", str, TYPE) or ""
    when = opt(review, "time", (int, float), REVIEW)
    try:
        published = parse_timestamp(when)
    except (ValueError, OverflowError, OSError):
        raise ParseError(f"google_places: a review's time {when!r} is out of range") from None
    key = author_url or f"{author}\n{text}"
    digest = hashlib.sha256(f"{key}\n{when}".encode()).hexdigest()[:32]
    return Mention(
        source=TYPE,
        external_id=f"legacy:{digest}",
        url=place_url,
        author=normalize_author(TYPE, author),
        author_followers=None,
        title=None,
        text=html.unescape(text).strip(),
        published_at=published,
        rating=_rating(review),
    )


def _localized(review: dict[str, Any], key: str) -> str | None:
    return opt(opt(review, key, dict, TYPE) or {}, "text", str, TYPE)


def _rating(review: dict[str, Any]) -> float | None:
    rating = opt(review, "rating", (int, float), REVIEW)
    return float(rating) if rating is not None else None


def _rfc3339(value: Any) -> datetime | None:
    """RFC 3339 as Google writes it (up to nanoseconds) into aware UTC."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("not a string")
    return parse_timestamp(_FRACTION.sub(r"\1", value))


async def fetch(
    client: httpx.AsyncClient, settings: Settings, cursor: str | None, now: datetime
) -> Fetched:
    """One Place Details call; keeps the reviews newer than the watermark."""
    from emberwatch.sources import _http

    walk = Walk(cursor, now - settings.backfill)
    api_key = settings.api_key.get_secret_value() if settings.api_key else ""
    place = quote(settings.place_id, safe="")
    timeout = settings.timeout.total_seconds()
    if settings.api == "new":
        params = {"languageCode": settings.language} if settings.language else None
        response = await _http.get(
            client,
            f"{settings.base_url.rstrip('/')}/v1/places/{place}",
            source=settings.name,
            step="GET place details (new)",
            params=params,
            headers={"X-Goog-Api-Key": api_key, "X-Goog-FieldMask": FIELD_MASK},
            timeout=timeout,
        )
    else:
        legacy_params = {
            "place_id": settings.place_id,
            "fields": "reviews,url",
            "reviews_sort": "newest",
            "key": api_key,
        }
        if settings.language:
            legacy_params["language"] = settings.language
        response = await _http.get(
            client,
            f"{settings.legacy_base_url.rstrip('/')}/maps/api/place/details/json",
            source=settings.name,
            step="GET place details (legacy)",
            params=legacy_params,
            timeout=timeout,
        )
        _raise_for_legacy_status(response.content, source=settings.name)
    reviews = parse(response.content)
    unknown_time = [m for m in reviews if m.published_at is None]
    dated = sorted(
        (m for m in reviews if m.published_at is not None),
        key=lambda m: m.published_at or now,
        reverse=True,
    )
    reached_old = walk.take(dated + unknown_time)
    if not reached_old and len(reviews) >= MAX_REVIEWS:
        walk.notes.append(
            f"all {len(reviews)} reviews returned are new; the API gives no more, so any"
            " older new reviews were missed"
        )
    return Fetched(
        mentions=walk.mentions, cursor=walk.cursor(caught_up=True), pages=1, notes=walk.notes
    )


def _raise_for_legacy_status(body: bytes, *, source: str) -> None:
    """The legacy API reports failures with HTTP 200 and a non-OK ``status``."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return  # parse reports the bad body
    if not isinstance(data, dict) or data.get("status") not in _LEGACY_FAILURES:
        return
    status = data["status"]
    what, retryable = _LEGACY_FAILURES[status]
    raise FetchError(
        f"{source}: GET place details (legacy): status {status} ({what})",
        status=200,
        retryable=retryable,
        snippet=snippet(str(data.get("error_message") or "")),
    )
