"""Text clean-up shared by connectors: HTML to plain text, untrusted text made safe."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_BLOCK_TAGS = {"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "blockquote", "pre"}
_SPACES = re.compile(r"[ \t\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style"}:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"} and self._skip:
            self._skip -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str | None) -> str:
    """Reduce HTML to plain text: tags dropped, entities decoded, whitespace tidied."""
    if not markup:
        return ""
    if "<" not in markup and "&" not in markup:
        return markup.strip()
    collector = _TextCollector()
    collector.feed(markup)
    collector.close()
    text = html.unescape("".join(collector.parts))
    lines = (_squeeze(line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _squeeze(line: str) -> str:
    """Runs of spaces and tabs as one space."""
    # Only run the expression where there is something to squeeze: on a long comment it
    # cost more than parsing the markup.
    if "  " in line or "\t" in line or "\f" in line or "\v" in line:
        return _SPACES.sub(" ", line)
    return line


def snippet(body: bytes | str, limit: int = 120) -> str:
    """A short, single-line, printable excerpt of a response body for log lines."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = _SPACES.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
