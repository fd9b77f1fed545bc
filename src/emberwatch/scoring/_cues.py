"""Cheap cue detection shared by the complaint detector and triage.

A text is lower-cased and split into words once (:func:`prepare`). Each cue family names
the trigger words without which its pattern cannot match, so most families cost one set
check and only the families whose triggers occur run their regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from emberwatch._slots import maker

MAX_CHARS = 20_000
_WORD = re.compile(r"[a-z0-9']+|[#@/]")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A text lower-cased (apostrophes straightened) and its set of words.

    ``pieces`` are the words and, of a word with apostrophes, its parts between them
    ("'great'" gives "great", "don't" gives "don" and "t"): every run of letters and
    digits between word boundaries is one of them.
    """

    lower: str
    words: frozenset[str]
    pieces: frozenset[str]


_prepared = maker(Prepared)


# ASCII characters of no _WORD word as spaces (# @ / too: they are added one by one), as
# a bytes table: bytes.translate with the encoding and decoding takes a third of the time
# of str.translate.
_SPACED = bytes(ch if ch in b"abcdefghijklmnopqrstuvwxyz0123456789'" else 32 for ch in range(256))


def prepare(text: str) -> Prepared:
    lower = text[:MAX_CHARS].lower().replace("\u2019", "'")
    if lower.isascii():
        # _WORD's words of an ASCII text: the runs of [a-z0-9'] are the whitespace-split
        # words once every other character is a space, and # @ / are words of their own.
        words = frozenset(lower.encode("ascii").translate(_SPACED).decode("ascii").split())
        if "#" in lower or "@" in lower or "/" in lower:
            words = words.union(ch for ch in "#@/" if ch in lower)
    else:
        words = frozenset(_WORD.findall(lower))
    if "'" not in lower:
        return _prepared(lower, words, words)
    parts = {p for w in words if "'" in w for p in w.split("'")}
    return _prepared(lower, words, words.union(parts))


@dataclass(frozen=True, slots=True)
class Family:
    """A cue family: a name, a weight in log-odds, trigger words and its patterns.

    ``written`` are the patterns as written. On first use they are cut into alternatives
    (:func:`_alternatives`), each with keys read off its text (:func:`_keys`): words, one of
    which opens every match of it, and literals (or :data:`DIGIT`, any digit), one of which
    does. :meth:`narrowed` keeps the alternatives whose keys occur in a text; each is
    compiled the first time it is kept, rewritten so that ``re`` skips ahead to where it may
    match (:func:`_skip_ahead`).
    Nothing is compiled at import, and only alternatives that some text may match are
    compiled at all.
    """

    name: str
    weight: float
    triggers: frozenset[str]
    written: tuple[str, ...]
    chars: str = ""
    _built: list[_Built] = field(default_factory=list, compare=False, repr=False)
    _chosen: dict[int, re.Pattern[str] | _Union] = field(
        default_factory=dict, compare=False, repr=False
    )
    _cues: dict[str, Cue] = field(default_factory=dict, compare=False, repr=False)

    def _build(self) -> _Built:
        if not self._built:
            self._built.append(_build(self.written))
        return self._built[0]

    @property
    def alternatives(self) -> tuple[str, ...]:
        """The alternatives, as written (before :func:`_skip_ahead`)."""
        return self._build().written

    def cue(self, matched: str) -> Cue:
        """The family's cue for the text ``matched``, stripped. A cue is immutable and a
        family's matches are a few phrases, so the family keeps the cue it made for each
        (callers look in ``_cues`` first)."""
        cue = self._cues.get(matched)
        if cue is None:
            cue = _cue(self.name, matched.strip(), self.weight)
            if len(self._cues) < _MAX_CHOSEN:
                self._cues[matched] = cue
        return cue  # type: ignore[no-any-return]

    def triggered(self, text: Prepared) -> bool:
        """Whether the pattern can match: a trigger word or trigger character occurs."""
        if not self.triggers.isdisjoint(text.words):
            return True
        return any(ch in text.lower for ch in self.chars)

    def narrowed(self, text: Prepared) -> re.Pattern[str] | _Union | None:
        """The family's alternatives that may match ``text`` (one pattern, or a
        :class:`_Union` of several); None when none can. Its first match, and each of its
        matches, are the written patterns', since the alternatives left out match nowhere
        in ``text``: a word key must be among the text's ``pieces``, a literal key in the
        text, and for :data:`DIGIT` a digit."""
        # One unpacking: a named tuple's fields are read by a descriptor call each.
        written, mask, by_word, words, literals, digits, full, patterns = (
            self._built[0] if self._built else self._build()
        )
        for word in words.intersection(text.pieces):
            mask |= by_word[word]
        lower = text.lower
        if mask != full:  # else no literal can add an alternative (one-alternative families)
            for literal, bits in literals:
                if literal in lower:
                    mask |= bits
        if digits and _has_digit(lower):
            mask |= digits
        if not mask:
            return None
        chosen = self._chosen.get(mask)
        if chosen is None:
            for bit in range(mask.bit_length()):
                if mask >> bit & 1 and patterns[bit] is None:
                    patterns[bit] = re.compile(_skip_ahead(written[bit]))
            kept = tuple(p for bit, p in enumerate(patterns) if mask >> bit & 1)
            chosen = kept[0] if len(kept) == 1 else _Union(kept)  # type: ignore[arg-type]
            if len(self._chosen) < _MAX_CHOSEN:
                self._chosen[mask] = chosen
        return chosen


