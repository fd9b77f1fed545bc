from __future__ import annotations

import random
import statistics
import string

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from emberwatch.scoring.sentiment import (
    _CAPITAL_TOKEN,
    _CLAUSE_END,
    CHUNK_CHARS,
    EMOJI_TEXT,
    MAX_CHARS,
    SERVICE_LEXICON,
    Neutral,
    SentimentModel,
    _Analyzer,
    _ascii_words,
    _chunks,
    _insert_marks,
    _space_before,
    _vader_tables,
    _words,
    fuse_rating,
)

MODEL = SentimentModel()


def _ground_truth(path):
    rows = path.read_text(encoding="utf-8-sig").splitlines()
    parts = [row.split("\t", 2) for row in rows if row.strip()]
    return [float(p[1]) for p in parts], [p[2] for p in parts]


def _paper_f1(gold, pred):
    def cls(x):
        return 1 if x >= 0.05 else -1 if x <= -0.05 else 0

    tp = predicted = actual = 0
    for g, p in zip(gold, pred, strict=True):
        predicted += cls(p) != 0
        actual += cls(g) != 0
        tp += cls(g) != 0 and cls(g) == cls(p)
    precision, recall = tp / predicted, tp / actual
    return 2 * precision * recall / (precision + recall)


def test_the_issues_calm_complaint_is_not_read_as_praise():
    assert MODEL.compound("ordered three weeks ago, still nothing, two emails unanswered") < 0


@pytest.mark.parametrize("word", ["unanswered", "overcharged", "ripoff", "unhelpful"])
def test_service_lexicon_words_are_negative(word):
    assert MODEL.compound(f"the service was {word}") < -0.05


def test_brand_override_turns_sick_into_praise():
    assert SentimentModel({"Sick": 2.5}).compound("these shoes are sick") > 0.3
    assert MODEL.compound("these shoes are sick") < 0


@pytest.mark.parametrize("emoji", ["😡", "🤬", "👎", "💩", "😤", "🙄", "🖕"])
def test_complaint_emoji_are_negative_alone_and_next_to_words(emoji):
    assert MODEL.compound(emoji) < -0.05
    assert MODEL.compound(f"my order{emoji}") < -0.05


def test_emoji_only_text_is_scored():
    assert MODEL.compound("😡😡😡") < MODEL.compound("😡") < 0
    assert MODEL.compound("😍😍") > 0


@pytest.mark.parametrize(
    ("compound", "rating", "check"),
    [
        (0.9, 1, lambda v: v <= -0.25),
        (0.9, 2, lambda v: v <= -0.25),
        (0.0, 5, lambda v: v >= 0.5),
        (-0.9, 5, lambda v: v >= 0.05),
        (0.0, 3, lambda v: v == 0.0),
        (0.5, None, lambda v: v == 0.5),
        (0.0, 0, lambda v: v <= -0.25),
        (0.0, 50, lambda v: v >= 0.5),
    ],
)
def test_star_rating_fusion(compound, rating, check):
    value, reasons = fuse_rating(compound, rating)
    assert check(value)
    assert -1 <= value <= 1
    assert len(reasons) == (1 if rating is None else 2)


def test_one_star_review_is_negative_whatever_its_words():
    assert MODEL.score("Absolutely wonderful, I love it!", rating=1).value < 0


def test_fast_analyzer_matches_stock_vader():
    stock = SentimentIntensityAnalyzer()
    stock.emojis.update(EMOJI_TEXT)
    fast = _Analyzer()
    texts = [
        "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
        "The book was only kind of good.",
        "At least it isn't a horrible book.",
        "Sentiment analysis has never been this good!",
        "Without a doubt, an excellent idea.",
        "Not bad at all",
        "Catch utf-8 emoji such as 💘 and 💋 and😁",
        "late😡! 🤬🤬",
        " 😂 leading space",
        "The plot was good, but the characters are uncompelling and the dialog is not great.",
        "yeah right, the shit, kiss of death, sort of ok",
    ]
    for text in texts:
        assert fast.polarity_scores(text) == stock.polarity_scores(text), text


@pytest.mark.parametrize("text", ["", "   \n\t ", "\u200b"])
def test_empty_text_is_neutral(text):
    assert MODEL.compound(text) == 0.0


