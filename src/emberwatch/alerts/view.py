"""The alert as channels see it: the incident, the mentions it holds, and what to say first.

An alert has two shapes: :class:`~emberwatch.models.AlertRecord`, the stored row (what
ingest writes, what incidents file, what the digest lists), and :class:`AlertView`, what
a message renders, read from the rows when the delivery worker sends it, so a retried
message shows the incident as it stands. Every channel renders the view. It carries the
alert's own mention, the incident's mentions newest first (:class:`MentionLine`), and the
helpers that put the message in the order people act on it:

1. :func:`plain_why`: one sentence in plain words ("A customer on Trustpilot says their
   order is three weeks late and that support blamed the courier; …");
2. respond-by in the team's time zone (:func:`team_timezone`) and the whole playbook;
3. the mentions, each with author, source, link and a short quote;
4. :func:`reach_line`: reach, once, saying what is unknown;
5. the scores and the model's reasons.

Every string that comes from a mention is untrusted: the channels escape it for their
format. Fields meant for one line (author, title, quote) are flattened here with
:func:`~emberwatch.text.one_line` so no value can start a line of its own.

:func:`load_incident_page` is what an action link's page shows, and :func:`latest_actions`
says who last acknowledged, snoozed or resolved each incident (the CLI's ``alerts`` and any
report can show it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, select

from emberwatch.alerts.links import action_urls
from emberwatch.models import AlertRecord, Incident, IncidentAction, MentionRecord
from emberwatch.scoring.triage import VIRAL_AT, playbook, respond_within
from emberwatch.text import cut, one_line, web_link

if TYPE_CHECKING:  # the view reads a config; it never builds or validates one
    from emberwatch.config import Config

QUOTE_LIMIT = 280
TITLE_LIMIT = 70
# Mentions read per incident for the summary and the reach line; the newest come first.
MENTIONS_READ = 200
HUMAN_ACTIONS = ("ack", "snooze", "resolve")


@dataclass(frozen=True)
class Platform:
    """How a platform names itself, its posts and its counts (None: it has no such count)."""

    name: str
    thing: str
    likes: str | None = "likes"
    reposts: str | None = "reposts"
    replies: str | None = "replies"


PLATFORMS: dict[str, Platform] = {
    "hackernews": Platform("Hacker News", "thread", "points", None, "comments"),
    "reddit": Platform("Reddit", "thread", "upvotes", "crossposts", "comments"),
    "x": Platform("X", "post"),
    "mastodon": Platform("Mastodon", "post", "favourites", "boosts", "replies"),
    "bluesky": Platform("Bluesky", "post"),
    "youtube": Platform("YouTube", "comment", "likes", None, "replies"),
    "trustpilot": Platform("Trustpilot", "review", "likes", None, None),
    "appstore": Platform("the App Store", "review", "votes", None, None),
    "yelp": Platform("Yelp", "review", None, None, None),
    "google_places": Platform("Google reviews", "review", None, None, None),
}


def source_label(source_type: str, source_name: str) -> str:
    """Where a mention was posted, in words: "Hacker News", or "the reviews feed" for RSS."""
    known = PLATFORMS.get(source_type)
    if known is not None:
        return known.name
    name = one_line(source_name, 40) or source_type
    return f"the {name} feed" if source_type == "rss" else name


@dataclass(frozen=True)
class MentionLine:
    """One mention of an incident as a message lists it."""

    source_type: str
    source_name: str
    author: str | None
    author_followers: int | None
    url: str | None
    title: str | None
    text: str
    published_at: datetime | None
    engagement: int = 0
    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    complaint: float | None = None
    virality: float | None = None
    reasons: list[str] = field(default_factory=list)
    vip: bool = False
    mention_id: int | None = None
    seen_at: datetime | None = None

    @classmethod
    def of(cls, m: MentionRecord) -> MentionLine:
        return cls(
            source_type=m.source,
            source_name=m.source_name,
            author=m.author,
            author_followers=m.author_followers,
            url=m.url,
            title=m.title,
            text=m.text,
            published_at=m.published_at,
            engagement=m.engagement,
            likes=m.likes,
            reposts=m.reposts,
            replies=m.replies,
            complaint=m.complaint,
            virality=m.virality,
            reasons=_reasons(m.reasons),
            vip=m.vip,
            mention_id=m.id,
            seen_at=m.first_seen_at,
        )

    @property
    def platform(self) -> str:
        return source_label(self.source_type, self.source_name)

    @property
    def who(self) -> str:
        """The author on one line (a newline or bidi control cannot forge a line)."""
        return one_line(self.author, 80) or "unknown author"

    @property
    def quote(self) -> str:
        """Title and text on one line, cut short."""
        title, text = one_line(self.title), one_line(self.text)
        joined = f"{title} — {text}" if title and text and text != title else title or text
        return cut(joined, QUOTE_LIMIT)

    @property
    def start(self) -> str:
        """The start of the post, for a subject line."""
        return cut(one_line(self.title) or one_line(self.text), TITLE_LIMIT)

    @property
    def link(self) -> str | None:
        """The post's URL when it is plain http(s), else None (no ``javascript:`` links)."""
        return web_link(self.url)

    @property
    def when(self) -> datetime | None:
        return self.published_at or self.seen_at

    @property
    def counts(self) -> str:
        """Engagement in the platform's words: "240 points, 90 comments"."""
        words = PLATFORMS.get(self.source_type, Platform("", "post"))
        parts = [
            f"{value:,} {_plural(word, value)}"
            for value, word in (
                (self.likes, words.likes),
                (self.reposts, words.reposts),
                (self.replies, words.replies),
            )
            if value and word
        ]
        if not parts and self.engagement:
            parts.append(f"engagement {self.engagement:,}")
        return ", ".join(parts)


