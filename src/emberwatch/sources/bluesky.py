"""Bluesky posts found by full-text search (``app.bsky.feed.searchPosts``).

API reference: Bluesky HTTP API docs, https://docs.bsky.app/docs/api/app-bsky-feed-search-posts
and https://docs.bsky.app/docs/api/app-bsky-feed-get-posts; the lexicons
``app.bsky.feed.searchPosts``, ``app.bsky.feed.getPosts`` and ``app.bsky.feed.defs#postView``
in https://github.com/bluesky-social/atproto/tree/main/lexicons; sessions via
``com.atproto.server.createSession`` (https://docs.bsky.app/docs/api/com-atproto-server-create-session).

Requests:

- search: ``GET /xrpc/app.bsky.feed.searchPosts?q=…&sort=latest&since=…[&until=…]&limit=100``
  → ``{"cursor"?, "hitsTotal"?, "posts": [PostView]}``;
- refresh: ``GET /xrpc/app.bsky.feed.getPosts?uris=…&uris=…``, 25 AT-URIs a request →
  ``{"posts": [PostView]}`` (posts that are gone are simply absent).

Without credentials requests go to ``base_url`` (the public AppView,
https://public.api.bsky.app). Bluesky has at times switched unauthenticated post search
off there (403; see bluesky-social/atproto#3423), so an ``identifier`` and an app password
are recommended: the connector then calls ``com.atproto.server.createSession`` on
``pds_url`` once, keeps the access token in memory until its ``exp`` nears (createSession
is limited to 30 a 5 minutes and 300 a day per account), and sends every request to the
PDS, which proxies ``app.bsky.*`` calls to the AppView.

Field mapping (PostView):

=================================  ==============================================
Bluesky field                      Mention field
=================================  ==============================================
``uri`` (``at://did/…/rkey``)      external_id
—                                  url: ``https://bsky.app/profile/<handle>/post/<rkey>``
                                   (the DID stands in for a missing/invalid handle)
``author.handle``                  author
—                                  author_followers (PostView's author is a basic
                                   profile without counts: always None)
—                                  title (posts have none: None)
``record.text``                    text (plain text already)
``record.createdAt``               published_at (``indexedAt`` when absent/bad)
``likeCount``                      likes
``repostCount + quoteCount``       reposts
``replyCount``                     replies
``record.reply.root.uri``          thread: ``bluesky:post:<root uri>`` for a reply
                                   (the thread's first post), ``bluesky:post:<uri>``
                                   for a post, so a post and every reply under it share
                                   one key (``reply.parent.uri`` if root lacks)
=================================  ==============================================

Incremental polling. Results come newest first and ``since``/``until`` filter on the
post's ``sortAt`` time (the earlier of ``createdAt`` and ``indexedAt``). The connector does
not use the response ``cursor`` to page, because the public AppView refuses requests that
carry one (bluesky-social/bsky-docs#296); instead the next page is asked for with ``until``
= the oldest ``sortAt`` seen + 1 ms (``until`` is exclusive; repeats are dropped). A page
with no ``cursor`` in the response means the range is exhausted. The stored cursor is
``{"since": T, "gap": null | {"until", "top"}}``: T is the newest ``sortAt`` read, and a
poll asks ``since = T - overlap`` (the overlap absorbs search-indexing lag). A first poll
uses ``since = now - backfill``. When ``max_pages`` stops a poll early the cursor keeps T
and records the gap (where to resume, and the newest time this walk saw); the next poll
finishes the gap before moving T forward, so no post between polls is skipped.

Rate limits: the AppView and PDS apply per-IP and per-account limits (the PDS documents
3000 requests per 5 minutes per IP); 429 responses carry ``RateLimit-Limit``,
``RateLimit-Remaining`` and ``RateLimit-Reset`` headers (without the ``X-`` prefix that
``_http`` reads, so ``retry_after`` is set only when a ``Retry-After`` is sent too).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, model_validator

from emberwatch.errors import FetchError, ParseError
from emberwatch.mention import Mention, conversation, normalize_author, parse_timestamp
from emberwatch.sources._fetched import Fetched
from emberwatch.sources._json import load_json, opt
from emberwatch.sources._settings import Duration, SourceSettings

# httpx and the HTTP helper are imported where a request is sent, so that
# `emberwatch sources parse` loads neither (tests/test_startup.py).
if TYPE_CHECKING:
    import httpx

TYPE = "bluesky"
GET_POSTS_BATCH = 25
POST_URL = "https://bsky.app/profile/{}/post/{}"
_ONE_MS = timedelta(milliseconds=1)
_SESSION_PATH = "/xrpc/com.atproto.server.createSession"


class Settings(SourceSettings):
    type: Literal["bluesky"]
    query: str = Field(min_length=1)
    lang: str | None = None
    limit: int = Field(default=100, ge=1, le=100)
    overlap: Duration = timedelta(minutes=2)
    identifier: str | None = Field(default=None, min_length=1)
    app_password: SecretStr | None = None
    base_url: str = "https://public.api.bsky.app"
    pds_url: str = "https://bsky.social"

    @model_validator(mode="after")
    def _check_credentials(self) -> Settings:
        if self.identifier is not None and self.app_password is None:
            raise ValueError("app_password is required when identifier is set")
        if self.app_password is not None and self.identifier is None:
            raise ValueError("identifier (handle or DID) is required when app_password is set")
        return self


# -- parsing -------------------------------------------------------------------------------


def parse(body: bytes) -> list[Mention]:
    """Parse a searchPosts or getPosts response into mentions."""
    posts, _more = _page(body)
    return [mention for _sort_at, mention in posts]


def _page(body: bytes) -> tuple[list[tuple[datetime | None, Mention]], bool]:
    """The posts with their ``sortAt`` time, and whether the response offers more."""
    data = load_json(body, source=TYPE)
    if not isinstance(data, dict) or not isinstance(data.get("posts"), list):
        raise ParseError("bluesky: expected an object with a 'posts' list")
    cursor = opt(data, "cursor", str, "bluesky: response")
    return [_post(post) for post in data["posts"]], bool(cursor)


def _post(post: Any) -> tuple[datetime | None, Mention]:
    if not isinstance(post, dict):
        raise ParseError("bluesky: a post is not an object")
    uri = opt(post, "uri", str, "bluesky: post")
    if not uri:
        raise ParseError("bluesky: a post lacks 'uri'")
    where = f"bluesky: {uri}"
    author = opt(post, "author", dict, where) or {}
    record = opt(post, "record", dict, where) or {}
    did = opt(author, "did", str, where)
    handle = opt(author, "handle", str, where)
    created = _time(opt(record, "createdAt", str, where))
    indexed = _time(opt(post, "indexedAt", str, where))
    reposts = opt(post, "repostCount", int, where)
    quotes = opt(post, "quoteCount", int, where)
    if quotes is not None:
        reposts = (reposts or 0) + quotes
    known = [moment for moment in (created, indexed) if moment is not None]
    mention = Mention(
        source=TYPE,
        external_id=uri,
        url=_permalink(uri, handle, did),
        author=normalize_author(TYPE, handle if handle and handle != "handle.invalid" else did),
        author_followers=None,
        title=None,
        text=opt(record, "text", str, where) or "",
        published_at=created or indexed,
        likes=opt(post, "likeCount", int, where),
        reposts=reposts,
        replies=opt(post, "replyCount", int, where),
        thread=conversation(TYPE, "post", _root(record) or uri),
    )
    return (min(known) if known else None), mention


def _root(record: dict[str, Any]) -> str | None:
    """The AT-URI of the thread's first post, from the record's reply refs. Records are
    free-form, so a malformed ref is read as no ref rather than a bad page."""
    reply = record.get("reply")
    if not isinstance(reply, dict):
        return None
    for ref in ("root", "parent"):
        strong = reply.get(ref)
        uri = strong.get("uri") if isinstance(strong, dict) else None
        if isinstance(uri, str) and uri.startswith("at://"):
            return uri
    return None


def _time(value: str | None) -> datetime | None:
    # A malformed createdAt is the author's doing (records are free-form): fall back.
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _permalink(uri: str, handle: str | None, did: str | None) -> str | None:
    parts = uri.removeprefix("at://").split("/")
    if not uri.startswith("at://") or len(parts) != 3 or parts[1] != "app.bsky.feed.post":
        return None
    who = handle if handle and handle != "handle.invalid" else (did or parts[0])
    return POST_URL.format(who, parts[2])


def _iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# -- HTTP ----------------------------------------------------------------------------------

_sessions: dict[tuple[str, str], tuple[str, datetime]] = {}


async def _access_jwt(client: httpx.AsyncClient, settings: Settings, now: datetime) -> str:
    """An access token from createSession, reused until shortly before it expires."""
    from emberwatch.sources import _http

    assert settings.identifier is not None and settings.app_password is not None
    url = settings.pds_url.rstrip("/") + _SESSION_PATH
    key = (url, settings.identifier)
    cached = _sessions.get(key)
    if cached and cached[1] > now:
        return cached[0]
    step = "POST createSession"
    timeout = settings.timeout.total_seconds()
    response = await _http.request(
        client,
        "POST",
        url,
        json={
            "identifier": settings.identifier,
            "password": settings.app_password.get_secret_value(),
        },
        headers={"User-Agent": _http.USER_AGENT},
        timeout=timeout,
        source=settings.name,
        step=step,
    )
    data = load_json(response.content, source=TYPE)
    token = data.get("accessJwt") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise ParseError("bluesky: createSession answered without 'accessJwt'")
    _sessions[key] = (token, _expiry(token, now))
    return token


def _expiry(token: str, now: datetime) -> datetime:
    """When to stop reusing a JWT: a minute before its ``exp``, or in 30 minutes."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return datetime.fromtimestamp(float(claims["exp"]), tz=UTC) - timedelta(minutes=1)
    except (IndexError, ValueError, KeyError, TypeError, OverflowError):
        return now + timedelta(minutes=30)


