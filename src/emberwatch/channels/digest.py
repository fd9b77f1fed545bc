"""The digest's sending half: the ops team's daily report, mailed through the email
channel's SMTP server.

The report itself (when it is due, what it holds, how it reads) is the
:mod:`emberwatch.digest` package's; the delivery worker hands this channel the rendered
:class:`~emberwatch.channels.base.Report`. Failures are classified as email's are.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import time, timedelta
from typing import Any, ClassVar

from pydantic import Field, field_validator

from emberwatch.channels import email
from emberwatch.channels.base import BaseChannel, Envelope, Outcome, Report, Role
from emberwatch.errors import DeliveryError
from emberwatch.settings import EmailAddress, StrictModel, known_zone

NAME = "digest"


class Settings(StrictModel):
    """The ops team's daily digest, sent through the email channel's SMTP server."""

    recipients: list[EmailAddress] = Field(min_length=1)
    send_at: time = time(8, 0)
    timezone: str = "UTC"

    _known_zone = field_validator("timezone")(known_zone)


DigestChannel = Settings


class Digest(BaseChannel):
    """Ops: hears of every incident, once a day, whatever the routes say."""

    name: ClassVar[str] = NAME
    Settings: ClassVar[type[StrictModel]] = Settings
    role: ClassVar[Role | None] = Role("ops")
    notifies: ClassVar[bool] = False
    summary: ClassVar[bool] = True
    max_bytes: ClassVar[int] = 10_000_000
    # The channel it borrows settings from, and what to say when that one is missing.
    requires: ClassVar[dict[str, str]] = {
        email.NAME: "digest is sent by email: add a [channels.email] section for SMTP"
    }

    def deadline(self, config: Any) -> timedelta:
        return config.delivery.digest_deadline  # type: ignore[no-any-return]

    def render(self, content: Any, envelope: Envelope) -> Any:
        smtp = getattr(envelope.config.channels, email.NAME, None)
        if not isinstance(content, Report) or smtp is None:
            raise DeliveryError(f"{NAME}: not configured any more", permanent=True)
        return email.build_message(
            sender=smtp.sender,
            recipients=envelope.settings.recipients,
            subject=content.subject,
            text=content.text,
            html=content.html,
        )

    async def send(self, envelope: Envelope, content: Any) -> Outcome:
        try:
            message = self.render(content, envelope)
            await email.send(message, getattr(envelope.config.channels, email.NAME))
        except DeliveryError as error:
            outcome = Outcome.from_error(error)
            # Name this channel's step, not the email channel's it borrowed.
            said = outcome.error.removeprefix(f"{email.NAME}: ")
            return replace(outcome, error=f"{NAME}: {said}")
        return Outcome("sent")


CHANNEL = Digest()
