"""Acknowledge, snooze and resolve incidents; every action is recorded with who and when.

Repeating an action is harmless: it changes nothing and says so. An action aimed at an
episode that has closed (a link from an old message) is refused as expired.

Actions on one incident are serialized on every database: the change is written with a
conditional update on the incident as it was read (``FOR UPDATE`` also locks the row on
PostgreSQL; SQLite ignores it). When a concurrent click got there first, nothing is
written and the action is decided again on the incident as that click left it: a double
click records one action, and ``acknowledged_at`` keeps the first click's time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from emberwatch.models import Incident, IncidentAction, NotificationState

ACTIONS = ("ack", "snooze", "resolve")
# The incident fields an action reads and writes: the conditional update compares the
# first as read, and writes all of them.
_COMPARED = ("status", "episode", "acknowledged_at", "snoozed_until", "resolved_at")
_WRITTEN = (
    "status",
    "acknowledged_at",
    "acknowledged_by",
    "snoozed_until",
    "resolved_at",
    "resolved_by",
)


@dataclass(frozen=True)
class Outcome:
    changed: bool
    message: str
    expired: bool = False


class UnknownIncident(LookupError):
    pass


def act(
    engine: Engine,
    incident_id: int,
    action: str,
    *,
    actor: str,
    via: str,
    now: datetime,
    episode: int | None = None,
    snooze_for: timedelta | None = None,
) -> Outcome:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; use {', '.join(ACTIONS)}")
    while True:
        outcome = _act_once(engine, incident_id, action, actor, via, now, episode, snooze_for)
        if outcome is not None:
            return outcome
        # Another action on this incident committed between our read and our write.


def _act_once(
    engine: Engine,
    incident_id: int,
    action: str,
    actor: str,
    via: str,
    now: datetime,
    episode: int | None,
    snooze_for: timedelta | None,
) -> Outcome | None:
    """Decide and record the action once; None when a concurrent action came first."""
    with Session(engine) as session:
        incident = session.exec(
            select(Incident).where(Incident.id == incident_id).with_for_update()
        ).first()
        if incident is None:
            raise UnknownIncident(f"no incident #{incident_id}")
        as_read = {name: getattr(incident, name) for name in _COMPARED}
        if episode is not None and (episode != incident.episode or incident.status == "resolved"):
            if (
                incident.status == "resolved"
                and episode == incident.episode
                and action == "resolve"
            ):
                return Outcome(False, _already_resolved(incident))
            return Outcome(
                False,
                f"this link has expired: incident #{incident_id} episode {episode} is closed",
                expired=True,
            )
        outcome = _apply(session, incident, action, actor, now, snooze_for)
        if not outcome.changed:
            return outcome
        written = {name: getattr(incident, name) for name in _WRITTEN}
        session.expunge(incident)  # written below, conditionally, not by the unit of work
        unchanged = [
            getattr(Incident, name).is_(None) if value is None else getattr(Incident, name) == value
            for name, value in as_read.items()
        ]
        result = session.execute(
            sa.update(Incident)
            .where(Incident.id == incident_id, *unchanged)  # type: ignore[arg-type]
            .values(**written)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            return None
        note = f"for {snooze_for}" if action == "snooze" and snooze_for else None
        record_action(session, incident, action, actor=actor, via=via, now=now, note=note)
        session.commit()
        return outcome


def episode_closed(engine: Engine, incident_id: int, episode: int) -> str | None:
    """Why a link for this episode no longer works, or None while it still does."""
    with Session(engine) as session:
        incident = session.get(Incident, incident_id)
    if incident is None:
        return f"there is no incident #{incident_id}"
    if episode != incident.episode or incident.status == "resolved":
        return f"this link has expired: incident #{incident_id} episode {episode} is closed"
    return None


def _already_resolved(incident: Incident) -> str:
    return (
        f"incident #{incident.id} was already resolved by {incident.resolved_by} "
        f"at {incident.resolved_at:%Y-%m-%d %H:%M}Z"
    )


def _apply(
    session: Session,
    incident: Incident,
    action: str,
    actor: str,
    now: datetime,
    snooze_for: timedelta | None,
) -> Outcome:
    if incident.status == "resolved":
        if action == "resolve":
            return Outcome(False, _already_resolved(incident))
        return Outcome(False, f"incident #{incident.id} is resolved; nothing to {action}")
    if action == "resolve":
        incident.status, incident.resolved_at, incident.resolved_by = "resolved", now, actor
        incident.snoozed_until = None
        return Outcome(True, f"incident #{incident.id} resolved by {actor}")
    if action == "ack":
        if incident.status == "acknowledged" and incident.snoozed_until is None:
            return Outcome(
                False,
                f"incident #{incident.id} was already acknowledged by "
                f"{incident.acknowledged_by} at {incident.acknowledged_at:%H:%M}Z",
            )
        _acknowledge(incident, actor, now)
        incident.snoozed_until = None
        return Outcome(True, f"incident #{incident.id} acknowledged by {actor}")
    until = now + (snooze_for or timedelta(hours=1))
    if incident.snoozed_until is not None and incident.snoozed_until >= until - timedelta(
        minutes=1
    ):
        return Outcome(
            False,
            f"incident #{incident.id} is already snoozed until {incident.snoozed_until:%H:%M}Z",
        )
    _acknowledge(incident, actor, now)
    incident.snoozed_until = until
    return Outcome(True, f"incident #{incident.id} snoozed by {actor} until {until:%H:%M}Z")


def _acknowledge(incident: Incident, actor: str, now: datetime) -> None:
    incident.status = "acknowledged"
    if incident.acknowledged_at is None:  # time to acknowledge counts the first ack
        incident.acknowledged_at, incident.acknowledged_by = now, actor


def retrigger(session: Session, incident: Incident, reason: str, now: datetime) -> None:
    """Back to ``triggered`` (snooze over, or acknowledged too long): notify afresh."""
    incident.status = "triggered"
    incident.snoozed_until = None
    incident.updated_at = now
    forget_notifications(session, incident)
    record_action(
        session, incident, "retrigger", actor="emberwatch", via="timer", now=now, note=reason
    )
    session.add(incident)


def record_action(
    session: Session,
    incident: Incident,
    action: str,
    *,
    actor: str,
    via: str,
    now: datetime,
    note: str | None = None,
) -> None:
    """Every change to an incident leaves a row saying who did what, and when."""
    session.add(
        IncidentAction(
            incident_id=incident.id,  # type: ignore[arg-type]
            episode=incident.episode,
            action=action,
            actor=actor,
            via=via,
            at=now,
            note=note,
        )
    )


def forget_notifications(session: Session, incident: Incident) -> None:
    """Channels are told afresh, as about a new incident (re-trigger, new episode)."""
    for state in session.exec(
        select(NotificationState).where(NotificationState.incident_id == incident.id)
    ):
        session.delete(state)
