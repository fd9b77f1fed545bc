from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest

import emberwatch.scoring as scoring
from emberwatch.mention import Mention
from emberwatch.scoring import (
    DEFAULT_VIRAL_THRESHOLD,
    Scorer,
    Scores,
    Snapshot,
    snapshots_from_json,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SCORER = Scorer({"sneakers": {"sick": 2.5}})


def _mention(text="", **fields):
    base = dict(
        source="twitter",
        external_id="1",
        url=None,
        author="someone",
        author_followers=400,
        title=None,
        text=text,
        published_at=T0,
    )
    base.update(fields)
    return Mention(**base)


def test_public_surface_is_small_and_sorted():
    assert scoring.__all__ == sorted(scoring.__all__)
    assert set(scoring.__all__) == {
        "DEFAULT_VIRAL_THRESHOLD",
        "Scorer",
        "Scores",
        "Snapshot",
        "snapshots_from_json",
    }
    assert DEFAULT_VIRAL_THRESHOLD == 500


def test_scores_carry_every_field_the_cli_writes():
    scores = SCORER.score(_mention("ordered three weeks ago, still nothing, two emails unanswered"))
    data = scores.to_dict()
    for key in (
        "sentiment",
        "complaint",
        "virality",
        "expected_engagement",
        "category",
        "severity",
        "reasons",
    ):
        assert key in data
    json.dumps(data)  # finite numbers only
    assert scores.category == "complaint"
    assert any("unmet expectation" in r for r in scores.reasons)


def test_brand_lexicon_applies_only_to_its_brand():
    mention = _mention("these shoes are sick")
    assert SCORER.score(mention, brand="sneakers").sentiment > 0
    assert SCORER.score(mention).sentiment < 0
    assert SCORER.score(mention, brand="unknown").sentiment < 0


def test_one_star_review_is_negative():
    scores = SCORER.score(_mention("Great staff, lovely shop", rating=1, source="trustpilot"))
    assert scores.sentiment < 0


def test_a_growing_trajectory_raises_virality_and_expected_engagement():
    quiet = [Snapshot(T0 + timedelta(minutes=10 * k), likes=k) for k in range(1, 4)]
    loud = [
        Snapshot(T0 + timedelta(minutes=10 * k), likes=40 * k, reposts=10 * k) for k in range(1, 4)
    ]
    mention = _mention("my parcel never arrived")
    a = SCORER.score(mention, snapshots=quiet)
    b = SCORER.score(mention, snapshots=loud)
    assert a.virality < b.virality
    assert a.expected_engagement < b.expected_engagement


def test_the_viral_threshold_is_configurable():
    snaps = [Snapshot(T0 + timedelta(minutes=30), likes=90, reposts=30)]
    mention = _mention("hello")
    low = Scorer(viral_threshold=100).score(mention, snapshots=snaps)
    high = Scorer(viral_threshold=5000).score(mention, snapshots=snaps)
    assert low.virality == 1.0
    assert high.virality < 0.5


def test_counts_without_snapshots_use_now_when_given():
    mention = _mention("hello", likes=300, reposts=100)
    with_now = SCORER.score(mention, now=T0 + timedelta(minutes=20))
    without = SCORER.score(mention)
    assert with_now.virality > without.virality
    assert without.expected_engagement >= 400
    assert any("unknown time" in r for r in without.reasons)


def test_reach_and_vip_raise_severity():
    text = "My order is broken and nobody answers, I want a refund"
    base = SCORER.score(_mention(text))
    far = SCORER.score(_mention(text, author_followers=200_000))
    vip = SCORER.score(_mention(text), vip=True)
    order = ["info", "warning", "critical"]
    assert order.index(far.severity) > order.index(base.severity)
    assert order.index(vip.severity) > order.index(base.severity)
    assert vip.playbook[0].startswith("VIP")
    assert vip.respond_within_minutes < base.respond_within_minutes


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "😡🤬👎💩😤",
        "🙂" * 5000,
        "Доставка опоздала 配達が遅い the order is late مرحبا",
        ("still nothing, order #12345 " * 4000)[:100_000],
        "\x00\x01\x02",
    ],
)
def test_adversarial_text_scores_in_range(text):
    scores = SCORER.score(_mention(text, title=text[:50] or None))
    assert -1 <= scores.sentiment <= 1
    assert 0 <= scores.complaint <= 1
    assert 0 <= scores.virality <= 1
    assert math.isfinite(scores.expected_engagement) and scores.expected_engagement >= 0
    assert scores.category in {
        "complaint",
        "legal_threat",
        "freebie_seeking",
        "abuse",
        "question",
        "praise",
        "other",
    }
    assert isinstance(scores, Scores)


def test_missing_publication_time_and_followers_still_score():
    snaps = [Snapshot(T0, likes=1), Snapshot(T0 + timedelta(hours=1), likes=9)]
    scores = SCORER.score(
        _mention("hi", published_at=None, author_followers=None, source="rss"), snapshots=snaps
    )
    assert 0 <= scores.virality <= 1
    assert any("publication time unknown" in r for r in scores.reasons)


def test_snapshots_from_json_reads_times_and_counts():
    snaps = snapshots_from_json(
        [
            {"at": "2026-03-01T12:05:00Z", "likes": 3, "reposts": None},
            {"at": 1772366700, "replies": "2"},
        ]
    )
    assert snaps[0] == Snapshot(datetime(2026, 3, 1, 12, 5, tzinfo=UTC), likes=3)
    assert snaps[1].replies == 2 and snaps[1].at.tzinfo is not None
    assert snapshots_from_json(None) == []


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([{"likes": 1}], "snapshots[0]: 'at' is missing"),
        ([{"at": "2026-03-01T12:00:00Z"}, {"at": "soon"}], "snapshots[1]: 'at' is not"),
        ([{"at": "2026-03-01T12:00:00Z", "likes": "many"}], "snapshots[0]: 'likes'"),
        (["x"], "snapshots[0]: expected an object"),
    ],
)
def test_snapshots_from_json_names_the_bad_item(items, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        snapshots_from_json(items)


def test_a_zero_viral_threshold_is_refused():
    with pytest.raises(ValueError, match="viral_threshold"):
        Scorer(viral_threshold=0)


def test_scores_survive_pickling_whole_as_the_scoring_pool_sends_them():
    import pickle

    scores = SCORER.score(_mention("my order is late again and support ignores me"))
    copied = pickle.loads(pickle.dumps(scores))
    assert copied == scores and type(copied) is Scores
    assert copied.reasons == scores.reasons and copied.reasons is not scores.reasons
