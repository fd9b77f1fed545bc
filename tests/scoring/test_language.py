from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
from language_examples import ENGLISH, FOREIGN, UNDETERMINED

from emberwatch.scoring import language
from emberwatch.scoring.language import LANGUAGES, detect
from emberwatch.scoring.language import UNDETERMINED as UND


@pytest.mark.parametrize(
    ("code", "text"), FOREIGN, ids=[f"{c}-{i}" for i, (c, _) in enumerate(FOREIGN)]
)
def test_it_names_the_language_of_a_foreign_mention(code, text):
    found, confidence = detect(text)
    assert found == code
    assert 0.5 <= confidence <= 1.0


@pytest.mark.parametrize("text", ENGLISH)
def test_english_social_posts_stay_english(text):
    assert detect(text)[0] == "en"


@pytest.mark.parametrize("text", UNDETERMINED)
def test_too_little_text_is_undetermined_not_a_confident_guess(text):
    assert detect(text) == (UND, 0.0)


@pytest.mark.parametrize(
    ("code", "text"),
    [
        # Mostly another language, with English loanwords, handles and hashtags.
        ("de", "Der Kundenservice von @Acme ist echt schlecht, nie wieder! #fail"),
        ("de", "Das neue Update ist ein totaler Fail, die App crasht ständig"),
        ("es", "El nuevo update está lleno de bugs y el login no funciona"),
        ("fr", "Le nouveau design de l'app est nul, on ne trouve plus le bouton checkout"),
        ("ja", "新しいiPhoneのバッテリーがすぐ切れる。Apple Storeに行くべき？"),
        ("zh", "iPhone 15 Pro 的电池太不耐用了，一天要充三次"),
        ("ko", "Netflix 앱이 또 안 돼요 https://t.co/abc #넷플릭스"),
        # Mostly English, with a foreign word or two.
        ("en", "Ordered the croissants and a café au lait, both were stale though"),
        ("en", "The staff kept saying 'gracias' but nobody actually helped us"),
        ("en", "got my ramen (ラーメン) order wrong AGAIN @noodlebar"),
    ],
)
def test_a_mixed_mention_gets_the_language_most_of_it_is_in(code, text):
    assert detect(text)[0] == code


@pytest.mark.parametrize(
    "text",
    [
        "ok thanks", "Danke!", "Merci", "great service", "si", "nope", "thx 👍", "A+", "OMG",
        "Scared as heck", "mega fail", "hard pass", "big mood", "vibes only", "game over",
        "yay yay yay yay yay yay", "brilliant brilliant brilliant brilliant", "so so tired",
        "Dreadful customer care", "Absolutely gorgeous venue", "bring it on",
    ],
)  # fmt: skip
def test_a_short_text_is_english_or_undetermined_never_a_guessed_language(text):
    assert detect(text)[0] in ("en", UND)


def test_plain_english_never_reaches_the_classifier(monkeypatch):
    def boom():
        raise AssertionError("the classifier was called")

    monkeypatch.setattr(language, "_get_identifier", boom)
    plain = [t for t in ENGLISH if t.isascii() and len(t.split()) >= 3]
    assert len(plain) >= 15
    for text in plain:
        assert detect(text) == ("en", language._FAST_EN_CONFIDENCE), text


def test_an_ascii_headline_without_function_words_is_likely_english_without_the_classifier(
    monkeypatch,
):
    def boom():
        raise AssertionError("the classifier was called")

    monkeypatch.setattr(language, "_get_identifier", boom)
    for text in [
        "Acme Q3 earnings beat expectations, shares jump overnight",
        "BREAKING: Acme recalls 40,000 kettles over faulty switches https://t.co/k",
        "Stock markets tumble as oil prices surge",
        "Cheap flights, friendly crew, smooth landing. Ten out of ten",
    ]:
        assert detect(text) == ("en", language._LIKELY_EN_CONFIDENCE), text


@pytest.mark.parametrize(
    ("code", "text"),
    [
        ("es", "pesimo servicio, el pedido llego tarde y nadie contesta"),
        ("id", "pesanan saya belum sampai juga, tolong dicek"),
        ("tl", "ang tagal ng delivery, wala pa rin hanggang ngayon"),
        ("pt", "nao recebi meu pedido ate agora, muito chato"),
        ("fr", "service client nul, je suis tres decu"),
    ],
)
def test_a_foreign_text_typed_without_accents_still_goes_to_the_classifier(code, text):
    assert detect(text)[0] == code


