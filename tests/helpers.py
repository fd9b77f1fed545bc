"""Builders shared by tests: configs and canned Algolia pages."""

from __future__ import annotations

from typing import Any

from emberwatch.config import Config, validate_config

HN_API = "https://hn.example/api/v1/search_by_date"


def make_config(**overrides: Any) -> Config:
    raw: dict[str, Any] = {
        "brands": [{"name": "acme", "include": ["Acme", "@acme"], "vip": ["@bigbuyer"]}],
        "sources": [
            {
                "name": "hn",
                "type": "hackernews",
                "query": "acme",
                "base_url": "https://hn.example",
                "interval": "60s",
            },
        ],
    }
    raw.update(overrides)
    return validate_config(raw, "test.toml", {})


def hn_hit(
    object_id: str,
    text: str,
    created: int = 1_795_176_000,
    points: int | None = 1,
    comments: int | None = 0,
    author: str = "someone",
) -> dict[str, Any]:
    return {
        "objectID": object_id,
        "created_at_i": created,
        "title": text,
        "author": author,
        "points": points,
        "num_comments": comments,
    }


def hn_page(*hits: dict[str, Any]) -> dict[str, Any]:
    return {"hits": list(hits), "page": 0, "nbPages": 1, "hitsPerPage": 100}


ANGRY = "Acme lost my order, terrible awful service, I am furious and want a refund now"
HAPPY = "Acme kettles are wonderful, great design and lovely service"
