import pytest

from emberwatch.config import Brand
from emberwatch.matching import BrandMatcher, build_matchers, match_brands
from emberwatch.mention import Mention

ACME = Brand(
    name="acme", include=["Acme", "@acme", "#acmefail"], exclude=["acme anvils"], vip=["@BigBuyer"]
)


def mention(text: str, title: str | None = None) -> Mention:
    return Mention("rss", "1", None, None, None, title, text, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I love ACME kettles", True),
        ("acme.", True),
        ("Thanks @acme!", True),
        ("so #AcmeFail today", True),
        ("welcome to acmeville", False),
        ("big fan of @acmefan", False),
        ("#acme2024 launch", False),
        ("Acme anvils are heavy", False),
        ("nothing here", False),
    ],
)
def test_terms_match_whole_words_handles_and_hashtags(text, expected):
    assert BrandMatcher.build(ACME).matches(text) is expected


def test_titles_count_as_well_as_text():
    assert match_brands(mention("body", title="Acme news"), build_matchers([ACME])) == ["acme"]


def test_vip_handles_compare_without_at_sign_or_case():
    matcher = BrandMatcher.build(ACME)
    assert matcher.is_vip("bigbuyer") and matcher.is_vip("@BIGBUYER")
    assert not matcher.is_vip(None) and not matcher.is_vip("smallbuyer")


def test_regex_characters_in_terms_are_literal():
    brand = Brand(name="c", include=["C++", "A.B"])
    matcher = BrandMatcher.build(brand)
    assert matcher.matches("I write C++ daily")
    assert not matcher.matches("AxB")