class _Union:
    """Alternatives searched one by one, with the matches of ``re.compile("|".join(...))``:
    the leftmost match of any, and of those starting there, the first alternative's (each
    alternative's own leftmost match is where the union would find it, since ``re`` tries
    the alternatives in order at each position). No cue alternative can match the empty
    string (a test checks), so :meth:`finditer` simply goes on from each match's end."""

    __slots__ = ("patterns",)

    def __init__(self, patterns: tuple[re.Pattern[str], ...]) -> None:
        self.patterns = patterns

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        best = None
        for pattern in self.patterns:
            m = pattern.search(text, pos)
            if m is not None and (best is None or m.start() < best.start()):
                best = m
        return best

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        pos = 0
        while (m := self.search(text, pos)) is not None:
            yield m
            pos = m.end()


class _Built(NamedTuple):
    """A family's alternatives and their keys as bit masks (bit i: alternative i): the
    alternatives without keys, each key word's alternatives and all key words, each key
    literal's alternatives, the alternatives that open with a digit (key :data:`DIGIT`), and
    all of them. ``patterns`` holds each alternative once compiled."""

    written: tuple[str, ...]
    always: int
    by_word: dict[str, int]
    words: frozenset[str]
    literals: tuple[tuple[str, int], ...]
    digits: int
    full: int
    patterns: list[re.Pattern[str] | None]


# The key of an alternative that opens with a digit (``\b\d+ times``): any character ``\d``
# matches, which is not one literal.
DIGIT = "\\d"
_any_digit = re.compile(r"\d").search
_NOT_DIGITS = bytes(ch for ch in range(256) if ch not in b"0123456789")


def _has_digit(lower: str) -> bool:
    """Whether ``lower`` holds a character ``\\d`` matches: of an ASCII text, whether
    deleting all but 0-9 leaves anything, which takes 40% of the time of the search."""
    if lower.isascii():
        return bool(lower.encode("ascii").translate(None, _NOT_DIGITS))
    return _any_digit(lower) is not None


