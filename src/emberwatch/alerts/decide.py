"""Decide whether a scored mention raises (or raises the severity of) an alert.

Pure: no clock, no database. It returns a :class:`Decision` with the reason, which goes
into logs and into the alert itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from emberwatch.config import SEVERITY_RANK, Thresholds
from emberwatch.scoring import Scores

Action = Literal["none", "raise", "escalate"]


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


def decide(scores: Scores, thresholds: Thresholds, alerted_severity: str | None) -> Decision:
    """Raise when severity reaches ``min_severity``; escalate when it rises past an alert's."""
    rank = SEVERITY_RANK[scores.severity]
    if rank < SEVERITY_RANK[thresholds.min_severity]:
        return Decision("none", f"severity {scores.severity} below {thresholds.min_severity}")
    why = f"{scores.severity} {scores.category}: " + "; ".join(scores.reasons)
    if alerted_severity is None:
        return Decision("raise", why)
    if rank > SEVERITY_RANK[alerted_severity]:
        return Decision("escalate", f"rose from {alerted_severity}: {why}")
    return Decision("none", f"already alerted at {alerted_severity}")