def _plural(word: str, count: int) -> str:
    if count != 1:
        return word
    return "reply" if word == "replies" else word.removesuffix("s")


@dataclass(frozen=True)
class AlertView:
    alert_id: int
    brand: str
    source_name: str
    source_type: str
    severity: str
    category: str
    reason: str
    created_at: datetime
    url: str | None
    author: str | None
    author_followers: int | None
    title: str | None
    text: str
    published_at: datetime | None
    rating: float | None
    engagement: int
    sentiment: float | None
    complaint: float | None
    virality: float | None
    reasons: list[str]
    vip: bool
    playbook: list[str]
    # The incident the alert belongs to, and why this message goes out now.
    incident_id: int | None = None
    episode: int = 1
    alert_count: int = 1
    incident_engagement: int = 0
    notify_reason: str = ""
    links: dict[str, str] = field(default_factory=dict)
    escalation_level: int = 0
    ping: str | None = None
    # The incident's mentions to list, newest first (empty: only the alert's own), how many
    # it holds in all, and the mentions read for the summary and the reach line.
    mentions: list[MentionLine] = field(default_factory=list)
    mention_total: int = 0
    context: list[MentionLine] = field(default_factory=list)
    timezone: str = "UTC"

    @property
    def respond_by(self) -> datetime:
        return self.created_at + respond_within(self.severity)

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.timezone)

    def local(self, moment: datetime, *, date: bool = False) -> str:
        """A time in the team's zone: "13:15 CET", with the day when ``date``."""
        here = moment.astimezone(self.zone)
        return here.strftime("%H:%M %Z, %a %d %b" if date else "%H:%M %Z")

    @property
    def respond_by_local(self) -> str:
        return self.local(self.respond_by, date=True)

    @property
    def respond_within_words(self) -> str:
        minutes = int(respond_within(self.severity).total_seconds() // 60)
        if minutes % 60 == 0:
            hours = minutes // 60
            return f"{hours} hour" + ("s" if hours != 1 else "")
        return f"{minutes} minutes"

    @property
    def own(self) -> MentionLine:
        """The alert's own mention."""
        return MentionLine(
            source_type=self.source_type,
            source_name=self.source_name,
            author=self.author,
            author_followers=self.author_followers,
            url=self.url,
            title=self.title,
            text=self.text,
            published_at=self.published_at,
            engagement=self.engagement,
            complaint=self.complaint,
            virality=self.virality,
            reasons=self.reasons,
            vip=self.vip,
        )

    @property
    def listed(self) -> list[MentionLine]:
        """The mentions the message lists, newest first."""
        return self.mentions or [self.own]

    @property
    def more(self) -> int:
        """How many mentions of the incident the message does not list."""
        return max(0, self.mention_total - len(self.listed))

    @property
    def platform(self) -> str:
        return source_label(self.source_type, self.source_name)

    @property
    def why(self) -> str:
        return plain_why(self)

    @property
    def reach(self) -> str:
        return reach_line(self.context or self.listed)

    @property
    def change(self) -> str | None:
        return what_changed(self)

    @property
    def gist(self) -> str:
        """Severity, category, brand and source: "WARNING complaint about acme on X"."""
        return f"{self.severity.upper()} {self.category} about {self.brand} on {self.platform}"

    @property
    def reason_lines(self) -> list[str]:
        """The model's reasons, each on one line (they quote the mention's words)."""
        return [_ASSUMED.sub(_assumed, one_line(r, 500)) for r in self.reasons]

    @property
    def scores(self) -> str:
        parts = [
            f"{name} {value:{spec}}"
            for name, value, spec in (
                ("complaint", self.complaint, ".2f"),
                ("sentiment", self.sentiment, "+.2f"),
                ("virality", self.virality, ".2f"),
            )
            if value is not None
        ]
        return ", ".join(parts) or "no scores stored"


# The spread model's audience guess where followers are unknown: shown as the guess it is,
# so it never reads as a follower count beside "followers unknown".
_ASSUMED = re.compile(r"^reach (\d[\d,]*) \(platform-typical audience\)$")


def _assumed(match: re.Match[str]) -> str:
    return f"followers unknown; the spread forecast assumed a typical audience of {match[1]}"


# -- the plain sentence ------------------------------------------------------------------

_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")
_CUE_LINE = re.compile(r"^(?P<family>[a-z][a-z' ]*[a-z]): ['\"]")
_NUMBER = (
    r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"a couple of|a few|several|many)"
)
_SPAN = re.compile(rf"^{_NUMBER}\s+(?:more\s+|whole\s+|full\s+)?\w+$")
_ORDER = re.compile(r"\b(order|delivery|parcel|package|shipment)\b")
_SPEED = re.compile(r"\b(express|next[- ]day|same[- ]day|priority)\b")
_PARTY = (
    r"(courier|carrier|post office|postal service|royal mail|ups|dhl|fedex|hermes|evri|"
    r"dpd|supplier|warehouse|delivery (?:company|driver|firm)|shipping company|driver|"
    r"manufacturer|bank|payment provider)"
)
_BLAME = (
    re.compile(rf"\bblam\w*(?: it)?(?: on)? (?:the |their |a )?{_PARTY}\b"),
    re.compile(rf"\b(?:the |their )?{_PARTY}(?:'s|s'|’s)? (?:fault|to blame|problem)\b"),
)
_STAFF = re.compile(r"\b(support|customer service|customer care|the agent|staff|the helpline)\b")
_REMEDY = (
    ("money back", "their money back"),
    ("refund", "a refund"),
    ("replacement", "a replacement"),
    ("compensat", "compensation"),
    ("reimburse", "to be reimbursed"),
    ("chargeback", "a chargeback"),
    ("escalat", "it escalated"),
    ("manager", "to speak to a manager"),
    ("supervisor", "to speak to a manager"),
)
_NO_ANSWER = re.compile(
    r"\b(?:no (?:response|reply|replies|answer|callback|update|word)|nobody|no one|"
    r"(?:not|never|n't)\s+(?:\w+\s+)?(?:answer|respond|repl|call|get back|got back))"
)
_DEFECT_IS = frozenset(
    (
        "broken", "cracked", "damaged", "defective", "faulty", "dented", "torn", "ripped",
        "stained", "soaked", "filthy", "expired", "mouldy", "moldy", "rotten",
    )
)  # fmt: skip


def cues_of(reasons: list[str]) -> dict[str, list[str]]:
    """The cue words the scorer found, by family, from its stored reasons.

    A reason such as ``elapsed time: 'three weeks' (+1.0)`` gives ``{"elapsed time":
    ["three weeks"]}``; a category line gives its quoted words under the category (``legal
    cue: 'lawsuit'`` under ``legal_threat``). Lines of other shapes are skipped.
    """
    found: dict[str, list[str]] = {}
    for reason in reasons:
        key: str | None = None
        body = reason
        if reason.startswith("category "):
            key, _, body = reason.removeprefix("category ").partition(":")
        else:
            match = _CUE_LINE.match(reason)
            if match:
                key, body = match["family"], reason[match.end("family") :]
        if not key:
            continue
        words = [a or b for a, b in _QUOTED.findall(body)]
        if words:
            found.setdefault(key.strip(), []).extend(words)
    return found


def plain_why(view: AlertView) -> str:
    """One sentence, in plain words, of why this message exists.

    Built from the category, the cues the scorer found in the most complaint-like mention,
    where it was posted, and how the incident's most viral mention is spreading; never from
    model terms (no probabilities, no branching factors).
    """
    lines = view.context or view.listed
    voice = max(lines, key=lambda m: m.complaint if m.complaint is not None else -1.0)
    first = _what(view, voice)
    spread = _spread(view, voice, lines)
    return one_line(f"{first}; {spread}." if spread else f"{first}.")


def _what(view: AlertView, voice: MentionLine) -> str:
    cues = cues_of(voice.reasons)
    where = voice.platform
    text = " ".join(f"{voice.title or ''} {voice.text}".lower().split())
    brand = one_line(view.brand, 60)
    category = view.category
    customer = "A VIP customer" if voice.vip else "A customer"
    if category == "complaint":
        clauses = complaint_clauses(cues, text, brand)
        if not clauses:
            return f"{customer} on {where} complains about {brand}"
        return f"{customer} on {where} says {_join(clauses)}"
    quoted = ", ".join(
        f"“{one_line(w, 40)}”" for w in list(dict.fromkeys(cues.get(category, [])))[:3]
    )
    said = f" ({quoted})" if quoted else ""
    phrases = {
        "legal_threat": f"{customer} on {where} threatens legal action{said}",
        "freebie_seeking": f"Someone on {where} demands something free from {brand}{said}",
        "abuse": f"Someone on {where} is abusive about {brand}{said}",
        "question": f"Someone on {where} asks {brand} a question",
        "praise": f"Someone on {where} praises {brand}",
    }
    return phrases.get(category, f"A post on {where} mentions {brand}")


def complaint_clauses(cues: dict[str, list[str]], text: str, brand: str) -> list[str]:
    """What a complaint says, as up to three short clauses in plain words.

    ``text`` is the mention's lower-cased text; the courier-blaming rule reads it directly,
    because it is the playbook's point ("don't point at the courier") and no scorer cue
    names it.
    """
    clauses: list[str] = []
    spans = [w for w in cues.get("elapsed time", []) if _SPAN.match(w)]
    waiting = [w for w in cues.get("unmet expectation", []) if not _NO_ANSWER.search(w)]
    late = bool(waiting) or any(
        w in ("late", "delayed", "missing", "lost") for w in cues.get("failure word", [])
    )
    order = _ORDER.search(text)
    speed = _SPEED.search(text)
    thing = f"{speed[1]} {order[1]}" if order and speed else order[1] if order else ""
    if spans and thing and late:
        clauses.append(f"their {thing} is {spans[0]} late")
    elif spans and late:
        clauses.append(f"they have waited {spans[0]}")
    elif late and thing:
        clauses.append(f"their {thing} has not come")
    elif late:
        clauses.append("they are still waiting")
    for pattern in _BLAME:
        blamed = pattern.search(text)
        if blamed:
            staff = _STAFF.search(text)
            who = staff[1] if staff else brand
            clauses.append(f"{who} blamed the {blamed[1]}")
            break
    if _NO_ANSWER.search(" ".join([*cues.get("unmet expectation", []), text])) and (
        cues.get("unmet expectation") or cues.get("negated service verb")
    ):
        clauses.append("nobody answers them")
    defects = cues.get("defect or damage", [])
    if defects:
        word = one_line(defects[0], 30)
        clauses.append(f"it is {word}" if word in _DEFECT_IS else f"they report “{word}”")
    elif not clauses and cues.get("failure word"):
        clauses.append(f"they report “{one_line(cues['failure word'][0], 30)}”")
    remedies = " ".join(cues.get("request for a remedy", []))
    for stem, wanted in _REMEDY:
        if stem in remedies:
            clauses.append(f"they want {wanted}")
            break
    if cues.get("walking away"):
        clauses.append("they will not buy again")
    return clauses[:3]


def _join(clauses: list[str]) -> str:
    """ "a", "a and that b", "a, that b and that c": reported speech, one sentence."""
    if len(clauses) == 1:
        return clauses[0]
    rest = [f"that {c}" for c in clauses[1:]]
    return ", ".join([clauses[0], *rest[:-1]]) + f" and {rest[-1]}"


def _spread(view: AlertView, voice: MentionLine, lines: list[MentionLine]) -> str:
    loudest = max(lines, key=lambda m: (m.virality or 0.0, m.engagement))
    counts = loudest.counts
    thing = PLATFORMS.get(loudest.source_type, Platform("", "post")).thing
    about = "" if loudest is voice else " about it"
    where = loudest.platform
    if (loudest.virality or 0.0) >= VIRAL_AT:
        now = f" ({counts})" if counts else ""
        return f"the {where} {thing}{about} is growing fast{now}"
    if counts:
        return f"the {where} {thing}{about} has {counts} so far"
    others = max(0, view.mention_total - 1)
    if others:
        return f"{others} other mention{'s' if others != 1 else ''} tell the same story"
    return ""


# -- reach and what changed ----------------------------------------------------------------


def reach_line(lines: list[MentionLine]) -> str:
    """Reach, once and honestly: known follower counts, and where they are unknown.

    "Reach: followers unknown on Hacker News"; "Reach: up to 12,400 followers (maria on X);
    followers unknown on Hacker News and Trustpilot". No platform-typical guess is shown
    as if it were a count.
    """
    known = [m for m in lines if m.author_followers is not None]
    unknown = list(dict.fromkeys(m.platform for m in lines if m.author_followers is None))
    parts = []
    if known:
        top = max(known, key=lambda m: m.author_followers or 0)
        count = f"{top.author_followers:,} follower" + ("s" if top.author_followers != 1 else "")
        if len(lines) == 1:
            parts.append(f"{top.who} has {count}")
        else:
            parts.append(f"up to {count} ({top.who} on {top.platform})")
    if unknown:
        parts.append(f"followers unknown on {_and(unknown)}")
    vips = sorted({m.who for m in lines if m.vip})
    if vips:
        parts.append(f"VIP customer{'s' if len(vips) != 1 else ''}: {_and(vips)}")
    return "Reach: " + "; ".join(parts)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" and {items[-1]}"


def what_changed(view: AlertView) -> str | None:
    """What a follow-up says is new ("now 240 points, 90 comments"); None for a first message.

    Read from why the message goes out (the timers' reason) and the incident's mentions.
    """
    reason = view.notify_reason.replace(" (breaks through quiet hours)", "").strip()
    lines = view.context or view.listed
    loudest = max(lines, key=lambda m: (m.engagement, m.virality or 0.0))
    counts = loudest.counts
    if view.escalation_level:
        return one_line(reason) or f"escalation {view.escalation_level}"
    if reason in ("", "new incident", "new critical incident"):
        return f"again (episode {view.episode})" if view.episode > 1 else None
    if reason.startswith("severity rose"):
        return f"now {view.severity}" + (f", {counts}" if counts else "")
    if reason.startswith("engagement"):
        return f"now {counts}" if counts else one_line(reason)
    if reason.startswith("still open"):
        return "still unacknowledged" + (f", now {counts}" if counts else "")
    if re.match(r"^\d+ new related mention", reason):
        return reason.replace("related mention", "mention")
    return one_line(reason)


# -- loading -------------------------------------------------------------------------------


def team_timezone(config: Config) -> str:
    """The zone message times are shown in: the first channel's that has one (the
    digest's), else the first route's quiet hours', else UTC."""
    for name in config.channels.configured():
        zone = getattr(config.channel_settings(name), "timezone", None)
        if zone:
            return str(zone)
    for route in config.routes:
        if route.quiet_hours is not None:
            return route.quiet_hours.timezone
    return "UTC"


def _reasons(stored: str | None) -> list[str]:
    if not stored:
        return []
    try:
        loaded = json.loads(stored)
    except ValueError:
        return []
    return [str(r) for r in loaded] if isinstance(loaded, list) else []


def load_alert_view(session: Session, alert_id: int) -> AlertView | None:
    alert = session.get(AlertRecord, alert_id)
    if alert is None:
        return None
    mention = session.get(MentionRecord, alert.mention_id)
    assert mention is not None
    return AlertView(
        alert_id=alert_id,
        brand=alert.brand,
        source_name=alert.source_name,
        source_type=mention.source,
        severity=alert.severity,
        category=alert.category,
        reason=alert.reason,
        created_at=alert.created_at,
        url=mention.url,
        author=mention.author,
        author_followers=mention.author_followers,
        title=mention.title,
        text=mention.text,
        published_at=mention.published_at,
        rating=mention.rating,
        engagement=mention.engagement,
        sentiment=mention.sentiment,
        complaint=mention.complaint,
        virality=mention.virality,
        reasons=_reasons(mention.reasons),
        vip=mention.vip,
        playbook=playbook(alert.category, vip=mention.vip, severity=alert.severity),
    )


def newest_mentions_of(incident_id: int) -> Any:
    """The select of an incident's mentions, newest first (published, else first seen)."""
    newest = sa.func.coalesce(MentionRecord.published_at, MentionRecord.first_seen_at)
    return (
        select(MentionRecord)
        .join(AlertRecord, AlertRecord.mention_id == MentionRecord.id)  # type: ignore[arg-type]
        .where(AlertRecord.incident_id == incident_id)
        .order_by(newest.desc(), MentionRecord.id.desc())  # type: ignore[union-attr]
    )


def incident_mentions(
    session: Session, incident_id: int, read: int = MENTIONS_READ
) -> tuple[list[MentionLine], int]:
    """An incident's mentions, newest first (at most ``read``), and how many it holds."""
    rows = session.exec(newest_mentions_of(incident_id).limit(read)).all()
    total = session.exec(
        select(sa.func.count())
        .select_from(AlertRecord)
        .where(AlertRecord.incident_id == incident_id)
    ).one()
    return [MentionLine.of(m) for m in rows], int(total)


def slack_ping(mention: str | None) -> str | None:
    """The escalation ping in Slack's syntax, from the trusted config value."""
    if not mention:
        return None
    kind, _, ident = mention.partition(":")
    return {"subteam": f"<!subteam^{ident}>", "user": f"<@{ident}>"}.get(kind, f"<!{mention}>")


def load_notice(
    session: Session,
    config: Config,
    alert_id: int,
    incident_id: int | None,
    payload: dict[str, object],
    who: str,
) -> AlertView | None:
    """An alert view with its incident's mentions, the reason for this message and action
    links, with times in the team's zone."""
    view = load_alert_view(session, alert_id)
    if view is None:
        return None
    view = replace(view, timezone=team_timezone(config))
    if incident_id is None:
        return view
    incident = session.get(Incident, incident_id)
    if incident is None:
        return view
    episode = int(payload.get("episode") or incident.episode)  # type: ignore[call-overload]
    links = {}
    if config.http is not None:
        links = action_urls(
            config.http.public_url, config.http.secret.get_secret_value(), incident_id, episode, who
        )
    level = int(payload.get("level") or 0)  # type: ignore[call-overload]
    context, total = incident_mentions(session, incident_id)
    return replace(
        view,
        severity=incident.severity,
        category=incident.category,
        playbook=playbook(incident.category, vip=view.vip, severity=incident.severity),
        incident_id=incident_id,
        episode=episode,
        alert_count=incident.alert_count,
        incident_engagement=incident.engagement,
        notify_reason=str(payload.get("reason") or ""),
        links=links,
        escalation_level=level,
        ping=slack_ping(config.escalation.slack_mention) if level else None,
        mentions=context[: config.alert_mentions],
        mention_total=max(total, len(context)),
        context=context,
    )


# -- the action page and who acted ---------------------------------------------------------


@dataclass(frozen=True)
class ActionTaken:
    """The latest acknowledge, snooze or resolve of an incident's current episode."""

    action: str
    actor: str
    at: datetime
    via: str
    note: str | None = None

    @property
    def words(self) -> str:
        """ "acknowledged by ana", "snoozed by ana", "resolved by cy"."""
        verb = {"ack": "acknowledged", "snooze": "snoozed", "resolve": "resolved"}
        return f"{verb.get(self.action, self.action)} by {one_line(self.actor, 60)}"


def latest_actions(session: Session, incident_ids: list[int]) -> dict[int, ActionTaken]:
    """Who last acknowledged, snoozed or resolved each incident, this episode."""
    if not incident_ids:
        return {}
    rows = session.exec(
        select(IncidentAction)
        .join(Incident, Incident.id == IncidentAction.incident_id)  # type: ignore[arg-type]
        .where(
            IncidentAction.incident_id.in_(incident_ids),  # type: ignore[attr-defined]
            IncidentAction.action.in_(HUMAN_ACTIONS),  # type: ignore[attr-defined]
            IncidentAction.episode == Incident.episode,
        )
        .order_by(IncidentAction.id)  # type: ignore[arg-type]
    ).all()
    return {
        row.incident_id: ActionTaken(row.action, row.actor, row.at, row.via, row.note)
        for row in rows
    }


@dataclass(frozen=True)
class IncidentPage:
    """What an action link's page shows about its incident."""

    id: int
    brand: str
    title: str
    severity: str
    category: str
    status: str
    episode: int
    mentions: list[MentionLine]
    total: int
    acted: ActionTaken | None

    @property
    def more(self) -> int:
        return max(0, self.total - len(self.mentions))

    @property
    def heading(self) -> str:
        return one_line(self.title, 200) or (self.mentions[0].start if self.mentions else "")


def load_incident_page(session: Session, incident_id: int, shown: int) -> IncidentPage | None:
    incident = session.get(Incident, incident_id)
    if incident is None:
        return None
    mentions, total = incident_mentions(session, incident_id, read=shown)
    return IncidentPage(
        id=incident_id,
        brand=incident.brand,
        title=incident.title,
        severity=incident.severity,
        category=incident.category,
        status=incident.status,
        episode=incident.episode,
        mentions=mentions,
        total=total,
        acted=latest_actions(session, [incident_id]).get(incident_id),
    )


ACTOR_LIMIT = 100


def clean_actor(raw: str) -> str:
    """A person's name as typed on an action page: one line, no controls, at most
    :data:`ACTOR_LIMIT` characters; empty when nothing is left."""
    return one_line(raw)[:ACTOR_LIMIT].strip()
