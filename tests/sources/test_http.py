"""The connectors' one HTTP seam: status classification and how long a server asks to wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from emberwatch.errors import FetchError
from emberwatch.sources import _http

NOW = datetime(2024, 3, 27, 18, 0, tzinfo=UTC)
T = NOW.timestamp()


def at(**delta: float) -> datetime:
    return NOW + timedelta(**delta)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        # Retry-After: delay-seconds or HTTP-date (RFC 9110 §10.2.3).
        ({"Retry-After": "120"}, 120.0),
        ({"Retry-After": " 1.5 "}, 1.5),
        ({"Retry-After": format_datetime(at(seconds=90), usegmt=True)}, 90.0),
        ({"Retry-After": format_datetime(at(seconds=-90), usegmt=True)}, 0.0),
        ({"Retry-After": "soon"}, None),
        # X: x-rate-limit-* with an epoch reset.
        ({"x-rate-limit-remaining": "0", "x-rate-limit-reset": f"{T + 300:.0f}"}, 300.0),
        ({"x-rate-limit-remaining": "5", "x-rate-limit-reset": f"{T + 300:.0f}"}, None),
        # Reddit: x-ratelimit-* with seconds until the reset.
        ({"x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "42"}, 42.0),
        # Bluesky: ratelimit-* with an epoch reset, in the past too.
        ({"ratelimit-remaining": "0", "ratelimit-reset": f"{T + 60:.0f}"}, 60.0),
        ({"ratelimit-remaining": "0", "ratelimit-reset": f"{T - 60:.0f}"}, 0.0),
        # Mastodon: x-ratelimit-reset as ISO 8601.
        (
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "2024-03-27T18:05:00.000Z"},
            300.0,
        ),
        # Yelp: RateLimit-ResetTime, ISO 8601 with an offset (the daily reset, midnight UTC).
        (
            {"RateLimit-Remaining": "0", "RateLimit-ResetTime": "2024-03-28T00:00:00+00:00"},
            6 * 3600.0,
        ),
        ({"RateLimit-Remaining": "12", "RateLimit-ResetTime": "2024-03-28T00:00:00+00:00"}, None),
        # Retry-After wins over the rate-limit headers.
        ({"Retry-After": "7", "x-rate-limit-remaining": "0", "x-rate-limit-reset": "99"}, 7.0),
        # Unreadable headers give no wait rather than a wrong one.
        ({"x-ratelimit-remaining": "none", "x-ratelimit-reset": "42"}, None),
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "tomorrow"}, None),
        ({"x-ratelimit-remaining": "0"}, None),
    ],
)
def test_it_reads_how_long_the_server_asks_to_wait(
    headers: dict[str, str], expected: float | None
) -> None:
    assert _http.retry_after_seconds(httpx.Headers(headers), now=T) == expected


@pytest.mark.parametrize(
    ("status", "suffix", "retryable"),
    [
        (429, " (rate limited)", True),
        (401, " (auth failed)", False),
        (403, " (auth failed)", False),
        (404, " (not found)", False),
        (400, "", False),
        (408, "", True),
        (500, "", True),
        (503, "", True),
    ],
)
def test_it_classifies_a_failed_status(status: int, suffix: str, retryable: bool) -> None:
    with pytest.raises(FetchError) as caught:
        _http.raise_for_status(httpx.Response(status), source="src", step="GET x")

    assert str(caught.value) == f"src: GET x: HTTP {status}{suffix}"
    assert caught.value.status == status
    assert caught.value.retryable is retryable


@pytest.mark.parametrize("status", [200, 204, 304])
def test_it_lets_success_and_not_modified_through(status: int) -> None:
    _http.raise_for_status(httpx.Response(status), source="src", step="GET x")


def test_it_keeps_a_short_snippet_and_a_longer_detail_of_the_body() -> None:
    body = '{"error": {"message": "' + "é" * 3000 + '"}}'
    request = httpx.Request("GET", "https://api.test/items?key=sekrit")
    response = httpx.Response(403, text=body, request=request, headers={"X-Echo": "Bearer sekrit"})

    with pytest.raises(FetchError) as caught:
        _http.raise_for_status(response, source="src", step="GET items")

    assert len(caught.value.snippet) == 120
    assert caught.value.detail == body[: _http.DETAIL_LIMIT]
    assert "sekrit" not in str(caught.value) + caught.value.snippet + caught.value.detail
    assert "detail" not in repr(caught.value)  # the long excerpt stays out of log lines
