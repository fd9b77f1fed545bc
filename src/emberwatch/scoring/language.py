"""Language: which language is a mention written in, so English-only scorers know to step aside.

VADER and the cues in :mod:`emberwatch.scoring.complaint` read English. A mention in another
language must not come out of them as confident neutral English, so the scorer asks
:func:`detect` first.

``detect(text)`` returns ``(code, confidence)``: an ISO 639-1 code (``"ja"``, ``"de"``...) or
``"und"`` (undetermined), and a confidence in [0, 1]. It works in four steps, cheapest first:

1. **Clean.** Only the first :data:`_MAX_CHARS` characters are read. URLs, ``@handles``,
   ``#hashtags``, e-mail addresses, digits, emoji and punctuation say nothing about the
   language, so they are removed. What is left with fewer than :data:`_MIN_LETTERS` letters
   (an emoji, a handle, a link, "ok") is ``("und", 0.0)``: too little to tell, scored as
   English like before.
2. **English fast path.** When the words score at least :data:`_MIN_EN_SHARE` per word on
   :data:`_ENGLISH` (English function words and chat words count 1, those that are also
   common words in another language, like ``in``, ``is`` or ``was``, count half) and at most
   :data:`_MAX_NON_ASCII` of the letters are not ASCII, the answer is
   ``("en", _FAST_EN_CONFIDENCE)`` without the classifier. Plain English scores 0.25 to 0.7,
   other languages below 0.1 even with an English loanword, so this is the common case, and
   it costs a few microseconds; the library is not even imported.
3. **Likely English.** A text whose letters are all ASCII, that has at least
   :data:`_MIN_LATIN_LETTERS` letters in distinct words and none of :data:`_FOREIGN` (function
   words of languages often typed without accents: Spanish ``el``/``que``, Indonesian
   ``yang``, Tagalog ``ang``, Turkish ``bir``...) is ``("en", _LIKELY_EN_CONFIDENCE)``:
   headlines and slang ("Stock markets tumble overnight"), again without the classifier.
   Shorter ASCII texts ("Merci beaucoup", "Nervous as hell") are ``"und"``: in Latin script
   that little text cannot be told apart reliably, and the classifier's guesses on it are
   wrong as often as right.
4. **Classifier.** Everything else goes to ``py3langid`` (a Naive Bayes model over byte
   n-grams with 140 labels; the model ships inside the wheel, nothing is downloaded),
   restricted to :data:`LANGUAGES`, the languages a brand is likely to be mentioned in;
   that keeps short texts from landing on rare languages. Its model is read on first use
   in the compact form of :mod:`emberwatch.scoring._langid`, which answers exactly as
   py3langid does: derived once from the wheel's model (one to two seconds) and cached,
   then loaded in under 10 ms, and the first few texts read without importing numpy; a
   process that classifies a text peaks at about 24 MiB, against 132 MiB and half a
   second's load with py3langid's own (``bench/language_speed.py``).
   Its normalized probability is the confidence, and a guess below :data:`_MIN_CONFIDENCE`
   becomes ``"und"``: a short ambiguous text is never a confident wrong language.

Known misses: an ASCII text in another language with none of those function words (a
two-clause Turkish post typed without diacritics) is taken as likely English, that is, scored
as before this module existed. A post that mixes two languages gets the one the classifier
finds most of, or English on the fast path when English function words make a fifth of it.

Speed and the list of languages detected are measured by ``python bench/language_speed.py``.
"""

from __future__ import annotations

import re
import string
import threading
from itertools import repeat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

    from emberwatch.scoring._langid import Identifier

UNDETERMINED = "und"

# What the classifier may answer: ISO 639-1 codes of languages with a real presence on the
# platforms Emberwatch reads. A text in a language outside this list lands on its nearest
# neighbour here, which is still "not English", the one answer the scorer acts on.
LANGUAGES: tuple[str, ...] = (
    "af", "ar", "az", "be", "bg", "bn", "bs", "ca", "cs", "cy", "da", "de", "el", "en", "eo",
    "es", "et", "eu", "fa", "fi", "fr", "ga", "gl", "gu", "he", "hi", "hr", "hu", "hy", "id",
    "is", "it", "ja", "ka", "kk", "km", "kn", "ko", "lt", "lv", "mk", "ml", "mn", "mr", "ms",
    "my", "ne", "nl", "no", "pa", "pl", "pt", "ro", "ru", "si", "sk", "sl", "sq", "sr", "sv",
    "sw", "ta", "te", "th", "tl", "tr", "uk", "ur", "uz", "vi", "zh",
)  # fmt: skip

