"""Text clean-up shared by connectors: HTML to plain text, untrusted text made safe."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from emberwatch.text import snippet

# Elements that end a line of text, and table cells, which end a word: neither may run two
# words together ("cell1cell2", "Titletext") where brand matching would miss them.
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "details",
        "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
        "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "legend", "li", "main",
        "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "tfoot", "thead",
        "tr", "ul",
    }
)  # fmt: skip
_CELL_TAGS = frozenset({"td", "th"})
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
        elif tag in _CELL_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"} and self._skip:
            self._skip -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag in _CELL_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str | None) -> str:
    """Reduce HTML to plain text: tags dropped, entities decoded once, whitespace tidied.

    Once: the parser decodes each character reference as it reads the markup, so
    ``&amp;lt;!channel&amp;gt;`` (HTML for the characters ``&lt;!channel&gt;``) stays
    ``&lt;!channel&gt;``, and ``&lt;!channel&gt;`` becomes ``<!channel>``, text that each
    channel escapes for its format. Block elements end a line and table cells a word.
    """
    if not markup:
        return ""
    if "<" not in markup and "&" not in markup:
        return markup.strip()
    collector = _TextCollector()
    collector.feed(markup)
    collector.close()
    return plain_text("".join(collector.parts))


def plain_text(text: str | None) -> str:
    """Text that is not HTML, tidied as :func:`html_to_text` tidies: nothing decoded."""
    if not text:
        return ""
    lines = (_squeeze(line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def feed_text(value: str | None, content_type: str | None) -> str:
    """A feed field as plain text, by the type the feed gave it: HTML (or XHTML) is
    reduced with :func:`html_to_text`; plain text is only tidied, so its ``&lt;`` and
    ``<b>`` stay the characters its author wrote."""
    if content_type in ("text/plain", "text"):
        return plain_text(value)
    return html_to_text(value)


def _squeeze(line: str) -> str:
    """Runs of spaces and tabs as one space."""
    # Only run the expression where there is something to squeeze: on a long comment it
    # cost more than parsing the markup.
    if "  " in line or "\t" in line or "\f" in line or "\v" in line:
        return _SPACES.sub(" ", line)
    return line


__all__ = ["feed_text", "html_to_text", "snippet"]
