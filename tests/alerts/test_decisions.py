"""The alert policy's timers: pure decisions with an injected clock, table-driven."""

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest

from emberwatch.alerts.decisions import (
    SPREAD_FLOOR,
    IncidentFacts,
    Notified,
    SourceFacts,
    escalation_channels,
    needs_escalation,
    needs_notify,
    needs_retrigger,
    source_health,
)
from emberwatch.config import Escalation, QuietHours, Route

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
ROUTE = Route(
    name="r",
    channels=["slack"],
    group_wait=timedelta(seconds=30),
    group_interval=timedelta(minutes=5),
    repeat_interval=timedelta(hours=4),
)
POLICY = Escalation(after=timedelta(minutes=15), max_times=3)


def facts(**overrides) -> IncidentFacts:
    values = dict(
        id=1,
        episode=1,
        status="triggered",
        severity="warning",
        opened_at=T0,
        alert_count=1,
        engagement=0,
        engagement_30m_ago=0,
    )
    values.update(overrides)
    return IncidentFacts(**values)


def told(seconds_ago: float, now: datetime, **overrides) -> Notified:
    values = dict(
        at=now - timedelta(seconds=seconds_ago), severity="warning", alert_count=1, engagement=0
    )
    values.update(overrides)
    return Notified(**values)


@pytest.mark.parametrize(
    ("incident", "last", "now", "act", "cut_through", "reason"),
    [
        # A new incident waits group_wait ...
        (facts(), None, T0 + timedelta(seconds=29), False, False, "group wait"),
        (facts(), None, T0 + timedelta(seconds=30), True, False, "new incident"),
        # ... but a new critical one notifies at once.
        (facts(severity="critical"), None, T0, True, True, "new critical"),
        # A severity rise cuts through any interval.
        (
            facts(severity="critical"),
            told(10, T0 + timedelta(minutes=1)),
            T0 + timedelta(minutes=1),
            True,
            True,
            "rose from warning to critical",
        ),
        # Engagement doubling within 30 min cuts through, above the floor.
        (
            facts(engagement=40, engagement_30m_ago=20),
            told(10, T0 + timedelta(minutes=2), engagement=20),
            T0 + timedelta(minutes=2),
            True,
            True,
            "engagement doubled",
        ),
        # Below the floor, 1 → 2 likes is noise.
        (
            facts(engagement=2, engagement_30m_ago=1),
            told(10, T0 + timedelta(minutes=2), engagement=1),
            T0 + timedelta(minutes=2),
            False,
            False,
            "nothing new",
        ),
        # Already told about this engagement: no second cut-through for the same doubling.
        (
            facts(engagement=40, engagement_30m_ago=20),
            told(10, T0 + timedelta(minutes=2), engagement=40),
            T0 + timedelta(minutes=2),
            False,
            False,
            "nothing new",
        ),
        # New related mentions wait group_interval since the last message.
        (
            facts(alert_count=3),
            told(299, T0 + timedelta(minutes=10)),
            T0 + timedelta(minutes=10),
            False,
            False,
            "nothing new",
        ),
        (
            facts(alert_count=3),
            told(300, T0 + timedelta(minutes=10)),
            T0 + timedelta(minutes=10),
            True,
            False,
            "2 new related mentions",
        ),
        (
            facts(alert_count=2),
            told(300, T0 + timedelta(minutes=10)),
            T0 + timedelta(minutes=10),
            True,
            False,
            "1 new related mention",
        ),
        # Nothing new: repeat after repeat_interval.
        (
            facts(),
            told(4 * 3600 - 1, T0 + timedelta(hours=5)),
            T0 + timedelta(hours=5),
            False,
            False,
            "nothing new",
        ),
        (
            facts(),
            told(4 * 3600, T0 + timedelta(hours=5)),
            T0 + timedelta(hours=5),
            True,
            False,
            "still open",
        ),
        # Acknowledged and resolved incidents never notify, however much is new.
        (facts(status="acknowledged", severity="critical"), None, T0, False, False, "acknowledged"),
        (facts(status="resolved", severity="critical"), None, T0, False, False, "resolved"),
        (
            facts(status="acknowledged", severity="critical", engagement=900),
            told(10, T0, engagement=10),
            T0,
            False,
            False,
            "acknowledged",
        ),
    ],
)
def test_it_decides_when_a_channel_hears(incident, last, now, act, cut_through, reason):
    verdict = needs_notify(incident, last, ROUTE, now)
    assert (verdict.act, verdict.cut_through) == (act, cut_through)
    assert reason in verdict.reason


def test_it_counts_the_spread_floor_as_the_doubling_baseline():
    # From 3 to 2 × SPREAD_FLOOR doubles the floor, not just the tiny start.
    now = T0 + timedelta(minutes=5)
    below = facts(engagement=2 * SPREAD_FLOOR - 1, engagement_30m_ago=3)
    at = facts(engagement=2 * SPREAD_FLOOR, engagement_30m_ago=3)
    assert not needs_notify(below, told(10, now, engagement=3), ROUTE, now).act
    assert needs_notify(at, told(10, now, engagement=3), ROUTE, now).cut_through