_FAST_CHARS = 300
_MAX_CHARS = 600
_MIN_LETTERS = 3
_MIN_LATIN_LETTERS = 16
_MAX_NON_ASCII = 0.25
_MIN_EN_SHARE = 0.2
_FAST_EN_CONFIDENCE = 0.95
_LIKELY_EN_CONFIDENCE = 0.6
_MIN_CONFIDENCE = 0.5

# Words that are frequent in English and rare as words of other languages written in Latin
# script count 1; frequent English words that are also common words elsewhere (Dutch "is",
# "in", "of"; German "am", "was", "will"; Tagalog "at", "may"...) count half. Plain English
# scores about 0.3 to 0.7 per word; other languages, even with a loanword, stay near 0.
# Written from general knowledge of English word frequency, not fitted to any data set.
_SHARED = "a i in is on an am at me no so do he her of for was may over also will man bad hell"
_DISTINCTIVE = """
    the and you your you're yours my mine i'm i've i'd i'll we our ours us they their them
    she his it it's its this that these those there here what why how when where who whom
    whose which with without from by about into after before again still just only very
    really too not don't doesn't didn't isn't aren't wasn't weren't can't cannot won't
    wouldn't couldn't shouldn't haven't hasn't hadn't ain't be been being were are have has
    had does did done get got gets getting can could would should must might shall if or
    but because than then some any all every each both either such while until since
    though although one out up down off yet ever never
    go going went gone come coming came see saw seen look looking watch watching want
    wanted need needs know knew think thought feel feeling felt love loved loves hate hated
    like liked likes make making take took give gave tell told say said says call called try
    trying tried work working worked wait waiting play playing start started stop let keep
    kept find found buy bought pay paid ordered send sent sleep eat ate read reading happen
    happened gonna wanna gotta
    good great best better worse worst nice awesome amazing happy sad sorry funny cool
    right wrong little big long old new first last next other same own few many much more
    most less enough always sometimes often already soon tonight tomorrow yesterday today
    morning night week weekend year years day days time times actually literally probably
    maybe definitely seriously finally totally absolutely stupid terrible horrible awful
    excellent perfect beautiful cute lovely crazy fun
    people guy guys friend friends family home house school life world thing things
    something nothing everything anything someone everyone anyone nobody money phone way
    game team company customer job news video music movie show birthday help
    haha hahaha yay ugh wow yeah yes yep nope oh omg lol lmao rofl please thanks thank
    welcome congrats hey hi
    im ive dont doesnt didnt cant wont isnt u ur pls plz thx smh wtf ngl tbh idk
"""
_ENGLISH: dict[str, float] = {w: 0.5 for w in _SHARED.split()} | dict.fromkeys(
    _DISTINCTIVE.split(), 1.0
)

# Function words of other languages that write in plain ASCII often (accents dropped on a
# phone keyboard). An ASCII text with none of them, that is not plainly English, is likely
# English (headlines, slang, names) and skips the classifier. Left out: words that are also
# English ("to", "as", "die", "no", "me", "per", "hat", "man", "son", "bin"...).
_FOREIGN_WORDS = """
    el la los las del que y por para con una es esta pero muy mi su al lo nada gracias
    hola porque tiene
    le les des et est pas je il elle une du au avec pour sur dans qui ce ne c'est j'ai
    und der das nicht ist ein eine ich mit auf den dem zu sie wir sehr auch bitte danke
    het een van niet ik dat zijn voor naar ook maar je wel nog geen
    yang dan di ini itu tidak saya ada aku ke dari sudah belum dengan untuk
    ang ng sa mga ako hindi naman po ka siya
    bir ve bu cok icin ama gibi var yok ben sen degil
    nao com uma os em da do na voce obrigado muito
    och att jag det som inte ikke jeg til med har af er
    non che di il per sono della io ho anche grazie
    nie sie jest na ze co jak tak
    hai ka ki ke nahi bhi kya
    e o bien bueno buena todo bon bonne merci tres gut toll bom boa molto bene ottimo tutto
    zeer goed bagus terima kasih salamat
"""
_FOREIGN = frozenset(_FOREIGN_WORDS.split())

