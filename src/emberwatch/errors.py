"""Every exception Emberwatch raises on purpose derives from :class:`EmberwatchError`.

::

    EmberwatchError
    ├── ConfigError              the config file is missing, unreadable or invalid
    ├── SchemaOutOfDateError     the database needs ``emberwatch db upgrade``
    ├── SourceError              one source's poll failed; other sources carry on
    │   ├── NotConfiguredError   a credential or parameter the source needs is absent
    │   ├── FetchError           the HTTP exchange failed (status, Retry-After, retryable)
    │   └── ParseError           the body was not what the API documents
    ├── DeliveryError            a channel could not deliver (retryable or permanent)
    └── LabelError               a team label (or a file of them) is invalid

Messages name the step that failed ("rss: GET feed: HTTP 503") and never carry a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class EmberwatchError(Exception):
    """Base of every error Emberwatch raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a config file: where it is and why it is wrong."""

    key: str
    reason: str

    def render(self, path: str) -> str:
        return f"{path}: {self.key or '<root>'}: {self.reason}"


class ConfigError(EmberwatchError):
    """The config file is missing, unreadable or invalid. Holds every problem found."""

    def __init__(self, path: str, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(p.render(path) for p in problems))


class SchemaOutOfDateError(EmberwatchError):
    """The database schema is older than this release; ``emberwatch db upgrade`` fixes it."""


class SourceError(EmberwatchError):
    """A poll of one source failed. The pipeline records it and moves on to other sources."""


class NotConfiguredError(SourceError):
    """A source lacks a credential or parameter it needs; it is disabled, not crashed."""


@dataclass
class FetchError(SourceError):
    """An HTTP exchange with a source failed.

    ``retryable`` says whether trying again later may help (429, 5xx, timeouts);
    ``retry_after`` is the server's requested wait in seconds, when it gave one.
    ``snippet`` is a short, one-line excerpt of the response body, for log lines;
    ``detail`` is the start of the body (up to 2,000 characters) for a connector to read an
    API's error reason from. Neither ever holds the request's URL or headers.
    """

    message: str
    status: int | None = None
    retryable: bool = True
    retry_after: float | None = None
    snippet: str = ""
    detail: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ParseError(SourceError):
    """A response body is not shaped as the API documents (garbage, HTML, schema drift)."""


@dataclass
class DeliveryError(EmberwatchError):
    """A channel failed to deliver one message.

    The delivery worker alone decides what to do with it: ``permanent`` errors are not
    retried, others are retried with backoff but never sooner than ``retry_after``.
    ``plain_text_fallback`` asks for one more try with a plain-text rendering.
    """

    message: str
    permanent: bool = False
    retry_after: float | None = None
    plain_text_fallback: bool = False
    channel_broken: bool = False
    failed_recipients: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class LabelError(EmberwatchError):
    """A team label, or a line of a labels file, is invalid; the message names the line."""
