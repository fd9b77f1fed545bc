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

from emberwatch.scoring._cues import Cue, Prepared, family, prepare, triggered
from emberwatch.scoring.complaint import _SENTIMENTS, signed_sentiment

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
    "better consumer report reporting fca letter",
    r"\b(?:lawsuits?|sue|suing|sued|lawyers?|attorneys?|solicitors?|in court|to court|"
    r"legal (?:action|team|department|advice|proceedings)|class action|small claims|"
    r"regulators?|ftc|cfpb|ofcom|ofgem|ombudsman|trading standards|bbb|better business bureau|"
    r"consumer protection|fca|letter before action)\b",
    r"\breport(?:ing)? (?:you|this|them) to\b",
)
# Freebie seeking is a free thing or outsized compensation, asked for with a demand or with
# leverage; or leverage (a review held hostage, an audience offered) with a demand.
FREEBIE = family(
    "free demand",
    0.0,
    "free owe lifetime life comp comped voucher vouchers gift deserve waive compensate supply",
    r"\bfree\b",
    r"\b(?:you )?owe (?:me|us)\b",
    r"\blifetime (?:supply|subscription|membership)\b",
    r"\bfor life\b",
    r"\b(?:a|\d+) years?'?s? supply\b",
    r"\bcomp(?:ed)? (?:me|us|my|our)\b",
    r"\b(?:gift )?vouchers?\b",
    r"\bgift cards?\b",
    r"\bwaive (?:my|the|our)\b",
    r"\bcompensate (?:me|us) with\b",
    r"\bdeserve (?:a |an |some )?(?:free|compensation|voucher|discount)",
)
DEMAND = family(
    "demand",
    0.0,
    "send give want expect demand deserve owe exchange least right fair acceptable comp "
    "compensate waive wash",
    r"\b(?:send|give|get) (?:me|us)\b",
    r"\bi (?:want|expect|demand|deserve|think)\b",
    r"\bi'?d like\b",
    r"\b(?:you )?owe (?:me|us)\b",
    r"\bin exchange for\b",
    r"\bthe least you can do\b",
    r"\b(?:would|will) make (?:this|it|things) right\b",
    r"\bis (?:only )?fair\b",
    r"\bonly acceptable\b",
    r"\b(?:comp|compensate|waive) (?:me|us|my|our)\b",
    r"\bwash my\b",
)
LEVERAGE = family(
    "leverage",
    0.0,
    "or otherwise tell leave go goes my viral followers subs subscribers influencer blogger "
    "youtuber creator press review delete remove take post posting star trends trend tiktok "
    "exchange feature",
    r"\bor (?:else|i'?ll|i'?m|i will|we'?ll|i go|i post|i cancel|this (?:\w+ )?goes|my review)\b",
    r"\botherwise\b",
    r"\btell (?:everyone|all my|my followers)\b",
    r"\b(?:leav(?:e|ing)|post(?:ing)?|writ(?:e|ing)) (?:a |an )?(?:bad|1[- ]star|one[- ]star|"
    r"negative|glowing|good|great|positive|5[- ]star|five[- ]star) review",
    r"\bgo(?:es)? viral\b",
    r"\b\d+(?:\.\d)?[km]? (?:followers|subs|subscribers)\b",
    r"\bmy (?:\d+k? )?followers\b",
    r"\b(?:influencer|blogger|youtuber|content creator|tiktoker)\b",
    r"\b(?:delete|remove|take down|take) (?:my|the|this) (?:\w+ )?(?:review|post|video|tweet)",
    r"\bmy review goes up\b",
    r"\b(?:go|going) to the press\b",
    r"\bposting (?:this|it) everywhere\b",
    r"\btrends? (?:tonight|today)\b",
    r"\bin exchange for\b",
    r"\bfeature you\b",
)
# Abuse: insult words (a set lookup, no pattern) and phrases of insult or harm.
INSULTS = frozenset(
    """
    idiot idiots idiotic moron morons imbecile imbeciles clown clowns scum scumbag scumbags
    losers muppets parasites worm pigs rats liars hacks lowlifes crook crooks slimeball slimy
    wankers wanker slobs dumbest kys thieving
    """.split()  # noqa: SIM905 (a word list)
)
ABUSE = family(
    "abuse",
    0.0,
    "fuck hell shut die suck screw useless pathetic joke trash garbage brain shit hope "
    "worthless embarrassment breathing ashamed",
    r"\b(?:brain-?dead|mouth-breathing)\b",
    r"\b(?:fuck|f\*+k?|f\*\*\*|screw) (?:you|off|@\w+|\w+ and)",
    r"\b(?:go to|rots? in|burn in) hell\b",
    r"\bshut up\b",
    r"\beat shit\b",
    r"\b(?:hope you|you should|go|should) die\b|\bdie in a fire\b",
    r"\bshould be ashamed to exist\b",
    r"\bhope (?:you|your|the|they|its?)\b[^.!?]{0,40}?\b(?:bankrupt|out of business|"
    r"burns?|rots?|floods?|fails|struck|crash|dies|closes down|goes under)",
    r"\byou(?:'re| are)? (?:all |guys |people )?(?:suck|are (?:useless|pathetic|stupid|idiots|"
    r"a joke|trash|garbage)|a joke|an embarrassment|trash|garbage)\b",
    r"\bgarbage (?:company|humans|people)\b",
    r"\b(?:useless|worthless|pathetic) (?:\w+ )?(?:wankers|hacks|people|humans|idiots|worm|"
    r"clowns|losers|bunch)\b",
    "\U0001f595",
    chars="*\U0001f595",
)
# Words that keep a positive mention from being praise: a request for help ("thanks in
# advance" is politeness, not praise) and irony.
NOT_PRAISE = family(
    "not praise",
    0.0,
    "help thanks please look money yeah much supposed",
    r"\b(?:can|could|would) (?:you|someone|somebody|anyone) (?:please )?(?:help|look into|check)",
    r"\b(?:please help|help please|any help|some help|thanks in advance|look into (?:it|this))\b",
    r"\bthanks for nothing\b|\bso much for\b|\byeah right\b|\bmoney well spent\b",
    r"\b(?:is|are) supposed to be\b",
    r"\bthanks (?:@\w+ )?for the (?:\w+ )?(?:delay|wait|\d+ (?:hour|minute|day)s?)",
    "\U0001f643|\U0001f644",
    chars="\U0001f643\U0001f644",
)
_TRIAGE = (LEGAL, FREEBIE, DEMAND, LEVERAGE, ABUSE, NOT_PRAISE)
_NONE: frozenset[str] = frozenset()
_LEVER_WORDS = frozenset(
    {
        "followers", "subs", "subscribers", "influencer", "blogger", "youtuber", "creator",
        "tiktoker", "review", "post", "video", "viral", "press", "otherwise",
    }
)  # fmt: skip
_QUESTION_START = frozenset(
    (
        "who", "what", "when", "where", "why", "how", "which", "does", "do", "is", "are",
        "can", "could", "will", "would", "should", "may", "anyone", "any",
    )
)  # fmt: skip


