"""Cheap cue detection shared by the complaint detector and triage.

A text is lower-cased and split into words once (:func:`prepare`). Each cue family names
the trigger words without which its pattern cannot match, so most families cost one set
check and only the families whose triggers occur run their regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from re import _constants as _c  # the parser behind re.compile (Python 3.11+)
from re import _parser
from typing import Any, NamedTuple

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
    pieces: frozenset[str] = frozenset()


def maker(cls: type) -> Callable[..., Any]:
    """A function that makes an instance of the frozen, slotted dataclass ``cls`` from all
    its fields, in order, as ``cls(*values)`` does, for a class with no ``__post_init__``:
    it sets each slot through its descriptor, where the frozen ``__init__`` goes through
    ``object.__setattr__`` once a field. For the objects made once or more a mention."""
    names = [f.name for f in fields(cls)]
    if not all(type(cls.__dict__.get(n)).__name__ == "member_descriptor" for n in names):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__")
    space: dict[str, Any] = {"new": object.__new__, "cls": cls}
    body = []
    for i, name in enumerate(names):
        space[f"set{i}"] = cls.__dict__[name].__set__
        body.append(f"    set{i}(out, {name})\n")
    source = f"def make({', '.join(names)}):\n    out = new(cls)\n{''.join(body)}    return out\n"
    exec(source, space)  # generated from the field names, as dataclasses does
    make = space["make"]
    make.__name__ = make.__qualname__ = f"make_{cls.__name__}"
    return make  # type: ignore[no-any-return]


_prepared = maker(Prepared)


def prepare(text: str) -> Prepared:
    lower = text[:MAX_CHARS].lower().replace("\u2019", "'")
    words = frozenset(_WORD.findall(lower))
    if "'" not in lower:
        return _prepared(lower, words, words)
    parts = {p for w in words if "'" in w for p in w.split("'")}
    return _prepared(lower, words, words.union(parts))


@dataclass(frozen=True, slots=True)
class Family:
    """A cue family: a name, a weight in log-odds, trigger words and one pattern.

    ``written`` are the patterns as written. On first use they are split into
    ``alternatives`` (:func:`_split`), rewritten to let ``re`` skip ahead, and given
    ``gates``: for each, the words one of which opens every match of it, or None when that
    is not known (see :func:`_words_opening`). :meth:`narrowed` keeps only the alternatives
    whose words occur. Building waits for first use so that importing the scorer (and
    ``emberwatch score`` on empty input) compiles nothing.
    """

    name: str
    weight: float
    triggers: frozenset[str]
    written: tuple[str, ...]
    chars: str = ""
    _built: list[_Built] = field(default_factory=list, compare=False, repr=False)
    _subsets: dict[int, re.Pattern[str]] = field(default_factory=dict, compare=False, repr=False)
    _singles: dict[int, re.Pattern[str]] = field(default_factory=dict, compare=False, repr=False)
    _seen: dict[int, int] = field(default_factory=dict, compare=False, repr=False)
    _unions: dict[int, _Union] = field(default_factory=dict, compare=False, repr=False)

    def _build(self) -> _Built:
        if not self._built:
            self._built.append(_build(self.name, self.written))
        return self._built[0]

    @property
    def pattern(self) -> re.Pattern[str]:
        """All the alternatives as one pattern, compiled on first use."""
        pattern = self._singles.get(-1)
        if pattern is None:
            pattern = self._singles[-1] = re.compile("|".join(self._build().alternatives))
        return pattern

    @property
    def alternatives(self) -> tuple[str, ...]:
        return self._build().alternatives

    @property
    def gates(self) -> tuple[frozenset[str] | None, ...]:
        return self._build().gates

    def triggered(self, text: Prepared) -> bool:
        """Whether the pattern can match: a trigger word or trigger character occurs."""
        if not self.triggers.isdisjoint(text.words):
            return True
        return any(ch in text.lower for ch in self.chars)

    def narrowed(self, text: Prepared) -> re.Pattern[str] | _Union | None:
        """The family's pattern without the alternatives that cannot match ``text``; None
        when none can. Its first match, and each of its matches, are the full pattern's,
        since the alternatives left out match nowhere in ``text``.

        An alternative whose every match opens with one of its gate words after a word
        boundary can match only when that word is among the text's ``pieces``; one whose
        every match opens with one of a few literals ("order", "@"), only when one of them
        occurs in the text.
        """
        built = self._built[0] if self._built else self._build()
        if not built.gates:
            return self.pattern
        always, by_word, gate_words, full, openings = built.gating
        mask = always
        for word in gate_words.intersection(text.pieces):
            mask |= by_word[word]
        lower = text.lower
        for opening, bits in openings:
            if opening in lower:
                mask |= bits
        if mask == full:
            return self.pattern
        if not mask:
            return None
        pattern = self._subsets.get(mask)
        if pattern is not None:
            return pattern
        if not mask & (mask - 1):  # a single alternative: its own pattern
            return self._alternative(mask.bit_length() - 1)
        # A union is compiled (hundreds of microseconds) only for a mask seen often; until
        # then, and past the cache, the alternatives run one by one.
        seen = self._seen[mask] = self._seen.get(mask, 0) + 1
        if seen >= _COMPILE_AFTER and len(self._subsets) < _MAX_SUBSETS:
            chosen = [a for bit, a in enumerate(self.alternatives) if mask >> bit & 1]
            pattern = self._subsets[mask] = re.compile("|".join(chosen))
            del self._seen[mask]
            return pattern
        if len(self._seen) > _MAX_SEEN:
            self._seen.clear()
        # The alternatives of a mask, kept: building the tuple is most of a _Union's cost.
        union = self._unions.get(mask)
        if union is None:
            union = _Union(
                tuple(self._alternative(bit) for bit in range(mask.bit_length()) if mask >> bit & 1)
            )
            if len(self._unions) < _MAX_SEEN:
                self._unions[mask] = union
        return union

    def _alternative(self, bit: int) -> re.Pattern[str]:
        pattern = self._singles.get(bit)
        if pattern is None:
            pattern = self._singles[bit] = re.compile(self.alternatives[bit])
        return pattern


class _Union:
    """Alternatives searched one by one, with the matches of ``re.compile("|".join(...))``:
    the leftmost match of any, and of those starting there, the first alternative's (each
    alternative's own leftmost match is where the union would find it, since ``re`` tries
    the alternatives in order at each position). Used only for alternatives that cannot
    match the empty string, so :meth:`finditer` simply goes on from each match's end."""

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


