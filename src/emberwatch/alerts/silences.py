"""Silences: mute notifications for matching alerts for a while; the alerts are still stored.

Matchers are ``key=value`` pairs over ``brand``, ``source`` (a source's name or type),
``category`` and ``severity``; all must match. A silence needs a comment and an end time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
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

    @staticmethod
    def query(now: datetime) -> tuple[Any, dict[str, Any]]:
        """The query :meth:`load` runs, as a plain one, for a caller that runs it with
        others: it gives the rows to :meth:`of_rows`."""
        return _IN_FORCE, {"now": now}

    @classmethod
    def of_rows(cls, rows: Iterable[Any]) -> ActiveSilences:
        """The silences in force from :meth:`query`'s rows (objects outside any session)."""
        silences = (Silence(**row._mapping) for row in rows)
        return cls(tuple((s, json.loads(s.matchers)) for s in silences))

    def matching(self, facts: Facts) -> Silence | None:
        return next((s for s, m in self.silences if matches(m, facts)), None)


_IN_FORCE = sa.select(*Silence.__table__.c).where(  # type: ignore[attr-defined]
    Silence.starts_at <= sa.bindparam("now"),  # type: ignore[operator]
    Silence.ends_at > sa.bindparam("now"),  # type: ignore[operator]
)


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
