"""The alert policy, stage by stage, in the order it runs.

Each stage is a function ``(session, config, now) -> int`` (how many things it did) that
reads state from the database, asks a pure decision in :mod:`emberwatch.alerts.decisions`,
and writes its effects, outbox rows included, in the same transaction. Everything a timer
needs is in the database, so a restart resumes exactly where the last process stopped.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from emberwatch.alerts.decisions import (
    SPREAD_WINDOW,
    IncidentFacts,
    Notified,
    SourceFacts,
    escalation_channels,
    needs_escalation,
    needs_notify,
    needs_retrigger,
    source_health,
)
from emberwatch.alerts.lifecycle import record_action, retrigger
from emberwatch.alerts.routing import Facts, breaks_through, channels_for, in_quiet_hours
from emberwatch.config import (
    SEVERITY_RANK,
    Config,
    Route,
    address_channels,
    notifying_channels,
    paging_channels,
)
from emberwatch.models import (
    AlertRecord,
    Delivery,
    EngagementSnapshot,
    Incident,
    IncidentAction,
    MentionRecord,
    NotificationState,
    Rollup,
    SourceState,
)
from emberwatch.outbox import enqueue_message

log = logging.getLogger("emberwatch.alerts")

ROLLUP_EVERY = timedelta(minutes=15)
BUDGET_WINDOW = timedelta(hours=1)

Stage = Callable[[Session, Config, datetime], int]
# The session key holding evaluate's ``incidents`` for the stages (None: every incident).
_ONLY = "emberwatch.evaluate.incidents"


@dataclass(frozen=True)
class _Lead:
    """The alert that speaks for an incident in a message: its most severe, newest one
    (what a message and the routes read of it and of its mention)."""

    alert_id: int
    source_name: str
    source: str  # the mention's connector type


def evaluate(
    engine: Engine,
    config: Config,
    now: datetime,
    *,
    flush: bool = False,
    incidents: Collection[int] | None = None,
) -> dict[str, int]:
    """Run every stage once, each in its own transaction; returns what each did.

    ``flush`` (for ``poll --once``, which cannot wait) notifies without group wait.
    ``incidents`` (for ``replay``, which knows which timers are due) limits the stages
    that go through incidents to these ids; the others run as always.
    """
    if flush:
        routes = [
            r.model_copy(update={"group_wait": timedelta(0)}) for r in config.effective_routes()
        ]
        config = config.model_copy(update={"routes": routes})
    done: dict[str, int] = {}
    for stage in STAGES:
        with Session(engine) as session:
            session.info[_ONLY] = incidents
            done[stage.__name__] = stage(session, config, now)
            session.commit()
    return done


# -- stages ------------------------------------------------------------------------------


def retrigger_stage(session: Session, config: Config, now: datetime) -> int:
    """Snoozes that ended and acknowledgements left unresolved too long re-trigger."""
    count = 0
    incidents = _incidents(session, "acknowledged")
    facts_of = _facts_by_id(session, incidents, now)
    for incident in incidents:
        verdict = needs_retrigger(facts_of[incident.id], config.escalation, now)  # type: ignore[index]
        if verdict.act:
            retrigger(session, incident, verdict.reason, now)
            log.info("incident %s re-triggered: %s", incident.id, verdict.reason)
            count += 1
    return count


def escalate_stage(session: Session, config: Config, now: datetime) -> int:
    """Unacknowledged warning/critical incidents are escalated, each to its role's channels.

    Every escalation goes to the escalation email list; from ``slack_min_severity``
    (critical by default) it is also reposted to on-call in Slack, pinging someone.
    """
    count = 0
    policy = config.escalation
    incidents = _incidents(session, "triggered")
    leads, facts_of = _read(session, incidents, now)
    routes = config.effective_routes()
    configured = set(config.channels.configured())
    pagers = [name for name in paging_channels() if name in configured]
    mailers = [name for name in address_channels() if name in configured]
    for incident in incidents:
        channels = [
            name
            for name in escalation_channels(
                incident.severity, policy, slack=bool(pagers), email=bool(mailers)
            )
            if name in configured
        ]
        if not channels:
            continue  # nobody to escalate to at this severity: the digest still shows it
        facts = facts_of[incident.id]  # type: ignore[index]
        if any(name in pagers for name in channels):
            facts = replace(facts, owes_page=not _paged(session, incident, pagers))
        verdict = needs_escalation(facts, policy, now)
        if not verdict.act:
            continue
        lead = leads.get(incident.id)  # type: ignore[arg-type]
        if lead is None:
            continue
        if _held_by_quiet_hours(config, incident, lead, now, routes):
            continue  # what quiet hours kept from a channel, escalation must not page about
        level = incident.escalations + 1
        key = f"escalate:{incident.id}:{incident.episode}:{level}"
        fields = {
            "alert_id": lead.alert_id,
            "incident_id": incident.id,
            "payload": {"reason": verdict.reason, "level": level},
        }
        for name in channels:
            enqueue_message(
                session,
                config,
                channel=name,
                key=key,
                now=now,
                kind="escalation",
                recipients=policy.emails if name in mailers else None,
                **fields,
            )
        incident.escalations, incident.last_escalated_at = level, now
        session.add(incident)
        record_action(
            session,
            incident,
            "escalate",
            actor="emberwatch",
            via="timer",
            now=now,
            note=f"{verdict.reason}; to {' and '.join(channels)}",
        )
        log.warning(
            "incident %s escalated to %s: %s", incident.id, ", ".join(channels), verdict.reason
        )
        count += 1
    return count


def notify_stage(session: Session, config: Config, now: datetime) -> int:
    """Tell each routed channel what is new, as the timers and budgets allow."""
    count = 0
    routes = config.effective_routes()
    notifying = set(notifying_channels())
    incidents = _incidents(session, "triggered")
    ids: list[int] = [i.id for i in incidents]  # type: ignore[misc]
    leads, facts_of = _read(session, incidents, now)
    states: dict[tuple[int, str], NotificationState] = {}
    for chunk in _chunks(ids):
        for state in session.exec(_STATES, params={"ids": chunk}):  # type: ignore[call-overload]
            states[state.incident_id, state.channel] = state
    for incident in incidents:
        lead = leads.get(incident.id)  # type: ignore[arg-type]
        if lead is None:
            continue
        facts = facts_of[incident.id]  # type: ignore[index]
        if incident.engagement != facts.engagement:
            incident.engagement = facts.engagement
            session.add(incident)
        routing = Facts.of_incident(incident, lead)
        for channel, route in channels_for(routes, routing).items():
            if channel not in notifying or config.channel_settings(channel) is None:
                continue
            state = states.get((incident.id, channel))  # type: ignore[arg-type]
            last = None
            if state is not None and state.episode == incident.episode:
                last = Notified(
                    state.notified_at, state.severity, state.alert_count, state.engagement
                )
            verdict = needs_notify(facts, last, route, now)
            if not verdict.act:
                continue
            if state is None:
                state = NotificationState(
                    incident_id=incident.id,
                    channel=channel,  # type: ignore[arg-type]
                    episode=incident.episode,
                    notified_at=now,
                    severity=incident.severity,
                    # A re-trigger forgets what was told, not how often: keys stay unique.
                    count=_last_number(session, incident, channel),
                )
            if state.episode != incident.episode:
                state.episode, state.count = incident.episode, 0
            number = state.count + 1
            budget = config.channel_settings(channel).max_per_hour
            sent = _sent_last_hour(session, config, channel, now)
            if not verdict.cut_through and sent >= budget:
                session.add(
                    Rollup(
                        channel=channel,
                        incident_id=incident.id,  # type: ignore[arg-type]
                        brand=incident.brand,
                        source_name=lead.source_name,
                        category=incident.category,
                        created_at=now,
                    )
                )
                log.info("incident %s: %s over its budget; rolled up", incident.id, channel)
            else:
                enqueue_message(
                    session,
                    config,
                    channel=channel,
                    now=now,
                    kind="alert",
                    key=f"notify:{incident.id}:{incident.episode}:{channel}:{number}",
                    alert_id=lead.alert_id,
                    incident_id=incident.id,
                    payload={
                        "reason": verdict.reason,
                        "number": number,
                        "episode": incident.episode,
                    },
                )
            state.notified_at, state.severity = now, incident.severity
            state.alert_count, state.engagement, state.count = (
                incident.alert_count,
                facts.engagement,
                number,
            )
            session.add(state)
            count += 1
    return count


def rollup_stage(session: Session, config: Config, now: datetime) -> int:
    """Sum up what budgets held back: one summary per channel, never dropped."""
    count = 0
    for channel in notifying_channels():
        pending = session.exec(
            select(Rollup)
            .where(Rollup.channel == channel, Rollup.delivery_id.is_(None))  # type: ignore[union-attr]
            .order_by(Rollup.id)  # type: ignore[arg-type]
        ).all()
        if not pending or now - pending[0].created_at < ROLLUP_EVERY:
            continue
        tally = Counter((r.brand, r.source_name, r.category) for r in pending)
        lines = [
            f"{n} more {_plural(category, n)} about {brand} on {source}"
            for (brand, source, category), n in tally.most_common()
        ]
        key = f"rollup:{channel}:{pending[0].id}-{pending[-1].id}"
        enqueue_message(
            session,
            config,
            channel=channel,
            key=key,
            now=now,
            kind="rollup",
            payload={"lines": lines, "total": len(pending)},
        )
        delivery_id = session.exec(
            select(Delivery.id).where(Delivery.dedup_key.like(f"{key}%"))  # type: ignore[attr-defined]
        ).first()
        for row in pending:
            row.delivery_id = delivery_id
            session.add(row)
        count += 1
    return count


def source_health_stage(session: Session, config: Config, now: datetime) -> int:
    """A source in trouble for ``unhealthy_after_intervals`` alerts on-call once, and again
    when it heals; see :func:`~emberwatch.alerts.decisions.source_health` for when.

    ``sources.unhealthy_since`` holds when an evaluation first saw the trouble; the notice
    is keyed by it, so it is sent once per episode of trouble, and only an episode whose
    notice went out gets a "recovered" one.
    """
    count = 0
    states = {s.name: s for s in session.exec(select(SourceState))}
    # On-call hears of sources in trouble: the first configured paging channel, else the
    # first that reaches people by address.
    configured = config.channels.configured()
    candidates = [n for n in [*paging_channels(), *address_channels()] if n in configured]
    if not candidates:
        return 0
    channel = candidates[0]
    for source in config.sources:
        state = states.get(source.name)
        if not source.enabled or state is None:
            continue
        health = source_health(
            SourceFacts(
                state.last_poll_at,
                state.last_success_at,
                state.consecutive_failures,
                state.unhealthy_since,
            ),
            source.interval,
            config.unhealthy_after_intervals,
            now,
            grace=config.poll_jitter,
        )
        seen = state.unhealthy_since
        if health.status == "unhealthy" and seen is not None:
            count += enqueue_message(
                session,
                config,
                channel=channel,
                now=now,
                kind="source_unhealthy",
                key=_health_key(source.name, "unhealthy", seen),
                payload={
                    "source": source.name,
                    "since": (state.last_success_at or seen).isoformat(),
                    "error": (state.last_error or health.reason)[:300],
                    "failures": state.consecutive_failures,
                },
            )
        elif health.since is None and seen is not None:
            if _was_notified(session, _health_key(source.name, "unhealthy", seen)):
                count += enqueue_message(
                    session,
                    config,
                    channel=channel,
                    now=now,
                    kind="source_recovered",
                    key=_health_key(source.name, "recovered", seen),
                    payload={"source": source.name, "since": seen.isoformat()},
                )
            else:
                log.info("source %s: trouble over before it became unhealthy", source.name)
        if health.since != seen:
            state.unhealthy_since = health.since
            session.add(state)
    return count


def _health_key(source: str, kind: str, seen: datetime) -> str:
    return f"source:{source}:{kind}:{seen:%Y%m%dT%H%M%S}"


def _was_notified(session: Session, key: str) -> bool:
    found = session.exec(
        select(Delivery.id).where(Delivery.dedup_key.startswith(key, autoescape=True))  # type: ignore[attr-defined]
    ).first()
    return found is not None


# The order is the policy: a snooze that ended re-triggers before escalation looks at it,
# escalation sees the incident before this round's notification, and rollups sum up
# what notification held back.
STAGES: tuple[Stage, ...] = (
    retrigger_stage,
    escalate_stage,
    notify_stage,
    rollup_stage,
    source_health_stage,
)


# -- helpers -----------------------------------------------------------------------------


def _held_by_quiet_hours(
    config: Config,
    incident: Incident,
    lead: _Lead,
    now: datetime,
    routes: list[Route] | None = None,
) -> bool:
    """Whether quiet hours keep this incident from a channel it is routed to right now."""
    routing = Facts.of_incident(incident, lead)
    if routes is None:
        routes = config.effective_routes()
    notifying = set(notifying_channels())
    for channel, route in channels_for(routes, routing).items():
        quiet = route.quiet_hours
        if channel not in notifying or config.channel_settings(channel) is None:
            continue
        if quiet and in_quiet_hours(now, quiet) and not breaks_through(incident.severity, quiet):
            return True
    return False


def _paged(session: Session, incident: Incident, pagers: list[str]) -> bool:
    """Whether an escalation this episode already went to on-call (a paging channel)."""
    prefix = f"escalate:{incident.id}:{incident.episode}:"
    found = _rows(session, _PAGED, {"prefix": _like_prefix(prefix), "pagers": pagers}).first()
    return found is not None


def _plural(category: str, n: int) -> str:
    word = {
        "complaint": "negative mention",
        "legal_threat": "legal threat",
        "freebie_seeking": "freebie request",
        "abuse": "abusive mention",
    }.get(category, "mention")
    return word + ("s" if n != 1 else "")


# Statements the stages run for every round, built once: building and hashing a
# statement costs more than SQLite takes to run it. ``ids`` lists are sent in chunks.
_IDS = sa.bindparam("ids", expanding=True)
_CHUNK = 500
_INCIDENTS = (
    select(Incident).where(Incident.status == sa.bindparam("status")).order_by(Incident.id)  # type: ignore[arg-type]
)
_INCIDENTS_AMONG = (
    select(Incident)
    .where(Incident.status == sa.bindparam("status"), Incident.id.in_(_IDS))  # type: ignore[union-attr]
    .order_by(Incident.id)  # type: ignore[arg-type]
)
# Per incident and severity, its newest alert whose mention is stored: the lead is the
# most severe of these (one row per severity, not one per alert).
_LEAD_CANDIDATES = (
    sa.select(AlertRecord.incident_id, AlertRecord.severity, sa.func.max(AlertRecord.id))
    .join(MentionRecord, MentionRecord.id == AlertRecord.mention_id)  # type: ignore[arg-type]
    .where(AlertRecord.incident_id.in_(_IDS))  # type: ignore[union-attr]
    .group_by(AlertRecord.incident_id, AlertRecord.severity)
)
_LEAD_ROWS = (
    sa.select(AlertRecord.id, AlertRecord.source_name, MentionRecord.source)
    .join(MentionRecord, MentionRecord.id == AlertRecord.mention_id)  # type: ignore[arg-type]
    .where(AlertRecord.id.in_(_IDS))  # type: ignore[union-attr]
)
# An incident's engagement: its stored mentions' (each alert has its own mention).
_ENGAGEMENT = (
    sa.select(AlertRecord.incident_id, sa.func.sum(MentionRecord.engagement))
    .join(MentionRecord, MentionRecord.id == AlertRecord.mention_id)  # type: ignore[arg-type]
    .where(AlertRecord.incident_id.in_(_IDS))  # type: ignore[union-attr]
    .group_by(AlertRecord.incident_id)
)
# Its engagement then: each mention's latest snapshot at or before ``moment``, summed.
_EARLIER = sa.orm.aliased(EngagementSnapshot)
_LATEST_SNAPSHOT = (
    sa.select(_EARLIER.id)
    .where(
        _EARLIER.mention_id == AlertRecord.mention_id,
        _EARLIER.seen_at <= sa.bindparam("moment"),  # type: ignore[operator]
    )
    .order_by(_EARLIER.seen_at.desc(), _EARLIER.id.desc())  # type: ignore[attr-defined,union-attr]
    .limit(1)
    .scalar_subquery()
)
_ENGAGEMENT_THEN = (
    sa.select(
        AlertRecord.incident_id,
        sa.func.sum(
            EngagementSnapshot.likes + EngagementSnapshot.reposts + EngagementSnapshot.replies
        ),
    )
    .join(EngagementSnapshot, EngagementSnapshot.id == _LATEST_SNAPSHOT)  # type: ignore[arg-type]
    .where(AlertRecord.incident_id.in_(_IDS))  # type: ignore[union-attr]
    .group_by(AlertRecord.incident_id)
)
_ACKNOWLEDGING = ("ack", "snooze")
_RETRIGGERING = ("retrigger",)
_LAST_ACTIONS = (
    sa.select(
        IncidentAction.incident_id,
        IncidentAction.episode,
        IncidentAction.action,
        sa.func.max(IncidentAction.at),
    )
    .where(
        IncidentAction.incident_id.in_(_IDS),  # type: ignore[attr-defined]
        IncidentAction.action.in_(_ACKNOWLEDGING + _RETRIGGERING),  # type: ignore[attr-defined]
    )
    .group_by(IncidentAction.incident_id, IncidentAction.episode, IncidentAction.action)
)
_STATES = select(NotificationState).where(NotificationState.incident_id.in_(_IDS))  # type: ignore[attr-defined]
_PAGED = (
    sa.select(Delivery.id)
    .where(
        Delivery.channel.in_(sa.bindparam("pagers", expanding=True)),  # type: ignore[attr-defined]
        Delivery.dedup_key.like(sa.bindparam("prefix"), escape="/"),  # type: ignore[attr-defined]
    )
    .limit(1)
)
_NUMBERS = sa.select(Delivery.dedup_key).where(
    Delivery.dedup_key.like(sa.bindparam("prefix"), escape="/")  # type: ignore[attr-defined]
)
_SENT = sa.select(Delivery.dedup_key).where(
    Delivery.channel == sa.bindparam("channel"),
    Delivery.kind.in_(("alert", "rollup")),  # type: ignore[attr-defined]
    Delivery.created_at >= sa.bindparam("since"),  # type: ignore[operator]
)


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching strings that start with ``prefix`` taken literally."""
    return prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def _chunks(ids: Collection[int]) -> list[list[int]]:
    ordered = sorted(ids)
    return [ordered[i : i + _CHUNK] for i in range(0, len(ordered), _CHUNK)]