class _Built(NamedTuple):
    """A family's patterns, split, rewritten and gated (see :class:`Family`). ``gating``
    holds the gates as bit masks: the alternatives without one, each gate word's
    alternatives, all gate words, all alternatives, and the alternatives gated by a
    literal that opens every match of theirs (see :func:`_literals_opening`), by literal."""

    alternatives: tuple[str, ...]
    gates: tuple[frozenset[str] | None, ...]
    gating: tuple[int, dict[str, int], frozenset[str], int, tuple[tuple[str, int], ...]]


def _build(name: str, written: tuple[str, ...]) -> _Built:
    patterns = tuple(piece for p in written for piece in _split(p))
    parsed = [_parser.parse(p) for p in patterns]  # once each: parsing is most of the cost
    for p, items in zip(patterns, parsed, strict=True):  # _Union relies on it
        if items.getwidth()[0] == 0:  # (_skip_ahead moves only zero-width assertions)
            raise ValueError(f"cue pattern {p!r} of {name!r} can match the empty string")
    starts = [_strings(list(items), 64)[0] for items in parsed]
    gates = tuple(map(_words_opening, starts))
    openings = [_literals_opening(s) for s in starts]
    if all(g is None for g in gates) and all(o is None for o in openings):
        gates = ()
    always, by_word, by_opening = 0, {}, {}
    for bit, gate in enumerate(gates):
        if gate is not None:
            for word in gate:
                by_word[word] = by_word.get(word, 0) | 1 << bit
        elif (opens := openings[bit]) is not None:
            for opening in opens:
                by_opening[opening] = by_opening.get(opening, 0) | 1 << bit
        else:
            always |= 1 << bit
    patterns = tuple(map(_skip_ahead, patterns))
    return _Built(
        patterns,
        gates,
        (always, by_word, frozenset(by_word), (1 << len(gates)) - 1, tuple(by_opening.items())),
    )


