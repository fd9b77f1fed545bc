"""Reddit posts and comments: keyword search, or a subreddit's newest posts or comments.

API reference: Reddit API (https://www.reddit.com/dev/api) and its OAuth2 wiki
(https://github.com/reddit-archive/reddit/wiki/OAuth2); listing and thing shapes from
https://github.com/reddit-archive/reddit/wiki/JSON.

Requests, by ``mode``:

- ``search``: ``GET /search?q=…&sort=new&type=link&limit=100`` (site-wide), or
  ``GET /r/<subreddit>/search?q=…&restrict_sr=1&sort=new…`` when ``subreddit`` is set;
- ``new``: ``GET /r/<subreddit>/new?limit=100`` (newest posts);
- ``comments``: ``GET /r/<subreddit>/comments?limit=100`` (newest comments);
- refresh: ``GET /api/info?id=t3_…,t1_…`` (at most 100 fullnames a request).

Without credentials the public JSON is read at ``{base_url}/<path>.json``. With
``client_id``/``client_secret`` a token is fetched with the client-credentials grant
(``POST {base_url}/api/v1/access_token``, HTTP basic auth) and requests go to
``{oauth_url}/<path>`` with ``Authorization: bearer …``. The token is kept in memory until
shortly before ``expires_in`` runs out. Reddit asks for a descriptive ``User-Agent``
(``<platform>:<app id>:<version> (by /u/<username>)``); set ``user_agent``.

Every response is a Listing: ``{"kind": "Listing", "data": {"after", "before",
"children": [{"kind": "t3" | "t1", "data": {…}}]}}``. Children of other kinds ("more",
subreddits, ...) are skipped.

Field mapping:

======================  ==========================================================
Reddit field            Mention field
======================  ==========================================================
``name`` (fullname)     external_id (``t3_…`` posts, ``t1_…`` comments)
``permalink``           url (``https://www.reddit.com`` + permalink)
``author``              author (``"[deleted]"`` → None)
—                       author_followers (listings carry none: always None)
``title`` (t3)          title; comments get ``"Re: " + link_title``
``selftext`` / ``body`` text (HTML entities decoded; ``[deleted]``/``[removed]`` → "")
``created_utc``         published_at
``score``               likes (upvotes minus downvotes, as Reddit shows it)
``num_crossposts`` (t3) reposts
``num_comments`` (t3)   replies; comments have no reply count in listings → None
``name`` (t3) /         thread: ``reddit:post:<post id>``, the post's for a post and
``link_id`` (t1)        its comments alike (``parent_id`` only when ``link_id`` lacks)
======================  ==========================================================

Incremental polling. Listings run newest first and page towards older items with
``after=<fullname>``. The cursor is ``{"since": T, "gap": null | {"after", "top"}}`` where
T is the newest ``created_utc`` already read. A poll pages down from the top and stops at
the first item older than ``T - overlap`` (the overlap re-reads a little, because search
indexing lags; the store drops repeats). A first poll starts at ``now - backfill``. If
``max_pages`` runs out before that point, the cursor keeps T and records the gap: the
``after`` fullname to continue from and the newest time seen (``top``). The next poll
resumes the gap downwards, not the top; when it reaches T, T becomes ``top`` and the
following poll reads the top again. So nothing between polls is skipped, only delayed.
(Reddit serves at most about 1000 items of a listing; a backlog deeper than that cannot
be read by any client.)

Rate limits: OAuth clients get 100 queries a minute per client id (averaged over ten
minutes); unauthenticated clients far fewer (about 10 a minute) and are often refused
outright. Responses carry ``X-Ratelimit-Used``, ``X-Ratelimit-Remaining`` and
``X-Ratelimit-Reset`` (seconds), which ``_http`` reads on a 429.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
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

TYPE = "reddit"
SITE = "https://www.reddit.com"
INFO_BATCH = 100
_REMOVED_TEXT = {"[deleted]", "[removed]"}


class Settings(SourceSettings):
    type: Literal["reddit"]
    mode: Literal["search", "new", "comments"] = "search"
    query: str | None = Field(default=None, min_length=1)
    subreddit: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_+]{2,200}$")
    limit: int = Field(default=100, ge=1, le=100)
    overlap: Duration = timedelta(minutes=2)
    user_agent: str = Field(
        default="python:emberwatch:0.1 (self-hosted reputation monitor)", min_length=1
    )
    client_id: SecretStr | None = None
    client_secret: SecretStr | None = None
    base_url: str = SITE
    oauth_url: str = "https://oauth.reddit.com"

    @model_validator(mode="after")
    def _check_mode_and_credentials(self) -> Settings:
        if self.mode == "search" and not self.query:
            raise ValueError("query is required when mode = 'search'")
        if self.mode in ("new", "comments") and not self.subreddit:
            raise ValueError(f"subreddit is required when mode = {self.mode!r}")
        if (self.client_id is None) != (self.client_secret is None):
            missing = "client_secret" if self.client_secret is None else "client_id"
            raise ValueError(f"{missing} is required for Reddit OAuth (set both or neither)")
        return self


@dataclass(frozen=True)
class _Item:
    created: float | None
    mention: Mention


# -- parsing -------------------------------------------------------------------------------


def parse(body: bytes) -> list[Mention]:
    """Parse one Listing (search, ``new``, ``comments`` or ``/api/info``) into mentions."""
    items, _after = _listing(body)
    return [item.mention for item in items]


def _listing(body: bytes) -> tuple[list[_Item], str | None]:
    data = load_json(body, source=TYPE)
    if not isinstance(data, dict) or data.get("kind") != "Listing":
        raise ParseError("reddit: expected a Listing object")
    listing = data.get("data")
    if not isinstance(listing, dict) or not isinstance(listing.get("children"), list):
        raise ParseError("reddit: Listing lacks a 'data.children' list")
    after = opt(listing, "after", str, "reddit: listing")
    items: list[_Item] = []
    for child in listing["children"]:
        if not isinstance(child, dict) or not isinstance(child.get("data"), dict):
            raise ParseError("reddit: a listing child is not a {kind, data} object")
        kind = child.get("kind")
        if kind in ("t3", "t1"):
            items.append(_thing(kind, child["data"]))
    return items, after


def _thing(kind: str, thing: dict[str, Any]) -> _Item:
    thing_id = opt(thing, "id", str, f"reddit: {kind}")
    fullname = opt(thing, "name", str, f"reddit: {kind}") or (
        f"{kind}_{thing_id}" if thing_id else None
    )
    if not fullname:
        raise ParseError(f"reddit: a {kind} thing lacks 'name' and 'id'")
    where = f"reddit: {fullname}"
    created = opt(thing, "created_utc", (int, float), where)
    try:
        published = parse_timestamp(created)
    except (ValueError, OverflowError, OSError):
        raise ParseError(f"{where}: bad created_utc") from None
    permalink = opt(thing, "permalink", str, where)
    author = opt(thing, "author", str, where)
    if kind == "t3":
        title = _unescape(opt(thing, "title", str, where))
        text = _unescape(opt(thing, "selftext", str, where))
        reposts = opt(thing, "num_crossposts", int, where)
        replies = opt(thing, "num_comments", int, where)
    else:
        link_title = _unescape(opt(thing, "link_title", str, where))
        title = f"Re: {link_title}" if link_title else None
        text = _unescape(opt(thing, "body", str, where))
        reposts = replies = None
    thread = _thread(kind, fullname, thing, where)
    mention = Mention(
        source=TYPE,
        external_id=fullname,
        url=SITE + permalink if permalink and permalink.startswith("/") else permalink,
        author=None if author in (None, "[deleted]") else normalize_author(TYPE, author),
        author_followers=None,
        title=title or None,
        text="" if text in _REMOVED_TEXT else (text or ""),
        published_at=published,
        likes=opt(thing, "score", int, where),
        reposts=reposts,
        replies=replies,
        thread=thread,
    )
    return _Item(created=float(created) if created is not None else None, mention=mention)


def _thread(kind: str, fullname: str, thing: dict[str, Any], where: str) -> str | None:
    """The post a thing belongs to: a post is its own; a comment names its post in
    ``link_id`` (and, when a top-level comment, in ``parent_id`` too)."""
    if kind == "t3":
        post = fullname
    else:
        post = opt(thing, "link_id", str, where) or ""
        if not post.startswith("t3_"):
            parent = opt(thing, "parent_id", str, where) or ""
            post = parent if parent.startswith("t3_") else ""
    post_id = post.removeprefix("t3_").lower()
    return conversation(TYPE, "post", post_id) if post_id else None


def _unescape(value: str | None) -> str | None:
    # Reddit's JSON escapes &, < and > as HTML entities unless raw_json=1 is asked for.
    return html.unescape(value) if value else value


# -- HTTP ----------------------------------------------------------------------------------

_tokens: dict[tuple[str, str], tuple[str, datetime]] = {}


async def _access_token(client: httpx.AsyncClient, settings: Settings, now: datetime) -> str:
    """An app-only OAuth token (client-credentials grant), reused until it nearly expires."""
    from emberwatch.sources import _http

    assert settings.client_id is not None and settings.client_secret is not None
    client_id = settings.client_id.get_secret_value()
    url = settings.base_url.rstrip("/") + "/api/v1/access_token"
    key = (url, client_id)
    cached = _tokens.get(key)
    if cached and cached[1] > now:
        return cached[0]
    step = "POST access_token"
    timeout = settings.timeout.total_seconds()
    response = await _http.request(
        client,
        "POST",
        url,
        data={"grant_type": "client_credentials"},
        auth=(client_id, settings.client_secret.get_secret_value()),
        headers={"User-Agent": settings.user_agent},
        timeout=timeout,
        source=settings.name,
        step=step,
    )
    data = load_json(response.content, source=TYPE)
    token = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        error = data.get("error") if isinstance(data, dict) else None
        raise FetchError(
            f"{settings.name}: {step}: no access_token ({error or 'unexpected body'})",
            status=response.status_code,
            retryable=False,
        )
    expires_in = data.get("expires_in")
    lifetime = expires_in if isinstance(expires_in, int) and expires_in > 120 else 3600
    _tokens[key] = (token, now + timedelta(seconds=lifetime - 60))
    return token


async def _get(
    client: httpx.AsyncClient,
    settings: Settings,
    token: str | None,
    path: str,
    params: dict[str, Any],
    step: str,
) -> httpx.Response:
    from emberwatch.sources import _http

    headers = {"User-Agent": settings.user_agent}
    if token:
        url = settings.oauth_url.rstrip("/") + path
        headers["Authorization"] = f"bearer {token}"
    else:
        url = settings.base_url.rstrip("/") + path + ".json"
    return await _http.get(
        client,
        url,
        source=settings.name,
        step=step,
        params=params,
        headers=headers,
        timeout=settings.timeout.total_seconds(),
    )


def _listing_request(settings: Settings) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"limit": settings.limit}
    if settings.mode == "search":
        params.update(q=settings.query, sort="new", type="link")
        if settings.subreddit:
            params["restrict_sr"] = 1
            return f"/r/{settings.subreddit}/search", params
        return "/search", params
    return f"/r/{settings.subreddit}/{settings.mode}", params


def _load_cursor(cursor: str | None, settings: Settings, now: datetime) -> dict[str, Any]:
    if cursor:
        try:
            state = json.loads(cursor)
            if isinstance(state.get("since"), int | float):
                gap = state.get("gap")
                if gap is None or (
                    isinstance(gap.get("after"), str) and isinstance(gap.get("top"), int | float)
                ):
                    return state
        except (ValueError, AttributeError, TypeError):
            pass
    return {"since": (now - settings.backfill).timestamp(), "gap": None}


async def fetch(
    client: httpx.AsyncClient, settings: Settings, cursor: str | None, now: datetime
) -> Fetched:
    """One poll: page newest-first down to the stored high-water mark (or resume a gap)."""
    state = _load_cursor(cursor, settings, now)
    since: float = state["since"]
    gap: dict[str, Any] | None = state["gap"]
    bound = since - settings.overlap.total_seconds()
    token = await _access_token(client, settings, now) if settings.client_id else None
    path, base_params = _listing_request(settings)
    after = gap["after"] if gap else None
    mentions: list[Mention] = []
    newest: float | None = None
    pages = 0
    caught_up = False
    while pages < settings.max_pages:
        params = {**base_params, **({"after": after} if after else {})}
        response = await _get(client, settings, token, path, params, f"GET {path} page {pages}")
        pages += 1
        items, next_after = _listing(response.content)
        for item in items:
            if item.created is not None and item.created < bound:
                caught_up = True
                break
            mentions.append(item.mention)
            if item.created is not None:
                newest = item.created if newest is None else max(newest, item.created)
        if caught_up or not items or not next_after:
            caught_up = True
            break
        after = next_after
    top = gap["top"] if gap else (newest if newest is not None else since)
    if caught_up:
        next_state = {"since": max(since, top), "gap": None}
        notes = []
    else:
        next_state = {"since": since, "gap": {"after": after, "top": top}}
        notes = [f"stopped at max_pages={settings.max_pages}; the backlog is read next poll"]
    return Fetched(mentions=mentions, cursor=json.dumps(next_state), pages=pages, notes=notes)


async def refresh(
    client: httpx.AsyncClient, settings: Settings, external_ids: list[str], now: datetime
) -> list[Mention]:
    """Current scores and comment counts for stored mentions, 100 fullnames a request."""
    fullnames = list(dict.fromkeys(i for i in external_ids if i[:3] in ("t1_", "t3_")))
    if not fullnames:
        return []
    token = await _access_token(client, settings, now) if settings.client_id else None
    mentions: list[Mention] = []
    for start in range(0, len(fullnames), INFO_BATCH):
        batch = fullnames[start : start + INFO_BATCH]
        response = await _get(
            client, settings, token, "/api/info", {"id": ",".join(batch)}, "GET /api/info"
        )
        mentions.extend(parse(response.content))
    return mentions
