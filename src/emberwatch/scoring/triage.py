"""Triage: what kind of mention this is, how urgent, and what staff should do next.

Three pure decisions, each returning its reasons: :func:`categorize` (legal threat, freebie
seeking, abuse, complaint, question, praise or other, in that order of precedence),
:func:`severity` (info, warning or critical) and :func:`playbook` (the steps for staff).
:func:`respond_within` turns a severity into the time staff have to reach out:
critical 15 minutes, warning 1 hour, info 4 hours (:data:`RESPOND_WITHIN`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from emberwatch.scoring._cues import Cue, Prepared, family, prepare

Category = Literal[
    "complaint", "legal_threat", "freebie_seeking", "abuse", "question", "praise", "other"
]
CATEGORIES: tuple[str, ...] = (
    "complaint",
    "legal_threat",
    "freebie_seeking",
    "abuse",
    "question",
    "praise",
    "other",
)
SEVERITIES = ("info", "warning", "critical")
RESPOND_WITHIN: dict[str, timedelta] = {
    "critical": timedelta(minutes=15),
    "warning": timedelta(hours=1),
    "info": timedelta(hours=4),
}
COMPLAINT_AT = 0.5  # complaint probability from which a mention is a complaint
PRAISE_AT = 0.25  # sentiment from which a non-complaint is praise
VIRAL_AT = 0.5  # virality probability treated as "likely to spread"
_NEGATIVE = {"complaint", "legal_threat", "freebie_seeking", "abuse"}

LEGAL = family(
    "legal",
    0.0,
    "lawsuit lawsuits sue suing sued lawyer lawyers attorney attorneys solicitor solicitors "
    "court legal class small regulator regulators ftc cfpb ofcom ofgem ombudsman trading bbb "
    "better consumer report reporting fca",
    r"\b(?:lawsuits?|sue|suing|sued|lawyers?|attorneys?|solicitors?|in court|legal action|"
    r"class action|small claims|regulators?|ftc|cfpb|ofcom|ofgem|ombudsman|trading standards|"
    r"bbb|better business bureau|consumer protection|fca)\b",
    r"\breport(?:ing)? (?:you|this|them) to\b",
)
FREEBIE = family(
    "free demand",
    0.0,
    "free owe lifetime comp voucher vouchers gift deserve",
    r"\bfor free\b",
    r"\bfree (?:meal|meals|month|months|year|upgrade|stuff|product|products|pair|night|nights|"
    r"stay|flight|flights|drinks?|dinner|food|order|delivery|subscription|gift)\b",
    r"\b(?:you )?owe (?:me|us)\b",
    r"\blifetime (?:supply|subscription|membership)\b",
    r"\bcomp(?:ed)? (?:me|us|my)\b",
    r"\bvouchers?\b",
    r"\bgift cards?\b",
    r"\bdeserve (?:a |an |some )?(?:free|compensation|voucher|discount)",
)
LEVERAGE = family(
    "leverage",
    0.0,
    "or tell leave go my",
    r"\bor (?:else|i'?ll|i will|we'?ll)\b",
    r"\btell (?:everyone|all my|my followers)\b",
    r"\bleave (?:a )?(?:bad|1-star|one-star|negative) review\b",
    r"\bgo viral\b",
    r"\bmy (?:\d+k? )?followers\b",
)
ABUSE = family(
    "abuse",
    0.0,
    "idiot idiots moron morons stupid clowns clown scum losers fuck fucking hell shut die "
    "kys suck imbeciles screw useless pathetic joke",
    r"\b(?:idiots?|morons?|imbeciles|clowns|scum|losers)\b",
    r"\b(?:fuck|f\*+k|screw) (?:you|off|@\w+|\w+ and)",
    r"\bgo to hell\b",
    r"\bshut up\b",
    r"\b(?:hope you|you should|go) die\b",
    r"\bkys\b",
    r"\byou (?:all |guys |people )?(?:suck|are (?:useless|pathetic|stupid|idiots|a joke))\b",
    "🖕",
    chars="*🖕",
)
_QUESTION_START = frozenset(
    (
        "who", "what", "when", "where", "why", "how", "which", "does", "do", "is", "are",
        "can", "could", "will", "would", "should", "may", "anyone", "any",
    )
)  # fmt: skip


def triage_cues(text: str | Prepared) -> dict[str, list[Cue]]:
    """The legal, free-demand, leverage and abuse cues in ``text``."""
    prepared = text if isinstance(text, Prepared) else prepare(text)
    out: dict[str, list[Cue]] = {}
    for fam in (LEGAL, FREEBIE, LEVERAGE, ABUSE):
        if not fam.triggered(prepared) or (fam is LEVERAGE and "free demand" not in out):
            continue
        hits = [m.group(0) for m in fam.pattern.finditer(prepared.lower)]
        if hits:
            out[fam.name] = [Cue(fam.name, h.strip(), 0.0) for h in dict.fromkeys(hits)]
    return out


def is_question(text: str | Prepared) -> bool:
    """A question mark, or a first word that opens a question."""
    prepared = text if isinstance(text, Prepared) else prepare(text)
    if "?" in prepared.lower:
        return True
    for word in prepared.lower.split(None, 3)[:3]:
        if word.startswith("@"):
            continue
        return word in _QUESTION_START
    return False


def categorize(
    *,
    sentiment: float,
    complaint: float,
    cues: dict[str, list[Cue]],
    question: bool,
) -> tuple[str, list[str]]:
    """The category, by precedence: legal threat, freebie seeking, abuse, complaint,
    question, praise, other. Freebie seeking needs two free demands, or one with leverage
    ("or I'll tell my followers"); abuse yields to a likely complaint unless it insults
    twice."""
    legal = cues.get("legal", [])
    if legal:
        return "legal_threat", [f"legal cue: {_quote(legal)}"]
    free, leverage = cues.get("free demand", []), cues.get("leverage", [])
    if len(free) >= 2 or (free and leverage):
        found = _quote(free + leverage)
        return "freebie_seeking", [f"demands something free: {found}"]
    abuse = cues.get("abuse", [])
    if abuse and (complaint < COMPLAINT_AT or len(abuse) >= 2):
        return "abuse", [f"abusive: {_quote(abuse)}"]
    notes = [f"abusive: {_quote(abuse)}"] if abuse else []
    if complaint >= COMPLAINT_AT:
        return "complaint", [*notes, f"complaint probability {complaint:.2f} >= {COMPLAINT_AT}"]
    if question:
        return "question", [*notes, "asks a question"]
    if sentiment >= PRAISE_AT:
        return "praise", [*notes, f"sentiment {sentiment:+.2f} >= {PRAISE_AT:+.2f}"]
    return "other", notes


def severity(
    category: str,
    *,
    sentiment: float,
    complaint: float,
    virality: float,
    followers: int | None,
    high_reach: int,
    vip: bool,
) -> tuple[str, list[str]]:
    """How urgent a mention is, and why.

    - A complaint is a warning when it is likely (>= 0.75) or angry (sentiment <= -0.5),
      and otherwise info; a legal threat is always at least a warning.
    - Spread (virality >= 0.5), reach (followers >= ``high_reach``) or a VIP raises a
      warning-level complaint or legal threat to critical, and an info-level one to warning.
    - Abuse and freebie seeking are info, a warning once they may spread or reach far, and
      critical when both.
    - Anything else is info, but a negative mention that is likely to spread is a warning.
    """
    reach = followers or 0
    spreading = virality >= VIRAL_AT
    far = reach >= high_reach
    amplifiers = [
        *([f"virality {virality:.2f} >= {VIRAL_AT}"] if spreading else []),
        *([f"reach {reach:,} followers >= {high_reach:,}"] if far else []),
        *(["VIP customer"] if vip else []),
    ]
    if category in ("complaint", "legal_threat"):
        strong = complaint >= 0.75 or sentiment <= -0.5 or category == "legal_threat"
        level = 1 if strong else 0
        why = (
            ["legal threat"]
            if category == "legal_threat"
            else [f"complaint {complaint:.2f}, sentiment {sentiment:+.2f}"]
        )
        if amplifiers:
            level += 1
        return SEVERITIES[level], [*why, *amplifiers]
    if category in ("abuse", "freebie_seeking"):
        level = int(spreading or far) + int(spreading and far)
        return SEVERITIES[level], amplifiers
    if spreading and sentiment <= -0.05:
        return "warning", [f"negative ({sentiment:+.2f}) and likely to spread"]
    return "info", []


def respond_within(severity: str) -> timedelta:
    """How soon staff should reach out at this severity (unknown severities: as info)."""
    return RESPOND_WITHIN.get(severity, RESPOND_WITHIN["info"])


# The response playbook, in Emberwatch's words, following the complaint-handling guidance
# the project adopted: reach out fast, listen, own it, fix it, follow up.
PLAYBOOKS: dict[str, list[str]] = {
    "complaint": [
        "Reach out to the customer now, publicly first, then move to a private channel.",
        "Let them tell the whole story before answering; ask what happened, don't assume.",
        "Show you heard it: sum up the problem in your own words.",
        "Apologise plainly for how it left them, with no excuses attached.",
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
        "Stay polite, brief and firm; make no admissions and promise nothing free in public.",
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


def playbook(category: str, *, vip: bool = False, severity: str | None = None) -> list[str]:
    """The steps for staff. With a ``severity``, a complaint's first step says how soon."""
    steps = list(PLAYBOOKS.get(category, PLAYBOOKS["other"]))
    if severity is not None and category == "complaint":
        minutes = int(respond_within(severity).total_seconds() // 60)
        steps[0] = (
            f"Reach out to the customer within {_minutes(minutes)} ({severity}), "
            "publicly first, then move to a private channel."
        )
    return [VIP_STEP, *steps] if vip else steps


def _minutes(minutes: int) -> str:
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour" + ("s" if hours != 1 else "")
    return f"{minutes} minutes"


def _quote(cues: list[Cue]) -> str:
    return ", ".join(repr(c.match) for c in cues)
