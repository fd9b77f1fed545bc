"""Match a mention to the brands it is about: whole words, case-insensitive.

Terms may be words or phrases ("acme", "acme anvils"), handles ("@acme") or hashtags
("#acmefail"). A plain term never matches inside a longer word, handle or hashtag, so
"acme" does not match "acmeville" or "@acmefan"; write the handle to match the handle.
An exclude term that appears vetoes the brand for that mention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from emberwatch.config import Brand
from emberwatch.mention import Mention


def _term_pattern(term: str) -> str:
    escaped = re.escape(term.strip())
    # Word-ish edges: not glued to letters, digits, or (for plain terms) a handle/hashtag sigil.
    left = r"(?<![\w@#])" if term[:1] not in "@#" else r"(?<!\w)"
    return f"{left}{escaped}(?!\\w)"


def _compile(terms: list[str]) -> re.Pattern[str] | None:
    cleaned = [t for t in (t.strip() for t in terms) if t]
    if not cleaned:
        return None
    # Longest first, so "acme anvils" is tried before "acme".
    cleaned.sort(key=len, reverse=True)
    return re.compile("|".join(_term_pattern(t) for t in cleaned), re.IGNORECASE)


@dataclass(frozen=True)
class BrandMatcher:
    """A brand's compiled include and exclude patterns."""

    brand: str
    include: re.Pattern[str] | None
    exclude: re.Pattern[str] | None
    vip_handles: frozenset[str]

    @classmethod
    def build(cls, brand: Brand) -> BrandMatcher:
        return cls(
            brand=brand.name,
            include=_compile(brand.include),
            exclude=_compile(brand.exclude),
            vip_handles=frozenset(_handle(h) for h in brand.vip),
        )

    def matches(self, text: str) -> bool:
        if self.include is None or not self.include.search(text):
            return False
        return not (self.exclude is not None and self.exclude.search(text))

    def is_vip(self, author: str | None) -> bool:
        return bool(author) and _handle(author or "") in self.vip_handles


def _handle(name: str) -> str:
    return name.strip().lstrip("@").lower()


def build_matchers(brands: list[Brand]) -> list[BrandMatcher]:
    return [BrandMatcher.build(b) for b in brands]


def match_brands(mention: Mention, matchers: list[BrandMatcher]) -> list[str]:
    """The names of the brands a mention is about, in config order."""
    text = mention.full_text
    return [m.brand for m in matchers if m.matches(text)]
