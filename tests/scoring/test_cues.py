"""The cue families find, with their patterns cut into alternatives, narrowed by keys and
rewritten to skip ahead, exactly what the patterns as written find: the same first match
and the same matches in turn."""

from __future__ import annotations

import functools
import re
from re import _parser

import category_examples
import complaint_examples
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emberwatch.scoring import complaint, triage
from emberwatch.scoring._cues import (
    _WORD,
    DIGIT,
    Family,
    _by_first_letter,
    _has_digit,
    _keys,
    _skip_ahead,
    _Union,
    prepare,
)

FAMILIES = (*complaint.CUES, *triage._TRIAGE)


def _texts() -> list[str]:
    out = []
    for module in (complaint_examples, category_examples):
        for value in vars(module).values():
            if isinstance(value, list):
                for item in value:
                    parts = item if isinstance(item, tuple) else (item,)
                    out += [p for p in parts if isinstance(p, str)]
    return out


TEXTS = [
    *_texts(),
    "order12345 is late, order #12345 and ref: ab12345; within 3 days of 3 days",
    "it didn't work, 'didn't' arrive, i'd like a refund, 10k followers, 2 years supply",
    "you lost it @acme lost it they lost it; i've ordered 3 times. what's the point",
    "xglitchy glitchy overheating flickers; can't wait, cant wait, 4th time, 14th day",
    "\u0663 days late, \u0664th time, \u0661\u0662 times, a\u0662 years",
]


def _as_written(fam: Family) -> re.Pattern[str]:
    return re.compile("|".join(fam.written))


@functools.cache
def _compiled(fam: Family) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(_skip_ahead(a)) for a in fam.alternatives)


def _check(fam: Family, text: str) -> None:
    prepared = prepare(text)
    written = _as_written(fam)
    want = [m.span() for m in written.finditer(prepared.lower)]
    narrowed = fam.narrowed(prepared)
    got = [m.span() for m in narrowed.finditer(prepared.lower)] if narrowed else []
    assert got == want, (fam.name, text)
    first = narrowed.search(prepared.lower) if narrowed else None
    assert (first.span() if first else None) == (want[0] if want else None)
    # All the alternatives, unnarrowed, one by one.
    union = _Union(_compiled(fam))
    assert [m.span() for m in union.finditer(prepared.lower)] == want, (fam.name, text)


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_each_family_finds_what_its_written_patterns_find(fam):
    for text in TEXTS:
        _check(fam, text)


_WORDS = sorted({w for text in TEXTS for w in re.findall(r"[a-z0-9']+|[^\sa-z0-9']", text.lower())})


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=12), st.sampled_from(" ,.!'"))
def test_families_agree_on_words_shuffled_from_the_examples(words, joint):
    text = joint.join(words) if joint != " " else " ".join(words)
    for fam in FAMILIES:
        _check(fam, text)


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_no_alternative_matches_the_empty_string(fam):
    # _Union.finditer goes on from each match's end, which needs a non-empty match.
    for alternative in fam.alternatives:
        assert _parser.parse(alternative).getwidth()[0] > 0, alternative


def test_keys_are_the_words_or_literals_that_open_every_match():
    assert _keys(r"\bstill (?:not|no)\b") == ({"still"}, set())
    assert _keys(r"\b(?:was|were) supposed to\b") == ({"was", "were"}, set())
    assert _keys(r"\b(?<!within )(?:\d+|an?) days") is None
    # A digit, of any script, opens every match: the key is \d itself.
    assert _keys(r"\b(?<!within )\d+ days") == (set(), {DIGIT})
    # A run that may go on into more letters is a literal, not a word.
    assert _keys(r"\brefund") == (set(), {"refund"})
    assert _keys(r"\b(?:didn'?t|log ?in|glitch\w*|errors?)\b") == (
        set(),
        {"didn", "log", "glitch", "error"},
    )
    assert _keys(r"\b(?:a|b)?c") is None
    assert _keys("#\\d{4,}") == (set(), {"#"})
    assert _keys(r"n'?t\b") is None


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="abcAB z09'#@/.,-_!?\t\n\u2019\x7f\u00e9", max_size=30))
def test_prepare_finds_the_words_of_its_pattern(text):
    # An ASCII text is split by translate and split, not by _WORD: the same words.
    prepared = prepare(text)
    assert prepared.words == frozenset(_WORD.findall(prepared.lower))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab 09.\u0663\u00e9\u00b2", max_size=12))
def test_has_digit_finds_what_backslash_d_finds(text):
    # The ASCII shortcut and the search agree (superscript two is no decimal digit).
    assert _has_digit(text) == bool(re.search(r"\d", text))


def test_branches_gathered_by_first_letter_match_as_written():
    written = r"\b(?:didn'?t|do not|dont|not|no one)\s+(?:work|help)"
    gathered = _skip_ahead(written)
    assert gathered.startswith(
        r"(?:d(?:idn(?<!\wdidn)'?t|o not(?<!\wdo not)|ont(?<!\wdont))|n(?:ot(?<!\wnot)|"
    )
    for text in (
        "i didn't work",
        "we do not  help, dont work",
        "no one helps not work",
        "undo not work",
    ):
        want = [m.span() for m in re.finditer(written, text)]
        assert [m.span() for m in re.finditer(gathered, text)] == want, text
    # \d and a digit may open the same match: such branches keep their group as it is.
    assert _by_first_letter([r"\d(?<!\w\d)x", "2(?<!\\w2)y"]) == r"(?:\d(?<!\w\d)x|2(?<!\w2)y)"