def triage_cues(text: str | Prepared) -> dict[str, list[Cue]]:
    """The legal, free-demand, demand, leverage, abuse and not-praise cues in ``text``."""
    prepared = text if isinstance(text, Prepared) else prepare(text)
    out: dict[str, list[Cue]] = {}
    words = prepared.words
    families = triggered(_TRIAGE, prepared)
    insults = INSULTS.intersection(words) if not INSULTS.isdisjoint(words) else _NONE
    # Abuse by insult words alone: the family takes its place, in table order, unsearched.
    unsearched = insults and not any(fam is ABUSE for fam in families)
    if unsearched:
        families = [f for f in _TRIAGE if f is ABUSE or any(f is on for on in families)]
    for fam in families:
        # Demand and leverage matter only next to a free demand or to words of extortion.
        if (fam is DEMAND or fam is LEVERAGE) and not (
            "free demand" in out or not _LEVER_WORDS.isdisjoint(words)
        ):
            continue
        pattern = None if unsearched and fam is ABUSE else fam.narrowed(prepared)
        if pattern is None:
            hits = []
        elif fam is NOT_PRAISE:
            m = pattern.search(prepared.lower)
            hits = [m[0]] if m else []
        else:
            hits = [m[0] for m in pattern.finditer(prepared.lower)]
        if fam is ABUSE:
            hits += sorted(insults)
        if hits:
            out[fam.name] = [fam.cue(h) for h in dict.fromkeys(hits)]
    return out


