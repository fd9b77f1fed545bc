"""Complaint themes: what went wrong, in a few words, so the team can learn from it.

A small hand-written table: each theme is one case-insensitive pattern and one lesson. The
lesson says what *we* can do next time; it never blames a courier, a supplier or a
colleague, because the customer does not care whose fault it was and neither should the
fix. A text may carry several themes; order follows the table.

The patterns are deliberately plain. They will miss paraphrases and ignore negation
("not late at all" still reads as late), which is fine for a daily tally of tendencies,
not for judging one mention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Theme:
    name: str
    pattern: re.Pattern[str]
    lesson: str


def _theme(name: str, pattern: str, lesson: str) -> Theme:
    return Theme(name, re.compile(pattern, re.IGNORECASE), lesson)


_NOT = r"(?:not|never|still not|hasn'?t|has not|haven'?t|have not|didn'?t|did not|wasn'?t|was not)"
_PARCEL = r"(?:order|parcel|package|delivery|shipment|item|items|stuff)"
_REPLY = r"(?:repl(?:y|ies|ied)|respond(?:s|ed)?|response|answer(?:s|ed)?|gets? back|got back)"

THEMES: tuple[Theme, ...] = (
    _theme(
        "late or missing delivery",
        rf"\b(?:late|delayed|delays?|{_NOT} (?:yet )?(?:arrived?|turned up|shown up|showed up|"
        rf"come|came|been delivered|delivered|shipped|received)|never (?:arrived|came|turned up"
        rf"|showed up)|still waiting|where(?:'s| is) my {_PARCEL}|lost (?:my |the |our )?"
        rf"{_PARCEL}|missing {_PARCEL}|no sign of (?:my |the )?{_PARCEL}|waiting "
        rf"(?:for )?(?:\d+|two|three|four|five|six|a few|several) (?:days|weeks))\b",
        "check courier hand-offs and tell customers proactively when an order slips",
    ),
    _theme(
        "damaged or broken product",
        r"\b(?:damaged|broken|broke|smashed|cracked|dented|shattered|leak(?:s|ing|ed)?|"
        r"defective|faulty|stopped working|dead on arrival|arrived dead)\b",
        "review packaging and pre-dispatch checks for the item, and make a replacement "
        "quick to claim",
    ),
    _theme(
        "wrong item",
        r"\b(?:wrong (?:item|size|colou?r|order|product|model|one|thing|parcel|package)|"
        r"not what I (?:ordered|paid for|bought)|(?:sent|received|got|delivered) (?:me )?"
        r"(?:the |a )?wrong|missing (?:parts?|pieces?|items?))\b",
        "double-check picking and labelling for the items involved, and make swaps effortless",
    ),
    _theme(
        "refund or billing",
        r"\b(?:refunds?|refunded|charged (?:me )?(?:twice|double|again)|double[- ]charged|"
        r"overcharg(?:ed|ing)|billing|billed|invoice|money back|chargeback|"
        r"unauthori[sz]ed (?:charge|payment)|payment (?:failed|taken))\b",
        "make refund status visible, pay back promptly, and check billing runs for double charges",
    ),
    _theme(
        "no answer from support",
        rf"\b(?:no (?:one|body) (?:ever )?{_REPLY}|nobody (?:ever )?{_REPLY}|no (?:reply|"
        rf"response|answer|callback)|(?:never|didn'?t|did not|won'?t|doesn'?t|don'?t|still "
        rf"haven'?t) (?:{_REPLY}|call(?:ed)? (?:me )?back)|on hold for|ignor(?:ed|ing) "
        rf"(?:my|me|us)|ghosted|(?:can'?t|cannot|unable to|impossible to) (?:reach|get "
        rf"through|contact|talk to)|support (?:is|was) (?:useless|non-?existent))\b",
        "watch the support queues for unanswered contacts and give a first reply with a "
        "time we can keep",
    ),
    _theme(
        "rude staff",
        r"\b(?:rude|rudely|impolite|disrespectful|condescending|dismissive|unprofessional|"
        r"arrogant|hung up on (?:me|us)|yelled at|shouted at|snapped at|treated (?:me|us) "
        r"like)\b",
        "follow up personally with the customer, and back the team with guidance and time "
        "for tense conversations",
    ),
    _theme(
        "quality",
        r"\b(?:(?:poor|bad|low|terrible|awful|shoddy|cheap) quality|flimsy|cheaply made|"
        r"poorly made|fell apart|falls apart|not as described|(?:tastes?|smells?) (?:bad|"
        r"awful|off|funny)|stale|mou?ldy|rotten|expired|worse than before)\b",
        "share the specifics with the product team and check whether a recent batch or "
        "change explains it",
    ),
    _theme(
        "website or app",
        r"\b(?:(?:website|site|app|checkout|log ?in|account|page)\b[^.!?\n]{0,40}?\b(?:down|"
        r"crash(?:es|ed|ing)?|broken|bug(?:gy)?|error|not working|won'?t (?:load|open|let)|"
        r"doesn'?t (?:load|work|open)|keeps? failing|froze|freezes)|error (?:message|code)|"
        r"outage)\b",
        "check error rates and the checkout path, and post status updates while something is down",
    ),
    _theme(
        "cancellation",
        r"\b(?:cancel(?:s|led|ed|ling|ing|lation)?|unsubscribe|(?:end|stop) (?:my|the|our) "
        r"subscription|auto[- ]?renew(?:ed|al)?)\b",
        "make cancelling easy to find and confirm it in writing straight away",
    ),
)

BY_NAME: dict[str, Theme] = {theme.name: theme for theme in THEMES}


def themes(text: str) -> list[str]:
    """The names of the themes ``text`` touches, in table order."""
    return [theme.name for theme in THEMES if theme.pattern.search(text)]


def lesson(name: str) -> str:
    """What we can do about a theme, in the project's own words."""
    return BY_NAME[name].lesson
