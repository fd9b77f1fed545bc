"""Group related alerts into one incident: same thread, URL or author, or near-duplicate text.

Keys are plain strings so they can be stored and looked up:

- ``thread:<conversation>``: the conversation the mention belongs to, as its connector
  read it from the platform's reply link (``Mention.thread``: a Hacker News story and its
  comments, a Reddit post and its comments, a video's comments, a Mastodon, Bluesky or X
  post and its replies), or, for a mention without one, as its URL shows it
  (:func:`thread_key`: a Google Alert linking a Reddit thread joins that thread);
- ``url:<normalized url>``;
- ``author:<source>:<name>``, compared as :func:`emberwatch.mention.author_key` has it.

Near-duplicate text is found with rapidfuzz's token-set ratio, because a story copied
across sites keeps its words but not their order or surroundings.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
from rapidfuzz import fuzz, utils

from emberwatch.mention import author_key

# Near-duplicate matching needs enough words to mean something: two three-word posts
# that both say "Acme is awful" are not one story.
MIN_WORDS_FOR_TEXT_MATCH = 8

_TRACKING = re.compile(r"^(utm_|fbclid$|gclid$|ref$|ref_src$|si$)")
_REDDIT_THREAD = re.compile(r"/comments/([a-z0-9]+)", re.IGNORECASE)


def normalize_url(url: str) -> str:
    """Scheme and host lower-cased; the scheme's default port, fragment, tracking parameters
    and trailing slash dropped; percent-escapes upper-cased, unreserved ones decoded
    (RFC 3986, 6.2.2), so ``%c3`` and ``%C3`` are one address."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    query = urlencode(
        sorted((k, v) for k, v in parse_qsl(parts.query) if not _TRACKING.match(k.lower()))
    )
    path = _PERCENT.sub(_percent, parts.path).rstrip("/") or "/"
    return urlunsplit((scheme, _host(parts, scheme), path, query, ""))


_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _percent(match: re.Match[str]) -> str:
    char = chr(int(match[1], 16))
    return char if char in _UNRESERVED else f"%{match[1].upper()}"


def _host(parts: SplitResult, scheme: str) -> str:
    """``host[:port]``, lower-case, without ``www.``, a trailing dot or the default port."""
    try:
        port = parts.port
    except ValueError:  # not a number: keep the address as written
        return parts.netloc.lower().removeprefix("www.")
    host = (parts.hostname or "").rstrip(".").removeprefix("www.")
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"


def thread_key(url: str) -> str | None:
    """The conversation a link points into, where the URL shows it, named as the
    platform's connector names it in ``Mention.thread``."""
    parts = urlsplit(url.strip())
    try:
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return None
    if host == "reddit.com" or host.endswith(".reddit.com") or host == "redd.it":
        if host == "redd.it":
            post = parts.path.strip("/").split("/")[0]
            return f"reddit:post:{post.lower()}" if _REDDIT_ID.match(post) else None
        match = _REDDIT_THREAD.search(parts.path)
        return f"reddit:post:{match[1].lower()}" if match else None
    video: str | None = None
    if host == "youtu.be":
        video = parts.path.strip("/").split("/")[0]
    elif host == "youtube.com" or host.endswith(".youtube.com"):
        video = dict(parse_qsl(parts.query)).get("v")
        shown = _YOUTUBE_PATH.match(parts.path)
        if not video and shown:
            video = shown[1]
    return f"youtube:video:{video}" if video and _YOUTUBE_ID.match(video) else None


_REDDIT_ID = re.compile(r"^[a-z0-9]+$", re.IGNORECASE)
_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{6,20}$")
_YOUTUBE_PATH = re.compile(r"^/(?:shorts|embed|live|v)/([^/?#]+)")


@lru_cache(maxsize=4096)
def grouping_keys(
    source: str, url: str | None, author: str | None, thread: str | None = None
) -> tuple[str, ...]:
    """The keys an alert on this mention groups by. Cached: a poll reads each alert's keys
    twice (to read the incidents holding them, then to file the alert), and normalizing
    a URL costs more than the rest of that.

    ``thread`` is the mention's conversation as its connector stored it; the one its URL
    shows is added when it differs (a link into another platform's thread).
    """
    keys = []
    if thread:
        keys.append(f"thread:{thread}")
    if url:
        keys.append(f"url:{normalize_url(url)}")
        linked = thread_key(url)
        if linked and linked != thread:
            keys.append(f"thread:{linked}")
    name = author_key(source, author)
    if name:
        keys.append(f"author:{source}:{name}")
    return tuple(keys)


