"""The channel contract: what every module in :mod:`emberwatch.channels` provides.

A channel formats and classifies; it never retries, waits or writes to the database. The
delivery worker (:mod:`emberwatch.delivery`) claims an outbox row, loads what the row is
about (an incident's :class:`~emberwatch.alerts.view.AlertView`, a :class:`Notice` or a
:class:`Report`), and hands it to :meth:`Channel.send` with an :class:`Envelope`. The
:class:`Outcome` it returns is the only thing the worker reads:

- ``sent``: mark the row sent;
- ``retry``: try again with backoff, never sooner than ``retry_after`` seconds when set;
- ``permanent``: this message can never go (a refused payload, a refused recipient);
- ``broken``: the channel itself is misconfigured (a 404 webhook): the row is kept and
  retried now and then until its deadline, and people are told once through another
  channel.

Everything else a channel declares is read by the config (its ``Settings`` model, under
``[channels.<name>]``), by the default routes (its ``role``), by the alert policy
(``notifies``, ``pages``, ``summary``) and by the worker (``deadline``, ``min_gap``,
``pacing_key``, ``targets``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

import httpx

from emberwatch.errors import DeliveryError
from emberwatch.http_status import classify_status, retry_after_seconds
from emberwatch.settings import StrictModel

if TYPE_CHECKING:
    pass

Status = Literal["sent", "retry", "permanent", "broken"]


@dataclass(frozen=True)
class Notice:
    """A short message Emberwatch wrote itself: a rollup, a broken channel, source health.
    Every line is one line (no control characters)."""

    subject: str
    lines: list[str]


@dataclass(frozen=True)
class Report:
    """A report rendered by its producer (the daily digest): subject, text and HTML."""

    subject: str
    text: str
    html: str


Content = "AlertView | Notice | Report"


def is_alert(content: object) -> bool:
    """Whether ``content`` is an incident's view (the worker hands over nothing else but a
    :class:`Notice` or a :class:`Report`). Channels test for this instead of importing the
    view's class, so loading the config never loads the database models."""
    return not isinstance(content, Notice | Report)


@dataclass(frozen=True)
class Envelope:
    """Where one outbox row goes and what the channel needs to send it."""

    channel: str
    kind: str  # alert, escalation, rollup, channel_broken, source_*, digest
    settings: Any  # the channel's own Settings
    http: httpx.AsyncClient
    recipient: str | None = None  # set when the channel fans out per recipient
    payload: Mapping[str, Any] = field(default_factory=dict)
    config: Any = None  # the whole Config, for a channel that borrows another's settings

    @property
    def first(self) -> bool:
        """The first message about an incident (email threads follow-ups under it)."""
        return self.kind == "alert" and self.payload.get("number") == 1

    @property
    def plain(self) -> bool:
        """Send text only: a rich payload was refused once as malformed."""
        return bool(self.payload.get("plain"))


@dataclass(frozen=True)
class Outcome:
    """What one send came to; see the module docstring."""

    status: Status
    error: str = ""
    retry_after: float | None = None
    plain_text_fallback: bool = False  # retry at once, as text only
    failed_recipients: tuple[str, ...] = ()

    @classmethod
    def from_error(cls, error: DeliveryError) -> Outcome:
        status: Status = (
            "broken" if error.channel_broken else "permanent" if error.permanent else "retry"
        )
        return cls(
            status,
            str(error),
            error.retry_after,
            error.plain_text_fallback,
            tuple(error.failed_recipients),
        )

    def as_error(self) -> DeliveryError:
        """The outcome as the queue records a failure."""
        return DeliveryError(
            self.error,
            permanent=self.status in ("permanent", "broken"),
            retry_after=self.retry_after,
            plain_text_fallback=self.plain_text_fallback,
            channel_broken=self.status == "broken",
            failed_recipients=list(self.failed_recipients),
        )


SENT = Outcome("sent")