# Quiet hours 22:00–07:00 in Berlin (UTC+1 in November): 21:00–06:00 UTC.
NIGHT = QuietHours(start=time(22), end=time(7), timezone="Europe/Berlin", breakthrough="critical")
QUIET_ROUTE = ROUTE.model_copy(update={"quiet_hours": NIGHT})
EVENING = datetime(2026, 11, 20, 20, 59, tzinfo=UTC)  # 21:59 in Berlin


@pytest.mark.parametrize(
    ("local_utc", "severity", "act", "reason"),
    [
        (EVENING, "warning", True, "new incident"),  # not yet quiet
        (EVENING + timedelta(minutes=1), "warning", False, "quiet hours until 07:00"),
        (datetime(2026, 11, 20, 23, 30, tzinfo=UTC), "warning", False, "Europe/Berlin"),
        (datetime(2026, 11, 21, 5, 59, tzinfo=UTC), "info", False, "quiet hours"),  # 06:59 local
        (datetime(2026, 11, 21, 6, 0, tzinfo=UTC), "warning", True, "new incident"),  # 07:00
        (datetime(2026, 11, 20, 23, 30, tzinfo=UTC), "critical", True, "breaks through"),
        # 07:00 UTC is 08:00 in Berlin: a UTC-reading bug would hold this one.
        (datetime(2026, 11, 21, 6, 30, tzinfo=UTC), "warning", True, "new incident"),
    ],
)
def test_it_holds_non_breakthrough_severities_in_quiet_hours_across_midnight(
    local_utc, severity, act, reason
):
    incident = facts(severity=severity, opened_at=local_utc - timedelta(minutes=1))
    verdict = needs_notify(incident, None, QUIET_ROUTE, local_utc)
    assert verdict.act is act
    assert reason in verdict.reason


def test_it_lets_a_configured_breakthrough_severity_through_quiet_hours():
    warn_through = ROUTE.model_copy(
        update={"quiet_hours": NIGHT.model_copy(update={"breakthrough": "warning"})}
    )
    now = datetime(2026, 11, 21, 1, tzinfo=UTC)
    incident = facts(severity="warning", opened_at=now - timedelta(minutes=5))
    assert needs_notify(incident, None, warn_through, now).act
    assert not needs_notify(replace(incident, severity="info"), None, warn_through, now).act


@pytest.mark.parametrize(
    ("incident", "now", "act", "reason"),
    [
        (facts(), T0 + timedelta(minutes=14, seconds=59), False, "escalates at 12:15Z"),
        (facts(), T0 + timedelta(minutes=15), True, "not acknowledged after 15 min (escalation 1)"),
        (facts(severity="critical"), T0 + timedelta(minutes=20), True, "escalation 1"),
        # The next escalation counts from the last one.
        (
            facts(escalations=1, last_escalated_at=T0 + timedelta(minutes=15)),
            T0 + timedelta(minutes=29),
            False,
            "escalates at 12:30Z",
        ),
        (
            facts(escalations=2, last_escalated_at=T0 + timedelta(minutes=30)),
            T0 + timedelta(minutes=45),
            True,
            "escalation 3",
        ),
        # Up to max_times, then never again.
        (
            facts(escalations=3, last_escalated_at=T0 + timedelta(minutes=45)),
            T0 + timedelta(hours=5),
            False,
            "already escalated 3 times",
        ),
        # A re-trigger (snooze ended) restarts the clock: the fresh notice gets its time.
        (
            facts(retriggered_at=T0 + timedelta(hours=1)),
            T0 + timedelta(hours=1, minutes=14),
            False,
            "escalates at 13:15Z",
        ),
        (
            facts(retriggered_at=T0 + timedelta(hours=1)),
            T0 + timedelta(hours=1, minutes=15),
            True,
            "not acknowledged after 75 min",
        ),
        # A warning escalated max_times by email that rises to critical pages on-call once.
        (
            facts(severity="critical", escalations=3, last_escalated_at=T0, owes_page=True),
            T0 + timedelta(minutes=15),
            True,
            "escalation 4",
        ),
        (
            facts(severity="critical", escalations=3, last_escalated_at=T0, owes_page=True),
            T0 + timedelta(minutes=14),
            False,
            "escalates at 12:15Z",
        ),
        (facts(severity="info"), T0 + timedelta(hours=1), False, "info incidents"),
        (facts(status="acknowledged"), T0 + timedelta(hours=1), False, "acknowledged"),
        (facts(status="resolved"), T0 + timedelta(hours=1), False, "resolved"),
    ],
)
def test_it_escalates_unacknowledged_incidents_on_a_timer(incident, now, act, reason):
    verdict = needs_escalation(incident, POLICY, now)
    assert verdict.act is act
    assert reason in verdict.reason