def test_a_100_kb_text_is_read_in_bounded_chunks_and_in_range(monkeypatch):
    # Bounded work without timing it: only the first MAX_CHARS characters are read, in
    # pieces of at most CHUNK_CHARS (before the clause-end spacing), each scored once, and
    # the value is their length-weighted mean.
    text = ("The delivery was late and the box was damaged but the staff were kind. " * 1500)[
        :100_000
    ]
    model = SentimentModel()
    chunks = []
    analyze = model._analyzer.compound

    def counted(chunk):
        chunks.append(chunk)
        return analyze(chunk)

    monkeypatch.setattr(model._analyzer, "compound", counted)
    value = model.compound(text)
    assert -1 <= value <= 1
    pieces = _chunks(text[:MAX_CHARS])
    assert len(chunks) == len(pieces) <= 2 * MAX_CHARS // CHUNK_CHARS
    assert all(len(p) <= CHUNK_CHARS for p in pieces)
    assert sum(map(len, pieces)) <= MAX_CHARS
    mean = sum(len(p) * analyze(c) for p, c in zip(pieces, chunks, strict=True)) / sum(
        map(len, pieces)
    )
    assert value == round(mean, 4)
    assert MODEL.compound(text) == MODEL.compound(text[:MAX_CHARS]) == value


def test_mixed_scripts_do_not_break_scoring():
    value = MODEL.compound("Доставка опоздала 配達が遅い the order is late 😡 مرحبا")
    assert -1 <= value < 0


def test_it_keeps_vader_quality_on_the_papers_tweets(shared_data):
    gold, texts = _ground_truth(shared_data / "sentiment" / "tweets_GroundTruth.txt")
    scores = [MODEL.compound(t) for t in texts]
    assert statistics.correlation(gold, scores) >= 0.87
    assert _paper_f1(gold, scores) >= 0.95


@pytest.mark.parametrize(
    "name", ["movieReviewSnippets", "amazonReviewSnippets", "nytEditorialSnippets"]
)
def test_it_does_not_fall_below_raw_vader_on_other_ground_truth(shared_data, name):
    gold, texts = _ground_truth(shared_data / "sentiment" / f"{name}_GroundTruth.txt")
    texts, gold = texts[::4], gold[::4]
    stock = SentimentIntensityAnalyzer()
    raw = [stock.polarity_scores(t)["compound"] for t in texts]
    ours = [MODEL.compound(t) for t in texts]
    assert statistics.correlation(gold, ours) >= statistics.correlation(gold, raw) - 0.005


AIRLINE = SentimentModel(neutral_terms=["United", "@united", "#UnitedAirlines", "United Airlines"])


@pytest.mark.parametrize(
    "text",
    [
        "@united my flight was cancelled and nobody at the desk knows anything",
        "United Airlines lost my bag again",
        "#UnitedAirlines delayed three hours, no explanation",
        "United's app logged me out mid check-in",
        "stuck at the gate with @united",
    ],
)
def test_the_brands_own_name_carries_no_sentiment(text):
    assert AIRLINE.compound(text) <= 0.0


def test_vader_alone_reads_the_brand_united_as_praise():
    text = "@united my flight was cancelled and nobody at the desk knows anything"
    assert MODEL.compound(text) > 0 >= AIRLINE.compound(text)


def test_brand_terms_are_neutral_only_as_the_whole_phrase():
    model = SentimentModel(neutral_terms=["Best Buy"])
    assert model.compound("Best Buy") == 0.0
    assert model.compound("the best prices at Best Buy") == MODEL.compound("the best prices")


def test_brand_overrides_still_apply_beside_neutral_terms():
    model = SentimentModel({"sick": 2.5}, neutral_terms=["@sneakco"])
    assert model.compound("@sneakco these are sick") > 0.3


@pytest.mark.parametrize(
    "text",
    [
        "please help, my order never arrived",
        "Can you help me? My bag is lost. Thanks in advance",
        "Could you check my booking? thanks",
        "I need help with my account, I was charged twice",
        "@acme any help appreciated, the app won't open",
        "pls help my card was declined at checkout",
        "would appreciate a call back about ticket 5521",
        "can someone help? the router keeps rebooting. Thank you",
    ],
)
def test_requests_for_help_are_not_praise(text):
    stock = SentimentIntensityAnalyzer().polarity_scores(text)["compound"]
    assert MODEL.compound(text) <= 0.05 < stock or MODEL.compound(text) < stock
    assert MODEL.compound(text) < 0.25


@pytest.mark.parametrize(
    "text",
    [
        "They were a big help, thanks so much!",
        "Thank you @acme, the new kettle is perfect",
        "I am pleased with the service",
        "Great support today, thanks for the help",
    ],
)
def test_sincere_thanks_stays_positive(text):
    assert MODEL.compound(text) >= 0.4


