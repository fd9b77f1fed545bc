"""What reloading the configuration changes, compared key by key and said in one line.

``emberwatch run`` reads its config file again on SIGHUP (see :mod:`emberwatch.scheduling`
for what it does with the result). This module is pure: two validated configs in, a
:class:`Changes` out; it reads no file and opens no connection.

A few keys are taken only at a restart (:data:`AT_RESTART`): the database, the HTTP
endpoint with the action links it verifies and the console it serves, the snooze choices
those pages offer, and the number of scoring processes. A reload keeps their running
values and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from emberwatch.config import Config

# Keys a running node keeps until it restarts.
AT_RESTART = ("database_url", "http", "actions", "scoring_processes")

# The sections the reload line always accounts for: (key, one item's word).
_NAMED = (("sources", "source"), ("brands", "brand"), ("routes", "route"))


@dataclass(frozen=True)
class Changes:
    """What differs between the running config and the new file.

    ``parts`` say it per section ("+source acme-yelp", "brands changed: acme (include)",
    "routes unchanged"); ``other`` names the other keys that changed and apply now;
    ``at_restart`` the keys that changed but wait for a restart.
    """

    parts: list[str] = field(default_factory=list)
    changed: frozenset[str] = frozenset()  # top-level keys that differ, restart ones too
    other: list[str] = field(default_factory=list)
    at_restart: list[str] = field(default_factory=list)

    @property
    def none(self) -> bool:
        return not self.changed

    def line(self) -> str:
        if self.none:
            return "reload: no changes"
        text = "reload: " + ", ".join(self.parts)
        if self.other:
            text += "; also changed: " + ", ".join(self.other)
        if self.at_restart:
            text += (
                "; changed but kept until a restart: "
                + ", ".join(self.at_restart)
                + " (the running values stay)"
            )
        return text


def compare(old: Config, new: Config) -> Changes:
    """The changes from ``old`` to ``new``; key names only, never a value (secrets)."""
    changed = frozenset(key for key in type(old).model_fields if _differs(old, new, key))
    parts: list[str] = []
    for key, word in _NAMED:
        parts += _named_items(key, word, getattr(old, key), getattr(new, key))
    parts += _channels(old, new)
    restart = [key for key in AT_RESTART if key in changed]
    shown = {key for key, _ in _NAMED} | {"channels"} | set(AT_RESTART)
    other = sorted(changed - shown)
    return Changes(parts, changed, other, restart)


def keep_restart_keys(old: Config, new: Config) -> Config:
    """``new`` with the running values of the keys only a restart takes."""
    return new.model_copy(update={key: getattr(old, key) for key in AT_RESTART})


def _named_items(key: str, word: str, old: list[Any], new: list[Any]) -> list[str]:
    before = {item.name: item for item in old}
    after = {item.name: item for item in new}
    parts = [f"+{word} {name}" for name in after if name not in before]
    parts += [f"-{word} {name}" for name in before if name not in after]
    edited = [
        f"{name} ({', '.join(_changed_keys(before[name], after[name]))})"
        for name in after
        if name in before and _changed_keys(before[name], after[name])
    ]
    if edited:
        parts.append(f"{key} changed: {', '.join(edited)}")
    kept = [name for name in after if name in before]
    if [name for name in before if name in after] != kept:
        parts.append(f"{key} reordered")
    return parts or [f"{key} unchanged"]


def _channels(old: Config, new: Config) -> list[str]:
    parts: list[str] = []
    edited: list[str] = []
    for name in type(old.channels).model_fields:
        before, after = getattr(old.channels, name), getattr(new.channels, name)
        if before is None and after is not None:
            parts.append(f"+channel {name}")
        elif before is not None and after is None:
            parts.append(f"-channel {name}")
        elif before is not None and after is not None:
            keys = _changed_keys(before, after)
            if keys:
                edited.append(f"{name} ({', '.join(keys)})")
    if edited:
        parts.append(f"channels changed: {', '.join(edited)}")
    return parts or ["channels unchanged"]


def _changed_keys(old: BaseModel, new: BaseModel) -> list[str]:
    keys = dict.fromkeys([*type(old).model_fields, *type(new).model_fields])
    return [key for key in keys if _differs(old, new, key)]


def _differs(old: BaseModel, new: BaseModel, key: str) -> bool:
    # SecretStr compares its secret values, and is never printed here.
    return bool(getattr(old, key, None) != getattr(new, key, None))