def test_the_model_is_read_only_when_a_text_may_not_be_english(tmp_path):
    code = (
        "import sys; from emberwatch.scoring import language; "
        "assert language.detect('my order is late again, where is it?')[0] == 'en'; "
        "assert language._identifier is None and 'py3langid' not in sys.modules; "
        "assert language.detect('Mon colis est arrivé abîmé')[0] == 'fr'; "
        "assert language._identifier is not None"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_a_few_foreign_texts_need_no_numpy_and_many_get_it(tmp_path):
    # Once the model is cached, the first texts are read without importing numpy (see
    # _langid.Identifier); from the _ESTIMATES-th on, py3langid's own arithmetic takes over.
    code = (
        "import sys; from emberwatch.scoring import _langid, language; "
        "assert language.detect('Mon colis est arrivé abîmé')[0] == 'fr'; "
        "assert 'numpy' not in sys.modules, 'numpy for one text'; "
        "[language.detect(f'Das Paket ist nach {i} Tagen immer noch nicht da') "
        " for i in range(_langid._ESTIMATES)]; "
        "assert 'numpy' in sys.modules, 'no numpy after many texts'; "
        "assert language.detect('Mon colis est arrivé abîmé')[0] == 'fr'"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from emberwatch.scoring import _langid, language; _langid.load(language.LANGUAGES)",
        ],
        check=True,
        env=env,
    )  # derive
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_every_answer_is_a_listed_code_or_undetermined_with_a_confidence_in_range():
    texts = [t for _, t in FOREIGN] + ENGLISH + UNDETERMINED + ["Grazie mille", "Danke!"]
    for text in texts:
        code, confidence = detect(text)
        assert code in LANGUAGES or code == UND
        assert 0.0 <= confidence <= 1.0


def test_a_very_long_mention_is_read_from_its_start():
    text = "Das Paket ist immer noch nicht angekommen. " * 5000
    assert detect(text)[0] == "de"
    assert detect("the parcel still has not arrived. " * 5000)[0] == "en"


def test_codes_are_two_letter_iso_639_1():
    assert all(len(code) == 2 and code.islower() for code in LANGUAGES)
    assert len(set(LANGUAGES)) == len(LANGUAGES)


def _plainly_english_in_full(head):
    """The fast path's rule as its docstring gives it, every token trimmed and weighed."""
    head = head.replace("\u2019", "'")
    words = [w for w in (t.strip(language._EDGES) for t in head.split()) if w]
    counted = len(words) - (head.count("@") + head.count("#") + head.count("://"))
    letters = sum(map(len, words))
    if counted <= 0 or letters < language._MIN_LETTERS:
        return False
    if sum(language._ENGLISH.get(w, 0.0) for w in words) < language._MIN_EN_SHARE * counted:
        return False
    non_ascii = len(language._NON_ASCII_LETTER.findall(head))
    return head.isascii() or non_ascii <= language._MAX_NON_ASCII * letters


def test_the_fast_paths_shortcuts_decide_as_the_full_rule():
    # Short texts, repeated words, handles and links: where the shortcuts' counts and
    # weights are close to the thresholds.
    rng = random.Random(18)
    vocabulary = ["the", "a", "is", "in", "of", "you", "my", "und", "der", "el", "que", "x"]
    vocabulary += ["@acme", "#fail", "http://x.co", "thé", "the,", "(you)", "42", "!!"]
    vocabulary += ["don\u2019t", "y"]
    for _ in range(20_000):
        words = rng.choices(vocabulary, k=rng.randint(0, 12))
        head = " ".join(words).lower()
        assert language._plainly_english(head) == _plainly_english_in_full(head), head


def test_noise_is_cleaned_alike_without_the_e_mail_alternative_where_there_is_no_at():
    rng = random.Random(18)
    pieces = ["http://x.co/a", "www.x.co", "a.b", "#tag", "x_1", "42", "é", "ok", ".", ":", "/"]
    pieces += ["https:", "www", "\n", "@"]
    for _ in range(20_000):
        text = "".join(rng.choices([*pieces, " ", " "], k=rng.randint(0, 12)))
        if "@" not in text:
            assert language._NOISE_WITHOUT_AT.sub(" ", text) == language._NOISE.sub(" ", text)
