import re

import pytest

from emberwatch.alerts.themes import THEMES, lesson, themes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Ordered three weeks ago and my parcel still hasn't arrived",
            ["late or missing delivery"],
        ),
        ("Where is my order??", ["late or missing delivery"]),
        ("Delivery is late AGAIN", ["late or missing delivery"]),
        ("They lost my package", ["late or missing delivery"]),
        ("The kettle arrived smashed", ["damaged or broken product"]),
        ("Lid is cracked and it leaks everywhere", ["damaged or broken product"]),
        ("Got the wrong size, not what I ordered", ["wrong item"]),
        ("Charged twice and still no refund", ["refund or billing"]),
        ("I want my money back", ["refund or billing"]),
        ("Emailed support 4 times, nobody replied", ["no answer from support"]),
        ("On hold for an hour, can't get through to anyone", ["no answer from support"]),
        ("The guy at the counter was incredibly rude", ["rude staff"]),
        ("Cheaply made, fell apart in a week", ["quality"]),
        ("The bread was stale", ["quality"]),
        ("Your app keeps crashing at checkout", ["website or app"]),
        ("Website is down again", ["website or app"]),
        ("Trying to cancel my subscription for a month", ["cancellation"]),
        (
            "Arrived smashed, then they never replied and charged me twice",
            ["damaged or broken product", "refund or billing", "no answer from support"],
        ),
        ("Love my new Acme kettle, great design", []),
        ("Acme announces a new store in Leeds", []),
        ("", []),
    ],
)
def test_it_names_the_themes_a_complaint_touches(text, expected):
    assert themes(text) == expected


def test_matching_ignores_case():
    assert themes("WHERE IS MY ORDER") == ["late or missing delivery"]


def test_every_theme_has_a_lesson_about_what_we_can_do():
    assert [t.name for t in THEMES] == [
        "late or missing delivery",
        "damaged or broken product",
        "wrong item",
        "refund or billing",
        "no answer from support",
        "rude staff",
        "quality",
        "website or app",
        "cancellation",
    ]
    for theme in THEMES:
        assert lesson(theme.name) == theme.lesson
        assert theme.lesson[0].islower() and not theme.lesson.endswith(".")


@pytest.mark.parametrize("theme", THEMES, ids=lambda t: t.name)
def test_no_lesson_blames_anyone(theme):
    blame = r"\b(?:blame|fault|their|they|lazy|incompetent|careless|useless|courier'?s fault)\b"
    assert not re.search(blame, theme.lesson, re.IGNORECASE)