def _build(written: tuple[str, ...]) -> _Built:
    alternatives = _alternatives(written)
    always, by_word, by_literal = 0, {}, {}
    for bit, alternative in enumerate(alternatives):
        keys = _keys(alternative)
        if keys is None:
            always |= 1 << bit
            continue
        for word in keys[0]:
            by_word[word] = by_word.get(word, 0) | 1 << bit
        for literal in keys[1]:
            by_literal[literal] = by_literal.get(literal, 0) | 1 << bit
    digits = by_literal.pop(DIGIT, 0)
    return _Built(
        alternatives,
        always,
        by_word,
        frozenset(by_word),
        tuple(by_literal.items()),
        digits,
        (1 << len(alternatives)) - 1,
        [None] * len(alternatives),
    )


def _alternatives(written: tuple[str, ...]) -> tuple[str, ...]:
    """The written patterns split into alternatives (:func:`_split`), in order: a list of
    words (``\\b(?:outage|glitch\\w*|...)\\b``) becomes one alternative a word, so that
    a text runs only the few whose words occur, each with a literal prefix ``re`` skips
    ahead to, instead of trying every word at every position.

    A pattern whose alternatives would together be very long, by copying a long tail once
    a word (``\\b(?:didn'?t|...)\\s+`` and the 60 verbs after it: 24,500 characters), is
    only cut at its top-level bars: compiling its 29 copies of the verbs took about as long
    as compiling all the other families' alternatives.
    """
    out: list[str] = []
    for pattern in written:
        pieces = _split(pattern)
        if sum(map(len, pieces)) > _MAX_SPLIT:
            pieces = _bars(pattern, 0) or [pattern]
        out += pieces
    return tuple(out)


_MAX_SPLIT = 5_000  # characters a pattern's alternatives may have in all

_QUANTIFIERS = ("?", "*", "+", "{")
_METACHARACTERS = frozenset("\\.^$*+?{}[]|()")


def _keys(alternative: str) -> tuple[frozenset[str], frozenset[str]] | None:
    """Words and literals one of which opens every match of ``alternative``, or None when
    that is not read here (then the alternative runs whenever its family does).

    An alternative opening with ``\\b`` (and look-behinds, which only narrow it) followed
    by a group ``(?:a|b)`` that is not quantified has a key for each branch; otherwise its
    body is one branch. A branch opening with a run of letters and digits gives that run
    as a word when a word boundary, a space, an apostrophe or ``\\s`` surely follows it
    (see :func:`_branch_key`), and as a literal otherwise; one opening with ``\\d`` gives
    :data:`DIGIT`. An alternative opening without ``\\b`` gives its literal head ("#",
    "@", an emoji)."""
    if not alternative.startswith("\\b"):
        head = _literal_head(alternative)
        return (frozenset(), frozenset((head,))) if head else None
    body = alternative[2:]
    body = body[re.match(_LOOKBEHINDS, body).end() :]  # type: ignore[union-attr]
    branches = [(body, "")]
    if body.startswith("(?:"):
        close = _closing(body, 0)
        if close is None or body[close + 1 : close + 2] in _QUANTIFIERS:
            return None
        inner = _bars(body[3:close], 0)
        if not inner:
            return None
        branches = [(branch, body[close + 1 :]) for branch in inner]
    words, literals = set(), set()
    for branch, after in branches:
        key = _branch_key(branch, after)
        if key is None:
            return None
        (words if key[1] else literals).add(key[0])
    return frozenset(words), frozenset(literals)


def _branch_key(branch: str, after: str) -> tuple[str, bool] | None:
    """The run of letters and digits that opens ``branch`` (followed by ``after``, what
    follows the group), and whether it is a whole word of the text: the match opens after
    a word boundary, and what follows the run is surely not a letter or digit. None when the
    run is empty, or a single letter (as a literal it would occur nearly always). A branch
    opening with ``\\d`` gives the literal :data:`DIGIT`."""
    if branch.startswith("\\d"):
        return DIGIT, False
    run = re.match(r"[a-z0-9]*", branch).group(0)  # type: ignore[union-attr]
    rest = branch[len(run) :] or after
    if rest[:1] in _QUANTIFIERS:
        run = run[:-1]  # the last letter is optional or repeated: not part of the run
        return (run, False) if len(run) > 1 else None
    if not run:
        return None
    optional = rest[1:2] in _QUANTIFIERS
    if rest.startswith("\\b") or (rest[:1] in (" ", "'") and not optional):
        return run, True
    if rest.startswith("\\s") and rest[2:3] not in ("?", "*", "{"):
        return run, True
    return (run, False) if len(run) > 1 else None


