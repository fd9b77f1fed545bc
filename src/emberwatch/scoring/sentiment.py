"""Sentiment: VADER's compound score of a mention, tuned for customer service.

Three layers sit on top of stock VADER, and none costs a second VADER pass:

- :data:`SERVICE_LEXICON` adds words that customer-service text uses and VADER lacks
  ("unanswered", "overcharged", "ripoff"). Each is rarely positive in general text, so
  VADER's scores on general text barely move (``bench/scoring.py`` checks the paper's
  ground truth).
- Per-brand overrides come from config (``Brand.lexicon``): for a sneaker brand, "sick" is
  praise. They win over both lexicons.
- :data:`EMOJI_TEXT` replaces VADER's neutral descriptions of complaint emoji
  ("face with symbols on mouth") with descriptions that carry a word VADER scores.

- Words that carry no opinion where they stand count zero (:class:`Neutral`): the brand's
  own name ("United" is +1.8 in VADER's lexicon, so 'my @united flight was cancelled' read
  as mild praise), and the politeness of a request for help ("please help", "can you
  help", "thanks in advance", a closing "thanks" after a question), which is how
  customers ask support for help, not praise.
- Clause punctuation (``, ; : .`` after a word) is split off as its own token, so VADER's
  three-word negation window stops at it: in "still nothing, two emails unanswered" the
  "nothing" no longer flips "unanswered" into praise. This raises VADER's r and F1 on all
  four of the paper's ground-truth sets.

A star rating, when the mention has one, is fused with the text (:func:`fuse_rating`).
Texts longer than :data:`CHUNK_CHARS` are scored in chunks and averaged, because parts of
VADER are quadratic in the number of words; only the first :data:`MAX_CHARS` are read.
"""

from __future__ import annotations

import os
import re
import string
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate, filterfalse

from vaderSentiment import vaderSentiment as _vader
from vaderSentiment.vaderSentiment import (
    BOOSTER_DICT,
    C_INCR,
    N_SCALAR,
    NEGATE,
    SPECIAL_CASES,
    SentimentIntensityAnalyzer,
    normalize,
)

from emberwatch._slots import maker
from emberwatch.scoring._cues import _skip_ahead, _split

# The mark first and the word character behind it checked after, so that ``re`` skips
# ahead to the next mark instead of trying the lookbehind at every position. Used on text
# that is not ASCII; :func:`_ascii_words` splits the same marks off an ASCII text's tokens.
_CLAUSE_END = re.compile(r"([,;:.])(?<=\w[,;:.])(?=\s)")


def _space_before(match: re.Match[str]) -> str:
    """``_CLAUSE_END``'s replacement, ``r" \\1"``, as a function: with a template, Python
    3.11's ``sub`` calls ``re._subx`` on every call and expands each match in Python."""
    return " " + match.group(1)


CHUNK_CHARS = 1_000
MAX_CHARS = 20_000

# Valences on VADER's -4..+4 scale, set by hand next to VADER's neighbours: "rude" -2.0,
# "useless" -1.8, "scam" -2.7, "delayed" -0.9.
SERVICE_LEXICON: dict[str, float] = {
    "unanswered": -1.5,
    "unresponsive": -1.8,
    "unhelpful": -1.8,
    "unprofessional": -2.0,
    "overcharged": -2.0,
    "overcharging": -2.0,
    "overpriced": -1.4,
    "ripoff": -2.3,
    "rip-off": -2.3,
    "scammed": -2.5,
    "scammers": -2.6,
    "shoddy": -2.0,
    "subpar": -1.6,
    "sub-par": -1.6,
    "unusable": -1.8,
    "malfunctioning": -1.5,
    "glitchy": -1.4,
    "buggy": -1.3,
    "laggy": -1.2,
    "undelivered": -1.3,
    "ghosted": -1.5,
    "runaround": -1.5,
    "inexcusable": -2.2,
    "shambles": -2.0,
    "nightmare": -2.2,
    "hassle": -1.3,
    "canceled": -1.0,
    "garbage": -1.9,
    "mislabeled": -1.0,
    "misinformed": -1.2,
    "pouting": -1.8,
    "facepalm": -1.2,
    "facepalming": -1.2,
}

