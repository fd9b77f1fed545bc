"""Retention: drop old mentions that no alert refers to, and finished outbox rows.

A mention that is part of an alert is kept whatever its age, with its snapshots, so an
incident's story can always be read back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from emberwatch.models import AlertRecord, Delivery, EngagementSnapshot, MentionRecord


@dataclass(frozen=True)
class Pruned:
    mentions: int
    snapshots: int
    deliveries: int


def prune(engine: Engine, cutoff: datetime, *, dry_run: bool = False) -> Pruned:
    alerted = select(AlertRecord.mention_id)
    old = (
        select(MentionRecord.id)
        .where(MentionRecord.first_seen_at < cutoff)  # type: ignore[operator]
        .where(MentionRecord.id.not_in(alerted))  # type: ignore[union-attr]
    )
    done = (
        sa.and_(Delivery.status.in_(("sent", "failed", "expired")), Delivery.created_at < cutoff)  # type: ignore[attr-defined,operator]
    )
    with Session(engine) as session:
        mention_ids = list(session.exec(old).all())
        snapshots = 0
        for start in range(0, len(mention_ids), 1000):
            batch = mention_ids[start : start + 1000]
            snapshots += session.exec(
                select(sa.func.count())
                .select_from(EngagementSnapshot)
                .where(
                    EngagementSnapshot.mention_id.in_(batch)  # type: ignore[attr-defined]
                )
            ).one()
            if not dry_run:
                session.execute(
                    sa.delete(EngagementSnapshot).where(EngagementSnapshot.mention_id.in_(batch))  # type: ignore[attr-defined]
                )
                session.execute(sa.delete(MentionRecord).where(MentionRecord.id.in_(batch)))  # type: ignore[union-attr]
        deliveries = session.exec(select(sa.func.count()).select_from(Delivery).where(done)).one()
        if not dry_run:
            # Rollups point at their summary delivery; keep the rollup, drop the pointer.
            from emberwatch.models import Rollup

            session.execute(
                sa.update(Rollup)
                .where(Rollup.delivery_id.in_(select(Delivery.id).where(done)))  # type: ignore[union-attr]
                .values(delivery_id=None)
            )
            session.execute(sa.delete(Delivery).where(done))
            session.commit()
    return Pruned(len(mention_ids), snapshots, deliveries)
