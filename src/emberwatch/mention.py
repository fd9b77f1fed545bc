"""The normalized mention: what every connector's ``parse`` returns.

A mention is the same shape whatever the platform, so everything downstream (matching,
storage, scoring, alerts) is written once. Fields a platform does not have are ``None``.

Authors are stored as :func:`normalize_author` leaves them, so that grouping by author and
VIP matching see one spelling per person; :func:`author_key` is the form they compare.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from functools import cache
from operator import attrgetter
from typing import Any

from emberwatch._slots import maker


@dataclass(frozen=True, slots=True)
class Mention:
    """One post, review or comment, as a connector saw it.

    ``source`` is the connector type (``rss``, ``reddit``, ...); ``external_id`` is the
    platform's own id, so ``(source, external_id)`` identifies a mention. ``published_at``
    is always timezone-aware UTC.

    ``thread`` names the conversation the mention belongs to, where the platform links a
    reply to its story or parent: a platform-qualified key such as
    ``"hackernews:story:41000002"``, ``"reddit:post:1abc2d"`` or ``"x:conversation:18…"``.
    A story or top-level post carries its own key, so it and its replies share one.
    """

    source: str
    external_id: str
    url: str | None
    author: str | None
    author_followers: int | None
    title: str | None
    text: str
    published_at: datetime | None
    rating: float | None = None
    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    thread: str | None = None

    def __post_init__(self) -> None:
        # PostgreSQL refuses NUL in text columns, and no database driver can encode a lone
        # surrogate (a JSON body's unpaired "\ud800" escape): one post carrying either
        # would fail its whole poll, every time. Neither carries meaning, so NUL goes and a
        # lone surrogate becomes U+FFFD, here, once for every path.
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if not value:
                continue
            clean = value.replace("\x00", "") if "\x00" in value else value
            if not clean.isascii() and _SURROGATE.search(clean):
                clean = _SURROGATE.sub("\ufffd", clean)
            if clean is not value:
                object.__setattr__(self, name, clean)

    @property
    def engagement(self) -> int:
        """Likes, reposts and replies added up; missing counts count as zero."""
        return (self.likes or 0) + (self.reposts or 0) + (self.replies or 0)

    @property
    def has_counts(self) -> bool:
        """Whether the source reported any engagement count (zero counts included)."""
        return self.likes is not None or self.reposts is not None or self.replies is not None

    @property
    def full_text(self) -> str:
        """Title and text together, as the matcher and the scorer read them."""
        return f"{self.title}\n{self.text}" if self.title else self.text

    def __reduce__(self) -> tuple[type[Mention], tuple[Any, ...]]:
        # Pickled as the arguments of Mention(...): the scoring pool sends every new
        # mention to its worker, and this is half the time of a dataclass's own
        # field-by-field state, both ways.
        return Mention, _field_values(self)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["published_at"] = _iso(self.published_at)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Mention:
        """Build a mention from its JSON form; unknown keys are ignored, missing ones None
        (``source``, ``external_id`` and ``text`` ""). Every field by name, in order: this
        runs for every line ``emberwatch score`` reads (``_FIELDS`` is checked against the
        class at import). Without a NUL or lone surrogate to clean, the mention is made slot
        by slot (``_made``), not through the frozen ``__init__``."""
        get = data.get
        url, author, followers, title = (
            get("url"),
            get("author"),
            get("author_followers"),
            get("title"),
        )
        rating, likes, reposts, replies = (
            get("rating"),
            get("likes"),
            get("reposts"),
            get("replies"),
        )
        thread = get("thread")
        try:
            published = parse_timestamp(get("published_at"))
        except (ValueError, TypeError, OverflowError, OSError) as exc:
            # OverflowError and OSError: a Unix time beyond what the platform's clock reads.
            raise ValueError(f"published_at: {exc}") from None
        source, external_id = str(get("source", "")), str(get("external_id", ""))
        text = str(get("text") or "")
        values = (
            source,
            external_id,
            url,
            author,
            followers,
            title,
            text,
            published,
            rating,
            likes,
            reposts,
            replies,
            thread,
        )
        # A count given as "900" or a URL given as a number would fail deep in scoring
        # with a traceback; it is refused here, naming the field. This runs for every
        # line `emberwatch score` reads, so the common case is one type test a field.
        if (
            type(url) not in _TEXT
            or type(author) not in _TEXT
            or type(title) not in _TEXT
            or type(thread) not in _TEXT
            or type(followers) not in _COUNT
            or type(likes) not in _COUNT
            or type(reposts) not in _COUNT
            or type(replies) not in _COUNT
            or type(rating) not in _NUMBER
        ):
            raise ValueError(_wrong_type(values))
        # Every text field is a string or None here, and None reads "None": no NUL or lone
        # surrogate in them all is none in any, and nothing for __post_init__ to do.
        joined = f"{source}{external_id}{url}{author}{title}{text}{thread}"
        if (
            cls is Mention
            and "\x00" not in joined
            and (joined.isascii() or not _SURROGATE.search(joined))
        ):
            return _made(*values)
        return cls(*values)


# A UTF-16 surrogate: in a str, only ever a lone one (a pair decodes to one character).
_SURROGATE = re.compile("[\ud800-\udfff]")
_TEXT_FIELDS = ("source", "external_id", "url", "author", "title", "text", "thread")
# The fields from_dict reads, in order: a field added to Mention must be read there too.
_FIELDS = (
    "source",
    "external_id",
    "url",
    "author",
    "author_followers",
    "title",
    "text",
    "published_at",
    "rating",
    "likes",
    "reposts",
    "replies",
    "thread",
)
if tuple(f.name for f in fields(Mention)) != _FIELDS:  # pragma: no cover - a developer's slip
    raise TypeError("Mention.from_dict does not read every field of Mention")
_field_values = attrgetter(*_FIELDS)


# Mention(*values) for values that need nothing of __post_init__ (no NUL, no lone
# surrogate): each slot set through its descriptor (from_dict of a short line: 33,500 ->
# 20,200 instructions, callgrind).
_made = maker(Mention, skip_post_init=True)

# The JSON types from_dict accepts for each field, None included.
_TEXT = frozenset({str, type(None)})
_COUNT = frozenset({int, type(None)})
_NUMBER = frozenset({int, float, type(None)})
_KINDS = {"author_followers": _COUNT, "rating": _NUMBER, "likes": _COUNT}
_KINDS |= {"reposts": _COUNT, "replies": _COUNT}
_KIND_NAMES = {_TEXT: "a string", _COUNT: "a whole number", _NUMBER: "a number"}


def _wrong_type(values: tuple[Any, ...]) -> str:
    """What from_dict says of the first field whose JSON type is wrong."""
    for name, value in zip(_FIELDS, values, strict=True):
        kinds = _KINDS.get(name, _TEXT)
        if name != "published_at" and type(value) not in kinds:
            return f"{name} must be {_KIND_NAMES[kinds]}, not {value!r}"
    return "a field has the wrong type"  # pragma: no cover - from_dict found one


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_timestamp(value: Any) -> datetime | None:
    """Read an ISO 8601 string, a Unix time or a datetime into aware UTC; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float):
        moment = datetime.fromtimestamp(float(value), tz=UTC)
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# As long as ``mentions.thread`` holds.
MAX_THREAD_LENGTH = 500