# Complaint emoji whose VADER description carries no scored word, and the description
# Emberwatch uses instead (the first word is the one VADER scores).
EMOJI_TEXT: dict[str, str] = {
    "😡": "angry pouting face",
    "🤬": "furious face with symbols on mouth",
    "😤": "frustrated face with steam from nose",
    "👎": "thumbs down dislike",
    "💩": "crap pile of poo",
    "🙄": "annoyed face with rolling eyes",
    "😒": "annoyed unamused face",
    "🤮": "disgusted face vomiting",
    "🤦": "facepalm",
    "🖕": "insult middle finger",
    "🤡": "ridiculous clown face",
}


@dataclass(frozen=True, slots=True)
class Sentiment:
    """A sentiment in -1..+1 and the numbers behind it."""

    value: float
    text: float
    rating: float | None
    reasons: tuple[str, ...]


_sentiment = maker(Sentiment)
_NEGATE = frozenset(NEGATE)

# Requests for help, on VADER's lower-cased tokens joined by single spaces. Each match's
# tokens count zero: the words are politeness, and "help", "please" and "thanks" would
# otherwise add +1.3 to +1.9 each to a complaint.
_REQUEST_PATTERN = (
    r"\b(?:please|pls|plz|pleaseee*)(?: help)?\b"
    r"|\b(?:thanks|thank you|thx|ty)(?: so much| a lot)? in advance\b|\btia\b"
    r"|\b(?:any|some|your) help(?: (?:would be|will be|is|much|greatly|really))*"
    r"(?: appreciated)?\b"
    r"|\b(?:can|could|would|will|cn) (?:you|u|someone|anyone|somebody|you guys|y'?all)"
    r"(?: please| pls| plz)? help\b"
    r"|\b(?:need|needs|needed|want|get|getting) (?:some |your |any )?help\b"
    r"|\bhelp (?:me|us|needed|please|pls|plz|asap)\b|\bhelp$"
    r"|\b(?:would|i'?d|we'?d) (?:really |greatly )?appreciate\b"
    r"|\bappreciate (?:any|your|some) (?:help|assistance|advice)\b"
)
# A thank-you that closes a question or a request is a sign-off, not praise.
_SIGN_OFF_PATTERN = r"(?:^| )(?:thanks|thank you|thx|ty|cheers|thank u)(?: (?:again|all))?$"
# Both compiled on first use (:func:`_requests`): importing the scorer compiles neither.
_REQUESTS: list[tuple[re.Pattern[str], re.Pattern[str]]] = []


def _requests() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The request pattern, split into one alternative a word with each leading \\b after
    its word (see _cues._split and _cues._skip_ahead) so that ``re`` skips ahead to the
    words, and the sign-off pattern."""
    if not _REQUESTS:
        request = re.compile("|".join(map(_skip_ahead, _split(_REQUEST_PATTERN))))
        _REQUESTS.append((request, re.compile(_SIGN_OFF_PATTERN)))
    return _REQUESTS[0]


# Every alternative of _REQUEST_PATTERN holds one of these, outside any optional part:
# a text without them has no request, and its tokens are not joined and searched.
_REQUEST_HINTS = ("please", "pls", "plz", "help", "tia", "appreciat", "advance")


def _request_hint(lowered: str) -> bool:
    """Whether one of :data:`_REQUEST_HINTS` occurs in ``lowered`` (a test compares):
    seven substring tests take three quarters of the time of one search for their
    alternation, which tries each position."""
    return (
        "please" in lowered
        or "pls" in lowered
        or "plz" in lowered
        or "help" in lowered
        or "tia" in lowered
        or "appreciat" in lowered
        or "advance" in lowered
    )


# The last words that _SIGN_OFF_PATTERN can end a text with.
_SIGN_OFF_LAST = frozenset(("thanks", "you", "thx", "ty", "cheers", "u", "again", "all"))
# A sign-off counts only in a text holding one of these, as it always has (the words once
# gated the whole request check): "any news? cheers" keeps the praise of its "cheers".
_SIGN_OFF_HINT = re.compile("pl|help|thank|thx|tia|appreciat|ty")


def _term_tokens(term: str) -> tuple[str, ...]:
    """A brand term as VADER's lower-cased tokens: '@United' -> ('united',)."""
    return tuple(_strip_punctuation(w).lower() for w in term.split())