def test_vader_files_are_read_as_vader_reads_them():
    stock = SentimentIntensityAnalyzer()
    lexicon, emojis = _vader_tables()
    assert list(lexicon.items()) == list(stock.lexicon.items())
    assert list(emojis.items()) == list(stock.emojis.items())
    # Each analyzer has its own copies: a brand's overrides stay in its own model.
    assert _Analyzer().lexicon is not _Analyzer().lexicon
    assert _Analyzer().lexicon == lexicon


def test_the_request_hint_test_is_the_hint_words():
    from emberwatch.scoring.sentiment import _REQUEST_HINTS, _request_hint

    samples = [*_REQUEST_HINTS, *(f"x {h}y" for h in _REQUEST_HINTS), "", "thanks all", "pl s"]
    for text in samples:
        assert _request_hint(text) == any(h in text for h in _REQUEST_HINTS), text


def _generated_texts(count, seed):
    """Short ASCII texts of VADER's rule words (negations, boosters, idioms, "but", "least",
    capitals) with punctuation at their edges and whitespace of every kind between them."""
    rng = random.Random(seed)
    lines = (
        "no not never without doubt but kind of sort least at very so this the a I",
        "good bad great love hate ok isn't don't extremely kinda SO GREAT",
        "shit bomb ass bus stop yeah right kiss death to die for beating heart just enough",
        "please help thanks u.s.",
    )
    vocabulary = [word for line in lines for word in line.split()]
    edges = [*",.:;!?'\"-_()@#", ":)", "..."]
    gaps = [" ", " ", " ", "  ", "\n", "\t", "\x1c", ", ", ". "]
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(0, 12)):
            word = rng.choice(vocabulary)
            if rng.random() < 0.3:
                word += rng.choice(edges)
            if rng.random() < 0.15:
                word = rng.choice(edges) + word
            parts += [word, rng.choice(gaps)]
        texts.append("".join(parts)[: rng.randint(0, 200)])
    return texts


def test_ascii_words_are_the_clause_split_words():
    # The words _ascii_words finds are those of the text with _CLAUSE_END's spaces and
    # then VADER's split and strip, for every kind of punctuation and whitespace; the
    # marks it reports, put after the tokens as written, keep each token's capitals.
    alphabet = string.ascii_letters[:4] + string.digits[:2] + string.punctuation + " \n\t\x1c"
    rng = random.Random(18)
    texts = ["".join(rng.choices(alphabet, k=rng.randint(0, 14))) for _ in range(20_000)]
    for text in [*texts, *_generated_texts(2_000, 1)]:
        lowered = text.lower()
        spaced = _CLAUSE_END.sub(_space_before, text).strip()
        low, marks = _ascii_words(lowered, True)
        assert low == _words(spaced)[1], text
        assert _ascii_words(lowered, False) == (_words(text.strip())[1], []), text
        written = text.split()
        _insert_marks(written, marks)
        assert [w.isupper() for w in written] == [w.isupper() for w in _words(spaced)[0]]


def test_fast_analyzer_matches_stock_vader_on_generated_texts():
    stock = SentimentIntensityAnalyzer()
    fast = _Analyzer()
    for text in _generated_texts(1_500, 2):
        assert fast.polarity_scores(text) == stock.polarity_scores(text), text


def test_the_model_reads_the_text_with_clause_marks_split_off():
    # What the model reads, ASCII or not, is VADER's reading of the text with _CLAUSE_END's
    # spaces (the analyzer with ``clauses`` splits the marks itself).
    plain = _Analyzer(Neutral())
    plain.lexicon.update(SERVICE_LEXICON)
    texts = [*_generated_texts(1_500, 3), "İs. great, 😡 fine: ok", "naïve, but good. "]
    for text in texts:
        assert MODEL.compound(text) == (
            plain.compound(_CLAUSE_END.sub(_space_before, text)) if text.strip() else 0.0
        ), text


def test_the_capital_token_pattern_finds_a_token_in_capitals():
    rng = random.Random(18)
    alphabet = "aBzZ1 \n\t\x1c.,'-_AQ"
    for _ in range(20_000):
        text = "".join(rng.choices(alphabet, k=rng.randint(0, 12)))
        found = _CAPITAL_TOKEN.search(text) is not None
        assert found == any(w.isupper() for w in text.split()), text
