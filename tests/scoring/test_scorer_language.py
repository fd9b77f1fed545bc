"""A mention in a language the text scorers do not read is scored by its rating alone,
says so, and never claims to be confident neutral English."""

from emberwatch.mention import Mention
from emberwatch.scoring import Scorer

JA = "注文した商品がまだ届きません。サポートに三回電話しましたが誰も出ません。"


def mention(text: str, rating: float | None = None) -> Mention:
    return Mention("appstore", "1", None, None, None, None, text, None, rating=rating)


def test_a_japanese_review_takes_its_sentiment_from_its_stars():
    scores = Scorer().score(mention(JA, rating=1))
    assert scores.language == "ja"
    assert "language ja: text not scored" in scores.reasons
    assert scores.sentiment < -0.25 and scores.category == "complaint"


def test_without_a_rating_it_is_unscored_not_neutral_english():
    scores = Scorer().score(mention(JA))
    assert scores.language == "ja" and scores.sentiment == 0.0
    assert "language ja: text not scored" in scores.reasons
    assert not any("VADER" in r for r in scores.reasons)
    assert scores.category == "other"


def test_english_is_scored_as_before():
    scores = Scorer().score(mention("my order still hasn't arrived after three weeks"))
    assert scores.language == "en"
    assert not any(r.startswith("language ") for r in scores.reasons)