def _strip_punctuation(token: str) -> str:
    """VADER's own rule: strip surrounding punctuation unless that leaves two characters."""
    stripped = token.strip(string.punctuation)
    return token if len(stripped) <= 2 else stripped


def _possessive(token: str) -> str:
    return token[:-2] if token.endswith(("'s", "\u2019s")) else token


class Neutral:
    """Which tokens of a text carry no sentiment: a brand's own terms and request politeness.

    Built once per brand; :meth:`indices` is called on every text, so it first checks the
    cheap signs (a term's first word among the tokens, a request word in the text).
    """

    def __init__(self, terms: Iterable[str] = (), *, requests: bool = True) -> None:
        phrases = {_term_tokens(t) for t in terms}
        self._phrases = tuple(sorted(p for p in phrases if p and all(p)))
        self._first = frozenset(p[0] for p in self._phrases)
        self._requests = requests

    def indices(self, lowered: str, low: list[str]) -> set[int]:
        """Positions in ``low`` (the lower-cased VADER tokens of the text, which is
        ``lowered`` lower-cased) that count zero."""
        out: set[int] = set()
        if self._first:
            bare = [_possessive(w) for w in low]
            if not self._first.isdisjoint(bare):
                for phrase in self._phrases:
                    n = len(phrase)
                    for i in range(len(bare) - n + 1):
                        if bare[i] == phrase[0] and tuple(bare[i : i + n]) == phrase:
                            out.update(range(i, i + n))
        if not self._requests:
            return out
        # A sign-off counts only in a question or next to a request (_request_indices).
        asks = "?" in lowered
        if _request_hint(lowered):
            out |= _request_indices(low, asks and _SIGN_OFF_HINT.search(lowered) is not None)
        elif asks and low and low[-1] in _SIGN_OFF_LAST and _SIGN_OFF_HINT.search(lowered):
            out |= _request_indices(low, asks)
        return out


def _request_indices(low: list[str], asks: bool) -> set[int]:
    joined = " ".join(low)
    request, sign_off = _REQUESTS[0] if _REQUESTS else _requests()
    spans = [m.span() for m in request.finditer(joined)]
    if spans or asks:
        closing = sign_off.search(joined)
        if closing:
            spans.append(closing.span())
    if not spans:
        return set()
    # The words each span overlaps: word i spans starts[i]..starts[i] + len(low[i]).
    starts = [0, *accumulate(len(w) + 1 for w in low)]
    out: set[int] = set()
    for a, b in spans:
        i = bisect_right(starts, a) - 1  # the word holding a, or the space after it
        if i >= 0 and starts[i] + len(low[i]) <= a:
            i += 1
        while i < len(low) and starts[i] < b:
            out.add(i)
            i += 1
    return out


def _negated(word: str) -> bool:
    """VADER's ``negated`` for one lower-cased word."""
    return word in _NEGATE or "n't" in word


_PUNCTUATION = string.punctuation
_OR_NOR = ("or", "nor")
_SO_THIS = ("so", "this")


