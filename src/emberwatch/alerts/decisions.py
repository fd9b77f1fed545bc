"""The alert policy's decisions, pure: each returns a :class:`Decision`, whether to act and
why (the reason goes into logs, the alert, the message and the digest).

- :func:`decide`: does a scored mention raise an alert, or raise an alert's severity?
  (no clock, no database);
- the timers, each with an injected ``now``: notify now (:func:`needs_notify`), escalate
  (:func:`needs_escalation`), re-trigger (:func:`needs_retrigger`), and whether a source
  is healthy (:func:`source_health`).

Alertmanager's ``needsUpdate`` is the model; two things go further here:

- new information cuts through batching: a severity rise, or engagement at least doubling
  within 30 minutes, notifies at once instead of waiting for the next interval;
- a new critical incident skips ``group_wait``: the first spark is what we are here for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from emberwatch.alerts.routing import breaks_through, in_quiet_hours, quiet_hours_end
from emberwatch.config import (
    SEVERITY_RANK,
    Escalation,
    Route,
    Thresholds,
    address_channels,
    paging_channels,
)
from emberwatch.scoring import Scores

SPREAD_WINDOW = timedelta(minutes=30)
# Doubling from 1 to 2 likes is noise; the spread rule starts counting at this engagement.
SPREAD_FLOOR = 10


@dataclass(frozen=True)
class IncidentFacts:
    id: int
    episode: int
    status: str
    severity: str
    opened_at: datetime
    alert_count: int
    engagement: int
    engagement_30m_ago: int
    acknowledged_at: datetime | None = None
    snoozed_until: datetime | None = None
    escalations: int = 0
    last_escalated_at: datetime | None = None
    # When a snooze or a long acknowledgement last sent it back to ``triggered``.
    retriggered_at: datetime | None = None
    # Severe enough to page on-call in Slack, which no escalation this episode has done
    # yet (its escalations went to email while it was a warning).
    owes_page: bool = False


@dataclass(frozen=True)
class Notified:
    """What a channel was last told (this episode)."""

    at: datetime
    severity: str
    alert_count: int
    engagement: int


# What decide() does with a scored mention.
Action = Literal["none", "raise", "escalate"]


@dataclass(frozen=True)
class Decision:
    """Whether to act, and why. ``cut_through``: a timer was skipped for news;
    ``action``: what :func:`decide` does with an alert."""

    act: bool
    reason: str
    cut_through: bool = False
    action: Action = "none"


def decide(scores: Scores, thresholds: Thresholds, alerted_severity: str | None) -> Decision:
    """Raise when severity reaches ``min_severity``; escalate when it rises past an alert's."""
    rank = SEVERITY_RANK[scores.severity]
    if rank < SEVERITY_RANK[thresholds.min_severity]:
        return Decision(False, f"severity {scores.severity} below {thresholds.min_severity}")
    why = f"{scores.severity} {scores.category}: " + "; ".join(scores.reasons)
    if alerted_severity is None:
        return Decision(True, why, action="raise")
    if rank > SEVERITY_RANK[alerted_severity]:
        return Decision(True, f"rose from {alerted_severity}: {why}", action="escalate")
    return Decision(False, f"already alerted at {alerted_severity}")


def needs_notify(
    incident: IncidentFacts, last: Notified | None, route: Route, now: datetime
) -> Decision:
    verdict = _timers(incident, last, route, now)
    quiet = route.quiet_hours
    if verdict.act and quiet and in_quiet_hours(now, quiet):
        if not breaks_through(incident.severity, quiet):
            until = quiet_hours_end(now, quiet)
            return Decision(False, f"quiet hours until {until:%H:%M} {quiet.timezone}")
        return Decision(True, f"{verdict.reason} (breaks through quiet hours)", verdict.cut_through)
    return verdict


def _timers(
    incident: IncidentFacts, last: Notified | None, route: Route, now: datetime
) -> Decision:
    if incident.status == "resolved":
        return Decision(False, "resolved")
    if incident.status == "acknowledged":
        return Decision(False, "acknowledged")
    if last is None:
        if incident.severity == "critical":
            return Decision(True, "new critical incident", cut_through=True)
        due = incident.opened_at + route.group_wait
        if now >= due:
            return Decision(True, "new incident")
        return Decision(False, f"group wait until {due:%H:%M:%S}Z")
    if SEVERITY_RANK[incident.severity] > SEVERITY_RANK[last.severity]:
        return Decision(True, f"severity rose from {last.severity} to {incident.severity}", True)
    if spreading(incident, last):
        return Decision(
            True,
            f"engagement doubled within 30 min ({incident.engagement_30m_ago} → "
            f"{incident.engagement})",
            True,
        )
    if incident.alert_count > last.alert_count and now >= last.at + route.group_interval:
        new = incident.alert_count - last.alert_count
        return Decision(True, f"{new} new related mention{'s' if new != 1 else ''}")
    if now >= last.at + route.repeat_interval:
        return Decision(True, "still open and unacknowledged")
    return Decision(False, "nothing new")