def _literal_head(pattern: str) -> str | None:
    """The literal characters that open every match of ``pattern``: its leading characters
    that are not special to ``re`` (the last dropped when a quantifier follows it), if
    they are two or more, or one that is neither a letter nor a digit ("#", "@", an
    emoji); else None."""
    end = 0
    while end < len(pattern) and pattern[end] not in _METACHARACTERS:
        end += 1
    if pattern[end : end + 1] in _QUANTIFIERS:
        end -= 1
    head = pattern[:end]
    if len(head) > 1 or (head and not head.isalnum()):
        return head
    return None


@dataclass(frozen=True, slots=True)
class Cue:
    """One family found in a text, with the first text that matched."""

    family: str
    match: str
    weight: float


_cue = maker(Cue)


def family(name: str, weight: float, triggers: str, *patterns: str, chars: str = "") -> Family:
    """Build a family; ``triggers`` is a space-separated word list, ``chars`` characters
    (emoji, ``*``) that also trigger it."""
    return Family(name, weight, frozenset(triggers.split()), patterns, chars)


def _split(pattern: str) -> list[str]:
    """``pattern`` as alternatives that together match what it matches, in its order.

    ``A|B`` gives ``A`` and ``B``; ``\\b(?:x|y)R`` gives ``\\bxR`` and ``\\byR`` (and
    ``(?:x|y)R`` gives ``xR`` and ``yR``). Either way,
    at each position the first alternative that matches is the one the pattern's own
    backtracking would have taken, so the first match and each match of ``finditer`` are
    the same. Patterns with capturing groups or a shape not read here are returned whole.
    """
    if re.search(_CAPTURING, pattern):
        return [pattern]
    top = _bars(pattern, 0)
    if top is None:
        return [pattern]
    if len(top) > 1:
        return [piece for part in top for piece in _split(part)]
    lead = re.match(_LEAD, pattern).group(0)  # type: ignore[union-attr]
    if not pattern.startswith("(?:", len(lead)):
        return [pattern]
    close = _closing(pattern, len(lead))
    if close is None or pattern[close + 1 : close + 2] in ("?", "*", "+", "{"):
        return [pattern]
    branches = _bars(pattern[len(lead) + 3 : close], 0)
    if branches is None or len(branches) < 2:
        return [pattern]
    rest = pattern[close + 1 :]
    return [piece for b in branches for piece in _split(lead + b + rest)]


def _structure(pattern: str, start: int = 0) -> Iterator[tuple[int, str]]:
    """Each character of ``pattern`` from ``start`` that is neither escaped nor inside a
    character class, with its index. Raises ``ValueError`` at a class left open."""
    i = start
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            close = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] != "^" else i + 3)
            if close < 0:
                raise ValueError(f"unclosed class at {i}")
            i = close + 1
            continue
        yield i, ch
        i += 1


def _bars(pattern: str, depth: int) -> list[str] | None:
    """``pattern`` cut at its ``|`` outside any group or class; None if unbalanced."""
    parts, start = [], 0
    try:
        for i, ch in _structure(pattern):
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth < 0:
                    return None
            elif ch == "|" and depth == 0:
                parts.append(pattern[start:i])
                start = i + 1
    except ValueError:
        return None
    if depth:
        return None
    parts.append(pattern[start:])
    return parts


def _closing(pattern: str, open_at: int) -> int | None:
    """The index of the ``)`` that closes the group opening at ``open_at``."""
    depth = 0
    try:
        for i, ch in _structure(pattern, open_at):
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    return i
    except ValueError:
        return None
    return None