def _words(text: str) -> tuple[list[str], list[str]]:
    """VADER's words of ``text`` (``SentiText.words_and_emoticons``: whitespace tokens with
    surrounding punctuation stripped unless that leaves two characters or fewer, so that
    emoticons stay) and the same words lower-cased."""
    words = [w if len(s := w.strip(_PUNCTUATION)) <= 2 else s for w in text.split()]
    return words, [w.lower() for w in words]


def _ascii_words(lowered: str, clauses: bool) -> tuple[list[str], list[tuple[int, str]]]:
    """:func:`_words`' lower-cased words of an ASCII text, from the text lower-cased
    (``lowered``, not stripped), and the clause marks split off as words of their own if
    ``clauses`` (what ``_CLAUSE_END.sub`` and then :func:`_words` make of the text): each
    as ``(i, mark)``, the mark that follows whitespace token ``i``, in order.

    Only tokens that are not all letters and digits can lose punctuation or a mark, so
    only those (``str.isalnum`` finds them, a C call a token) are visited: stripping
    every token was the most of the time this took. ASCII lower-casing maps no character
    to or from punctuation or whitespace, so the words of the lower-cased text are the
    lower-cased words.
    """
    low = lowered.split()
    marks: list[tuple[int, str]] = []
    last = len(low) - 1
    i = -1
    for word in filterfalse(str.isalnum, low):
        # Its place: the first equal token after the last one visited (an equal token
        # before it is not all letters and digits either, so was visited already).
        i = low.index(word, i + 1)
        # _CLAUSE_END: a mark after a word character and before whitespace, which the
        # last token has only if the text ends in whitespace.
        if (
            clauses
            and word[-1] in _CLAUSE_MARKS
            and len(word) > 1
            and (word[-2].isalnum() or word[-2] == "_")
            and (i < last or lowered[-1].isspace())
        ):
            marks.append((i, word[-1]))
            word = word[:-1]
        stripped = word.strip(_PUNCTUATION)
        low[i] = word if len(stripped) <= 2 else stripped
    if marks:
        _insert_marks(low, marks)
    return low, marks


def _insert_marks(tokens: list[str], marks: list[tuple[int, str]]) -> None:
    """Each mark after its token, the last first so that the earlier places hold."""
    for i, mark in reversed(marks):
        tokens.insert(i + 1, mark)


_CLAUSE_MARKS = frozenset(",;:.")

# An ASCII token that ``str.isupper`` takes as capitals: no lower-case letter and an
# upper-case one. The first character is matched first and what is before it checked after
# (whitespace or nothing), so that ``re`` skips ahead over lower-case letters and spaces.
_CAPITAL_TOKEN = re.compile(
    r"[^a-z\s](?<!\S[^a-z\s])(?:(?<=[A-Z])|(?=[^a-z\s]*[A-Z]))[^a-z\s]*(?!\S)"
)


