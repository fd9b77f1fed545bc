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
from typing import TYPE_CHECKING, Any

from emberwatch.sources._fetched import Fetched
from emberwatch.sources._settings import SourceSettings

# One line per connector: its module name is its config ``type``. A module is imported
# when it is first asked for, so `emberwatch sources parse rss` loads the RSS connector
# alone; ``CONNECTORS`` and ``SETTINGS_BY_TYPE`` (the config's source types) load them all.
TYPES = (
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

if TYPE_CHECKING:
    CONNECTORS: dict[str, ModuleType]
    SETTINGS_BY_TYPE: dict[str, type]


def connector(source_type: str) -> ModuleType:
    """The connector module for a config ``type``, imported on first use; KeyError names
    the known types."""
    if source_type not in TYPES:
        known = ", ".join(sorted(TYPES))
        raise KeyError(f"unknown source type {source_type!r}; known types: {known}")
    return import_module(f"emberwatch.sources.{source_type}")


def __getattr__(name: str) -> Any:
    """``CONNECTORS`` (type -> module) and ``SETTINGS_BY_TYPE`` (type -> its Settings
    model), built on first access by importing every connector (PEP 562)."""
    if name == "CONNECTORS":
        value: dict[str, Any] = {t: connector(t) for t in TYPES}
    elif name == "SETTINGS_BY_TYPE":
        value = {t: connector(t).Settings for t in TYPES}
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = ["CONNECTORS", "SETTINGS_BY_TYPE", "TYPES", "Fetched", "SourceSettings", "connector"]
