"""The demo's scripted story: one customer's late-delivery complaint spreads.

A review says the order is three weeks late and support blamed the courier; a Hacker News
post about it gathers points and comments poll after poll, and another customer comments
on it; a news site picks the delays up; all among ordinary neutral and happy mentions.
Times are fractions of the demo's duration.

The feeds are written as the real ones are: review authors the RSS 2.0 way
(``email (name)``), Hacker News comments with the ``story_id`` and ``parent_id`` that
Algolia sends, so the demo shows a comment joining its story's incident.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

from emberwatch.demo.servers import Reply


@dataclass(frozen=True)
class Item:
    at: float  # fraction of the demo's duration when it appears
    feed: str  # "reviews" (RSS), "news" (Atom) or "hn" (Algolia JSON)
    id: str
    title: str
    text: str
    author: str
    # Hacker News points and comments over time: (fraction, points, comments).
    growth: tuple[tuple[float, int, int], ...] = ()
    # A Hacker News comment's parent (the story, for a top-level comment); None for a story.
    parent: str | None = None


STORY: tuple[Item, ...] = (
    Item(
        0.00,
        "news",
        "news-1",
        "Acme opens a new warehouse in Leeds",
        "The kettle maker Acme said the site will handle orders for the north of England.",
        "Business Desk",
    ),
    Item(
        0.00,
        "hn",
        "41000001",
        "Show HN: A tea timer that talks to Acme smart kettles",
        "I built a small timer for my Acme kettle. Works nicely, feedback welcome!",
        "tinkerer",
        ((0.0, 12, 2),),
    ),
    Item(
        0.05,
        "reviews",
        "rev-101",
        "Lovely kettle",
        "Love my Acme kettle, boils fast and looks great on the counter. Five stars.",
        "Priya S.",
    ),
    Item(
        0.15,
        "reviews",
        "rev-102",
        "Three weeks and still no kettle",
        "Ordered from Acme on the 2nd (order #A-48213) and paid for express delivery. "
        "Three weeks later, still nothing. Support finally replied that it's the courier's "
        "fault and there is nothing they can do. Two emails since then, no answer. "
        "I want a refund. Never again.",
        "Dana W.",
    ),
    Item(
        0.30,
        "hn",
        "41000002",
        "Acme blames courier for three-week delivery delay",
        "A customer waited three weeks for an express order; Acme support blamed the courier "
        "and stopped answering. Terrible way to treat customers.",
        "dana_w",
        ((0.30, 8, 3), (0.45, 60, 25), (0.60, 240, 90), (0.75, 610, 210)),
    ),
    Item(
        0.40,
        "news",
        "news-2",
        "Customers report weeks-long delivery delays at Acme",
        "Several Acme customers say orders are weeks late and complaints go unanswered.",
        "Consumer Desk",
    ),
    Item(
        0.50,
        "reviews",
        "rev-103",
        "Quick fix",
        "Acme customer service sorted out my broken lid in a day. Thanks!",
        "Tom R.",
    ),
    Item(
        0.55,
        "hn",
        "41000003",
        "",
        "Same thing happened to me with Acme: order #A-51022 still missing after a month, "
        "no reply to two tickets. Why is nobody at @acme answering?",
        "kettle_fan",
        ((0.55, 4, 0), (0.75, 30, 6)),
        parent="41000002",
    ),
    Item(
        0.70,
        "hn",
        "41000004",
        "Acme Q3 results: revenue flat, new product line announced",
        "Acme reported flat revenue for the third quarter.",
        "finwatch",
        ((0.70, 5, 1),),
    ),
)


class StoryFeeds:
    """Renders the story's feeds as they stand ``elapsed`` seconds into the demo."""

    def __init__(self, started: datetime, duration: float, clock: object = None) -> None:
        self.started = started
        self.duration = duration
        self._now = clock or (lambda: datetime.now(UTC))

    def _fraction(self) -> float:
        elapsed = (self._now() - self.started).total_seconds()  # type: ignore[operator]
        return elapsed / self.duration

    def _published(self, item: Item) -> datetime:
        return self.started + timedelta(seconds=item.at * self.duration)

    def visible(self, feed: str) -> list[Item]:
        now = self._fraction()
        return [i for i in STORY if i.feed == feed and i.at <= now]

    def handle(self, method: str, path: str, body: bytes) -> Reply:
        route = path.split("?", 1)[0]
        if route == "/reviews.rss":
            return Reply(200, self.rss("reviews").encode(), "application/rss+xml")
        if route == "/news.atom":
            return Reply(200, self.atom("news").encode(), "application/atom+xml")
        if route == "/hn/api/v1/search_by_date":
            return Reply(200, json.dumps(self.hn()).encode())
        return Reply(404, b'{"message":"not found"}')

    def rss(self, feed: str) -> str:
        items = "".join(
            f'<item><guid isPermaLink="false">{escape(i.id)}</guid>'
            f"<title>{escape(i.title)}</title>"
            f"<link>https://reviews.example/acme/{escape(i.id)}</link>"
            f"<author>{escape(_rss_author(i.author))}</author>"
            f"<description>{escape(i.text)}</description>"
            f"<pubDate>{format_datetime(self._published(i))}</pubDate></item>"
            for i in reversed(self.visible(feed))
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            "<title>Kettle reviews</title><link>https://reviews.example/</link>"
            f"<description>Reviews</description>{items}</channel></rss>"
        )

    def atom(self, feed: str) -> str:
        entries = "".join(
            f"<entry><id>urn:demo:{escape(i.id)}</id><title>{escape(i.title)}</title>"
            f'<link href="https://news.example/{escape(i.id)}"/>'
            f"<author><name>{escape(i.author)}</name></author>"
            f"<updated>{self._published(i).isoformat()}</updated>"
            f"<summary>{escape(i.text)}</summary></entry>"
            for i in reversed(self.visible(feed))
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>Business news</title><id>urn:demo:news</id>"
            f"<updated>{self.started.isoformat()}</updated>{entries}</feed>"
        )

    def hn(self) -> dict[str, object]:
        now = self._fraction()
        items = {i.id: i for i in STORY if i.feed == "hn"}
        hits = []
        for item in reversed(self.visible("hn")):
            points, comments = 0, 0
            for at, p, c in item.growth:
                if at <= now:
                    points, comments = p, c
            published = self._published(item)
            hit: dict[str, object] = {
                "created_at": published.isoformat().replace("+00:00", "Z"),
                "created_at_i": int(published.timestamp()),
                "author": item.author,
                "points": points,
                "num_comments": comments,
                "objectID": item.id,
            }
            if item.parent is None:
                story = item
                hit.update(title=item.title, story_text=item.text, url=None)
            else:
                story = _story_of(item, items)
                hit.update(
                    comment_text=item.text,
                    parent_id=int(item.parent),
                    story_title=story.title,
                    points=None,
                    num_comments=None,
                )
            kind = "story" if item.parent is None else "comment"
            hit.update(
                story_id=int(story.id),
                _tags=[kind, f"author_{item.author}", f"story_{story.id}"],
            )
            hits.append(hit)
        return {"hits": hits, "nbHits": len(hits), "page": 0, "nbPages": 1, "hitsPerPage": 100}


def _story_of(item: Item, items: dict[str, Item]) -> Item:
    """The story a Hacker News comment sits under, however deep."""
    while item.parent is not None:
        item = items[item.parent]
    return item


def _rss_author(name: str) -> str:
    """An author the RSS 2.0 way, ``email (name)``, as review sites write it."""
    local = ".".join(name.lower().replace(".", " ").split())
    return f"{local}@reviews.example ({name})"