def _split(pattern: str) -> list[str]:
    """``pattern`` as alternatives that together match what it matches, in its order.

    ``A|B`` gives ``A`` and ``B``; ``\\b(?:x|y)R`` gives ``\\bxR`` and ``\\byR`` (and
    ``(?:x|y)R`` gives ``xR`` and ``yR``). Either way,
    at each position the first alternative that matches is the one the pattern's own
    backtracking would have taken, so the first match and each match of ``finditer`` are
    the same. Split this way, a long list of words (``\\b(?:outage|glitch\\w*|...)\\b``)
    becomes one alternative a word, each gated by its word (see :meth:`Family.narrowed`),
    so ``re`` tries only the few whose words occur instead of all of them at each letter.
    Patterns with capturing groups or a shape not read here are returned whole.
    """
    if _CAPTURING.search(pattern):
        return [pattern]
    top = _bars(pattern, 0)
    if top is None:
        return [pattern]
    if len(top) > 1:
        return [piece for part in top for piece in _split(part)]
    lead = _LEAD.match(pattern).group(0)  # type: ignore[union-attr]
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
    ``(?:great(?<!\\wgreat)|good(?<!\\wgood)) job``, whose first letters ``re`` looks
    for. Patterns of any other shape are returned as they are.
    """
    if not pattern.startswith("\\b"):
        return pattern
    behind = _LOOKBEHINDS.match(pattern, 2).group(0)  # type: ignore[union-attr]
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
    return "(?:" + "|".join(rewritten) + ")" + body[i + 1 :]  # type: ignore[arg-type]


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
    run = _LITERAL_RUN.match(body)
    if run is None:
        return None
    word = run.group(0)
    if body[len(word) : len(word) + 1] in ("?", "*", "+", "{") and len(word) > 0:
        word = word[:-1]  # the last letter is quantified: not part of the literal
    if not word or word[0] == " ":
        return None
    return f"{word}(?<!\\w{word}){body[len(word) :]}"


_LITERAL_RUN = re.compile(r"[a-z0-9 ]+")
# An opening parenthesis that is not escaped and not "(?": a capturing group (the cue
# patterns hold no parenthesis inside a character class).
_CAPTURING = re.compile(r"(?<!\\)(?:\\\\)*\((?!\?)")
_LOOKBEHINDS = re.compile(r"(?:\(\?<[!=][a-z ]+\))*")
_LEAD = re.compile(r"(?:\\b(?:\(\?<[!=][a-z ]+\))*)?")
_MAX_SUBSETS = 256  # unions of alternatives compiled and kept a family; beyond, see _Union
_COMPILE_AFTER = 16  # texts with the same alternatives left before their union is compiled
_MAX_SEEN = 4096  # masks counted a family; the counts start again beyond
_TOKEN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_EDGE = "\x01"  # stands for a zero-width assertion in _strings' output
_SPACE = "\x02"  # stands for \s (any whitespace character) in _strings' output
_SPACE_CLASS = [(_c.CATEGORY, _c.CATEGORY_SPACE)]


def _words_opening(starts: set[str]) -> frozenset[str] | None:
    """The words that open every match of a pattern, or None when it is not that simple;
    ``starts`` are the texts :func:`_strings` finds the pattern can start with.

    The pattern must start with a word boundary, and each text it can match must start with
    a run of ``[a-z0-9]`` closed by a boundary or by a character that is neither a letter
    nor a digit. Then that run is one of the text's :attr:`Prepared.pieces`: a word
    :func:`prepare` finds (``[a-z0-9']+``) or, when an apostrophe is next to it ("didn't",
    "'great'"), a part of one between apostrophes; the boundary before the run means no
    word character precedes it, so the run starts a word or follows an apostrophe.
    """
    words = set()
    for text in starts:
        if not text.startswith(_EDGE):
            return None
        rest = text.lstrip(_EDGE)
        end = 0
        while end < len(rest) and rest[end] in _TOKEN:
            end += 1
        if end == 0 or end == len(rest):
            return None
        words.add(rest[:end])
    return frozenset(words) if words else None


def _literals_opening(starts: set[str]) -> frozenset[str] | None:
    """Literals of two characters or more one of which opens every match of a pattern
    (after any zero-width assertion), or None when there are none: ``order\\s*...`` gives
    ``order``, ``(?:^| )thanks`` gives ``thanks`` and `` thanks``; ``starts`` as for
    :func:`_words_opening`."""
    out = set()
    for text in starts:
        literal = text.lstrip(_EDGE).split(_EDGE, 1)[0].split(_SPACE, 1)[0]
        if len(literal) < 2:
            return None
        out.add(literal)
    return frozenset(out) if out else None


def _strings(items: list, limit: int) -> tuple[set[str], bool]:
    """The texts that ``items`` (parsed) can match, as far as they are literal: a set of
    prefixes and whether they are whole. Zero-width assertions at a boundary or an edge of
    the text become :data:`_EDGE`, ``\\s`` becomes :data:`_SPACE` (neither is a letter, a
    digit or an apostrophe); look-arounds are skipped (they only narrow matches)."""
    out = {""}
    for op, av in items:
        if op is _c.AT:
            if av is _c.AT_NON_BOUNDARY:
                return out, False
            out = {s + _EDGE for s in out}
            continue
        if op is _c.ASSERT or op is _c.ASSERT_NOT:
            continue
        if op is _c.LITERAL:
            more, whole = {chr(av)}, True
        elif op is _c.IN and av == _SPACE_CLASS:
            more, whole = {_SPACE}, True
        elif op is _c.MAX_REPEAT and av[0] >= 1 and list(av[2]) == [(_c.IN, _SPACE_CLASS)]:
            return {s + _SPACE for s in out}, False  # \s+: at least one, then unknown
        elif op is _c.SUBPATTERN:
            more, whole = _strings(list(av[-1]), limit)
        elif op is _c.BRANCH:
            more, whole = set(), True
            for branch in av[1]:
                got, done = _strings(list(branch), limit)
                more |= got
                whole = whole and done
        elif op is _c.IN and all(o is _c.LITERAL for o, _ in av):
            more, whole = {chr(v) for _, v in av}, True
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and av[0] == 0 and av[1] == 1:
            got, whole = _strings(list(av[2]), limit)
            more = got | {""}
            if not whole:
                return out | {a + b for a in out for b in got}, False
        else:
            return out, False
        out = {a + b for a in out for b in more}
        if len(out) > limit or not whole:
            return out, False
    return out, True


def scan(families: tuple[Family, ...], text: Prepared) -> list[Cue]:
    """The families present in ``text``, each once, in table order."""
    found = []
    lower = text.lower
    for fam in triggered(families, text):
        pattern = fam.narrowed(text)
        m = pattern.search(lower) if pattern is not None else None
        if m:
            found.append(_cue(fam.name, m.group(0).strip(), fam.weight))
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
    for word in words.intersection(text.words):
        mask |= by_word[word]
    for ch, bits in chars:
        if ch in text.lower:
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
) -> tuple[frozenset[str], dict[str, int], tuple[tuple[str, int], ...]]:
    by_word: dict[str, int] = {}
    by_char: dict[str, int] = {}
    for i, fam in enumerate(families):
        for word in fam.triggers:
            by_word[word] = by_word.get(word, 0) | 1 << i
        for ch in fam.chars:
            by_char[ch] = by_char.get(ch, 0) | 1 << i
    return frozenset(by_word), by_word, tuple(by_char.items())


_MAX_CHOSEN = 4096  # lists of triggered families kept, by bit mask
_indexes: dict[int, tuple[tuple[Family, ...], frozenset[str], dict, tuple, dict]] = {}
