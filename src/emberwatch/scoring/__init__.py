"""Scoring: sentiment, complaint probability, virality, then triage into category and severity.

The pipeline and ``emberwatch score`` both call :meth:`Scorer.score`, so what the CLI
shows is what alerts are raised on.
"""

from emberwatch.scoring.scorer import Scorer, Scores, Snapshot

__all__ = ["Scorer", "Scores", "Snapshot"]
