"""Labelled mentions of one imagined installation, for the learned layer's tests and bench.

The installation watches "Kestrel Mobile", a phone network. Its customers complain in the
trade's own words ("zero bars", "no service", "dial-up speeds", "5G is a lie") that the
generic complaint cues do not know, and they use cue words in harmless senses ("charged
my phone at the store", "dropped my phone but they replaced it"). Both kinds are what
team labels are for.

The mentions are built from hand-written templates and fillers with a seeded random
generator, so :func:`examples` returns the same list every time. Written for Emberwatch,
not taken from any dataset.
"""

from __future__ import annotations

import random

from emberwatch.mention import Mention
from emberwatch.scoring.learned import Example

HANDLES = ["@kestrelmobile", "Kestrel", "@KestrelHelp", "kestrel mobile", "@kestrel_uk"]
PLACES = [
    "Leeds", "the Bristol office", "my flat", "Kings Cross", "the M62", "Cardiff",
    "my parents' house", "the stadium", "Glasgow Central", "the campsite", "uni", "work",
]  # fmt: skip
AMOUNTS = ["£12", "£40", "£7.50", "£90", "$25", "€18"]
SINCE = [
    "", "", " since Tuesday", " all weekend", " since the update", " for three days now",
    " this morning", " every evening", " since I moved",
]  # fmt: skip
TAILS = [
    "", "", "", " again", " ffs", " 🙄", " smh", ", any ETA?", " is there an outage?",
    ". third day running", " pls sort it", ". paying for this btw", "!!", " 😤",
]  # fmt: skip
PEOPLE = ["Priya", "Tom", "the lad", "Sandra", "Mo", "the manager", "Jess"]
GOOD = ["unreal", "rock solid", "class", "so much better", "spot on", "fast as anything"]
PLANS = ["SIM-only", "family", "unlimited", "pay as you go", "student", "eSIM"]

# Complaints in the trade's words; most carry no generic complaint cue.
COMPLAINTS = [
    "{h} zero bars at {p}{s}{t}",
    "{h} no signal at {p}{s}{t}",
    "{h} my phone says no service{s}{t}",
    "paying {h} for unlimited and getting dial-up speeds at {p}{t}",
    "{h} 5G is a lie at {p}{t}",
    "{h} calls cut out after ten seconds{s}{t}",
    "{h} texts turning up hours after they were sent{s}{t}",
    "{h} mobile data crawling at {p}{s}{t}",
    "{h} roaming didn't kick in and now I'm stuck with a {a} bill{t}",
    "{h} bill jumped {a} with zero notice{t}",
    "{h} esim activation failed twice, {n} in store shrugged{t}",
    "{h} my number port has been pending{s}{t}",
    "{h} voicemail just beeps and hangs up{s}{t}",
    "{h} hotspot won't share data anymore{s}{t}",
    "{h} wifi calling doesn't work at {p}{t}",
    "three bars and nothing loads, {h}{t}",
    "{h} emergency calls only at {p}{s}, brilliant{t}",
    "{h} got a {a} charge for data I never used{t}",
    "{h} network has been dead at {p}{s}{t}",
    "{h} can't hear anyone on calls at {p}{t}",
    "{h} upgrade phone arrived, sim not activated{s}{t}",
    "{h} app logs me out every five minutes{t}",
    "{h} signal drops every time I get on the train at {p}{t}",
    "{h} i've been a customer 8 years and this is how you treat me{t}",
]
# Not complaints, several with cue words in a harmless sense.
OTHERS = [
    ("switched to {h} and the signal at {p} is {g}", "praise"),
    ("{h} coverage at {p} is {g}", "praise"),
    ("shoutout to {n} at the {h} store, sorted my upgrade in five minutes", "praise"),
    ("dropped my phone in the bath but {h} swapped it same day, legends", "praise"),
    ("charged my phone at the {h} store while I waited, lovely staff", "praise"),
    ("never had a problem with {h} at {p}, {g}", "praise"),
    ("{h} is still the best network at {p}", "praise"),
    ("no complaints from me, {h} has been {g} all year", "praise"),
    ("does {h} do {l} plans?", "question"),
    ("anyone know if {h} covers {p}?", "question"),
    ("is {h} any good at {p}? thinking of switching", "question"),
    ("how do I add a second line with {h}?", "question"),
    ("{h} to switch on 5G at {p} next month", "other"),
    ("{h} announces a new {l} tariff from {a} a month", "other"),
    ("sat at {p} waiting for the train, {h} adverts everywhere", "other"),
    ("my mum just moved to {h}, we'll see", "other"),
    ("{h} and two other networks bid for the spectrum auction", "other"),
    ("off to {p} for the weekend, {h} said roaming is included", "other"),
    ("lost signal in the tunnel at {p}, as you do, back now", "other"),
    ("just got the new phone from {h}, setting it up now", "other"),
    ("{h} ad with the dog is weirdly emotional", "other"),
    ("was supposed to pay more but {h} gave me a loyalty discount, nice", "praise"),
]


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        h=rng.choice(HANDLES),
        p=rng.choice(PLACES),
        s=rng.choice(SINCE),
        t=rng.choice(TAILS),
        a=rng.choice(AMOUNTS),
        n=rng.choice(PEOPLE),
        g=rng.choice(GOOD),
        l=rng.choice(PLANS),
    )


def examples(n: int = 600, *, seed: int = 12, complaint_share: float = 0.45) -> list[Example]:
    """``n`` labelled mentions (complaint and category), about ``complaint_share`` of
    them complaints; each text is unique."""
    rng = random.Random(seed)
    out: list[Example] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < n and attempts < n * 50:
        attempts += 1
        if rng.random() < complaint_share:
            text, category, complaint = _fill(rng.choice(COMPLAINTS), rng), "complaint", True
        else:
            template, category = rng.choice(OTHERS)
            text, complaint = _fill(template, rng), False
        if text in seen:
            continue
        seen.add(text)
        mention = Mention("x", f"k{len(out)}", None, None, None, None, text, None)
        out.append(Example(mention, complaint=complaint, category=category))
    return out


def split(items: list[Example], *, every: int = 2) -> tuple[list[Example], list[Example]]:
    """A training and a held-out part: every ``every``-th example is held out."""
    held = [e for i, e in enumerate(items) if i % every == every - 1]
    train = [e for i, e in enumerate(items) if i % every != every - 1]
    return train, held
