"""Group related alerts into one incident: same thread, URL or author, or near-duplicate text.

Keys are plain strings so they can be stored and looked up; near-duplicate text is found
with rapidfuzz's token-set ratio, because a story copied across sites keeps its words but
not their order or surroundings.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from rapidfuzz import fuzz, process, utils

# Near-duplicate matching needs enough words to mean something: two three-word posts
# that both say "Acme is awful" are not one story.
MIN_WORDS_FOR_TEXT_MATCH = 8

_TRACKING = re.compile(r"^(utm_|fbclid$|gclid$|ref$|ref_src$|si$)")
_REDDIT_THREAD = re.compile(r"/comments/([a-z0-9]+)", re.IGNORECASE)


def normalize_url(url: str) -> str:
    """Scheme and host lower-cased; fragment, tracking parameters and trailing slash dropped."""
    parts = urlsplit(url.strip())
    query = urlencode(
        sorted((k, v) for k, v in parse_qsl(parts.query) if not _TRACKING.match(k.lower()))
    )
    path = parts.path.rstrip("/") or "/"
    host = parts.netloc.lower().removeprefix("www.")
    return urlunsplit((parts.scheme.lower(), host, path, query, ""))


def thread_key(url: str) -> str | None:
    """The conversation a comment belongs to, where its permalink shows it."""
    parts = urlsplit(url)
    host = parts.netloc.lower()
    if host.endswith("reddit.com"):
        match = _REDDIT_THREAD.search(parts.path)
        return f"thread:reddit:{match[1].lower()}" if match else None
    if host.endswith("youtube.com"):
        video = dict(parse_qsl(parts.query)).get("v")
        return f"thread:youtube:{video}" if video else None
    return None


def grouping_keys(source: str, url: str | None, author: str | None) -> list[str]:
    keys = []
    if url:
        keys.append(f"url:{normalize_url(url)}")
        thread = thread_key(url)
        if thread:
            keys.append(thread)
    if author:
        keys.append(f"author:{source}:{author.strip().lstrip('@').lower()}")
    return keys


class TextIndex:
    """Candidate texts for near-duplicate matching, pre-processed once, newest first.

    A text already held for the same key is not held twice: reposts of one story are
    common, and comparing against each copy costs time and finds nothing new.
    """

    def __init__(self) -> None:
        self._keys: list[Any] = []
        self._texts: list[str] = []
        self._seen: dict[Any, set[str]] = {}

    def add(self, key: Any, text: str, *, newest: bool = True) -> None:
        processed = utils.default_process(text)
        if len(processed.split()) < MIN_WORDS_FOR_TEXT_MATCH:
            return
        known = self._seen.setdefault(key, set())
        if processed in known:
            return
        known.add(processed)
        if newest:
            self._keys.insert(0, key)
            self._texts.insert(0, processed)
        else:
            self._keys.append(key)
            self._texts.append(processed)

    def best(self, text: str, threshold: float) -> Any | None:
        """The key of the text most like ``text``, if any reaches ``threshold``."""
        processed = utils.default_process(text)
        if not self._texts or len(processed.split()) < MIN_WORDS_FOR_TEXT_MATCH:
            return None
        found = process.extractOne(
            processed,
            self._texts,
            scorer=fuzz.token_set_ratio,
            processor=None,
            score_cutoff=threshold,
        )
        return None if found is None else self._keys[found[2]]


def near_duplicate(text: str, candidates: dict[int, str], threshold: float) -> int | None:
    """The key of the candidate text most like ``text``, if any reaches ``threshold``."""
    index = TextIndex()
    for key, candidate in candidates.items():
        index.add(key, candidate, newest=False)
    return index.best(text, threshold)
