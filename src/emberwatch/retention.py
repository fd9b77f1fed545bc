"""Retention: drop old mentions that no alert refers to, and finished outbox rows.

A mention that is part of an alert is kept whatever its age, with its snapshots, so an
incident's story can always be read back.

Rows are deleted in batches, each in its own short transaction, so a prune of a large
database never holds SQLite's write lock for long: a running monitor keeps polling and
delivering between batches. A crash mid-prune leaves whole batches deleted, never half of
one, and the next prune carries on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from emberwatch.models import AlertRecord, Delivery, EngagementSnapshot, MentionRecord, Rollup

BATCH_SIZE = 1000

# progress(what, done, total): called after each batch, e.g. ("mentions", 12000, 40000).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Pruned:
    mentions: int
    snapshots: int
    deliveries: int


def prune(
    engine: Engine,
    cutoff: datetime,
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> Pruned:
    """Delete (or, with ``dry_run``, count) what is older than ``cutoff``."""
    alerted = select(AlertRecord.mention_id).where(AlertRecord.mention_id.is_not(None))  # type: ignore[union-attr]
    old = sa.and_(
        MentionRecord.first_seen_at < cutoff,  # type: ignore[operator]
        MentionRecord.id.not_in(alerted),  # type: ignore[union-attr]
    )
    done = sa.and_(
        Delivery.status.in_(("sent", "failed", "expired")),  # type: ignore[attr-defined]
        Delivery.created_at < cutoff,  # type: ignore[operator]
    )
    old_snapshots = EngagementSnapshot.mention_id.in_(select(MentionRecord.id).where(old))  # type: ignore[attr-defined, union-attr]
    with Session(engine) as session:
        mentions = _count(session, MentionRecord, old)
        snapshots = _count(session, EngagementSnapshot, old_snapshots)
        deliveries = _count(session, Delivery, done)
    if dry_run:
        return Pruned(mentions, snapshots, deliveries)

    removed_mentions = removed_snapshots = 0
    for batch in _batches(engine, MentionRecord.id, old, batch_size):  # type: ignore[arg-type]
        with Session(engine) as session, session.begin():
            # The predicate is applied again: a mention alerted since it was read stays.
            in_batch = sa.and_(MentionRecord.id.in_(batch), old)  # type: ignore[union-attr]
            removed_snapshots += session.execute(
                sa.delete(EngagementSnapshot).where(
                    EngagementSnapshot.mention_id.in_(select(MentionRecord.id).where(in_batch))  # type: ignore[attr-defined, union-attr]
                )
            ).rowcount
            removed_mentions += session.execute(sa.delete(MentionRecord).where(in_batch)).rowcount
        if progress:
            progress("mentions", removed_mentions, max(mentions, removed_mentions))

    removed_deliveries = 0
    for batch in _batches(engine, Delivery.id, done, batch_size):  # type: ignore[arg-type]
        with Session(engine) as session, session.begin():
            in_batch = sa.and_(Delivery.id.in_(batch), done)  # type: ignore[union-attr]
            # Rollups point at their summary delivery; keep the rollup, drop the pointer.
            session.execute(
                sa.update(Rollup)
                .where(Rollup.delivery_id.in_(select(Delivery.id).where(in_batch)))  # type: ignore[union-attr]
                .values(delivery_id=None)
            )
            removed_deliveries += session.execute(sa.delete(Delivery).where(in_batch)).rowcount
        if progress:
            progress("deliveries", removed_deliveries, max(deliveries, removed_deliveries))
    return Pruned(removed_mentions, removed_snapshots, removed_deliveries)


def _count(session: Session, table: type, where: sa.ColumnElement[bool]) -> int:
    return session.exec(select(sa.func.count()).select_from(table).where(where)).one()


def _batches(
    engine: Engine, id_column: sa.ColumnElement[int], where: sa.ColumnElement[bool], size: int
) -> Iterator[list[int]]:
    """Yield lists of up to ``size`` ids, in id order, each read in a short transaction
    after the previous batch was committed."""
    after = 0
    while True:
        with Session(engine) as session:
            ids = list(
                session.exec(
                    select(id_column)
                    .where(where, id_column > after)
                    .order_by(id_column)
                    .limit(size)
                )
            )
        if not ids:
            return
        yield ids
        after = ids[-1]
