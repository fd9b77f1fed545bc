"""Connectors: one module per platform, each with the same shape.

A connector module defines:

- ``TYPE``: its config ``type``;
- ``Settings``: a :class:`~emberwatch.sources._settings.SourceSettings` subclass with its
  own parameters (``type: Literal[TYPE]``);
- ``parse(body: bytes) -> list[Mention]``: pure, no clock, no database; raises
  :class:`~emberwatch.errors.ParseError` and nothing else on a bad body;
- ``async fetch(client, settings, cursor, now) -> Fetched``: the thin HTTP part. It asks
  only for what is new since ``cursor`` and returns the mentions and the next cursor. The
  pipeline, not the connector, stores that cursor, in the same transaction as the mentions;
- optionally ``async refresh(client, settings, external_ids, now) -> list[Mention]``: re-read
  the engagement of stored mentions with the API's batch lookup.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from emberwatch.sources._fetched import Fetched
from emberwatch.sources._settings import SourceSettings

# One line per connector: its module name is its config ``type``.
_TYPES = (
    "appstore",
    "bluesky",
    "google_places",
    "hackernews",
    "mastodon",
    "reddit",
    "rss",
    "trustpilot",
    "x",
    "yelp",
    "youtube",
)
CONNECTORS: dict[str, ModuleType] = {
    name: import_module(f"emberwatch.sources.{name}") for name in _TYPES
}
SETTINGS_BY_TYPE: dict[str, type] = {t: m.Settings for t, m in CONNECTORS.items()}


def connector(source_type: str) -> ModuleType:
    """The connector module for a config ``type``; KeyError names the known types."""
    try:
        return CONNECTORS[source_type]
    except KeyError:
        known = ", ".join(sorted(CONNECTORS))
        raise KeyError(f"unknown source type {source_type!r}; known types: {known}") from None


__all__ = ["CONNECTORS", "SETTINGS_BY_TYPE", "Fetched", "SourceSettings", "connector"]