def _rows(session: Session, statement: sa.Executable, params: dict) -> sa.CursorResult:
    """Run a Core statement in the session's transaction, after its pending changes."""
    session.flush()
    return session.connection().execute(statement, params)


def _incidents(session: Session, status: str) -> list[Incident]:
    only = session.info.get(_ONLY)
    if only is None:
        return list(session.exec(_INCIDENTS, params={"status": status}))  # type: ignore[call-overload]
    found: list[Incident] = []
    for chunk in _chunks(only):
        found += session.exec(_INCIDENTS_AMONG, params={"status": status, "ids": chunk})  # type: ignore[call-overload]
    return sorted(found, key=lambda i: i.id)  # type: ignore[arg-type,return-value]


def _read(
    session: Session, incidents: list[Incident], now: datetime
) -> tuple[dict[int, _Lead], dict[int, IncidentFacts]]:
    """The lead alert of each incident that has one, and what the decisions read about
    each incident, for all of them at once: a few queries, each answering one row per
    incident (or per incident and severity) however many alerts it holds."""
    if not incidents:
        return {}, {}
    ids: list[int] = [i.id for i in incidents]  # type: ignore[misc]
    return _leads(session, ids), _facts_among(session, incidents, now)


def _leads(session: Session, incident_ids: Collection[int]) -> dict[int, _Lead]:
    best: dict[int, tuple[int, int]] = {}
    for chunk in _chunks(incident_ids):
        for incident_id, severity, alert_id in _rows(session, _LEAD_CANDIDATES, {"ids": chunk}):
            rank = (SEVERITY_RANK[severity], alert_id)
            if incident_id not in best or rank > best[incident_id]:
                best[incident_id] = rank
    by_alert = {alert_id: incident_id for incident_id, (_, alert_id) in best.items()}
    leads: dict[int, _Lead] = {}
    for chunk in _chunks(by_alert):
        for alert_id, source_name, source in _rows(session, _LEAD_ROWS, {"ids": chunk}):
            leads[by_alert[alert_id]] = _Lead(alert_id, source_name, source)
    return leads


