"""Cheap cue detection shared by the complaint detector and triage.

A text is lower-cased and split into words once (:func:`prepare`). Each cue family names
the trigger words without which its pattern cannot match, so most families cost one set
check and only the families whose triggers occur run their regular expression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_CHARS = 20_000
_WORD = re.compile(r"[a-z0-9']+|[#@/]")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A text lower-cased (apostrophes straightened) and its set of words."""

    lower: str
    words: frozenset[str]


def prepare(text: str) -> Prepared:
    lower = text[:MAX_CHARS].lower().replace("\u2019", "'")
    return Prepared(lower, frozenset(_WORD.findall(lower)))


@dataclass(frozen=True, slots=True)
class Family:
    """A cue family: a name, a weight in log-odds, trigger words and one pattern."""

    name: str
    weight: float
    triggers: frozenset[str]
    pattern: re.Pattern[str]
    chars: str = ""

    def triggered(self, text: Prepared) -> bool:
        """Whether the pattern can match: a trigger word or trigger character occurs."""
        if not self.triggers.isdisjoint(text.words):
            return True
        return any(ch in text.lower for ch in self.chars)


@dataclass(frozen=True, slots=True)
class Cue:
    """One family found in a text, with the first text that matched."""

    family: str
    match: str
    weight: float


def family(name: str, weight: float, triggers: str, *patterns: str, chars: str = "") -> Family:
    """Build a family; ``triggers`` is a space-separated word list, ``chars`` characters
    (emoji, ``*``) that also trigger it."""
    return Family(name, weight, frozenset(triggers.split()), re.compile("|".join(patterns)), chars)


def scan(families: tuple[Family, ...], text: Prepared) -> list[Cue]:
    """The families present in ``text``, each once, in table order."""
    found = []
    lower = text.lower
    for fam in triggered(families, text):
        m = fam.pattern.search(lower)
        if m:
            found.append(Cue(fam.name, m.group(0).strip(), fam.weight))
    return found


def triggered(families: tuple[Family, ...], text: Prepared) -> list[Family]:
    """The families of ``families`` whose triggers occur in ``text``, in table order: one
    set intersection with all their trigger words, instead of one check a family."""
    index = _indexes.get(id(families))
    if index is None or index[0] is not families:
        index = _indexes[id(families)] = (families, *_index(families))
    _, words, by_word, chars = index
    hits = words.intersection(text.words)
    if hits:
        chosen = set().union(*map(by_word.__getitem__, hits))
    elif not chars:
        return []
    else:
        chosen = set()
    for ch, positions in chars:
        if ch in text.lower:
            chosen.update(positions)
    return [families[i] for i in sorted(chosen)]


def _index(
    families: tuple[Family, ...],
) -> tuple[frozenset[str], dict[str, tuple[int, ...]], tuple[tuple[str, tuple[int, ...]], ...]]:
    by_word: dict[str, list[int]] = {}
    by_char: dict[str, list[int]] = {}
    for i, fam in enumerate(families):
        for word in fam.triggers:
            by_word.setdefault(word, []).append(i)
        for ch in fam.chars:
            by_char.setdefault(ch, []).append(i)
    return (
        frozenset(by_word),
        {w: tuple(ids) for w, ids in by_word.items()},
        tuple((ch, tuple(ids)) for ch, ids in by_char.items()),
    )


_indexes: dict[int, tuple[tuple[Family, ...], frozenset[str], dict, tuple]] = {}
