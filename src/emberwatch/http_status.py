"""HTTP answers: Retry-After, and what a status code means to a send.

Connectors (:mod:`emberwatch.sources`) and channels (:mod:`emberwatch.channels`) share
the ``Retry-After`` reading. The status table is read by the channels that post JSON
(:func:`emberwatch.channels.base.post_json`: webhook, Teams); Slack keeps the reading it
always had (:mod:`emberwatch.channels.slack`: 401 and 408 permanent):

====================  ===========================================================
status                meaning (:func:`classify_status`)
====================  ===========================================================
2xx                   ``sent``
429                   ``rate_limited``: retry, never sooner than ``Retry-After``
408, 5xx              ``retry``: retry with backoff (``Retry-After`` if given)
401, 403, 404, 410    ``broken``: the channel's address or credentials are wrong
any other 4xx         ``permanent``: the request itself is refused; do not retry
====================  ===========================================================
"""

from __future__ import annotations

import time
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

StatusClass = Literal["sent", "rate_limited", "retry", "broken", "permanent"]
BROKEN_STATUSES = frozenset({401, 403, 404, 410})


def classify_status(status: int) -> StatusClass:
    """What an HTTP status means for a send (see the module's table)."""
    if 200 <= status < 300:
        return "sent"
    if status == 429:
        return "rate_limited"
    if status == 408 or status >= 500:
        return "retry"
    if status in BROKEN_STATUSES:
        return "broken"
    return "permanent"


def retry_after_seconds(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds to wait, from ``Retry-After`` (seconds or HTTP date) or rate-limit resets."""
    now = time.time() if now is None else now
    value = headers.get("retry-after")
    if value:
        value = value.strip()
        if value.replace(".", "", 1).isdigit():
            return float(value)
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError, IndexError):
            pass
    # X: x-rate-limit-*, Reddit and Mastodon: x-ratelimit-*, Bluesky: ratelimit-*, Yelp:
    # RateLimit-Remaining with RateLimit-ResetTime (ISO 8601; the daily allowance's reset).
    remaining = _first(
        headers, "x-ratelimit-remaining", "x-rate-limit-remaining", "ratelimit-remaining"
    )
    reset = _first(
        headers,
        "x-ratelimit-reset",
        "x-rate-limit-reset",
        "ratelimit-reset",
        "ratelimit-resettime",
    )
    if remaining is None or reset is None:
        return None
    try:
        if float(remaining) >= 1:
            return None
    except ValueError:
        return None
    try:
        reset_value = float(reset)
    except ValueError:
        # Mastodon and Yelp send the reset as an ISO 8601 time.
        try:
            moment = datetime.fromisoformat(reset.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return max(0.0, moment.timestamp() - now)
    # Some APIs send seconds-until-reset, others an epoch time.
    return max(0.0, reset_value - now) if reset_value > 1_000_000_000 else reset_value


def _first(headers: httpx.Headers, *names: str) -> str | None:
    for name in names:
        if name in headers:
            return headers[name]
    return None
