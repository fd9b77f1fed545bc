"""Newest-first paging down to a watermark, resumable: shared by the review connectors.

Review APIs (App Store, Yelp, Google Places, Trustpilot, YouTube) list items newest first
and offer no "since" filter, so a poll reads pages from the top and stops at the first
item it has already seen. The state that makes that work is a :class:`Watermark`:

- ``newest``: the newest ``published_at`` seen so far, and ``ids``: the items seen at
  exactly that instant. An item is already seen when it is older than ``newest``, or at
  ``newest`` with its id in ``ids``. Seen items at ``newest`` are skipped without
  stopping, since items with the same timestamp come in any order; the first older one
  stops the poll. Items without a timestamp are always kept.
- ``resume``: set only when ``max_pages`` ran out before the poll reached the watermark.
  The watermark then stays where it was, and ``resume`` holds where the next poll goes on
  (``at``: a page number, an offset or a page token, as the connector reads it) and the
  newest item read so far (``top``, ``top_ids``). The watermark moves up to ``top`` only
  once a later poll reaches the old watermark, so nothing between two polls is skipped.

The cursor is that state as JSON, the format every review connector wrote before this
module existed, so stored cursors stay valid::

    {"newest": "2024-07-05T01:30:05+00:00", "ids": ["a"]}
    {"newest": "...", "ids": [...], "resume": {"at": 3, "top": "...", "top_ids": [...]}}

A :class:`Walk` is one poll: ``take`` each page in order, then ``cursor`` for the next
poll. The connector keeps its own loop (how it asks for a page, and when a page is the
last one); this module only decides which items are new and when to stop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from emberwatch.mention import Mention, parse_timestamp

UNREADABLE = "unreadable cursor; starting over from the backfill window"


@dataclass(frozen=True)
class Resume:
    """Where a poll cut short by ``max_pages`` goes on, and the newest item it read."""

    at: Any
    top: datetime
    top_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Watermark:
    """A review connector's cursor: see the module docstring."""

    newest: datetime
    ids: tuple[str, ...] = ()
    resume: Resume | None = None

    @classmethod
    def load(cls, cursor: str) -> Watermark:
        """Read a cursor written by :meth:`dump`; ValueError when it cannot be read."""
        try:
            state = json.loads(cursor)
            newest = _moment(state["newest"])
            ids = tuple(str(i) for i in state.get("ids", []))
            resume = None
            saved = state.get("resume")
            if saved:
                at = saved["at"]
                top = _moment(saved["top"])
                top_ids = tuple(str(i) for i in saved["top_ids"])
                # A resume point of null means there is nothing to go on with.
                resume = None if at is None else Resume(at, top, top_ids)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise ValueError("unreadable cursor") from error
        return cls(newest, ids, resume)

    def dump(self) -> str:
        state: dict[str, Any] = {"newest": self.newest.isoformat(), "ids": list(self.ids)}
        if self.resume is not None:
            state["resume"] = {
                "at": self.resume.at,
                "top": self.resume.top.isoformat(),
                "top_ids": list(self.resume.top_ids),
            }
        return json.dumps(state)


def _moment(value: Any) -> datetime:
    moment = parse_timestamp(value)
    if moment is None:
        raise ValueError("missing timestamp")
    return moment


class Walk:
    """One poll reading newest-first pages down to the watermark of ``cursor``.

    A first poll (``cursor`` None or empty) and a poll whose cursor cannot be read start
    with the watermark at ``floor`` (``now - backfill``); the latter says so in ``notes``.
    """

    def __init__(self, cursor: str | None, floor: datetime) -> None:
        self.notes: list[str] = []
        self.mentions: list[Mention] = []
        self.start = Watermark(floor)
        if cursor:
            try:
                self.start = Watermark.load(cursor)
            except ValueError:
                self.notes.append(UNREADABLE)
        resume = self.start.resume
        self._top = resume.top if resume else self.start.newest
        self._top_ids = list(resume.top_ids if resume else self.start.ids)

    @property
    def resume_at(self) -> Any:
        """Where the previous poll stopped short (page, offset or token); None: the top."""
        return self.start.resume.at if self.start.resume else None

    def restart(self) -> None:
        """Forget the resume point and read again from the top (a refused page token)."""
        self.start = Watermark(self.start.newest, self.start.ids)
        self._top, self._top_ids = self.start.newest, list(self.start.ids)

    def take(self, batch: list[Mention]) -> bool:
        """Keep the unseen mentions of one page; True once one is older than the watermark."""
        newest, seen = self.start.newest, self.start.ids
        for mention in batch:
            when = mention.published_at
            if when is not None and when < newest:
                return True
            if when == newest and mention.external_id in seen:
                continue
            self.mentions.append(mention)
            if when is not None and when > self._top:
                self._top, self._top_ids = when, [mention.external_id]
            elif when == self._top and mention.external_id not in self._top_ids:
                self._top_ids.append(mention.external_id)
        return False

    def cursor(self, *, caught_up: bool, resume_at: Any = None) -> str:
        """The next poll's cursor: the watermark moves up only once the poll caught up."""
        if caught_up:
            return Watermark(self._top, tuple(self._top_ids)).dump()
        resume = Resume(resume_at, self._top, tuple(self._top_ids))
        return Watermark(self.start.newest, self.start.ids, resume).dump()