def _skip_ahead(pattern: str) -> str:
    """``pattern`` rewritten so that ``re`` can skip ahead to where it may match.

    A leading ``\\b`` stops ``re`` from looking for a literal prefix, so it tries the
    pattern at every position. Before a word ``w`` it is the same as ``w(?<!\\ww)``
    (no word character just before ``w``), which starts with the literal: ``\\bagain\\b``
    becomes ``again(?<!\\wagain)\\b``, and ``\\b(?:great|good) job`` becomes
    ``(?:g(?:reat(?<!\\wgreat)|ood(?<!\\wgood))) job``, whose first letters ``re`` looks
    for (branches gathered by their first letter: :func:`_by_first_letter`). Patterns of
    any other shape are returned as they are.
    """
    if not pattern.startswith("\\b"):
        return pattern
    behind = re.match(_LOOKBEHINDS, pattern[2:]).group(0)  # type: ignore[union-attr]
    if behind:
        # "\\b(?<!of )w" is "w(?<!\\ww)(?<!of w)": the look-behinds move after the word.
        rewritten = _behind(pattern[2 + len(behind) :])
        if rewritten is None:
            return pattern
        head = re.match(r"\\d|[a-z0-9 ]+", rewritten).group(0)  # type: ignore[union-attr]
        moved = "".join(f"{b[:-1]}{head})" for b in re.findall(r"\(\?<[!=][a-z ]+\)", behind))
        at = rewritten.index(")") + 1
        return rewritten[:at] + moved + rewritten[at:]
    body = pattern[2:]
    if not body.startswith("(?:"):
        return _behind(body) or pattern
    depth, i = 0, 0
    branches, start = [], 3
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            i += 2  # an escape: no parenthesis or bar of the group's own
            continue
        if ch == "[":
            close = body.find("]", i + 2)
            if close < 0:
                return pattern
            i = close + 1
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                branches.append(body[start:i])
                break
        elif ch == "|" and depth == 1:
            branches.append(body[start:i])
            start = i + 1
        i += 1
    else:
        return pattern
    if body[i + 1 : i + 2] in ("?", "*", "+", "{"):
        return pattern  # the group may match nothing: the boundary then applies later
    rewritten = [_behind(b) for b in branches]
    if not all(rewritten):
        return pattern
    return _by_first_letter(rewritten) + body[i + 1 :]  # type: ignore[arg-type]


def _by_first_letter(branches: list[str]) -> str:
    """The group ``(?:b1|b2|...)`` of ``branches``, each opening with a letter or digit of
    its own (as :func:`_behind` writes them), with the branches that open alike gathered
    under that character, in their order: ``(?:d(?:idn'?t|o not)|not)``. Branches opening
    with ``\\d`` are left as they are.

    At each position it tries, ``re`` checks the first character of each branch in turn;
    the 29 negations that open "negated service verb" cost 29 checks at every d, w, c, i,
    h, n, u and f of a text, and 8 once gathered (its search took 40% less time). Branches
    that open with different characters never match at the same position, so the branches
    tried there, and their order, are the same: so are the matches.
    """
    if any(branch.startswith("\\") for branch in branches):
        return "(?:" + "|".join(branches) + ")"  # \d and a digit may open the same match
    heads: dict[str, list[str]] = {}
    for branch in branches:
        heads.setdefault(branch[0], []).append(branch[1:])
    gathered = (
        h + (rest[0] if len(rest) == 1 else f"(?:{'|'.join(rest)})") for h, rest in heads.items()
    )
    return "(?:" + "|".join(gathered) + ")"


