"""The draft first reply to a mention, written from the playbook, for staff to copy.

One draft per category, each following the complaint-handling guidance the playbooks
come from (see :data:`emberwatch.scoring.triage.PLAYBOOKS`):

- a complaint gets a short public reply that apologises plainly, with no excuse attached
  and no third party blamed (never the courier, a supplier or a colleague, even when the
  customer names one), offers two or three remedies to choose from, and invites a private
  message;
- a legal threat or a freebie demand gets a brief, polite and firm reply that admits
  nothing and promises nothing free in public;
- abuse gets no draft: the playbook says not to react;
- a question gets an offer of help, praise a thank-you; anything else no draft.

The draft is built from the category, what the scorer's cues say the complaint is about
(:func:`~emberwatch.alerts.view.cues_of`) and the author's handle, never from the
mention's own sentences, so nothing the customer wrote is repeated back to them. The
console's incident page and the alert email show the same draft (:func:`draft_reply`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from emberwatch.alerts.view import MentionLine, cues_of
from emberwatch.text import one_line

_ORDER = re.compile(r"\b(order|delivery|parcel|package|shipment)\b")
_DAMAGE = frozenset(
    (
        "broken", "cracked", "damaged", "defective", "faulty", "dented", "torn", "ripped",
        "stained", "soaked", "expired", "mouldy", "moldy", "rotten", "exploded", "leaking",
    )
)  # fmt: skip
_LATE = frozenset(("late", "delayed", "missing", "lost", "never arrived", "never came"))
_NO_ANSWER = re.compile(r"\b(no (?:response|reply|answer|callback)|nobody|no one|ignored)\b")
# What a customer may have asked for, and how the draft offers it.
_ASKED = (
    ("refund", "a full refund"),
    ("money back", "a full refund"),
    ("replacement", "a replacement sent out straight away"),
    ("compensat", "a credit on your account"),
)


@dataclass(frozen=True)
class Draft:
    """A reply to copy, and the one line saying what it follows."""

    text: str
    note: str


def draft_reply(category: str, lead: MentionLine, brand: str) -> Draft | None:
    """The first public reply to ``lead``; None where the playbook says not to reply
    (abuse) or nothing needs saying (``other``)."""
    hello = _greeting(lead.author)
    team = f"The {one_line(brand, 60)} team"
    if category == "complaint":
        topic, remedies = _complaint_topic(lead)
        text = (
            f"{hello} we're so sorry about {topic}; that's ours to put right. We can offer "
            f"{_choice(remedies)}, whichever suits you best. Please send us a private "
            f"message with your order details and we'll sort it out today. {team}"
        )
        return Draft(text, "apologises without excuses, offers remedies to choose from")
    if category == "legal_threat":
        text = (
            f"{hello} thank you for raising this. We take it seriously and want it looked at "
            "properly. Please send us a private message with your details so the right "
            f"person can follow up with you. {team}"
        )
        return Draft(text, "brief and firm; admits nothing (bring in legal before more)")
    if category == "freebie_seeking":
        text = (
            f"{hello} thanks for getting in touch. If something went wrong, please send us a "
            "private message with the details and we'll look into it in line with our "
            f"policy. {team}"
        )
        return Draft(text, "brief and firm; promises nothing free in public")
    if category == "question":
        text = (
            f"{hello} thanks for asking! Please send us a private message with the details "
            f"and we'll help you straight away. {team}"
        )
        return Draft(text, "answers promptly and moves to a private channel")
    if category == "praise":
        return Draft(
            f"{hello} thank you, that's lovely to hear! We've shared it with the team. {team}",
            "thanks them",
        )
    return None


def no_draft_reason(category: str) -> str:
    """Why there is no draft, for the page that would show one."""
    if category == "abuse":
        return "No draft: the playbook says don't react; reply once, briefly, or not at all."
    return "No draft: no reply is needed unless it starts to spread."


def _greeting(author: str | None) -> str:
    name = one_line(author, 40)
    if not name or not re.match(r"^@?[\w.\- ]+$", name):
        return "Hi there,"
    return f"Hi {name},"


def _complaint_topic(lead: MentionLine) -> tuple[str, list[str]]:
    """What to apologise for, in the brand's own words, and the remedies to offer."""
    cues = cues_of(lead.reasons)
    text = " ".join(f"{lead.title or ''} {lead.text}".lower().split())
    order = _ORDER.search(text)
    thing = f"your {order[1]}" if order else "your order"
    failures = {w.lower() for w in cues.get("failure word", [])}
    defects = {w.lower() for w in cues.get("defect or damage", [])}
    asked = " ".join([*cues.get("request for a remedy", []), text])
    wanted = [offer for stem, offer in _ASKED if stem in asked]
    if defects or failures & _DAMAGE or any(w in text for w in _DAMAGE):
        topic = f"the state {thing} arrived in"
        remedies = ["a replacement sent out straight away", "a full refund"]
    elif failures & _LATE or cues.get("elapsed time") or cues.get("unmet expectation"):
        topic = f"the wait for {thing}"
        remedies = ["a replacement sent by express", "a full refund"]
    elif _NO_ANSWER.search(text):
        topic = "how long it has taken us to get back to you"
        remedies = ["a call back today at a time that suits you", "a full refund"]
    else:
        topic = "how this has left you feeling"
        remedies = ["a full refund", "a replacement"]
    offers = list(dict.fromkeys([*wanted[:1], *remedies, "a credit on your account"]))
    return topic, offers[:3]


def _choice(offers: list[str]) -> str:
    return offers[0] if len(offers) == 1 else ", ".join(offers[:-1]) + f" or {offers[-1]}"