def _valence(
    lexicon: dict[str, float], words: list[str], low: list[str], i: int, cap_diff: bool
) -> float:
    """VADER's ``sentiment_valence`` for word ``i``, which is in ``lexicon``, on the words
    lower-cased once (stock VADER lower-cases neighbouring words again for each rule). The
    rules and the order of the arithmetic are VADER's, so the result is the same float:
    the "no" rules, emphasis by capitals, boosters and dampeners up to three words back
    (``scalar_inc_dec``), negation (``_negation_check``), idioms (``_special_idioms_check``)
    and "least" (``_least_check``)."""
    item = low[i]
    valence = lexicon[item]
    last = len(low) - 1
    if item == "no" and i != last and low[i + 1] in lexicon:
        valence = 0.0
    if (
        (i > 0 and low[i - 1] == "no")
        or (i > 1 and low[i - 2] == "no")
        or (i > 2 and low[i - 3] == "no" and low[i - 1] in _OR_NOR)
    ):
        valence = lexicon[item] * N_SCALAR
    if cap_diff and words[i].isupper():
        if valence > 0:
            valence += C_INCR
        else:
            valence -= C_INCR
    for start_i in (0, 1, 2):
        if i <= start_i:
            break
        j = i - (start_i + 1)
        before = low[j]
        if before in lexicon:
            continue
        scalar = 0.0
        if before in BOOSTER_DICT:
            scalar = BOOSTER_DICT[before]
            if valence < 0:
                scalar *= -1
            if cap_diff and words[j].isupper():
                if valence > 0:
                    scalar += C_INCR
                else:
                    scalar -= C_INCR
            if start_i == 1:
                scalar = scalar * 0.95
            elif start_i == 2:
                scalar = scalar * 0.9
        valence = valence + scalar
        if start_i == 0:
            if before in _NEGATE or "n't" in before:
                valence = valence * N_SCALAR
        elif start_i == 1:
            if before == "never" and low[i - 1] in _SO_THIS:
                valence = valence * 1.25
            elif before == "without" and low[i - 1] == "doubt":
                pass
            elif before in _NEGATE or "n't" in before:
                valence = valence * N_SCALAR
        else:
            if (before == "never" and low[i - 2] in _SO_THIS) or low[i - 1] in _SO_THIS:
                valence = valence * 1.25
            elif before == "without" and (low[i - 2] == "doubt" or low[i - 1] == "doubt"):
                pass
            elif before in _NEGATE or "n't" in before:
                valence = valence * N_SCALAR
            if (
                (before in _PHRASE_PAIRS and low[i - 2] in _PHRASE_PAIRS[before])  # i - 3
                or (low[i - 2] in _PHRASE_PAIRS and low[i - 1] in _PHRASE_PAIRS[low[i - 2]])
                or (low[i - 1] in _PHRASE_PAIRS and item in _PHRASE_PAIRS[low[i - 1]])
                or (item in _PHRASE_PAIRS and i < last and low[i + 1] in _PHRASE_PAIRS[item])
            ):
                valence = _idioms(valence, low, i)
    if (
        i > 0
        and low[i - 1] == "least"
        and "least" not in lexicon
        and not (i > 1 and low[i - 2] in ("at", "very"))
    ):
        valence = valence * N_SCALAR
    return valence


# The first two words of VADER's idioms and of its boosters of more than one word, as
# first word -> second words. Every sequence _idioms looks up is two or three words from
# word i - 3, i - 2, i - 1 or i, so when none of these four and the word after it make such
# a pair, _idioms returns the valence it was given and is not called ("the" and "to" start
# idioms, and are next to most words, but "the shit" and "to die" are rare).
def _phrase_pairs() -> dict[str, frozenset[str]]:
    pairs: dict[str, set[str]] = {}
    for key in (*SPECIAL_CASES, *BOOSTER_DICT):
        words = key.split()
        if len(words) > 1:
            pairs.setdefault(words[0], set()).add(words[1])
    return {first: frozenset(seconds) for first, seconds in pairs.items()}


_PHRASE_PAIRS = _phrase_pairs()


def _idioms(valence: float, low: list[str], i: int) -> float:
    """VADER's ``_special_idioms_check`` on lower-cased words (``i`` is at least 3)."""
    twoone = f"{low[i - 2]} {low[i - 1]}"
    threetwo = f"{low[i - 3]} {low[i - 2]}"
    threetwoone = f"{low[i - 3]} {twoone}"
    for seq in (f"{low[i - 1]} {low[i]}", f"{twoone} {low[i]}", twoone, threetwoone, threetwo):
        if seq in SPECIAL_CASES:
            valence = SPECIAL_CASES[seq]
            break
    if len(low) - 1 > i:
        zeroone = f"{low[i]} {low[i + 1]}"
        if zeroone in SPECIAL_CASES:
            valence = SPECIAL_CASES[zeroone]
    if len(low) - 1 > i + 1:
        zeroonetwo = f"{low[i]} {low[i + 1]} {low[i + 2]}"
        if zeroonetwo in SPECIAL_CASES:
            valence = SPECIAL_CASES[zeroonetwo]
    for n_gram in (threetwoone, threetwo, twoone):
        if n_gram in BOOSTER_DICT:
            valence = valence + BOOSTER_DICT[n_gram]
    return valence