async def _get(
    client: httpx.AsyncClient,
    settings: Settings,
    now: datetime,
    method: str,
    params: dict[str, Any],
    step: str,
) -> httpx.Response:
    from emberwatch.sources import _http

    headers: dict[str, str] = {}
    host = settings.base_url
    if settings.identifier is not None:
        headers["Authorization"] = f"Bearer {await _access_jwt(client, settings, now)}"
        host = settings.pds_url
    try:
        return await _http.get(
            client,
            host.rstrip("/") + "/xrpc/" + method,
            source=settings.name,
            step=step,
            params=params,
            headers=headers,
            timeout=settings.timeout.total_seconds(),
        )
    except FetchError as exc:
        if exc.status in (400, 401) and settings.identifier is not None:
            # ExpiredToken / InvalidToken: sign in afresh next time.
            key = (settings.pds_url.rstrip("/") + _SESSION_PATH, settings.identifier)
            _sessions.pop(key, None)
        raise


def _load_cursor(cursor: str | None, settings: Settings, now: datetime) -> dict[str, Any]:
    if cursor:
        try:
            state = json.loads(cursor)
            since = parse_timestamp(state["since"])
            gap = state.get("gap")
            if since is not None and (gap is None or {"until", "top"} <= gap.keys()):
                return {"since": since, "gap": gap}
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
    return {"since": now - settings.backfill, "gap": None}


