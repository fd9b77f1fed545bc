"""Marketing email: multipart text and HTML alerts rendered from Jinja2 templates, sent by SMTP.

Failure classification: connection errors, timeouts and ``4xx`` replies are retried;
a ``5xx`` reply is permanent (for a refused recipient, for that recipient only: the
message still goes to the others).
"""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import aiosmtplib
from pydantic import Field, SecretStr

from emberwatch.channels.base import BaseChannel, Envelope, Notice, Outcome, Role, is_alert
from emberwatch.errors import DeliveryError
from emberwatch.settings import EmailAddress, PositiveDuration, SenderAddress, StrictModel
from emberwatch.templating import render_template
from emberwatch.text import header_value, printable

if TYPE_CHECKING:
    from emberwatch.alerts.view import AlertView

NAME = "email"


class Settings(StrictModel):
    """SMTP settings and the marketing team's recipients."""

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: SenderAddress
    recipients: list[EmailAddress] = Field(min_length=1)
    timeout: PositiveDuration = timedelta(seconds=30)
    max_per_hour: int = Field(
        default=20, ge=1, description="noise budget: past this, messages roll up into summaries"
    )


EmailChannel = Settings  # the name the rest of the code and the tests know it by


def build_message(
    *,
    sender: str,
    recipients: list[str],
    subject: str,
    text: str,
    html: str,
    message_id: str | None = None,
    thread_id: str | None = None,
) -> EmailMessage:
    """A multipart/alternative message; the subject can never inject a header, and neither
    part carries a control or bidi character (only ``\n`` line breaks), whatever a field
    that missed :func:`~emberwatch.text.one_line` held."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = header_value(subject)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = sender.rpartition("@")[2] or "emberwatch.local"
    message["Message-ID"] = message_id or make_msgid(domain=domain)
    if thread_id:
        message["In-Reply-To"] = thread_id
        message["References"] = thread_id
    message.set_content(printable(text))
    message.add_alternative(printable(html), subtype="html")
    return message


def incident_thread_id(incident_id: int, sender: str) -> str:
    """The Message-ID an incident's first email carries; follow-ups reply to it."""
    domain = sender.rpartition("@")[2].strip("> ") or "emberwatch.local"
    return f"<emberwatch-incident-{incident_id}@{domain}>"


def alert_message(
    view: AlertView,
    channel: EmailChannel,
    recipients: list[str] | None = None,
    first: bool = True,
) -> EmailMessage:
    """An alert email; every email about one incident threads under its first one."""
    # The same draft first reply the console's incident page shows. Imported here: the
    # draft reads the incident view's module, which loads the database models, and
    # loading the config (which reads this module) must not.
    from emberwatch.alerts.reply import draft_reply

    context = {"alert": view, "draft": draft_reply(view.category, view.own, view.brand)}
    thread = (
        incident_thread_id(view.incident_id, channel.sender)
        if view.incident_id is not None
        else None
    )
    return build_message(
        sender=channel.sender,
        recipients=recipients or channel.recipients,
        subject=alert_subject(view, first=first),
        text=render_template("alert.txt", **context),
        html=render_template("alert.html", **context),
        message_id=thread if first else None,
        thread_id=None if first else thread,
    )


def alert_subject(view: AlertView, *, first: bool = True) -> str:
    """The gist: severity, category, brand, source and the start of the post; a follow-up
    says what changed ("now 240 points, 90 comments"). One line, whatever the post holds."""
    escalated = f"ESCALATION {view.escalation_level}: " if view.escalation_level else ""
    change = view.change
    if change is None and not first:
        change = "update"
    changed = f", {change}" if change else ""
    start = view.own.start
    quoted = f': "{start}"' if start else ""  # ASCII quotes: no encoded word for them
    number = f" (incident #{view.incident_id})" if view.incident_id is not None else ""
    return header_value(f"[Emberwatch] {escalated}{view.gist}{changed}{quoted}{number}")


def notice_message(
    channel: EmailChannel, recipients: list[str], subject: str, lines: list[str]
) -> EmailMessage:
    """A short notice Emberwatch wrote itself (rollups, broken channels, source health)."""
    return build_message(
        sender=channel.sender,
        recipients=recipients,
        subject=subject,
        text="\n".join(lines) + "\n",
        html=render_template("notice.html", subject=subject, lines=lines),
    )


async def send(message: EmailMessage, channel: EmailChannel) -> list[str]:
    """Send one message; returns the recipients the server refused permanently.

    Raises DeliveryError when nobody received it (retryable unless every refusal is 5xx).
    """
    password = channel.password.get_secret_value() if channel.password else None
    try:
        refused, _ = await aiosmtplib.send(
            message,
            hostname=channel.host,
            port=channel.port,
            username=channel.username,
            password=password,
            use_tls=channel.security == "tls",
            start_tls=channel.security == "starttls",
            timeout=channel.timeout.total_seconds(),
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        permanent = all(code >= 500 for code in codes)
        raise DeliveryError(
            f"email: send: every recipient refused ({', '.join(map(str, codes))})",
            permanent=permanent,
            failed_recipients=[r.recipient for r in exc.recipients],
        ) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise DeliveryError(
            f"email: send: SMTP {exc.code} {exc.message[:80]}", permanent=exc.code >= 500
        ) from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"email: send: {type(exc).__name__}") from None
    return [addr for addr, (code, _msg) in refused.items() if code >= 500]


class Email(BaseChannel):
    """Marketing: warning and critical incidents by default, one outbox row per recipient
    so that one recipient's refusal fails only that row."""

    name: ClassVar[str] = NAME
    Settings: ClassVar[type[StrictModel]] = Settings
    role: ClassVar[Role | None] = Role("marketing", "warning")
    targets_addresses: ClassVar[bool] = True
    max_bytes: ClassVar[int] = 10_000_000

    def deadline(self, config: Any) -> timedelta:
        return config.delivery.email_deadline  # type: ignore[no-any-return]

    def targets(self, settings: Any, recipients: list[str] | None) -> list[str | None]:
        return list(recipients if recipients is not None else settings.recipients)

    def render(self, content: Any, envelope: Envelope) -> EmailMessage:
        settings = envelope.settings
        recipients = [envelope.recipient] if envelope.recipient else settings.recipients
        if is_alert(content):
            first = envelope.first and content.episode == 1
            return alert_message(content, settings, recipients, first=first)
        if isinstance(content, Notice):
            return notice_message(settings, recipients, content.subject, content.lines)
        raise DeliveryError(f"{NAME}: cannot send a {envelope.kind}", permanent=True)

    async def send(self, envelope: Envelope, content: Any) -> Outcome:
        try:
            refused = await send(self.render(content, envelope), envelope.settings)
        except DeliveryError as error:
            return Outcome.from_error(error)
        if refused:
            return Outcome(
                "permanent",
                f"{NAME}: send: refused permanently by the server for {', '.join(refused)}",
                failed_recipients=tuple(refused),
            )
        return Outcome("sent")


CHANNEL = Email()
