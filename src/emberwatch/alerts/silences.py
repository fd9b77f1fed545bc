"""Silences: mute notifications for matching alerts for a while; the alerts are still stored.

Matchers are ``key=value`` pairs over ``brand``, ``source`` (a source's name or type),
``category`` and ``severity``; all must match. A silence needs a comment and an end time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from emberwatch.alerts.routing import Facts
from emberwatch.models import Silence

MATCH_KEYS = ("brand", "source", "category", "severity")


def parse_matchers(text: str) -> dict[str, str]:
    """``"brand=acme,source=reddit"`` → ``{"brand": "acme", "source": "reddit"}``."""
    matchers: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise ValueError(f"{part!r} is not key=value")
        if key not in MATCH_KEYS:
            raise ValueError(f"unknown key {key!r}; use {', '.join(MATCH_KEYS)}")
        matchers[key] = value
    if not matchers:
        raise ValueError("give at least one key=value, e.g. brand=acme,source=reddit")
    return matchers


def matches(matchers: dict[str, str], facts: Facts) -> bool:
    for key, value in matchers.items():
        wanted = value.lower()
        if key == "source":
            if wanted not in (facts.source_name.lower(), facts.source_type.lower()):
                return False
        elif getattr(facts, key).lower() != wanted:
            return False
    return True


@dataclass(frozen=True)
class ActiveSilences:
    """The silences in force at one moment, read once (e.g. once per poll transaction)."""

    silences: tuple[tuple[Silence, dict[str, str]], ...]

    @classmethod
    def load(cls, session: Session, now: datetime) -> ActiveSilences:
        rows = session.exec(
            select(Silence).where(Silence.starts_at <= now, Silence.ends_at > now)  # type: ignore[operator]
        ).all()
        return cls(tuple((s, json.loads(s.matchers)) for s in rows))

    def matching(self, facts: Facts) -> Silence | None:
        return next((s for s, m in self.silences if matches(m, facts)), None)


def active_silence(session: Session, facts: Facts, now: datetime) -> Silence | None:
    return ActiveSilences.load(session, now).matching(facts)


def add_silence(
    session: Session,
    matchers: dict[str, str],
    ends_at: datetime,
    comment: str,
    by: str,
    now: datetime,
) -> Silence:
    if not comment.strip():
        raise ValueError("a silence needs a comment saying why")
    if ends_at <= now:
        raise ValueError("a silence must end in the future")
    silence = Silence(
        matchers=json.dumps(matchers, sort_keys=True),
        starts_at=now,
        ends_at=ends_at,
        comment=comment.strip(),
        created_by=by,
        created_at=now,
    )
    session.add(silence)
    session.flush()
    return silence