# Stripped from both ends of a whitespace-separated token on the fast path.
_EDGES = string.punctuation.replace("'", "") + string.digits + "“”‘’«»…–—¡¿"
_NOISE = re.compile(r"https?://\S+|www\.\S+|\S+@\S+\.\S+|[@#][\w.]+|[\d_]+")
# _NOISE without its e-mail alternative, which can match only where there is an "@" but
# tries the rest of each token at each of its characters: in a text without "@", the same
# matches at a sixth of the cost.
_NOISE_WITHOUT_AT = re.compile(r"https?://\S+|www\.\S+|[@#][\w.]+|[\d_]+")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_NON_ASCII_LETTER = re.compile(r"[^\W\d_a-zA-Z]")

_identifier: Identifier | LanguageIdentifier | None = None
_identifier_lock = threading.Lock()


def detect(text: str) -> tuple[str, float]:
    """The language of ``text``: ``(ISO 639-1 code or "und", confidence in [0, 1])``."""
    if _plainly_english(text[:_FAST_CHARS].lower()):
        return "en", _FAST_EN_CONFIDENCE
    head = text[:_MAX_CHARS]
    clean = (_NOISE if "@" in head else _NOISE_WITHOUT_AT).sub(" ", head)
    words = set(_WORD.findall(clean.lower()))
    letters = sum(map(len, words))
    if letters < _MIN_LETTERS:
        return UNDETERMINED, 0.0
    if clean.isascii() or not _NON_ASCII_LETTER.search(clean):
        if letters < _MIN_LATIN_LETTERS:
            return UNDETERMINED, 0.0
        if words.isdisjoint(_FOREIGN):
            return "en", _LIKELY_EN_CONFIDENCE
    return _classify(clean)


def _plainly_english(head: str) -> bool:
    """The fast path, in C-speed string operations only: whitespace tokens trimmed of
    punctuation and digits, weighed on :data:`_ENGLISH`; handles, hashtags and links are
    counted out of the denominator by their ``@``, ``#`` and ``://``."""
    if "\u2019" in head:
        head = head.replace("\u2019", "'")
    tokens = head.split()
    # Three counts cost more than three "in" tests (str.count parses its arguments).
    if "@" in head or "#" in head or "/" in head:
        marked = head.count("@") + head.count("#") + head.count("://")
    else:
        marked = 0
    if head.isascii():
        # A shortcut that decides as the full test would, without trimming each token: a
        # token found in _ENGLISH as it stands is one of the trimmed words (no key has a
        # character of _EDGES), so the weight of those tokens is at most the words' weight,
        # there are at least as many words (each a letter or more), and no more words than
        # tokens. Weights are halves and ones, so their sums are exact in any order.
        # No token weighs more than 1, so a weight of at least 3 and more than ``marked``
        # is that many tokens: their count is needed only for a lighter text.
        weight = sum(map(_ENGLISH.get, tokens, repeat(0)))
        share = _MIN_EN_SHARE * (len(tokens) - marked)
        if weight >= share and weight >= _MIN_LETTERS and weight > marked:
            return True
        if weight >= share:
            hits = sum(map(_ENGLISH.__contains__, tokens))
            if hits >= _MIN_LETTERS and hits > marked:
                return True
    words = [w for w in map(str.strip, tokens, repeat(_EDGES)) if w]
    counted = len(words) - marked
    if counted <= 0 or sum(map(len, words)) < _MIN_LETTERS:
        return False
    if sum(map(_ENGLISH.get, words, repeat(0.0))) < _MIN_EN_SHARE * counted:
        return False
    if head.isascii():
        return True
    return len(_NON_ASCII_LETTER.findall(head)) <= _MAX_NON_ASCII * sum(map(len, words))


def _classify(clean: str) -> tuple[str, float]:
    code, confidence = _get_identifier().classify(clean)
    confidence = min(max(float(confidence), 0.0), 1.0)
    if code not in LANGUAGES or confidence < _MIN_CONFIDENCE:
        return UNDETERMINED, confidence
    return code, confidence


def _get_identifier() -> Identifier | LanguageIdentifier:
    """The classifier, loaded on first use only: py3langid's model in the compact form of
    :mod:`emberwatch.scoring._langid` (same answers, a fraction of the memory and load
    time), or py3langid itself if its model cannot be put in that form."""
    global _identifier
    if _identifier is None:
        with _identifier_lock:
            if _identifier is None:
                from emberwatch.scoring import _langid

                _identifier = _langid.load(LANGUAGES, (_MIN_CONFIDENCE,)) or _py3langid()
    return _identifier


def _py3langid() -> LanguageIdentifier:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(list(LANGUAGES))
    return ident
