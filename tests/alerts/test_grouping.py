"""Grouping keys and near-duplicate text: pure functions."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz, process, utils

from emberwatch.alerts.grouping import (
    MIN_WORDS_FOR_TEXT_MATCH,
    TextIndex,
    TextShapes,
    grouping_keys,
    near_duplicate,
    normalize_url,
    thread_key,
)

STORY = "Acme kettle exploded in my kitchen and support refused any refund for the damage"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://www.Example.com/post/1/", "https://example.com/post/1"),
        ("https://example.com/p?id=1&utm_source=x&fbclid=y", "https://example.com/p?id=1"),
        ("https://example.com/p?b=2&a=1#comments", "https://example.com/p?a=1&b=2"),
        ("HTTPS://EXAMPLE.COM/p?ref=tw", "https://example.com/p"),
    ],
)
def test_it_treats_the_same_url_as_one_key(a, b):
    assert normalize_url(a) == normalize_url(b)


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://www.reddit.com/r/acme/comments/AbC12/title/", "thread:reddit:abc12"),
        ("https://old.reddit.com/r/acme/comments/abc12/title/xyz99/", "thread:reddit:abc12"),
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=10", "thread:youtube:dQw4w9WgXcQ"),
        ("https://news.ycombinator.com/item?id=1", None),
    ],
)
def test_it_finds_the_thread_a_comment_belongs_to(url, key):
    assert thread_key(url) == key


def test_it_keys_on_url_thread_and_author_per_source():
    keys = grouping_keys("reddit", "https://reddit.com/r/a/comments/x1/t/c2", "@Dana ")
    assert keys == (
        "url:https://reddit.com/r/a/comments/x1/t/c2",
        "thread:reddit:x1",
        "author:reddit:dana",
    )
    # The same handle on another site may be someone else.
    assert "author:hackernews:dana" in grouping_keys("hackernews", None, "dana")
    assert grouping_keys("rss", None, None) == ()


@pytest.mark.parametrize(
    ("text", "candidates", "expected"),
    [
        # Copied across sites: same words, other order and surroundings.
        (
            "RT: the damage! Acme kettle exploded in my kitchen and support refused any refund",
            {7: STORY},
            7,
        ),
        (STORY, {1: "Acme launches a new line of toasters in twelve bright colours"}, None),
        # Short texts are never fuzzy-matched, however alike.
        ("Acme is awful", {1: "Acme is awful"}, None),
        ("Acme is awful honestly", {1: "Acme is awful honestly, " + STORY}, None),
        (STORY, {1: "Acme is awful"}, None),
    ],
)
def test_it_matches_near_duplicate_text_but_not_short_text(text, candidates, expected):
    assert near_duplicate(text, candidates, threshold=88) == expected


def test_short_means_fewer_than_the_minimum_words():
    words = " ".join(f"w{i}" for i in range(MIN_WORDS_FOR_TEXT_MATCH))
    assert near_duplicate(words, {3: words}, 88) == 3
    shorter = " ".join(words.split()[:-1])
    assert near_duplicate(shorter, {3: shorter}, 88) is None


# -- the prefilter in TextIndex.best must never change what rapidfuzz alone would find --

_WORDS = ["acme", "kettle", "refund", "the", "my", "broke", "support", "café", "naïve", "x1"]
_WORD_LISTS = st.lists(st.sampled_from(_WORDS) | st.text(min_size=1, max_size=6), max_size=24)


def _brute_force(text, candidates, threshold):
    """What TextIndex.best did before it had a prefilter: rapidfuzz over every candidate."""
    keys, texts, seen = [], [], set()
    for key, candidate in candidates:
        processed = utils.default_process(candidate)
        if len(processed.split()) >= MIN_WORDS_FOR_TEXT_MATCH and (key, processed) not in seen:
            seen.add((key, processed))
            keys.insert(0, key)
            texts.insert(0, processed)
    processed = utils.default_process(text)
    if not texts or len(processed.split()) < MIN_WORDS_FOR_TEXT_MATCH:
        return None
    found = process.extractOne(
        processed, texts, scorer=fuzz.token_set_ratio, processor=None, score_cutoff=threshold
    )
    return None if found is None else keys[found[2]]


@settings(max_examples=400, deadline=None)
@given(
    query=_WORD_LISTS,
    candidates=st.lists(_WORD_LISTS, max_size=12),
    threshold=st.sampled_from([50.0, 70.0, 88.0, 95.0, 100.0]),
)
def test_best_finds_what_rapidfuzz_finds_over_every_candidate(query, candidates, threshold):
    index = TextIndex()
    # Keys repeat (an incident holds several texts), so per-key deduplication is tested.
    pairs = [(k % 4, " ".join(words)) for k, words in enumerate(candidates)]
    for key, candidate in pairs:
        index.add(key, candidate)
    assert index.best(" ".join(query), threshold) == _brute_force(" ".join(query), pairs, threshold)


@settings(max_examples=300, deadline=None)
@given(
    query=_WORD_LISTS,
    loaded=st.lists(_WORD_LISTS, max_size=8),
    added=st.lists(_WORD_LISTS, max_size=8),
    threshold=st.sampled_from([50.0, 88.0, 100.0]),
)
def test_best_keeps_newest_first_order_across_loaded_and_added_texts(
    query, loaded, added, threshold
):
    """Texts read from the database arrive newest first and rank after those filed since;
    ties between equal scores go to the newest, whatever order they were scored in."""
    index = TextIndex()
    # Loaded texts get keys of their own: _brute_force keeps the first copy it meets of a
    # repeated (key, text), which is the oldest one for the loaded texts listed below.
    older = [(k, " ".join(words)) for k, words in enumerate(loaded)]
    newer = [(100 + k % 3, " ".join(words)) for k, words in enumerate(added)]
    for key, candidate in older:
        index.add(key, candidate, newest=False)
    for key, candidate in newer:
        index.add(key, candidate)
    # _brute_force puts later pairs first: the oldest loaded text goes in first.
    everything = [*reversed(older), *newer]
    assert index.best(" ".join(query), threshold) == _brute_force(
        " ".join(query), everything, threshold
    )


@settings(max_examples=300, deadline=None)
@given(query=_WORD_LISTS, candidate=_WORD_LISTS)
def test_the_prefilter_ceiling_is_never_below_the_true_score(query, candidate):
    shapes = TextShapes()
    index = TextIndex(shapes)
    index.add(1, " ".join(candidate))
    shape = shapes.shape(" ".join(query))
    if len(index) == 0 or shape is None:
        return
    ceiling = index._ceilings_for(shape)[0]
    true = fuzz.token_set_ratio(shape.processed, index._texts[0], processor=None)
    assert ceiling >= true - 1e-6


def test_text_shapes_are_computed_once_and_report_when_full():
    shapes = TextShapes(limit=100)
    first = shapes.shape(STORY)
    assert first is not None and shapes.shape(STORY) is first
    assert shapes.shape("Acme is awful") is None  # too short to match, remembered as such
    for n in range(98):
        shapes.shape(f"{STORY} n{n}")
    assert not shapes.full()
    shapes.shape(f"{STORY} once more")
    assert shapes.full()


def test_indexes_sharing_text_shapes_agree_with_separate_ones():
    shared = TextShapes()
    texts = {1: STORY, 2: "Acme launches a new line of toasters in twelve bright colours today"}
    one, two = TextIndex(shared), TextIndex(shared)
    for key, text in texts.items():
        one.add(key, text)
    two.add(2, texts[2])
    query = STORY.replace("kitchen", "flat")
    assert one.best(query, 88) == 1
    assert two.best(query, 88) is None
