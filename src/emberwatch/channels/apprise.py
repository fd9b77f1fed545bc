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
"""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
from pydantic import Field, SecretStr, field_validator

from emberwatch.channels.base import BaseChannel, Envelope, Notice, Outcome, is_alert
from emberwatch.settings import PositiveDuration, StrictModel
from emberwatch.text import cut, one_line

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


def text_of(view: AlertView) -> tuple[str, str]:
    """(title, body) of an incident notice, as plain text."""
    head = f"{view.severity.upper()} · {view.brand} · {view.category} on {view.platform}"
    if view.escalation_level:
        head = f"ESCALATION {view.escalation_level} · {head}"
    lines = [view.why, f"Respond by {view.respond_by_local} ({view.respond_within_words})"]
    lines += [f"{i}. {step}" for i, step in enumerate(view.playbook, 1)]
    lines += [f"- {m.who} on {m.platform}: {cut(m.quote, 500)}" for m in view.listed]
    lines += [f"{action}: {url}" for action, url in view.links.items()]
    lines.append(f"Scores: {view.scores}")
    return cut(one_line(head), 250), cut("\n".join(lines), MAX_BYTES)


def notify(url: str, title: str, body: str) -> bool | None:
    """One Apprise send; None when the URL is not one Apprise can use."""
    import apprise

    sender = apprise.Apprise()
    if not sender.add(url):
        return None
    return bool(sender.notify(body=body, title=title))


class Apprise(BaseChannel):
    name: ClassVar[str] = NAME
    Settings: ClassVar[type[StrictModel]] = Settings
    max_bytes: ClassVar[int] = MAX_BYTES

    def targets(self, settings: Any, recipients: list[str] | None) -> list[str | None]:
        return [f"{TARGET}{i}" for i in range(1, len(settings.urls) + 1)]

    def render(self, content: Any, envelope: Envelope) -> tuple[str, str]:
        if is_alert(content):
            return text_of(content)
        return cut(content.subject, 250), cut("\n".join(content.lines), MAX_BYTES)

    async def send(self, envelope: Envelope, content: Any) -> Outcome:
        if not (is_alert(content) or isinstance(content, Notice)):
            return Outcome("permanent", f"{NAME}: cannot send a {envelope.kind}")
        urls = envelope.settings.urls
        number = (envelope.recipient or f"{TARGET}1").removeprefix(TARGET)
        if not number.isdigit() or not 1 <= int(number) <= len(urls):
            return Outcome("permanent", f"{NAME}: {envelope.recipient} is no longer configured")
        step = f"{NAME}: notify {envelope.recipient or TARGET + '1'}"
        title, body = self.render(content, envelope)
        url = urls[int(number) - 1].get_secret_value()
        timeout = envelope.settings.timeout.total_seconds()
        ok: bool | None = False
        with anyio.move_on_after(timeout) as scope:
            ok = await anyio.to_thread.run_sync(notify, url, title, body, abandon_on_cancel=True)
        if scope.cancelled_caught:
            return Outcome("retry", f"{step}: timed out after {timeout:g}s")
        if ok is None:
            return Outcome("permanent", f"{step}: not a URL Apprise can use")
        if not ok:
            return Outcome("retry", f"{step}: failed (Apprise gives no reason)")
        return Outcome("sent")


CHANNEL = Apprise()