@dataclass(frozen=True)
class Role:
    """A channel's place in the default routes (used when the config has no ``[[routes]]``)."""

    name: str  # on-call, marketing, ops: also the default route's name
    min_severity: Literal["info", "warning", "critical"] = "info"


@runtime_checkable
class Channel(Protocol):
    """One channel type. Each module in this package exposes one as ``CHANNEL``."""

    name: ClassVar[str]  # its ``[channels.<name>]`` table, and what routes name
    Settings: ClassVar[type[StrictModel]]
    role: ClassVar[Role | None]
    notifies: ClassVar[bool]  # takes per-incident notices (under a noise budget)
    pages: ClassVar[bool]  # escalations ping people here
    summary: ClassVar[bool]  # hears of every incident, whatever the routes (the digest)
    targets_addresses: ClassVar[bool]  # fans out to email addresses (escalation.emails)
    max_bytes: ClassVar[int]  # the largest body it sends; content is cut to fit

    def deadline(self, config: Any) -> timedelta:
        """How long a queued message may wait before it is given up as expired."""
        ...

    def min_gap(self, config: Any) -> timedelta:
        """The least time between two sends to one channel, across every node."""
        ...

    def pacing_key(self, settings: Any) -> str | None:
        """The key sends are paced under (never a secret), or None when not paced."""
        ...

    def targets(self, settings: Any, recipients: list[str] | None) -> list[str | None]:
        """How one notice fans out to outbox rows: one per recipient, or ``[None]``."""
        ...

    def render(self, content: Any, envelope: Envelope) -> Any:
        """The body this channel would send for ``content``; pure."""
        ...

    async def send(self, envelope: Envelope, content: Any) -> Outcome:
        """Send once and say how it went; never raises for a failed send."""
        ...


class BaseChannel:
    """Defaults for the contract; each channel module subclasses it."""

    name: ClassVar[str]
    Settings: ClassVar[type[StrictModel]]
    role: ClassVar[Role | None] = None
    notifies: ClassVar[bool] = True
    pages: ClassVar[bool] = False
    summary: ClassVar[bool] = False
    targets_addresses: ClassVar[bool] = False
    max_bytes: ClassVar[int] = 1_000_000

    def deadline(self, config: Any) -> timedelta:
        settings = getattr(config.channels, self.name, None)
        return getattr(settings, "deadline", timedelta(hours=2))

    def min_gap(self, config: Any) -> timedelta:
        settings = getattr(config.channels, self.name, None)
        return getattr(settings, "min_gap", timedelta(0))

    def pacing_key(self, settings: Any) -> str | None:
        return None

    def targets(self, settings: Any, recipients: list[str] | None) -> list[str | None]:
        return [None]


def http_outcome(step: str, response: httpx.Response) -> Outcome:
    """One shared reading of an HTTP answer (see :mod:`emberwatch.http_status`); the
    error names the step: "webhook: post: HTTP 500 oops"."""
    status = response.status_code
    kind = classify_status(status)
    if kind == "sent":
        return SENT
    body = response.text[:100].strip()
    error = f"{step}: HTTP {status} {body}".strip()
    wait = retry_after_seconds(response.headers)
    if kind == "rate_limited":
        return Outcome("retry", error, wait or 1.0)
    if kind == "retry":
        return Outcome("retry", error, wait)
    return Outcome(kind, error)


async def post_json(
    step: str,
    http: httpx.AsyncClient,
    url: str,
    body: bytes,
    timeout: float,
    headers: Mapping[str, str] | None = None,
) -> Outcome:
    """POST a JSON body and classify the answer; transport failures are retried."""
    try:
        response = await http.post(
            url,
            content=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=timeout,
        )
    except httpx.TimeoutException:
        return Outcome("retry", f"{step}: timed out after {timeout:g}s")
    except httpx.HTTPError as exc:
        return Outcome("retry", f"{step}: {type(exc).__name__}")
    return http_outcome(step, response)
