import pytest

from emberwatch.alerts.decisions import decide
from emberwatch.config import Thresholds
from emberwatch.scoring import Scores


def scores(severity: str) -> Scores:
    return Scores(
        sentiment=-0.8,
        complaint=0.9,
        virality=0.1,
        expected_engagement=3.0,
        category="complaint",
        severity=severity,
        reasons=["sentiment -0.80"],
    )


@pytest.mark.parametrize(
    ("severity", "alerted", "action"),
    [
        ("info", None, "none"),
        ("warning", None, "raise"),
        ("critical", None, "raise"),
        ("warning", "warning", "none"),
        ("critical", "warning", "escalate"),
        ("warning", "critical", "none"),
    ],
)
def test_alerts_rise_with_severity_and_never_repeat(severity, alerted, action):
    decision = decide(scores(severity), Thresholds(min_severity="warning"), alerted)
    assert decision.action == action
    if action == "raise":
        assert decision.reason.startswith(f"{severity} complaint: sentiment -0.80")
