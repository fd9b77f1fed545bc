"""Sentiment: VADER's compound score of a mention's title and text."""

from __future__ import annotations

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer


class SentimentModel:
    """A VADER analyzer; one per lexicon, because VADER keeps its lexicon on the instance."""

    def __init__(self, overrides: dict[str, float] | None = None) -> None:
        self._analyzer = SentimentIntensityAnalyzer()
        if overrides:
            self._analyzer.lexicon.update({k.lower(): v for k, v in overrides.items()})

    def compound(self, text: str) -> float:
        if not text.strip():
            return 0.0
        return float(self._analyzer.polarity_scores(text)["compound"])