def _runs(points: list[int]) -> list[str]:
    """Sorted code points as regular-expression class items, a run as ``a-b``."""
    runs: list[list[int]] = []
    for point in points:
        if runs and point == runs[-1][1] + 1:
            runs[-1][1] = point
        else:
            runs.append([point, point])
    return [re.escape(chr(a)) + ("" if a == b else "-" + re.escape(chr(b))) for a, b in runs]


class _Analyzer(SentimentIntensityAnalyzer):
    """VADER with the same results, faster; with ``clauses``, VADER on the text with its
    clause punctuation split off (``_CLAUSE_END.sub(_space_before, text)``, see
    :class:`SentimentModel`).

    Stock ``polarity_scores`` rebuilds the text character by character to swap emoji for
    their descriptions; this does the same swap with one regular expression, and skips it
    for ASCII text. It then splits and lower-cases the words once per text (an ASCII text
    lower-cased whole, and only its tokens that are not all letters and digits stripped of
    punctuation and clause marks: :func:`_ascii_words`), finds the words its lexicon knows
    with one set intersection (a text without any scores 0 at once), and runs VADER's
    per-word rules (:func:`_valence`) on those words only: stock VADER calls
    ``sentiment_valence`` for every word and lower-cases each neighbour again in every
    rule. The words as written are split only for their capitals, when a scored word needs
    them. The rules themselves are VADER's, unchanged (tests compare both on the paper's
    texts and on generated ones).
    """

    def __init__(self, neutral: Neutral | None = None, *, clauses: bool = False) -> None:
        # VADER's __init__ reads and parses its two files for every analyzer; they are
        # read once a process instead (:func:`_vader_tables`) and each analyzer gets its
        # own copies, as it would from VADER (a brand's overrides change its lexicon).
        lexicon, emojis = _vader_tables()
        self.lexicon, self.emojis = dict(lexicon), dict(emojis)
        self._neutral = neutral
        self._clauses = clauses
        self.emojis.update(EMOJI_TEXT)
        self._emoji_chars = frozenset(e for e in self.emojis if len(e) == 1)
        self._emoji: re.Pattern[str] | None = None  # compiled on the first text with emoji

    def _emoji_pattern(self) -> re.Pattern[str]:
        """One class of every single-character emoji. It is written as runs of consecutive
        code points: ``re`` tests a class of characters beyond the Basic Multilingual Plane
        item by item, and 1,212 emoji make 143 runs."""
        if self._emoji is None:
            points = sorted(map(ord, self._emoji_chars))
            self._emoji = re.compile("[" + "".join(_runs(points)) + "]")
        return self._emoji

    def _describe(self, match: re.Match[str]) -> str:
        start = match.start()
        description = self.emojis[match.group(0)]
        if start == 0 or match.string[start - 1] == " ":
            return description
        return " " + description

    def polarity_scores(self, text: str) -> dict[str, float]:
        sentiments, text = self._valences(text)
        return self.score_valence(sentiments, text)

    def compound(self, text: str) -> float:
        """``polarity_scores(text)["compound"]``, without the three other scores (VADER's
        ``score_valence``, its compound part only, with ``_punctuation_emphasis`` inline:
        the same arithmetic in the same order)."""
        sentiments, text = self._valences(text)
        if not sentiments:
            return 0.0
        total = float(sum(sentiments))
        if not total:
            return total  # what normalize and round make of a zero, its sign kept
        # str.count parses its arguments, which costs more than an "in" test.
        ep_count = text.count("!") if "!" in text else 0
        qm_count = text.count("?") if "?" in text else 0
        qm_amplifier = 0  # VADER's int 0 when there are fewer than two marks
        if qm_count > 1:
            qm_amplifier = qm_count * 0.18 if qm_count <= 3 else 0.96
        emphasis = (4 if ep_count > 4 else ep_count) * 0.292 + qm_amplifier
        if total > 0:
            total += emphasis
        else:
            total -= emphasis
        return round(normalize(total), 4)

    def _valences(self, text: str) -> tuple[list[float], str]:
        """Each word's valence, and the text as VADER reads it (emoji described; an ASCII
        text, which has none, as it came: VADER reads only its "!" and "?")."""
        words: list[str] | None
        if text.isascii():
            lowered = text.lower()
            low, marks = _ascii_words(lowered, self._clauses)
            words = None  # the words as written, split only if capitals matter
        else:
            if self._clauses:
                text = _CLAUSE_END.sub(_space_before, text)
            if not self._emoji_chars.isdisjoint(text):
                text = self._emoji_pattern().sub(self._describe, text)
            text = text.strip()
            words, low = _words(text)
            lowered = ""
        sentiments: list[float] = [0] * len(low)  # VADER's 0 for a word it doesn't score
        lexicon = self.lexicon
        known = lexicon.keys() & low
        if not known:
            return sentiments, text
        zero = (
            self._neutral.indices(lowered or text.lower(), low) if self._neutral is not None else ()
        )
        last = len(low) - 1
        cap_diff = None
        # Each word's valence depends on its neighbours only, not on the other valences,
        # so the known words are visited word by word (``list.index`` finds them) instead
        # of testing every word of the text.
        for word in known:
            if word in BOOSTER_DICT:
                continue
            i = -1
            for _ in range(low.count(word)):
                i = low.index(word, i + 1)
                if i in zero or (word == "kind" and i < last and low[i + 1] == "of"):
                    continue
                if cap_diff is None:  # SentiText.is_cap_diff: some words but not all capitals
                    # A text whose cased characters are all lower case has no capital
                    # word, nor has an ASCII text without a token in capitals (most texts).
                    if text.islower() or (words is None and not _CAPITAL_TOKEN.search(text)):
                        cap_diff = False
                    else:
                        if words is None:
                            # Each token is all capitals exactly when its word is: they
                            # differ by punctuation only, which has no case.
                            words = text.split()
                            if marks:
                                _insert_marks(words, marks)
                        capitals = sum(map(str.isupper, words))
                        cap_diff = 0 < len(words) - capitals < len(words)
                sentiments[i] = _valence(lexicon, words, low, i, cap_diff)
        if "but" in low:
            # VADER's _but_check, with its quirks (it finds each value's first index).
            but = low.index("but")
            for sentiment in sentiments:
                si = sentiments.index(sentiment)
                if si < but:  # VADER pops and inserts at si: the same as setting it
                    sentiments[si] = sentiment * 0.5
                elif si > but:
                    sentiments[si] = sentiment * 1.5
        return sentiments, text


