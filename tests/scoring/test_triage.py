from __future__ import annotations

from datetime import timedelta

import pytest
from category_examples import EXAMPLES, HELD_OUT

from emberwatch.mention import Mention
from emberwatch.scoring import Scorer
from emberwatch.scoring.triage import (
    CATEGORIES,
    PLAYBOOKS,
    VIP_STEP,
    categorize,
    is_question,
    playbook,
    respond_within,
    severity,
    triage_cues,
)


def _category(text, *, sentiment=0.0, complaint=0.1):
    category, _ = categorize(
        sentiment=sentiment,
        complaint=complaint,
        cues=triage_cues(text),
        question=is_question(text),
    )
    return category


@pytest.mark.parametrize(
    ("text", "sentiment", "complaint", "expected"),
    [
        ("I'm going to sue you, my lawyer will be in touch", -0.5, 0.9, "legal_threat"),
        ("Reporting you to the FTC and trading standards", -0.3, 0.4, "legal_threat"),
        ("Give me a free meal and a voucher, you owe me", 0.2, 0.3, "freebie_seeking"),
        ("I want a free upgrade or I'll tell my followers", 0.0, 0.3, "freebie_seeking"),
        ("you idiots, go to hell", -0.8, 0.3, "abuse"),
        ("you morons lost my bag, fuck you", -0.9, 0.9, "abuse"),
        ("you idiots lost my bag and nobody answers", -0.8, 0.95, "complaint"),
        ("my parcel never arrived", -0.1, 0.9, "complaint"),
        ("Do you ship to Canada?", 0.0, 0.3, "question"),
        ("@acme does the large come in blue", 0.0, 0.2, "question"),
        ("Love it, thank you!", 0.8, 0.05, "praise"),
        ("Heading to the shop later", 0.0, 0.2, "other"),
        ("A free sample came with my order", 0.4, 0.1, "praise"),
    ],
)
def test_categorize(text, sentiment, complaint, expected):
    assert _category(text, sentiment=sentiment, complaint=complaint) == expected


def test_every_category_has_a_playbook():
    assert set(PLAYBOOKS) == set(CATEGORIES)


@pytest.mark.parametrize(
    ("category", "kw", "expected"),
    [
        ("complaint", dict(complaint=0.6, sentiment=0.0), "info"),
        ("complaint", dict(complaint=0.9, sentiment=0.0), "warning"),
        ("complaint", dict(complaint=0.6, sentiment=-0.7), "warning"),
        ("complaint", dict(complaint=0.9, sentiment=-0.7, virality=0.8), "critical"),
        ("complaint", dict(complaint=0.9, sentiment=0.0, followers=50_000), "critical"),
        ("complaint", dict(complaint=0.9, sentiment=0.0, vip=True), "critical"),
        ("complaint", dict(complaint=0.6, sentiment=0.0, vip=True), "warning"),
        ("legal_threat", dict(), "warning"),
        ("legal_threat", dict(followers=50_000), "critical"),
        ("abuse", dict(sentiment=-0.9), "info"),
        ("abuse", dict(followers=50_000), "warning"),
        ("abuse", dict(followers=50_000, virality=0.9), "critical"),
        ("freebie_seeking", dict(virality=0.9), "warning"),
        ("praise", dict(sentiment=0.9, virality=0.99, followers=10**6), "info"),
        ("other", dict(sentiment=-0.4, virality=0.7), "warning"),
        ("question", dict(), "info"),
    ],
)
def test_severity(category, kw, expected):
    args = dict(sentiment=0.0, complaint=0.0, virality=0.0, followers=100, vip=False)
    args.update(kw)
    level, reasons = severity(category, high_reach=10_000, **args)
    assert level == expected
    if level != "info":
        assert reasons


def test_severity_reasons_show_the_numbers_used():
    _, reasons = severity(
        "complaint",
        sentiment=-0.7,
        complaint=0.91,
        virality=0.8,
        followers=50_000,
        high_reach=10_000,
        vip=True,
    )
    text = " ".join(reasons)
    assert "0.91" in text and "0.80" in text and "50,000" in text and "VIP" in text


