from __future__ import annotations

import pytest
from complaint_examples import EXAMPLES, FRESH_EXAMPLES, MARKER_EXAMPLES, MARKER_HELD_OUT
from hypothesis import given, settings
from hypothesis import strategies as st

from emberwatch.scoring.complaint import combine, complaint_probability, find_cues
from emberwatch.scoring.sentiment import SentimentModel

MODEL = SentimentModel()


def _probability(text: str) -> float:
    return complaint_probability(text, MODEL.compound(text)).probability


def _families(text: str) -> set[str]:
    return {cue.family for cue in find_cues(text)}


@pytest.mark.parametrize(
    ("text", "family"),
    [
        ("still nothing from you", "unmet expectation"),
        ("it never arrived", "unmet expectation"),
        ("it was supposed to come Monday", "unmet expectation"),
        ("on hold again", "unmet expectation"),
        ("ordered three weeks ago", "elapsed time"),
        ("waiting since Tuesday", "elapsed time"),
        ("order #A123456", "order or ticket number"),
        ("ticket 88213", "order or ticket number"),
        ("I want a refund", "request for a remedy"),
        ("can someone please reply", "request for a remedy"),
        ("it hasn't shipped", "negated service verb"),
        ("the app doesn't work", "negated service verb"),
        ("the jug is cracked", "defect or damage"),
        ("charged twice for one order", "defect or damage"),
        ("my flight was delayed", "failure word"),
        ("why is my bill so high", "why question"),
        ("your app keeps logging me out", "blame on the brand"),
        ("Never ordering again", "walking away"),
        ("thanks for nothing", "explicit sarcasm"),
        ("Acme announces a new store", "news or announcement"),
        ("can't wait for the launch", "anticipation"),
        ("all sorted now, thanks", "problem resolved"),
        ("Never had a problem with them", "satisfied"),
    ],
)
def test_it_finds_the_cue(text, family):
    assert family in _families(text)


@pytest.mark.parametrize(
    "text",
    ["can't wait for the weekend", "no worries at all", "I never thought I'd love tea"],
)
def test_negated_service_verb_ignores_phrases_that_are_not_service_failures(text):
    assert "negated service verb" not in _families(text)


def test_a_question_to_the_brand_handle_is_a_cue():
    assert "question to a handle" in _families("@acme where is it?")
    assert "question to a handle" not in _families("where is it?")


def test_ironic_praise_counts_only_next_to_a_complaint_cue():
    assert "ironic praise" not in _families("Great job on the new menu!")
    assert "ironic praise" in _families("Great job, three weeks and still no package")


def test_reasons_name_the_cue_and_the_text_it_matched():
    result = complaint_probability("Order #A123456 never arrived", 0.0)
    joined = " ".join(result.reasons)
    assert "order or ticket number: 'order #a123456'" in joined
    assert "unmet expectation: 'never arrived'" in joined
    assert f"complaint {result.probability:.2f}" in result.reasons[-1]


def test_calm_factual_complaints_that_vader_misses_are_caught():
    text = "ordered three weeks ago, still nothing, two emails unanswered"
    assert _probability(text) > 0.8


def test_neutral_news_and_plain_questions_are_unlikely_complaints():
    assert _probability("Acme announces new store opening in Leeds next month") < 0.2
    assert _probability("@acme do you ship to Canada?") < 0.5


def test_sincere_praise_is_very_unlikely():
    assert _probability("Love my new sneakers, so comfy, thank you!") < 0.1


@pytest.mark.parametrize("sentiment", [-1.0, -0.6, -0.2, 0.0, 0.3, 0.9])
def test_more_negative_sentiment_never_lowers_the_probability(sentiment):
    cues = find_cues("my parcel is late")
    assert combine(cues, sentiment - 0.1).probability >= combine(cues, sentiment).probability