def _lead(session: Session, incident: Incident) -> _Lead | None:
    return _leads(session, [incident.id]).get(incident.id)  # type: ignore[list-item,arg-type]


def _facts_by_id(
    session: Session, incidents: list[Incident], now: datetime
) -> dict[int, IncidentFacts]:
    return _read(session, incidents, now)[1]


def _facts_among(
    session: Session, incidents: list[Incident], now: datetime
) -> dict[int, IncidentFacts]:
    ids: list[int] = [i.id for i in incidents]  # type: ignore[misc]
    engagement: dict[int, int] = {}
    then: dict[int, int] = {}
    # When an acknowledging and a re-triggering action last happened, per episode.
    last: dict[tuple[int, int, str], datetime] = {}
    for chunk in _chunks(ids):
        for incident_id, total in _rows(session, _ENGAGEMENT, {"ids": chunk}):
            engagement[incident_id] = total or 0
        params = {"ids": chunk, "moment": now - SPREAD_WINDOW}
        for incident_id, total in _rows(session, _ENGAGEMENT_THEN, params):
            then[incident_id] = total or 0
        for incident_id, episode, action, at in _rows(session, _LAST_ACTIONS, {"ids": chunk}):
            kind = "ack" if action in _ACKNOWLEDGING else "retrigger"
            key = (incident_id, episode, kind)
            if key not in last or at > last[key]:
                last[key] = at
    facts = {}
    for incident in incidents:
        key = (incident.id, incident.episode)
        facts[incident.id] = IncidentFacts(
            id=incident.id,  # type: ignore[arg-type]
            episode=incident.episode,
            status=incident.status,
            severity=incident.severity,
            opened_at=incident.opened_at,
            alert_count=incident.alert_count,
            engagement=int(engagement.get(incident.id, 0)),  # type: ignore[arg-type]
            engagement_30m_ago=int(then.get(incident.id, 0)),  # type: ignore[arg-type]
            # The retrigger timer runs from the latest acknowledgement (the incident row
            # keeps the first, for time to acknowledge).
            acknowledged_at=last.get((*key, "ack")) or incident.acknowledged_at,  # type: ignore[arg-type]
            snoozed_until=incident.snoozed_until,
            escalations=incident.escalations,
            last_escalated_at=incident.last_escalated_at,
            retriggered_at=last.get((*key, "retrigger")),  # type: ignore[arg-type]
        )
    return facts  # type: ignore[return-value]


def _facts(session: Session, incident: Incident, now: datetime) -> IncidentFacts:
    return _facts_by_id(session, [incident], now)[incident.id]  # type: ignore[index]


def _last_number(session: Session, incident: Incident, channel: str) -> int:
    """The highest message number this episode already used for a channel, or 0."""
    prefix = f"notify:{incident.id}:{incident.episode}:{channel}:"
    keys = _rows(session, _NUMBERS, {"prefix": _like_prefix(prefix)}).scalars().all()
    return max((int(key[len(prefix) :].split(":", 1)[0]) for key in keys), default=0)


def _sent_last_hour(session: Session, config: Config, channel: str, now: datetime) -> int:
    """Messages sent to a channel in the last hour (an email to N people counts once)."""
    params = {"channel": channel, "since": now - BUDGET_WINDOW}
    rows = _rows(session, _SENT, params).scalars().all()
    settings = config.channel_settings(channel)
    if settings is not None and config.channel(channel).targets(settings, None) != [None]:
        return len({key.rsplit(":", 1)[0] for key in rows})  # one row per target
    return len(rows)
