"""The cue families find, with their patterns composed into one (``_cues._composed``),
exactly what the patterns as written find: the same first match and the same matches in
turn."""

from __future__ import annotations

import re

import category_examples
import complaint_examples
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emberwatch.scoring import complaint, triage
from emberwatch.scoring._cues import Family, _composed, prepare

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
]


def _as_written(fam: Family) -> re.Pattern[str]:
    return re.compile("|".join(fam.written))


def _check(fam: Family, text: str) -> None:
    prepared = prepare(text)
    written = _as_written(fam)
    want = [m.span() for m in written.finditer(prepared.lower)]
    assert [m.span() for m in fam.pattern.finditer(prepared.lower)] == want, (fam.name, text)
    first = fam.pattern.search(prepared.lower)
    assert (first.span() if first else None) == (want[0] if want else None)


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


def test_runs_of_alternatives_opening_with_a_boundary_share_it_in_order():
    composed = _composed((r"\bone\b|\btwo", r"(?:@\w+|\byou) lost\b", r"\bthree"))
    assert composed == r"\b(?:one\b|two)|@\w+ lost\b|\b(?:you lost\b|three)"
