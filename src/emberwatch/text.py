"""Untrusted text made inert for each place it is shown.

Everything a mention carries (author, title, text, URL) and everything a person types on an
action page is untrusted. Each output gets one function here, and every package (channels,
alerts, the CLI, the action pages) uses the same ones:

- :func:`one_line`: a field shown on one line (Slack facts, email lines, table cells): line
  breaks become spaces, bidirectional and other control characters go;
- :func:`printable`: a whole multi-line text (an email's text part): only ``\\n`` breaks,
  no control or bidirectional characters;
- :func:`terminal`: one table cell or log line on a terminal;
- :func:`jsonl`: one JSON line whose control characters are all escaped as ``\\uXXXX``;
- :func:`slack_mrkdwn` and :func:`slack_url`: no pings, mentions or forged links in Slack;
- :func:`markdown_text`: no links, styles or code in a service that reads text as Markdown;
- :func:`no_pings`: no ``@everyone``, ``@here`` or ``<@id>`` for a service that pings on them;
- :func:`header_value`: an email header value that cannot start another header;
- :func:`web_link`: a URL safe to show and follow (plain http(s), nothing invisible).

Bidirectional controls can make a line read as something else ("Trojan Source"); line and
paragraph separators break a line where a reader sees none. Neither belongs in one line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from typing import Any

__all__ = [
    "cut",
    "header_value",
    "jsonl",
    "markdown_text",
    "no_pings",
    "one_line",
    "printable",
    "slack_mrkdwn",
    "slack_url",
    "terminal",
    "web_link",
]

# The patterns below are compiled on first use (_compiled): `emberwatch score` imports
# this module for jsonl alone, and compiling them all took 2 ms of its start-up (the
# character classes beyond Latin-1 most of it).
_compiled = cache(re.compile)

# C0 controls but tab and line feed, DEL, and C1.
_CONTROL = r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"
# Terminal escape sequences (CSI, OSC), removed whole so no "[31m" is left behind.
_ANSI = r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x9b[0-?]*[ -/]*[@-~]"
# Bidirectional controls (embeddings, overrides, isolates, marks) and the interlinear
# annotation characters, which hide text between them.
_BIDI = "[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufff9-\ufffb]"
_BREAKS = "\r\n|[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]"
# What JSON writers leave raw with ensure_ascii=False but a terminal or a line-based reader
# takes as a control: DEL, C1, the line and paragraph separators, and the bidi controls.
# Also lone surrogates (an input's "\\ud800" escape), which no UTF-8 stream can write: as
# escapes they stay the same string for a JSON reader, and the line can be written.
_JSON_RAW = "[\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"


def one_line(text: str | None, limit: int | None = None) -> str:
    """A single line for a field such as an author, a title or a quote.

    Line breaks become spaces, so a value cannot start a line of its own (a forged "Respond
    by" or "Acknowledge:" line); escape sequences, bidi and other control characters are
    removed; runs of spaces are collapsed. Escape for the output format afterwards.
    """
    if not text:
        return ""
    line = _compiled(_BREAKS).sub(" ", _compiled(_ANSI).sub("", text))
    line = _compiled(_CONTROL).sub(" ", _compiled(_BIDI).sub("", line))
    line = " ".join(line.split())
    return cut(line, limit) if limit is not None else line


def printable(text: str) -> str:
    """A multi-line text with ``\\n`` as its only line break and no control characters.

    For whole documents Emberwatch wrote (an email's text and HTML parts), whose untrusted
    fields were already made single lines with :func:`one_line`: this is the last guard,
    so a field that missed it still cannot ring a bell, move the cursor or reverse a line.
    """
    text = _compiled(_BREAKS).sub("\n", _compiled(_ANSI).sub("", text))
    return _compiled(_CONTROL).sub("", _compiled(_BIDI).sub("", text.replace("\t", " ")))


def terminal(text: str) -> str:
    """One line printable on a terminal: no escape sequence, control or bidi character."""
    return one_line(text)


def jsonl(value: Any) -> str:
    """One JSON line, UTF-8 kept readable, every control character escaped as ``\\uXXXX``.

    ``json.dumps(..., ensure_ascii=False)`` escapes only C0 controls; C1 (U+0080–U+009F),
    DEL, U+2028/U+2029 and bidi controls would reach the terminal or the next reader raw,
    and a lone surrogate would stop the UTF-8 writer. They can only occur inside JSON
    strings, where ``\\uXXXX`` means the same character.
    The line is ``json.dumps(value, ensure_ascii=False, default=str)``'s, from an encoder
    made once (``emberwatch score`` writes one a mention); an all-ASCII line without DEL
    has nothing to escape and skips the search.
    """
    line = _encode(value)
    if line.isascii() and "\x7f" not in line:
        return line
    return _compiled(_JSON_RAW).sub(_escape, line)


def _escape(found: re.Match[str]) -> str:
    return f"\\u{ord(found[0]):04x}"


def _encoder() -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False, default=str)`` as one function. With the
    C accelerator, its encoder is made once: ``JSONEncoder.encode`` makes one every call,
    which costs as much as encoding a mention's line. No circular-reference check: a JSON
    line is built from parsed JSON and scores, which hold no cycles."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.JSONEncoder(ensure_ascii=False, default=str).encode
    chunks = make(None, str, json.encoder.encode_basestring, None, ": ", ", ", False, False, True)
    return lambda value: "".join(chunks(value, 0))


_encode = _encoder()


def slack_mrkdwn(text: str) -> str:
    """Escape for Slack mrkdwn: no ``<!channel>`` pings, ``<@U…>`` mentions or forged links.

    Slack only treats ``<…>`` as control sequences, so escaping ``&``, ``<`` and ``>`` (in
    that order) is enough to make any text inert.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# What makes Markdown of plain words: links and images ([ ] and <…> autolinks), emphasis and
# strikethrough (* _ ~), code (`), Discord's spoilers (||) and the escape itself.
_MARKDOWN = r"([\\`*_~|\[\]<>])"


def markdown_text(text: str) -> str:
    """Text shown as written by a Markdown reader (CommonMark, Discord, Mattermost…).

    A backslash goes before each character that could start a link, an emphasis, code or a
    spoiler: CommonMark and the chat dialects read any escaped ASCII punctuation as itself,
    so ``[click](https://evil)`` stays words. Block syntax (``#``, ``>``, ``-`` or ``1.`` at
    the start of a line) is left alone: it needs a line of its own, and untrusted fields are
    single lines placed after Emberwatch's own words (:func:`one_line`). A reader that
    does not render Markdown shows the backslashes.
    """
    return _compiled(_MARKDOWN).sub(r"\\\1", text)


def no_pings(text: str) -> str:
    """``@`` as the fullwidth ``＠`` (U+FF20), so text cannot ping anyone.

    Discord webhooks ping ``@everyone``, ``@here`` and ``<@id>`` written in a message, and
    Apprise's Discord plugin finds every ``@word`` in a Markdown body, backslash or not, and
    appends a ping for it that it allows. The fullwidth sign reads the same to a person, and
    neither matches it.
    """
    return text.replace("@", "\uff20")


def web_link(url: str | None) -> str | None:
    """The URL when it is plain http(s) with nothing invisible in it, else None.

    No ``javascript:`` links, no spaces, quotes, angle brackets or pipes (which would end
    an ``href`` or a Slack link), and no control or bidi character (which would show one
    address and hold another).
    """
    url = (url or "").strip()
    if not re.match(r"^https?://[^\s<>\"'|`]+$", url, re.IGNORECASE):
        return None
    if any(_compiled(p).search(url) for p in (_CONTROL, _BIDI, _JSON_RAW)):
        return None
    return url


def slack_url(url: str | None) -> str | None:
    """A URL safe to put inside ``<url|label>``, or None when it is not plain http(s)."""
    safe = web_link(url)
    return safe.replace("&", "&amp;") if safe else None


def header_value(text: str, limit: int = 200) -> str:
    """One line for an email header: CR, LF and other controls removed, then cut."""
    return one_line(text, limit)


def cut(text: str, limit: int) -> str:
    """``text`` at most ``limit`` characters long, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


_RUNS_OF_SPACE = r"[ \t\f\v]+"


def snippet(body: bytes | str, limit: int = 120) -> str:
    """A short, single-line, printable excerpt of a response body for log lines."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = _compiled(_RUNS_OF_SPACE).sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
