"""Make untrusted mention text safe for each place it is shown."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
# Bidirectional controls can make a line read as something else ("Trojan Source"); line and
# paragraph separators break a line where a reader sees none. Neither belongs in one line.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_BREAKS = re.compile("[\r\n\x0b\x0c\x85\u2028\u2029]")


def slack_mrkdwn(text: str) -> str:
    """Escape for Slack mrkdwn: no ``<!channel>`` pings, ``<@U…>`` mentions or forged links.

    Slack only treats ``<…>`` as control sequences, so escaping ``&``, ``<`` and ``>`` (in
    that order) is enough to make any text inert.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_url(url: str | None) -> str | None:
    """A URL safe to put inside ``<url|label>``, or None when it is not plain http(s)."""
    if not url or not re.match(r"^https?://", url, re.IGNORECASE):
        return None
    if any(ch in url for ch in "<>| \n\r\t"):
        return None
    return url.replace("&", "&amp;")


def one_line(text: str | None, limit: int | None = None) -> str:
    """A single line for a field such as an author, a title or a quote.

    Line breaks become spaces, so a value cannot start a line of its own (a forged "Respond
    by" or "Acknowledge:" line); bidi and other control characters are removed; runs of
    spaces are collapsed. Escape for the output format afterwards.
    """
    if not text:
        return ""
    line = _CONTROL.sub(" ", _BIDI.sub("", _BREAKS.sub(" ", text)))
    line = " ".join(line.split())
    return cut(line, limit) if limit is not None else line


def header_value(text: str, limit: int = 200) -> str:
    """One line for an email header: CR, LF and other controls removed, then cut."""
    return one_line(text, limit)


def terminal(text: str) -> str:
    """Printable on a terminal: escape sequences and control characters removed."""
    return _CONTROL.sub(" ", _ANSI.sub("", text.replace("\r\n", "\n").replace("\n", " ")))


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"