async def fetch(
    client: httpx.AsyncClient, settings: Settings, cursor: str | None, now: datetime
) -> Fetched:
    """One poll: walk newest-first down to ``since - overlap`` (or finish a stored gap)."""
    state = _load_cursor(cursor, settings, now)
    since: datetime = state["since"]
    gap: dict[str, str] | None = state["gap"]
    until: str | None = gap["until"] if gap else None
    base = {"q": settings.query, "sort": "latest", "limit": settings.limit}
    base["since"] = _iso(since - settings.overlap)
    if settings.lang:
        base["lang"] = settings.lang
    mentions: list[Mention] = []
    seen: set[str] = set()
    newest: datetime | None = None
    pages = 0
    caught_up = False
    notes: list[str] = []
    while pages < settings.max_pages:
        params = {**base, **({"until": until} if until else {})}
        response = await _get(
            client, settings, now, "app.bsky.feed.searchPosts", params, f"GET search {pages}"
        )
        pages += 1
        posts, more = _page(response.content)
        fresh = [(t, m) for t, m in posts if m.external_id not in seen]
        for sort_at, mention in fresh:
            seen.add(mention.external_id)
            mentions.append(mention)
            if sort_at is not None and (newest is None or sort_at > newest):
                newest = sort_at
        times = [t for t, _m in posts if t is not None]
        if not more or not posts or not times:
            caught_up = True
            break
        if fresh:
            until = _iso(min(times) + _ONE_MS)
        else:
            # A whole page inside one millisecond: step past it rather than loop.
            until = _iso(min(times))
            notes.append(f"skipped past posts sharing the time {until}")
    top = gap["top"] if gap else _iso(max(since, newest) if newest else since)
    if caught_up:
        next_state = {"since": _iso(max(since, parse_timestamp(top) or since)), "gap": None}
    else:
        next_state = {"since": _iso(since), "gap": {"until": until, "top": top}}
        notes.append(f"stopped at max_pages={settings.max_pages}; the backlog is read next poll")
    return Fetched(mentions=mentions, cursor=json.dumps(next_state), pages=pages, notes=notes)


async def refresh(
    client: httpx.AsyncClient, settings: Settings, external_ids: list[str], now: datetime
) -> list[Mention]:
    """Current counts for stored posts: getPosts, 25 AT-URIs a request."""
    uris = list(dict.fromkeys(i for i in external_ids if i.startswith("at://")))
    mentions: list[Mention] = []
    for start in range(0, len(uris), GET_POSTS_BATCH):
        batch = uris[start : start + GET_POSTS_BATCH]
        response = await _get(
            client, settings, now, "app.bsky.feed.getPosts", {"uris": batch}, "GET getPosts"
        )
        mentions.extend(parse(response.content))
    return mentions