class TextShapes:
    """What near-duplicate matching needs of each text, computed once per text.

    A mention's text never changes, and the same recent alert texts are candidates in poll
    after poll, so a runtime keeps one of these across transactions. Token ids come from
    one vocabulary shared by every index built on this object; when either grows past
    ``limit`` the owner replaces the object (see :meth:`full`), never clears it, so an
    index in use keeps ids that agree.
    """

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self.vocabulary: dict[str, int] = {}
        # Each alerted mention's text as grouping reads it, by mention id and the time
        # its alert was raised: the texts of recent alerts need not be read again, nor
        # hashed again as new strings.
        self.mention_texts: dict[tuple[int, datetime], str] = {}
        self._by_text: dict[str, _Shape | None] = {}
        # Polls run in threads: two new words must never get the same id.
        self._lock = threading.Lock()

    def full(self) -> bool:
        return (
            len(self._by_text) > self.limit
            or len(self.mention_texts) > self.limit
            or len(self.vocabulary) > 4 * self.limit
        )

    def shape(self, text: str) -> _Shape | None:
        """The text's shape, or None when it is too short to match."""
        try:
            return self._by_text[text]
        except KeyError:
            with self._lock:
                shape = self._by_text[text] = self._make(text)
            return shape

    def _make(self, text: str) -> _Shape | None:
        processed = utils.default_process(text)
        tokens = processed.split()
        if len(tokens) < MIN_WORDS_FOR_TEXT_MATCH:
            return None
        unique = sorted(set(tokens))
        vocabulary = self.vocabulary
        ids = np.fromiter(
            (vocabulary.setdefault(token, len(vocabulary)) for token in unique),
            dtype=np.intp,
            count=len(unique),
        )
        joined = " ".join(unique)
        weights = np.fromiter((len(token) + 1 for token in unique), np.float64, len(unique))
        return _Shape(processed, ids, weights, len(joined), _histogram(joined))


class _Shape(NamedTuple):
    processed: str  # what rapidfuzz compares (rapidfuzz's default_process)
    token_ids: np.ndarray  # of its unique words
    token_weights: np.ndarray  # each unique word's length + 1
    length: int  # of the sorted unique words joined by spaces
    characters: np.ndarray  # histogram of that string's character classes


class TextIndex:
    """Candidate texts for near-duplicate matching, newest first.

    A text already held for the same key is not held twice: reposts of one story are
    common, and comparing against each copy costs time and finds nothing new.

    Comparing a text with every candidate was most of the cost of filing an alert, so
    :meth:`best` first computes, all at once with numpy, a ceiling on each candidate's
    token-set ratio (:meth:`_Table.ceilings` says why), and lets rapidfuzz score only
    those whose ceiling still reaches the best score found so far, highest ceiling first.
    The result is the one rapidfuzz's ``extractOne`` gives on all of them, newest first
    (``tests/alerts/test_grouping.py`` checks it).
    """

    def __init__(self, shapes: TextShapes | None = None) -> None:
        self._shapes = shapes or TextShapes()
        self._keys: list[Any] = []
        self._texts: list[str] = []
        # Position in the newest-first order: newest additions count down from -1, older
        # ones (loaded oldest-last) count up from 0; sorting by it restores that order.
        self._order: list[int] = []
        self._newest, self._oldest = -1, 0
        self._seen: dict[Any, set[str]] = {}
        self._table = _Table()
        self._weights = np.zeros(0, dtype=np.float64)

    def __len__(self) -> int:
        return len(self._texts)

    def add(self, key: Any, text: str, *, newest: bool = True) -> None:
        self.add_many([(key, text)], newest=newest)

    def add_many(self, items: Iterable[tuple[Any, str]], *, newest: bool = True) -> None:
        """Add (key, text) pairs in order: each newer than the last, or, with ``newest``
        false, each older than the last (as a query sorted newest first returns them)."""
        shapes = []
        for key, text in items:
            shape = self._shapes.shape(text)
            if shape is None:
                continue
            known = self._seen.setdefault(key, set())
            if shape.processed in known:
                continue
            known.add(shape.processed)
            self._keys.append(key)
            self._texts.append(shape.processed)
            if newest:
                self._order.append(self._newest)
                self._newest -= 1
            else:
                self._order.append(self._oldest)
                self._oldest += 1
            shapes.append(shape)
        self._table.extend(shapes)

    def best(self, text: str, threshold: float) -> Any | None:
        """The key of the text most like ``text``, if any reaches ``threshold``.

        Of equal scores the newest text wins, as rapidfuzz's ``extractOne`` over the
        candidates newest first would have it.
        """
        if not self._texts:
            return None
        shape = self._shapes.shape(text)
        if shape is None:
            return None
        ceilings = self._ceilings_for(shape)
        # Highest ceiling first: once a score is found, every candidate whose ceiling is
        # below it is out, and the rest are scored with that score as their cutoff.
        # A hair of slack, so that rounding never drops a candidate at the score.
        kept = np.flatnonzero(ceilings >= threshold - _SLACK)
        if kept.size == 0:
            return None
        order = self._order
        best_score, winner = threshold, -1
        for i in kept[np.argsort(-ceilings[kept], kind="stable")].tolist():
            if ceilings[i] < best_score - _SLACK:
                break
            score = fuzz.token_set_ratio(
                shape.processed, self._texts[i], processor=None, score_cutoff=best_score
            )
            if score > best_score or (
                score == best_score and (winner < 0 or order[i] < order[winner])
            ):
                best_score, winner = score, i
        return None if winner < 0 else self._keys[winner]

    def _ceilings_for(self, shape: _Shape) -> np.ndarray:
        # Per token id, the token's length + 1 where the query has it, else 0. One array
        # per index, cleared after each query rather than rebuilt.
        size = len(self._shapes.vocabulary)
        if len(self._weights) < size:
            self._weights = np.zeros(2 * size, dtype=np.float64)
        ids = shape.token_ids
        self._weights[ids] = shape.token_weights
        try:
            return self._table.ceilings(shape, self._weights)
        finally:
            self._weights[ids] = 0