def conversation(platform: str, kind: str, ident: object) -> str:
    """A conversation key, ``platform:kind:id`` (``"hackernews:story:41000002"``), for
    ``Mention.thread``. An id too long to store (a Bluesky AT-URI or a Pleroma context is
    the platform's to choose) is replaced by its SHA-256, so one odd post never fails a
    poll and the same conversation still gets the same key."""
    key = f"{platform}:{kind}:{ident}"
    if len(key) <= MAX_THREAD_LENGTH:
        return key
    import hashlib  # here: OpenSSL's load is a good part of `emberwatch score`'s start-up

    return f"{platform}:{kind}:sha256:{hashlib.sha256(str(ident).encode()).hexdigest()}"


# RSS 2.0 writes <author> as "email (name)"; many feeds write "name <email>", and
# feedparser renders an Atom author with both as "name (email)".
_EMAIL = r"[^\s@()<>]+@[^\s@()<>]+"
_WRITTEN_WITH_EMAIL = (
    rf"^{_EMAIL}\s*\((?P<name>[^()]*)\)$",
    rf"^(?P<name>[^<>]*?)\s*<{_EMAIL}>$",
    rf"^(?P<name>[^()]*?)\s*\({_EMAIL}\)$",
)
_SPACES = r"\s+"
# Compiled on first use: `emberwatch score` imports this module and never reads an author.
_compiled = cache(re.compile)


def normalize_author(source: str, author: str | None) -> str | None:
    """The author as connectors store it: one spelling per person on a platform.

    Whitespace is collapsed and a leading ``@`` dropped (``@dana_w`` and ``dana_w`` are one
    handle; Mastodon's ``@user@host`` becomes ``user@host``, as its ``acct`` reads). On
    RSS and Atom the name is kept of ``email (name)`` (RSS 2.0's form), ``name <email>``
    and ``name (email)``; a bare address stays. Case is kept as the platform shows it:
    :func:`author_key` compares.
    """
    if author is None:
        return None
    name = _compiled(_SPACES).sub(" ", author).strip()
    if source == "rss":
        for written in _WRITTEN_WITH_EMAIL:
            found = _compiled(written).match(name)
            if found and found["name"].strip():
                name = found["name"].strip()
                break
    name = name.lstrip("@").strip()
    return name or None


def author_key(source: str, author: str | None) -> str | None:
    """The author as grouping compares it: normalized and case-folded.

    Handles are case-insensitive on Reddit, X, Mastodon, Bluesky and YouTube. Hacker News
    names are case-sensitive, but its API always spells a user one way, so folding can
    only join two HN users whose names differ in case alone; it is kept there too, so that
    grouping agrees with VIP matching, which compares handles case-insensitively.
    """
    name = normalize_author(source, author)
    return None if name is None else name.casefold()
