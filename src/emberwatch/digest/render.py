"""Rendering the digest: subject, text and HTML (with its chart), and keeping it as sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from emberwatch.channels.base import Report
from emberwatch.channels.email import build_message
from emberwatch.config import Config
from emberwatch.digest.gather import DayVolume, Digest, build_digest, duration_text, local_time
from emberwatch.models import (
    SentDigest,
)
from emberwatch.templating import render_template

# Severity is colour-coded and always written out too, so it reads without colour.
SEVERITY_COLOURS = {"critical": "#c0392b", "warning": "#b9770e", "info": "#2e6da4"}
# The chart's bars: the reported day darker than the 13 before it, the negative part red.
CHART_COLOURS = {"day": "#c0c7d0", "reported": "#4a6fa5", "negative": "#c0392b"}
CHART_HEIGHT = 80  # pixels of the busiest day's bar
STATE_COLOURS = {**SEVERITY_COLOURS, "attention": "#c0392b", "clear": "#27ae60"}
STATE_BACKGROUNDS = {
    "critical": "#fdecea",
    "warning": "#fef5e7",
    "attention": "#fdecea",
    "clear": "#eafaf1",
}
ACTION_WORDS = {"ack": "acknowledge", "snooze": "snooze", "resolve": "resolve"}


# -- rendering ----------------------------------------------------------------------------


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f}%"


@dataclass(frozen=True)
class ChartBar:
    """One day's column of the digest's 14-day chart: pixel heights and text labels.

    The chart is an HTML table (no image: it shows in mail clients that block images, and
    reads without colour or sight, since every bar carries its numbers as text).
    """

    day: date
    mentions: int
    negative: int
    height: int  # the whole bar, to scale with the busiest day
    negative_height: int  # its negative part, to the same scale, drawn at the bottom
    reported: bool  # the reported day, the last column

    @property
    def label(self) -> str:
        return f"{self.day:%d %b}"

    @property
    def negative_share(self) -> float | None:
        return self.negative / self.mentions if self.mentions else None


def chart_bars(daily: list[DayVolume], height: int = CHART_HEIGHT) -> list[ChartBar]:
    """Bars proportional to the busiest day's ``height`` pixels; a day with any mention
    (or any negative one) gets at least one pixel, an empty day none."""
    top = max((d.mentions for d in daily), default=0)

    def scaled(count: int) -> int:
        return max(1, round(count * height / top)) if count else 0

    return [
        ChartBar(
            day=d.day,
            mentions=d.mentions,
            negative=d.negative,
            height=scaled(d.mentions),
            negative_height=min(scaled(d.negative), scaled(d.mentions)),
            reported=i == len(daily) - 1,
        )
        for i, d in enumerate(daily)
    ]


def subject_line(digest: Digest) -> str:
    subject = (
        f"[Emberwatch] Daily digest for {digest.day.isoformat()}: "
        f"{digest.mentions} mentions, {len(digest.alerts)} alerts, "
        f"{len(digest.open_incidents)} open incidents"
    )
    if digest.broken_channels:
        names = ", ".join(r.channel for r in digest.broken_channels)
        subject += f" — BROKEN CHANNEL: {names}"
    elif digest.attention:
        subject += " — needs attention"
    return subject


def render(digest: Digest) -> tuple[str, str, str]:
    """(subject, text, html) of a digest; the HTML is complete on its own (no images)."""
    context = {
        "d": digest,
        "chart": chart_bars(digest.daily),
        "chart_colours": CHART_COLOURS,
        "local": lambda moment: local_time(moment, digest.zone),
        "duration": duration_text,
        "percent": _percent,
        "limit": 20,
        "severity_colours": SEVERITY_COLOURS,
        "state_colours": STATE_COLOURS,
        "state_backgrounds": STATE_BACKGROUNDS,
        "action_words": ACTION_WORDS,
    }
    return (
        subject_line(digest),
        render_template("digest.txt", **context),
        render_template("digest.html", **context),
    )


def digest_message(digest: Digest, *, sender: str, recipients: list[str]) -> EmailMessage:
    """The email: text and HTML alternatives (the chart is HTML, so no attachment)."""
    subject, text, html = render(digest)
    return build_message(
        sender=sender, recipients=recipients, subject=subject, text=text, html=html
    )


def load_report(config: Config, engine: Engine, day: date, now: datetime) -> Report:
    """The digest for ``day``, built and rendered now, and kept before it is sent, so a
    digest that went out is always on the console's /digests (a retry renders afresh and
    replaces it)."""
    zone = config.channels.digest.timezone if config.channels.digest is not None else "UTC"
    subject, text, html = render(build_digest(engine, day, zone, config=config))
    keep_report(engine, day, Report(subject, text, html), now)
    return Report(subject, text, html)


def keep_sent(engine: Engine, day: date, message: EmailMessage, now: datetime) -> None:
    """Store the digest email for ``day`` as it is sent (``sent_digests``)."""
    html, text = message.get_body(("html",)), message.get_body(("plain",))
    report = Report(
        str(message["Subject"]),
        text.get_content() if text is not None else "",
        html.get_content() if html is not None else "",
    )
    keep_report(engine, day, report, now)


def keep_report(engine: Engine, day: date, report: Report, now: datetime) -> None:
    """Store the digest for ``day`` (``sent_digests``), replacing an earlier attempt's."""
    with Session(engine) as session:
        session.execute(sa.delete(SentDigest).where(SentDigest.day == day.isoformat()))  # type: ignore[arg-type]
        session.add(
            SentDigest(
                day=day.isoformat(),
                subject=report.subject,
                text=report.text,
                html=report.html,
                sent_at=now,
            )
        )
        session.commit()