# Floating-point slack for comparing a ceiling with a score.
_SLACK = 1e-6

# Character classes for the histogram bound: space, digits, letters, and three shared
# classes for everything else (sharing a class only loosens the bound, never breaks it).
_CLASSES = 40
_CLASS_OF = np.full(128, 37, dtype=np.intp)
_CLASS_OF[ord(" ")] = 0
_CLASS_OF[ord("0") : ord("9") + 1] = np.arange(1, 11)
_CLASS_OF[ord("a") : ord("z") + 1] = np.arange(11, 37)


def _histogram(joined: str) -> np.ndarray:
    if joined.isascii():  # most texts: one byte a character, each in the table
        classes = _CLASS_OF[np.frombuffer(joined.encode("ascii"), dtype=np.uint8)]
    else:
        codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
        classes = np.where(codes < 128, _CLASS_OF[np.minimum(codes, 127)], 37 + codes % 3)
    return np.bincount(classes, minlength=_CLASSES).astype(np.int32)


class _Table:
    """The candidates' shapes as growable numpy arrays, one row per candidate, plus their
    token ids flattened, row after row, with where each row's start."""

    def __init__(self) -> None:
        self.count = 0
        self._lengths = np.zeros(64, dtype=np.float64)
        self._characters = np.zeros((64, _CLASSES), dtype=np.int32)
        self._starts = np.zeros(64, dtype=np.intp)
        self._token_ids = np.zeros(1024, dtype=np.intp)
        self._tokens = 0

    def extend(self, shapes: list[_Shape]) -> None:
        """Append rows, growing the arrays at most once (a poll loads hundreds at a time)."""
        if not shapes:
            return
        row, used = self.count, self._tokens
        rows = row + len(shapes)
        counts = [len(shape.token_ids) for shape in shapes]
        tokens = used + sum(counts)
        if rows > len(self._lengths):
            size = max(2 * len(self._lengths), rows)
            self._lengths = np.resize(self._lengths, size)
            self._characters = np.resize(self._characters, (size, _CLASSES))
            self._starts = np.resize(self._starts, size)
        if tokens > len(self._token_ids):
            size = max(2 * len(self._token_ids), tokens)
            self._token_ids = np.resize(self._token_ids, size)
        self._lengths[row:rows] = [shape.length for shape in shapes]
        self._characters[row:rows] = [shape.characters for shape in shapes]
        self._starts[row:rows] = used + np.cumsum([0, *counts[:-1]])
        self._token_ids[used:tokens] = np.concatenate([shape.token_ids for shape in shapes])
        self.count, self._tokens = rows, tokens

    def ceilings(self, query: _Shape, weights: np.ndarray) -> np.ndarray:
        """For each candidate, a ceiling on rapidfuzz's token-set ratio with ``query``.

        ``weights`` holds, per token id, the token's length + 1 where the query has that
        token, else 0. With A and B the two texts' sorted unique words, rapidfuzz scores
        the larger of ratio(common, common+only_A), ratio(common, common+only_B) and
        ratio(common+only_A, common+only_B), each joined by spaces.
        """
        n, used = self.count, self._tokens
        lengths, query_length = self._lengths[:n], float(query.length)
        # s, the length of the common words joined (0 when none): the sum of length + 1
        # over them, less the one separator too many. Summed row by row over the rows'
        # runs of tokens (every row has one at least); the sums are whole numbers, exact
        # in any order.
        shared = np.add.reduceat(weights[self._token_ids[:used]], self._starts[:n])
        shared = np.maximum(shared - 1, 0)
        # The first two ratios follow from the lengths alone: 2s / (s + L), 0 when s is
        # (every length is positive: shorter texts never get a shape).
        by_query = 200 * shared / (shared + query_length)
        by_candidate = 200 * shared / (shared + lengths)
        # The third is 100 * (1 - d / (La + Lb)), d the indel distance of the two
        # leftovers. d is at least the L1 distance of their character histograms, and
        # the common part cancels out: that is the L1 distance of the full strings'.
        distance = np.abs(self._characters[:n] - query.characters).sum(axis=1)
        by_leftovers = 100 * (1 - distance / (lengths + query_length))
        return np.maximum(np.maximum(by_query, by_candidate), by_leftovers)


def near_duplicate(text: str, candidates: dict[int, str], threshold: float) -> int | None:
    """The key of the candidate text most like ``text``, if any reaches ``threshold``."""
    index = TextIndex()
    for key, candidate in candidates.items():
        index.add(key, candidate, newest=False)
    return index.best(text, threshold)
