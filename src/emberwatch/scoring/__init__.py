"""Scoring: sentiment, complaint probability, virality, then triage into category and severity.

The pipeline and ``emberwatch score`` both call :meth:`Scorer.score`, so what the CLI
shows is what alerts are raised on. ``DEFAULT_VIRAL_THRESHOLD`` (500) is the engagement,
likes + reposts + replies, that counts as viral within 24 h of publication.
"""

from emberwatch.scoring.scorer import (
    DEFAULT_VIRAL_THRESHOLD,
    Scorer,
    Scores,
    Snapshot,
    snapshots_from_json,
)

__all__ = ["DEFAULT_VIRAL_THRESHOLD", "Scorer", "Scores", "Snapshot", "snapshots_from_json"]
