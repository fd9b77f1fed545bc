from __future__ import annotations

from datetime import timedelta

import pytest

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
