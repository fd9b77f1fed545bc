"""The one place connectors talk HTTP: timeouts, status classification, Retry-After.

Retrying is not done here: a failed poll is recorded and the scheduler backs the source
off (see ``emberwatch.ingest``). Keeping one attempt per poll means a slow source holds
nothing but its own poll.

Under ``emberwatch run`` the requests, not the polls, take the ``max_concurrent_polls``
slots (:func:`slots_for_requests`): a poll reads its state and commits what it brought
without holding one, so a slot is busy exactly while a source is being asked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import anyio
import httpx

from emberwatch.errors import FetchError
from emberwatch.http_status import retry_after_seconds
from emberwatch.sources._text import snippet

USER_AGENT = "emberwatch/0.1 (+https://github.com/emberwatch/emberwatch)"
DETAIL_LIMIT = 2000

_slots: ContextVar[anyio.CapacityLimiter | None] = ContextVar("request_slots", default=None)


@contextmanager
def slots_for_requests(slots: anyio.CapacityLimiter) -> Iterator[None]:
    """Within this block (this task and the tasks it starts), each request waits for one
    of ``slots`` and holds it until its response is read."""
    token = _slots.set(slots)
    try:
        yield
    finally:
        _slots.reset(token)


async def get(
    client: httpx.AsyncClient,
    url: str,
    *,
    source: str,
    step: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15.0,
) -> httpx.Response:
    """GET ``url`` and return a 2xx or 304 response, or raise a classified FetchError."""
    return await request(
        client,
        "GET",
        url,
        source=source,
        step=step,
        params=params,
        headers=headers,
        timeout=timeout,
    )


async def request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    source: str,
    step: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15.0,
    **content: Any,
) -> httpx.Response:
    """Send one request (``content`` takes httpx's ``json``, ``data`` or ``auth``)."""
    merged = {"User-Agent": USER_AGENT, **(headers or {})}
    slots = _slots.get()
    try:
        if slots is None:
            response = await client.request(
                method, url, params=params, headers=merged, timeout=timeout, **content
            )
        else:
            async with slots:
                response = await client.request(
                    method, url, params=params, headers=merged, timeout=timeout, **content
                )
    except httpx.TimeoutException:
        raise FetchError(f"{source}: {step}: timed out after {timeout:g}s") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"{source}: {step}: {type(exc).__name__}") from None
    raise_for_status(response, source=source, step=step)
    return response


def raise_for_status(response: httpx.Response, *, source: str, step: str) -> None:
    """Return on 2xx and 304; otherwise raise a FetchError classified by status.

    The error keeps the body, never the request: a one-line ``snippet`` for logs and the
    first ``DETAIL_LIMIT`` characters as ``detail`` for connectors that read error reasons.
    """
    status = response.status_code
    if status < 300 or status == 304:
        return
    excerpt, detail = snippet(response.content), _detail(response.content)
    message = f"{source}: {step}: HTTP {status}"
    if status == 429:
        raise FetchError(
            f"{message} (rate limited)",
            status=status,
            retry_after=retry_after_seconds(response.headers),
            snippet=excerpt,
            detail=detail,
        )
    if status in (401, 403):
        raise FetchError(
            f"{message} (auth failed)", status, retryable=False, snippet=excerpt, detail=detail
        )
    if status == 404:
        raise FetchError(
            f"{message} (not found)", status, retryable=False, snippet=excerpt, detail=detail
        )
    raise FetchError(
        message,
        status=status,
        retryable=status >= 500 or status == 408,
        retry_after=retry_after_seconds(response.headers),
        snippet=excerpt,
        detail=detail,
    )


def _detail(content: bytes) -> str:
    # UTF-8 takes at most 4 bytes a character, so this slice holds DETAIL_LIMIT of them.
    return content[: DETAIL_LIMIT * 4].decode("utf-8", "replace")[:DETAIL_LIMIT]