def test_each_added_complaint_cue_raises_the_probability():
    steps = [
        "my parcel",
        "my parcel is late",
        "my parcel is late, three weeks now",
        "my parcel is late, three weeks now, order #99881",
        "my parcel is late, three weeks now, order #99881, I want a refund",
    ]
    probs = [_probability(t) for t in steps]
    assert probs == sorted(probs)
    assert probs[0] < 0.5 < probs[-1]


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300), st.floats(min_value=-1, max_value=1))
def test_probability_is_always_within_0_and_1(text, sentiment):
    result = complaint_probability(text, sentiment)
    assert 0.0 <= result.probability <= 1.0


def _f1(examples):
    tp = fp = fn = 0
    for text, label in examples:
        predicted = _probability(text) >= 0.5
        tp += predicted and label
        fp += predicted and not label
        fn += label and not predicted
    return 2 * tp / (2 * tp + fp + fn)


def test_it_stays_accurate_on_the_design_examples():
    assert _f1(EXAMPLES) >= 0.9


def test_it_does_not_regress_on_the_fresh_examples():
    assert _f1(FRESH_EXAMPLES) >= 0.65


@pytest.mark.parametrize(
    ("text", "family"),
    [
        ("my transfer failed twice", "billing problem"),
        ("payment failed at checkout", "billing problem"),
        ("Unable to log in since Monday", "technical problem"),
        ("charged twice for one order", "defect or damage"),
        ("the app charged me £14 for nothing", "billing problem"),
        ("the parcel should have been here Tuesday", "unmet expectation"),
        ("I shouldn't have to chase you", "unmet expectation"),
        ("called 4 times today", "elapsed time"),
        ("wrong for the third month running", "elapsed time"),
        ("having issues with my voicemail", "technical problem"),
        ("voucher code not accepted", "billing problem"),
        ("all my points are gone", "failure word"),
        ("@acme lost my luggage", "failure word"),
        ("the price went up and nobody told me", "unmet expectation"),
        ("all my files were deleted after the update", "technical problem"),
        ("Never let me down", "satisfied"),
    ],
)
def test_it_finds_the_markers_the_first_cues_lacked(text, family):
    assert family in _families(text)


@pytest.mark.parametrize(
    ("text", "family"),
    [
        ("Feeling so lost without my morning run", "failure word"),
        ("I lost my keys", "failure word"),
        ("I don't get it, how is this a hit", "negated service verb"),
        ("The sequel is supposed to be fun", "unmet expectation"),
        ("why do people queue for this", "why question"),
        ("Gone to the beach, back tomorrow", "failure word"),
        ("thinking of switching to @acme", "walking away"),
        ("please help me name my puppy", "request for a remedy"),
    ],
)
def test_cue_words_in_another_sense_do_not_fire(text, family):
    assert family not in _families(text)


def test_a_help_request_counts_only_next_to_a_problem():
    assert "asks for help" not in _families("@acme can you help me choose a plan?")
    assert "asks for help" in _families("@acme my wifi keeps dropping out, can you help?")


@pytest.mark.parametrize(
    "text",
    [
        "The referee ruined the game tonight, worst decision I've ever seen",
        "These politicians are useless, nothing ever changes",
        "Storm warning again, the weather this month has been awful",
    ],
)
def test_negativity_about_sport_politics_or_weather_is_not_a_complaint(text):
    assert _probability(text) < 0.5
    assert "no product or service named" in complaint_probability(text, -0.8).reasons[-1]


def test_the_same_negativity_about_a_service_is_a_complaint():
    assert _probability("The delivery driver ruined the sofa, worst service I've ever had") > 0.7


def test_polite_complaints_are_caught():
    text = "Hi @TeleNova, my broadband has dropped out 6 times today. Can you help? Thanks!"
    assert _probability(text) > 0.7


def test_it_catches_the_new_markers_on_the_design_examples():
    assert _f1(MARKER_EXAMPLES) >= 0.9


def test_it_does_not_regress_on_the_held_out_markers():
    # Never tuned on: 0.90 when written (see bench/categories.py).
    assert _f1(MARKER_HELD_OUT) >= 0.7
