"""Apprise: one URL per target, for Discord, PagerDuty, Opsgenie, ntfy, Telegram and the
rest of the services `Apprise <https://github.com/caronc/apprise>`_ knows.

Optional: ``pip install 'emberwatch[apprise]'``; a config that names this channel
without the package installed is refused with that line. Each URL is its own outbox row,
so one target's failure retries only that target.

What it costs: Apprise's ``notify`` returns only True or False. There is no status code
and no ``Retry-After``, so every failure is retried with the worker's own backoff (a rate
limit is not waited out as asked, and a wrong token is retried until the deadline instead
of being reported as a broken channel at once); only a missing or unparsable URL is
permanent. Apprise also has no way to cancel a send in flight: ``timeout`` stops waiting,
and the attempt counts as a retryable failure.

Untrusted text: every line (a mention's author and quote, the reasons that quote it, and
Emberwatch's own words alike) is sent as text, never as markup, in the form the target
reads, which Apprise says by each service's ``notify_format``. An HTML or Markdown target
(Telegram, email, Slack, ntfy with ``format=markdown``…) gets HTML with every line escaped,
sent as ``body_format=HTML``: HTML targets take it as it is, and Apprise converts it to
Markdown with its own escapes for the others. A text target gets plain text, and since
several services show "text" as Markdown anyway (Discord's ``content``, Mattermost), its
lines are escaped for Markdown (:func:`~emberwatch.text.markdown_text`): a reader that does
not render Markdown shows a backslash before ``[ ] * _ ~ ` | < >`` in a quote. In every
form ``@`` is the fullwidth ``＠`` (:func:`~emberwatch.text.no_pings`), so no mention pings a
Discord server.
"""

from __future__ import annotations

import html
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
from pydantic import Field, SecretStr, field_validator

from emberwatch.channels.base import BaseChannel, Envelope, Notice, Outcome, is_alert
from emberwatch.settings import PositiveDuration, StrictModel
from emberwatch.text import cut, markdown_text, no_pings, one_line

if TYPE_CHECKING:
    from emberwatch.alerts.view import AlertView

NAME = "apprise"
INSTALL = "pip install 'emberwatch[apprise]'"
MAX_BYTES = 32_000
TARGET = "target-"  # a row's recipient: target-1, target-2… (the URLs hold secrets)


def installed() -> bool:
    return importlib.util.find_spec("apprise") is not None


class Settings(StrictModel):
    """Apprise URLs, one per target (e.g. ``ntfys://ntfy.sh/acme-oncall``)."""

    urls: list[SecretStr] = Field(min_length=1, description="one Apprise URL per target")
    timeout: PositiveDuration = timedelta(seconds=30)
    deadline: PositiveDuration = timedelta(hours=2)
    max_per_hour: int = Field(
        default=30, ge=1, description="noise budget: past this, messages roll up into summaries"
    )

    @field_validator("urls")
    @classmethod
    def _package_installed(cls, value: list[SecretStr]) -> list[SecretStr]:
        if not installed():
            raise ValueError(f"the apprise channel needs the apprise package: {INSTALL}")
        return value


@dataclass(frozen=True)
class Message:
    """A message before it takes a target's form: single lines of plain text, and the
    action links, which are Emberwatch's own URLs."""

    title: str
    lines: list[str]
    links: list[tuple[str, str]] = field(default_factory=list)

    def as_html(self) -> str:
        """Every line escaped as HTML text, one ``<br/>`` apart; links as anchors."""
        links = [
            f'{html.escape(action)}: <a href="{html.escape(url)}">{html.escape(url)}</a>'
            for action, url in self.links
        ]
        return "<br/>".join(fitted(self.lines, html_line, links, len("<br/>")))

    def as_text(self) -> str:
        """Plain lines with Markdown's link and style characters escaped; links bare."""
        links = [f"{action}: {url}" for action, url in self.links]
        return "\n".join(fitted(self.lines, text_line, links, 1))


def html_line(line: str) -> str:
    return html.escape(no_pings(line), quote=False)


def text_line(line: str) -> str:
    return markdown_text(no_pings(line))