def spreading(incident: IncidentFacts, last: Notified) -> bool:
    """Engagement at least doubled within the last 30 minutes, and since last told."""
    baseline = max(incident.engagement_30m_ago, SPREAD_FLOOR)
    return incident.engagement >= 2 * baseline and incident.engagement >= 2 * max(
        last.engagement, 1
    )


def needs_escalation(incident: IncidentFacts, policy: Escalation, now: datetime) -> Decision:
    if incident.status != "triggered":
        return Decision(False, incident.status)
    if SEVERITY_RANK[incident.severity] < SEVERITY_RANK["warning"]:
        return Decision(False, "info incidents are not escalated")
    # A warning escalated ``max_times`` by email that rises to critical still pages once.
    if incident.escalations >= policy.max_times and not (incident.owes_page and policy.max_times):
        return Decision(False, f"already escalated {incident.escalations} times")
    # Counted from the last escalation or re-trigger: a snooze that ends is notified afresh
    # and gets ``after`` to be acknowledged before anyone is paged.
    since = max(
        t for t in (incident.opened_at, incident.last_escalated_at, incident.retriggered_at) if t
    )
    due = since + policy.after
    if now < due:
        return Decision(False, f"escalates at {due:%H:%M}Z if not acknowledged")
    minutes = int((now - incident.opened_at).total_seconds() // 60)
    return Decision(
        True, f"not acknowledged after {minutes} min (escalation {incident.escalations + 1})"
    )


def pages_on_call(severity: str, policy: Escalation) -> bool:
    """Whether an escalation at this severity pings on-call in Slack."""
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[policy.slack_min_severity]


def escalation_channels(
    severity: str, policy: Escalation, *, slack: bool, email: bool
) -> tuple[str, ...]:
    """Who an escalation at ``severity`` goes to: the escalation email list (through the
    channels that reach people by address) always, and the paging channels (on-call)
    from ``slack_min_severity`` (critical by default) up.

    ``slack`` and ``email`` say whether a paging channel and an address channel are
    configured (the names of the config keys they are set by). A warning that has risen
    to critical pages on-call like any critical incident.
    """
    channels: list[str] = []
    if slack and pages_on_call(severity, policy):
        channels += paging_channels()
    if email and policy.emails:
        channels += address_channels()
    return tuple(channels)


def needs_retrigger(incident: IncidentFacts, policy: Escalation, now: datetime) -> Decision:
    if incident.status != "acknowledged":
        return Decision(False, incident.status)
    if incident.snoozed_until is not None:
        if now >= incident.snoozed_until:
            return Decision(True, "snooze ended")
        return Decision(False, f"snoozed until {incident.snoozed_until:%H:%M}Z")
    if incident.acknowledged_at and now >= incident.acknowledged_at + policy.retrigger_after:
        hours = policy.retrigger_after.total_seconds() / 3600
        return Decision(True, f"acknowledged but unresolved after {hours:g} h")
    return Decision(False, "acknowledged")


# -- source health ------------------------------------------------------------------------

SourceStatus = Literal["pending", "healthy", "failing", "unhealthy"]


@dataclass(frozen=True)
class SourceFacts:
    """What the health decision reads from a source's stored state."""

    last_poll_at: datetime | None
    last_success_at: datetime | None
    consecutive_failures: int
    # When an evaluation first saw the source failing or overdue (``sources.unhealthy_since``).
    trouble_seen_at: datetime | None


@dataclass(frozen=True)
class SourceHealth:
    status: SourceStatus
    reason: str
    # When the current trouble was first seen (to be stored); None while pending or healthy.
    since: datetime | None = None


def source_health(
    facts: SourceFacts,
    interval: timedelta,
    intervals: float,
    now: datetime,
    grace: timedelta = timedelta(0),
) -> SourceHealth:
    """Pending, healthy, failing (in trouble, not for long yet) or unhealthy.

    A source is in trouble when a poll failed since its last success, or when it is a whole
    poll overdue (no success for two intervals plus ``grace``, the poll jitter). The
    clock starts when an evaluation first sees the trouble, not at the last success: the
    state a fresh install or a restart finds is old, and a restart must not page about a
    source it has not polled yet. It is unhealthy once the trouble has lasted
    ``intervals`` intervals. A source never polled is pending, not unhealthy.
    """
    failures = facts.consecutive_failures
    if facts.last_poll_at is None or (facts.last_success_at is None and not failures):
        return SourceHealth("pending", "waiting for its first poll")
    if failures:
        trouble = f"{failures} failed poll{'s' if failures != 1 else ''} in a row"
    elif now - facts.last_success_at > 2 * interval + grace:  # type: ignore[operator]
        trouble = f"no poll since {facts.last_success_at:%Y-%m-%d %H:%M}Z"
    else:
        return SourceHealth("healthy", "polled successfully")
    since = facts.trouble_seen_at or now
    limit = interval * intervals
    if now - since >= limit:
        return SourceHealth("unhealthy", f"{trouble} for {_minutes(now - since)}", since)
    return SourceHealth("failing", f"{trouble}; unhealthy at {since + limit:%H:%M}Z", since)


def _minutes(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"
