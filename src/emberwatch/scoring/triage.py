"""Triage: what kind of mention this is, how urgent, and what staff should do next."""

from __future__ import annotations

from typing import Literal

Category = Literal[
    "complaint", "legal_threat", "freebie_seeking", "abuse", "question", "praise", "other"
]
SEVERITIES = ("info", "warning", "critical")

# The response playbook, written from the complaint-handling guidance the project follows.
PLAYBOOKS: dict[str, list[str]] = {
    "complaint": [
        "Reach out to the customer now, publicly first, then move to a private channel.",
        "Let them tell the whole story before answering; ask what happened, don't assume.",
        "Acknowledge the problem and apologise plainly, with no excuses attached.",
        "Own it: don't point at the courier, a supplier or a colleague.",
        "Offer two or three remedies (refund, replacement, credit) and let them choose.",
        "Fix it quickly, then check back once it is resolved to be sure they are satisfied.",
    ],
    "legal_threat": [
        "Reply politely and briefly; stay firm and make no admissions.",
        "Bring in legal before saying anything of substance.",
    ],
    "freebie_seeking": [
        "Check whether the demand matches the harm and your policy; fix what is fair.",
        "Stay polite, brief and firm; don't promise anything free in public.",
        "Bring in legal if it turns into threats.",
    ],
    "abuse": [
        "Don't react or match the tone; reply once, briefly, or not at all.",
        "Move on; report harassment to the platform if it continues.",
    ],
    "question": ["Answer promptly and point to the right help page or contact."],
    "praise": ["Thank them; share it with the team that earned it."],
    "other": ["No action needed unless it starts to spread."],
}
VIP_STEP = "VIP customer: weigh their long-term value and go the extra mile."


def playbook(category: str, *, vip: bool = False) -> list[str]:
    steps = list(PLAYBOOKS.get(category, PLAYBOOKS["other"]))
    return [VIP_STEP, *steps] if vip else steps