def fitted(lines: list[str], escape: Callable[[str], str], links: list[str], gap: int) -> list[str]:
    """The lines escaped, as many whole ones as fit in MAX_BYTES beside the links (those
    at the end, the mentions and scores, are the first left out), then the links."""
    # Counted in UTF-8 bytes, as targets limit them: a fullwidth ＠ is one character, 3 bytes.
    room = MAX_BYTES - sum(_size(link) + gap for link in links)
    kept: list[str] = []
    for line in lines:
        line = escape(line)
        size = _size(line)
        if size + gap > room:
            break
        kept.append(line)
        room -= size + gap
    return kept + links


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def text_of(view: AlertView) -> Message:
    """An incident notice's title and lines, each a single plain line."""
    head = f"{view.severity.upper()} · {view.brand} · {view.category} on {view.platform}"
    if view.escalation_level:
        head = f"ESCALATION {view.escalation_level} · {head}"
    lines = [view.why, f"Respond by {view.respond_by_local} ({view.respond_within_words})"]
    lines += [f"{i}. {step}" for i, step in enumerate(view.playbook, 1)]
    lines += [f"- {m.who} on {m.platform}: {cut(m.quote, 500)}" for m in view.listed]
    lines.append(f"Scores: {view.scores}")
    lines = [one_line(line) for line in lines]
    return Message(cut(one_line(head), 250), lines, list(view.links.items()))


def notify(url: str, message: Message) -> bool | None:
    """One Apprise send in the target's form; None when the URL is not one Apprise can use.

    Apprise says what a service reads in its ``notify_format``: text targets get plain
    text, HTML and Markdown ones HTML that Apprise converts with its own escaping.
    """
    import apprise

    sender = apprise.Apprise()
    if not sender.add(url):
        return None
    target = sender[0]
    title = no_pings(message.title)
    if target.notify_format == apprise.NotifyFormat.TEXT:
        body, form = message.as_text(), apprise.NotifyFormat.TEXT
        title = markdown_text(title)
    else:
        body, form = message.as_html(), apprise.NotifyFormat.HTML
        if target.title_maxlen <= 0:  # the title joins the body, converted with it
            title = html.escape(title, quote=False)
    return bool(sender.notify(body=body, title=title, body_format=form))


class Apprise(BaseChannel):
    name: ClassVar[str] = NAME
    Settings: ClassVar[type[StrictModel]] = Settings
    max_bytes: ClassVar[int] = MAX_BYTES

    def targets(self, settings: Any, recipients: list[str] | None) -> list[str | None]:
        return [f"{TARGET}{i}" for i in range(1, len(settings.urls) + 1)]

    def render(self, content: Any, envelope: Envelope) -> Message:
        if is_alert(content):
            return text_of(content)
        lines = [one_line(line) for line in content.lines]
        return Message(cut(one_line(content.subject), 250), lines)

    async def send(self, envelope: Envelope, content: Any) -> Outcome:
        if not (is_alert(content) or isinstance(content, Notice)):
            return Outcome("permanent", f"{NAME}: cannot send a {envelope.kind}")
        urls = envelope.settings.urls
        number = (envelope.recipient or f"{TARGET}1").removeprefix(TARGET)
        if not number.isdigit() or not 1 <= int(number) <= len(urls):
            return Outcome("permanent", f"{NAME}: {envelope.recipient} is no longer configured")
        step = f"{NAME}: notify {envelope.recipient or TARGET + '1'}"
        message = self.render(content, envelope)
        url = urls[int(number) - 1].get_secret_value()
        timeout = envelope.settings.timeout.total_seconds()
        ok: bool | None = False
        with anyio.move_on_after(timeout) as scope:
            ok = await anyio.to_thread.run_sync(notify, url, message, abandon_on_cancel=True)
        if scope.cancelled_caught:
            return Outcome("retry", f"{step}: timed out after {timeout:g}s")
        if ok is None:
            return Outcome("permanent", f"{step}: not a URL Apprise can use")
        if not ok:
            return Outcome("retry", f"{step}: failed (Apprise gives no reason)")
        return Outcome("sent")


CHANNEL = Apprise()