def is_question(text: str | Prepared) -> bool:
    """A question mark, or a first word that opens a question."""
    lower = (text if isinstance(text, Prepared) else prepare(text)).lower
    if "?" in lower:
        return True
    head = lower.split(None, 1)
    if not head:
        return False
    if head[0][0] != "@":  # most texts: the first word decides
        return head[0] in _QUESTION_START
    words = lower.split(None, 4)
    for i, word in enumerate(words[:3]):
        if word.startswith("@"):
            continue
        if word in ("is", "are") and i and i + 1 < len(words) and words[i + 1].endswith("ing"):
            return False  # "@acme is sponsoring the fun run": the handle is the subject
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
    question, praise, other.

    - Freebie seeking: something free or outsized ("a year's supply", "£200 in vouchers")
      asked for with a demand or leverage, or leverage (a review held hostage, an audience
      offered) together with a demand.
    - Abuse yields to a likely complaint unless it insults twice.
    - Praise is sincere only: not a request for help, not ironic, not a demand.
    """
    if not cues:  # most texts: what follows, with every cue list empty
        if complaint >= COMPLAINT_AT:
            return "complaint", [f"complaint probability {complaint:.2f}{_AT_COMPLAINT}"]
        if question:
            return "question", ["asks a question"]
        if sentiment >= PRAISE_AT:
            mood = _SENTIMENTS.get(sentiment) or signed_sentiment(sentiment)
            return "praise", [f"sentiment {mood}{_AT_PRAISE}"]
        return "other", []
    legal = cues.get("legal", [])
    if legal:
        return "legal_threat", [f"legal cue: {_quote(legal)}"]
    free, demand = cues.get("free demand", []), cues.get("demand", [])
    leverage = cues.get("leverage", [])
    if (free and (demand or leverage)) or (leverage and demand):
        found = _quote(free + demand + leverage)
        return "freebie_seeking", [f"demands something free or uses leverage: {found}"]
    abuse = cues.get("abuse", [])
    if abuse and (complaint < COMPLAINT_AT or len(abuse) >= 2):
        return "abuse", [f"abusive: {_quote(abuse)}"]
    notes = [f"abusive: {_quote(abuse)}"] if abuse else []
    if complaint >= COMPLAINT_AT:
        return "complaint", [*notes, f"complaint probability {complaint:.2f}{_AT_COMPLAINT}"]
    if question:
        return "question", [*notes, "asks a question"]
    if sentiment >= PRAISE_AT:
        blockers = cues.get("not praise", []) + demand + leverage
        if not blockers:
            return "praise", [*notes, f"sentiment {sentiment:+.2f}{_AT_PRAISE}"]
        notes.append(f"positive ({sentiment:+.2f}) but not praise: {_quote(blockers)}")
    return "other", notes


# The thresholds as the reasons write them, formatted once.
_AT_COMPLAINT = f" >= {COMPLAINT_AT}"
_AT_PRAISE = f" >= {PRAISE_AT:+.2f}"


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
    amplifiers = []
    if spreading:
        amplifiers.append(f"virality {virality:.2f} >= {VIRAL_AT}")
    if far:
        amplifiers.append(f"reach {reach:,} followers >= {high_reach:,}")
    if vip:
        amplifiers.append("VIP customer")
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
    """The steps for staff. With a ``severity``, a complaint's first step says how soon.

    Every mention scored asks for one, so the steps are made once per (category, vip,
    severity) and each call returns a fresh copy (callers may change their list)."""
    key = (category, vip, severity)
    steps = _playbooks.get(key)
    if steps is None:
        steps = _playbook(category, vip=vip, severity=severity)
        if len(_playbooks) < 256:
            _playbooks[key] = steps
    return list(steps)


_playbooks: dict[tuple[str, bool, str | None], list[str]] = {}


def _playbook(category: str, *, vip: bool, severity: str | None) -> list[str]:
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