def _behind(body: str) -> str | None:
    """``body`` (what followed a ``\\b``) with the boundary as a look-behind after its
    leading run of letters, digits and spaces, or after a leading ``\\d``; None when it has
    neither."""
    if body.startswith("\\d"):
        # A digit is a word character, like a letter: "\\b\\d+" is "\\d(?<!\\w\\d)\\d*".
        after = body[2:3]
        if after == "+":
            return "\\d(?<!\\w\\d)\\d*" + body[3:]
        return None if after in ("?", "*", "{") else "\\d(?<!\\w\\d)" + body[2:]
    run = re.match(_LITERAL_RUN, body)
    if run is None:
        return None
    word = run.group(0)
    if body[len(word) : len(word) + 1] in ("?", "*", "+", "{") and len(word) > 0:
        word = word[:-1]  # the last letter is quantified: not part of the literal
    if not word or word[0] == " ":
        return None
    return f"{word}(?<!\\w{word}){body[len(word) :]}"


# Patterns that read the cue patterns, used when a family's pattern is first built: given
# as text, so that importing this module compiles none of them (re caches them).
_LITERAL_RUN = r"[a-z0-9 ]+"
# An opening parenthesis that is not escaped and not "(?": a capturing group (the cue
# patterns hold no parenthesis inside a character class).
_CAPTURING = r"(?<!\\)(?:\\\\)*\((?!\?)"
_LOOKBEHINDS = r"(?:\(\?<[!=][a-z ]+\))*"
_LEAD = r"(?:\\b(?:\(\?<[!=][a-z ]+\))*)?"


def scan(families: tuple[Family, ...], text: Prepared) -> list[Cue]:
    """The families present in ``text``, each once, in table order."""
    found = []
    lower = text.lower
    for fam in triggered(families, text):
        pattern = fam.narrowed(text)
        if pattern is not None and (m := pattern.search(lower)) is not None:
            matched = m[0]
            found.append(fam._cues.get(matched) or fam.cue(matched))
    return found


def triggered(families: tuple[Family, ...], text: Prepared) -> list[Family]:
    """The families of ``families`` whose triggers occur in ``text``, in table order: one
    set intersection with all their trigger words, instead of one check a family; each
    trigger word's families are a bit mask, and the list for each mask is kept."""
    index = _indexes.get(id(families))
    if index is None or index[0] is not families:
        index = _indexes[id(families)] = (families, *_index(families), {})
    _, words, by_word, chars, chosen = index
    mask = 0
    # isdisjoint makes no set and stops at the first trigger word: a text that triggers no
    # family (a third of them for the complaint families, three quarters for triage's)
    # skips the intersection.
    if not words.isdisjoint(text.words):
        for word in words.intersection(text.words):
            mask |= by_word[word]
    lower = text.lower
    for ch, bits in chars[0] if lower.isascii() else chars[1]:
        if ch in lower:
            mask |= bits
    if not mask:
        return []
    found = chosen.get(mask)
    if found is None:
        found = [families[i] for i in range(mask.bit_length()) if mask >> i & 1]
        if len(chosen) < _MAX_CHOSEN:
            chosen[mask] = found
    return found


def _index(
    families: tuple[Family, ...],
) -> tuple[frozenset[str], dict[str, int], tuple[tuple[tuple[str, int], ...], ...]]:
    """All the trigger words, each word's families, and each trigger character's families:
    those an ASCII text may hold (most trigger characters are emoji), and all of them."""
    by_word: dict[str, int] = {}
    by_char: dict[str, int] = {}
    for i, fam in enumerate(families):
        for word in fam.triggers:
            by_word[word] = by_word.get(word, 0) | 1 << i
        for ch in fam.chars:
            by_char[ch] = by_char.get(ch, 0) | 1 << i
    chars = tuple(by_char.items())
    return frozenset(by_word), by_word, (tuple(c for c in chars if c[0].isascii()), chars)


# Lists of triggered families (or a family's alternatives) kept, by bit mask; and cues kept
# by the text they matched, a family.
_MAX_CHOSEN = 4096
_indexes: dict[int, tuple[tuple[Family, ...], frozenset[str], dict, tuple, dict]] = {}