_TABLES: list[tuple[dict[str, float], dict[str, str]]] = []


def _vader_tables() -> tuple[dict[str, float], dict[str, str]]:
    """VADER's lexicon and emoji descriptions, read from its files once a process and
    parsed as its make_lex_dict and make_emoji_dict parse them: each line stripped, its
    first two tab-separated fields."""
    if not _TABLES:
        folder = os.path.dirname(os.path.abspath(_vader.__file__))
        tables = []
        for name in ("vader_lexicon.txt", "emoji_utf8_lexicon.txt"):
            # Without newline translation, as VADER's codecs.open reads them.
            with open(os.path.join(folder, name), encoding="utf-8", newline="") as f:
                lines = f.read().rstrip("\n").split("\n")
            # A generator: each line's fields are freed at once, so the garbage collector
            # is not set off by thousands of lists kept alive.
            fields = (line.strip().split("\t", 2) for line in lines if line)
            tables.append({row[0]: row[1] for row in fields})
        lexicon = {word: float(value) for word, value in tables[0].items()}
        _TABLES.append((lexicon, tables[1]))
    return _TABLES[0]


class SentimentModel:
    """A VADER analyzer with Emberwatch's lexicon and, optionally, a brand's overrides and
    its own terms (``neutral_terms``: the brand's names, @handles and #hashtags, which then
    count zero where they occur as a whole phrase; the overrides still apply elsewhere).

    VADER keeps its lexicon on the instance, so each brand gets its own; build them once
    and reuse them.
    """

    def __init__(
        self,
        overrides: dict[str, float] | None = None,
        *,
        neutral_terms: Iterable[str] = (),
    ) -> None:
        self._analyzer = _Analyzer(Neutral(neutral_terms), clauses=True)
        self._analyzer.lexicon.update(SERVICE_LEXICON)
        if overrides:
            self._analyzer.lexicon.update({k.lower(): float(v) for k, v in overrides.items()})

    def compound(self, text: str) -> float:
        """VADER's compound score of ``text`` with Emberwatch's lexicons; 0.0 when empty."""
        if len(text) <= CHUNK_CHARS:
            if not text or text.isspace():
                return 0.0
            return self._analyzer.compound(text)
        total = weight = 0.0
        for chunk in _chunks(text[:MAX_CHARS]):
            n = len(chunk)
            total += n * self._analyzer.compound(chunk)
            weight += n
        return round(total / weight, 4) if weight else 0.0

    def score(self, text: str, *, rating: float | None = None) -> Sentiment:
        """The compound score of ``text``, fused with a 1-5 star ``rating`` if there is one."""
        compound = self.compound(text)
        value, reasons = fuse_rating(compound, rating)
        return _sentiment(value, compound, rating, reasons)