def test_it_escalates_after_the_configured_delay():
    policy = Escalation(after=timedelta(minutes=5), max_times=1)
    assert needs_escalation(facts(), policy, T0 + timedelta(minutes=5)).act
    assert not needs_escalation(
        facts(escalations=1, last_escalated_at=T0), policy, T0 + timedelta(hours=1)
    ).act


ACKED = facts(status="acknowledged", acknowledged_at=T0)


@pytest.mark.parametrize(
    ("incident", "now", "act", "reason"),
    [
        (
            replace(ACKED, snoozed_until=T0 + timedelta(hours=1)),
            T0 + timedelta(minutes=59),
            False,
            "snoozed until 13:00Z",
        ),
        (
            replace(ACKED, snoozed_until=T0 + timedelta(hours=1)),
            T0 + timedelta(hours=1),
            True,
            "snooze ended",
        ),
        (ACKED, T0 + timedelta(hours=3, minutes=59), False, "acknowledged"),
        (ACKED, T0 + timedelta(hours=4), True, "acknowledged but unresolved after 4 h"),
        (facts(), T0 + timedelta(hours=9), False, "triggered"),
        (facts(status="resolved"), T0 + timedelta(hours=9), False, "resolved"),
    ],
)
def test_it_retriggers_after_a_snooze_or_a_long_acknowledgement(incident, now, act, reason):
    verdict = needs_retrigger(incident, POLICY, now)
    assert verdict.act is act
    assert reason in verdict.reason


EMAILS = Escalation(emails=["boss@acme.example"])


@pytest.mark.parametrize(
    ("severity", "policy", "slack", "email", "expected"),
    [
        # The defaults: a warning escalates to the escalation email list, a critical
        # incident also pings on-call in Slack.
        ("warning", EMAILS, True, True, ("email",)),
        ("critical", EMAILS, True, True, ("slack", "email")),
        # Without an escalation email list, a warning has nobody to escalate to.
        ("warning", Escalation(), True, True, ()),
        ("critical", Escalation(), True, True, ("slack",)),
        # Only configured channels.
        ("critical", EMAILS, False, True, ("email",)),
        ("critical", EMAILS, True, False, ("slack",)),
        # slack_min_severity = "warning" pages on-call for warnings too.
        (
            "warning",
            Escalation(emails=["b@x.example"], slack_min_severity="warning"),
            True,
            True,
            ("slack", "email"),
        ),
    ],
)
def test_escalation_follows_the_channels_roles(severity, policy, slack, email, expected):
    assert escalation_channels(severity, policy, slack=slack, email=email) == expected


MINUTE = timedelta(minutes=1)


def source(**overrides) -> SourceFacts:
    values = dict(last_poll_at=T0, last_success_at=T0, consecutive_failures=0, trouble_seen_at=None)
    values.update(overrides)
    return SourceFacts(**values)


@pytest.mark.parametrize(
    ("facts_", "now", "status", "since", "reason"),
    [
        # A fresh install: never polled, or polled without an outcome yet.
        (source(last_poll_at=None, last_success_at=None), T0, "pending", None, "first poll"),
        (source(last_success_at=None), T0, "pending", None, "first poll"),
        (source(), T0 + MINUTE, "healthy", None, "polled"),
        # A first failure starts the clock at the evaluation that sees it ...
        (source(last_success_at=None, consecutive_failures=1), T0, "failing", T0, "1 failed"),
        # ... and it is unhealthy only once the trouble has lasted 3 intervals.
        (
            source(last_success_at=None, consecutive_failures=2, trouble_seen_at=T0),
            T0 + 3 * MINUTE - timedelta(seconds=1),
            "failing",
            T0,
            "unhealthy at 12:03Z",
        ),
        (
            source(last_success_at=None, consecutive_failures=3, trouble_seen_at=T0),
            T0 + 3 * MINUTE,
            "unhealthy",
            T0,
            "3 failed polls in a row for 3 min",
        ),
        # A restart finds an old last success: the clock starts now, not at that success.
        (
            source(last_poll_at=T0, last_success_at=T0),
            T0 + timedelta(hours=5),
            "failing",
            T0 + timedelta(hours=5),
            "no poll since",
        ),
        # Overdue: no success for two intervals (plus the jitter) is trouble.
        (source(), T0 + 2 * MINUTE, "healthy", None, "polled"),
        (source(), T0 + 2 * MINUTE + timedelta(seconds=1), "failing", None, "no poll since"),
        # A success ends the trouble.
        (source(trouble_seen_at=T0 - MINUTE), T0 + MINUTE, "healthy", None, "polled"),
    ],
)
def test_source_health_counts_from_when_trouble_is_first_seen(facts_, now, status, since, reason):
    health = source_health(facts_, MINUTE, 3.0, now)
    assert health.status == status
    assert health.since == (since if since is not None or status != "failing" else now)
    assert reason in health.reason