def test_respond_within_tightens_with_severity():
    assert respond_within("critical") == timedelta(minutes=15)
    assert respond_within("warning") == timedelta(hours=1)
    assert respond_within("info") == timedelta(hours=4)
    assert respond_within("nonsense") == respond_within("info")


def test_complaint_playbook_says_how_soon_to_reach_out():
    assert "within 15 minutes (critical)" in playbook("complaint", severity="critical")[0]
    assert "within 4 hours (info)" in playbook("complaint", severity="info")[0]
    steps = " ".join(playbook("complaint")).lower()
    for idea in ("whole story", "apologise", "courier", "remedies", "check back"):
        assert idea in steps


def test_vip_step_comes_first():
    assert playbook("complaint", vip=True)[0] == VIP_STEP
    assert VIP_STEP not in playbook("complaint")


@pytest.mark.parametrize("category", ["legal_threat", "freebie_seeking"])
def test_legal_and_freebie_playbooks_are_firm_and_bring_in_legal(category):
    steps = " ".join(playbook(category)).lower()
    assert "firm" in steps and "no admissions" in steps and "legal" in steps


def test_abuse_playbook_does_not_engage():
    steps = " ".join(playbook("abuse")).lower()
    assert "don't react" in steps and "move on" in steps


def test_unknown_category_gets_the_other_playbook():
    assert playbook("mystery") == PLAYBOOKS["other"]


# End to end through Scorer().score: the design examples the cues still get wrong, each
# with why. Any other miss fails the test. Not strict: sentiment is being reworked at the
# same time, and one of these starting to pass is good news, not a failure.
KNOWN_MISSES = {
    "So the 'fast' in @SpeedNet Fast Fibre means 3mbps? Lovely.": "irony in scare quotes",
    "@FirstPeakBank's fraud team caught a dodgy payment before I even noticed. "
    "Brilliant service.": "sentiment below the praise line",
    "Been using @CloudNest for 5 years and it has never let me down #loyalcustomer": (
        "VADER reads 'never let me down' as neutral"
    ),
    "@FreshBite driver went above and beyond in the snow tonight, give him a raise!": (
        "VADER misses 'above and beyond'"
    ),
    "Great customer service from @GadgetHub today, they swapped my faulty mouse no questions "
    "asked": "'faulty' pulls sentiment below the praise line",
    "@FreshBite is sponsoring our school fun run next week": "'fun' reads as praise",
}
_SCORER = Scorer()


def _scored_category(text: str) -> str:
    mention = Mention("twitter", "1", None, "someone", 400, None, text, None)
    return _SCORER.score(mention).category


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            text, expected, marks=pytest.mark.xfail(strict=False, reason=KNOWN_MISSES[text])
        )
        if text in KNOWN_MISSES
        else (text, expected)
        for text, expected in EXAMPLES
    ],
)
def test_design_examples_get_their_category(text, expected):
    assert _scored_category(text) == expected


def test_there_are_at_least_15_examples_per_category():
    for category in CATEGORIES:
        assert sum(1 for _, c in EXAMPLES if c == category) >= 15, category


def test_the_held_out_examples_stay_mostly_right():
    right = sum(_scored_category(text) == expected for text, expected in HELD_OUT)
    assert right / len(HELD_OUT) >= 0.85  # never tuned on; see bench/categories.py


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A free sample came with my order, lovely surprise", "praise"),
        ("@acme thanks for the free birthday coffee, made my day", "praise"),
        ("Can I use my gift card online?", "question"),
        ("I want a refund or I'll leave a 1-star review", "freebie_seeking"),
        (
            "Hey @acme I have 50k followers, send me the new range and I'll post about it",
            "freebie_seeking",
        ),
        ("@acme hope your whole company goes bankrupt, you clowns", "abuse"),
        ("@acme the staff were rude and the food was cold", "complaint"),
        (
            "@acme my router keeps dropping out, could you help please? Thanks in advance",
            "complaint",
        ),
        ("@acme please help, I love your app", "other"),
        ("@acme is opening a store in Leeds", "other"),
    ],
)
def test_categories_follow_the_playbook_semantics(text, expected):
    assert _scored_category(text) == expected