_TEXT_REASONS: dict[float, tuple[str, ...]] = {}


def fuse_rating(compound: float, rating: float | None) -> tuple[float, tuple[str, ...]]:
    """Combine a text's compound score with a 1-5 star rating.

    The stars say what the reviewer concluded; the words say how strongly. The fused value
    is 0.6 x the rating mapped to -1..+1 plus 0.4 x the text, and then bounded: 1-2 stars
    are negative (at most -0.25) whatever the words, 4-5 stars at least +0.05. Ratings are
    clamped to 1..5.
    """
    if rating is None and compound:  # not 0.0 or -0.0, which format apart but key alike
        reasons = _TEXT_REASONS.get(compound)
        if reasons is None:
            reasons = (f"sentiment {compound:+.2f} (VADER compound with service lexicon)",)
            if len(_TEXT_REASONS) < 20_002:  # compound is rounded to 4 places: few values
                _TEXT_REASONS[compound] = reasons
        return compound, reasons
    text_reason = f"sentiment {compound:+.2f} (VADER compound with service lexicon)"
    if rating is None:
        return compound, (text_reason,)
    stars = min(max(float(rating), 1.0), 5.0)
    value = 0.6 * (stars - 3) / 2 + 0.4 * compound
    if stars <= 2:
        value = min(value, -0.25)
    elif stars >= 4:
        value = max(value, 0.05)
    value = round(value, 4)
    return value, (text_reason, f"{stars:g}-star rating -> sentiment {value:+.2f}")


def _chunks(text: str) -> list[str]:
    """Pieces of at most about CHUNK_CHARS characters, cut at whitespace where possible."""
    out = []
    start = 0
    n = len(text)
    while start < n:
        end = min(start + CHUNK_CHARS, n)
        if end < n:
            cut = text.rfind(" ", start + CHUNK_CHARS // 2, end)
            end = cut if cut > start else end
        piece = text[start:end]
        if piece.strip():
            out.append(piece)
        start = end
    return out
