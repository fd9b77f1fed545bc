"""Replay: a generated week of mentions through ``emberwatch replay`` with the default routes.

Run ``python bench/replay.py [--quick] [-n N] [--keep FILE]``. It writes a week of N
normalized mentions (default 15,000; ``--quick`` 2,000) as JSON Lines, generated with a
fixed seed, then replays them with :func:`emberwatch.replay.replay` against a config
with three brands, seven sources, Slack, email, the digest and an escalation email list,
and no ``[[routes]]`` (the default routes). It prints what that config would have sent,
per channel (messages, incidents, rolled-up summaries, the peak messages in any hour),
the alerts and incidents, and how long the replay took.

The week (``generate``): three brands (acme has most of the traffic), seven sources, a
daily rhythm (busy afternoons, quiet nights); most mentions neutral or praise, about one
in five negative (half of those complaints, with an order, a refund, support); a few
legal threats, freebie demands and abusive posts; about one a day a viral story whose
post is seen again and again with growing counts (``snapshots``) and draws replies in its
thread; a pool of authors, some of whom post more than once.

Target: the replay takes under 2 minutes (the issue asks it of 15,000 mentions on this
machine). The figures themselves have no target: they are what the default routes send.
From 2,000 mentions on, replay scores new mentions in one worker process beside the
simulation; the CPU time printed counts both.

Baseline: raw vaderSentiment ``polarity_scores`` on the same texts, once each, in this
process, timed just before and just after the replay (the mean of the two is the baseline,
so a change in the machine's load touches both). The replay's wall and CPU times are
printed beside its wall and CPU times and as a multiple of them: how much the whole
simulation (match, score, store, decide, group, route, the policy's timers) costs over
reading the texts' sentiment alone.
"""

from __future__ import annotations

import json
import math
import random
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import NAMES, PRODUCTS, Row, arguments, finish, mention_text, quiet_logs, verdict

TARGET_SECONDS = 120.0
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
WEEK = timedelta(days=7)
SEED = 20260302

BRANDS = (("acme", "Acme", 0.6), ("globex", "Globex", 0.25), ("initech", "Initech", 0.15))
# (source name, connector type, share of traffic, whether it reports engagement counts)
SOURCES = (
    ("x", "x", 0.34, True),
    ("reddit", "reddit", 0.2, True),
    ("hn", "hackernews", 0.1, True),
    ("mastodon", "mastodon", 0.1, True),
    ("trustpilot", "trustpilot", 0.1, False),
    ("alerts", "rss", 0.1, False),
    ("youtube", "youtube", 0.06, True),
)
LEGAL = (
    "{brand} kept my deposit for {n} weeks, my lawyer is sending a letter before action.",
    "I am reporting {brand} to trading standards and taking them to small claims court.",
)
FREEBIE = (
    "{brand} owes me a free {product} for this, or my review of {n} stars goes up tonight.",
    "I have {n}k followers, send me a free {product} and I will tell them all about {brand}.",
)
ABUSE = (
    "{brand} support staff are idiots and morons, every last one of them, {n} times over.",
    "Whoever runs {brand} is a pathetic clown and a disgrace, go to hell.",
)
VIRAL = (
    "{brand} lost my order, support blamed the courier and ignored {n} emails. Three weeks "
    "later still no refund and nobody answers, absolutely furious.",
    "Thread: how {brand} charged {n} customers twice for the {product} and refuses refunds.",
    "{brand} shipped me a broken {product}, refused to replace it and closed my ticket.",
)


def _moment(rng: random.Random) -> datetime:
    """A moment in the week, busier in the (UTC) afternoon than at night."""
    while True:
        offset = rng.random() * WEEK.total_seconds()
        hour = (offset / 3600) % 24
        busy = 0.25 + 0.75 * max(0.0, math.sin(math.pi * (hour - 6) / 18)) if hour >= 6 else 0.25
        if rng.random() < busy:
            return START + timedelta(seconds=offset)


def _pick(rng: random.Random, weighted: tuple, index: int = 2) -> tuple:
    return rng.choices(weighted, weights=[w[index] for w in weighted])[0]


def _counts(rng: random.Random, scale: float) -> dict[str, int]:
    likes = int(rng.expovariate(1 / scale))
    return {
        "likes": likes,
        "reposts": int(likes * rng.uniform(0, 0.3)),
        "replies": int(likes * rng.uniform(0, 0.2)),
    }


def _mention(
    rng: random.Random, number: int, brand: tuple, source: tuple, text: str, at: datetime
) -> dict:
    name, kind, _, counts = source
    author = rng.choice(NAMES).lower() + str(rng.randint(1, 400))  # some post more than once
    mention = {
        "source": kind,
        "source_name": name,
        "external_id": f"{name}-{number}",
        "url": f"https://{name}.example/{brand[0]}/{number}",
        "author": author,
        "author_followers": int(rng.lognormvariate(5, 1.5)) if counts else None,
        "title": None,
        "text": text,
        "published_at": at.isoformat().replace("+00:00", "Z"),
    }
    if kind == "trustpilot":
        mention["rating"] = 1.0 if rng.random() < 0.4 else rng.choice([3.0, 4.0, 5.0])
    if counts:
        mention.update(_counts(rng, 6))
    return mention


def generate(n: int, seed: int = SEED) -> list[dict]:
    """A week of about ``n`` mentions, in time order (see the module docstring)."""
    rng = random.Random(seed)
    mentions: list[dict] = []
    stories = max(1, round(n / 2000))  # about one a day at 15,000
    replies_per_story = 25
    plain = n - stories * (1 + replies_per_story)
    for number in range(plain):
        brand = _pick(rng, BRANDS)
        source = _pick(rng, SOURCES)
        roll = rng.random()
        if roll < 0.004:
            pool = (LEGAL, FREEBIE, ABUSE)[number % 3]
            text = rng.choice(pool).format(
                brand=brand[1], product=rng.choice(PRODUCTS), n=rng.randint(2, 40)
            )
        else:
            text, _ = mention_text(rng, brand[1])
        mentions.append(_mention(rng, number, brand, source, text, _moment(rng)))
    for story in range(stories):
        number = plain + story * (1 + replies_per_story)
        brand = BRANDS[story % len(BRANDS)]
        source = _pick(rng, SOURCES[:4])  # x, reddit, hn, mastodon
        text = rng.choice(VIRAL).format(
            brand=brand[1], product=rng.choice(PRODUCTS), n=rng.randint(3, 12)
        )
        at = _moment(rng)
        root = _mention(rng, number, brand, source, text, at)
        thread = f"{source[1]}:story:{number}"
        root["thread"] = thread
        # Seen at first with a handful of likes, then growing for 12 hours.
        snapshots = []
        likes = rng.randint(2, 10)
        for step in range(1, 25):
            likes = int(likes * rng.uniform(1.2, 1.6)) + 1
            seen = at + timedelta(minutes=30 * step)
            snapshots.append(
                {
                    "at": seen.isoformat().replace("+00:00", "Z"),
                    "likes": likes,
                    "reposts": likes // 4,
                    "replies": likes // 8,
                }
            )
        root.update(likes=rng.randint(1, 5), reposts=0, replies=0, snapshots=snapshots)
        mentions.append(root)
        for reply in range(replies_per_story):
            reply_at = at + timedelta(minutes=rng.uniform(5, 12 * 60))
            text, _ = mention_text(rng, brand[1])
            item = _mention(rng, number + 1 + reply, brand, source, text, reply_at)
            item["thread"] = thread
            mentions.append(item)
    mentions.sort(key=lambda m: m["published_at"])
    return mentions


CONFIG = """
[[brands]]
name = "acme"
include = ["Acme"]

[[brands]]
name = "globex"
include = ["Globex"]

[[brands]]
name = "initech"
include = ["Initech"]

[[sources]]
name = "x"
type = "x"
query = "acme OR globex OR initech"
bearer_token = "not-used-by-replay"
interval = "5m"

[[sources]]
name = "reddit"
type = "reddit"
query = "acme OR globex OR initech"
interval = "5m"

[[sources]]
name = "hn"
type = "hackernews"
query = "acme"
interval = "5m"

[[sources]]
name = "mastodon"
type = "mastodon"
query = "acme"
access_token = "not-used-by-replay"
interval = "5m"

[[sources]]
name = "trustpilot"
type = "trustpilot"
business_unit_id = "0123456789abcdef"
api_key = "not-used-by-replay"
interval = "30m"

[[sources]]
name = "alerts"
type = "rss"
url = "https://alerts.example/feed"
interval = "10m"

[[sources]]
name = "youtube"
type = "youtube"
channel_id = "UC0123456789"
api_key = "not-used-by-replay"
interval = "15m"

[channels.email]
host = "smtp.example.com"
sender = "Emberwatch <emberwatch@example.com>"
recipients = ["marketing@example.com"]

[channels.slack]
webhook_url = "https://hooks.slack.example/T000/B000/XXXX"

[channels.digest]
recipients = ["ops@example.com"]
timezone = "Europe/Berlin"

[escalation]
emails = ["head-of-cx@example.com"]
"""


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (replay's scoring worker)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def vader_seconds(texts: list[str]) -> tuple[float, float]:
    """Raw vaderSentiment on ``texts`` in this process: wall and CPU seconds."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    started, cpu_started = time.perf_counter(), time.process_time()
    for text in texts:
        analyzer.polarity_scores(text)
    return time.perf_counter() - started, time.process_time() - cpu_started


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15_000, help="mentions in the week")
    parser.add_argument("--keep", metavar="FILE", help="keep the generated week here")
    args = parser.parse_args()
    quiet_logs()
    from emberwatch.config import load_config
    from emberwatch.replay import read_mentions, replay

    n = 2000 if args.quick else args.n
    folder = tempfile.mkdtemp(prefix="emberwatch-replay-")
    week = Path(args.keep) if args.keep else Path(folder) / "replay-week.jsonl"
    config_path = week.with_suffix(".toml")
    mentions = generate(n)
    week.write_text("".join(json.dumps(m) + "\n" for m in mentions), encoding="utf-8")
    config_path.write_text(CONFIG, encoding="utf-8")
    print(f"generated {n} mentions in {week}; config in {config_path}", flush=True)
    config = load_config(config_path)
    texts = [m["text"] for m in mentions]
    vader_before = vader_seconds(texts)
    started, cpu_started = time.monotonic(), _cpu_seconds()
    result = replay(config, read_mentions(week))
    seconds, cpu = time.monotonic() - started, _cpu_seconds() - cpu_started
    vader_after = vader_seconds(texts)
    vader_wall = (vader_before[0] + vader_after[0]) / 2
    vader_cpu = (vader_before[1] + vader_after[1]) / 2
    print(result.table())
    print(
        f"raw VADER on the same {len(texts)} texts: {vader_before[0]:.2f} s before the replay, "
        f"{vader_after[0]:.2f} s after (wall); CPU {vader_before[1]:.2f} s, {vader_after[1]:.2f} s"
    )
    rows = [
        Row("replay", "mentions", str(result.mentions)),
        Row("replay", "alerts", str(result.alerts)),
        Row("replay", "incidents", str(result.incidents)),
    ]
    for name, figures in result.channels.items():
        rows.append(
            Row(
                "replay",
                f"{name}: messages / peak per hour / rollups",
                f"{figures.messages} / {figures.peak_per_hour} / {figures.rollups}",
            )
        )
    rows.append(
        Row(
            "replay",
            f"wall time for {n} mentions",
            f"{seconds:.1f} s ({seconds / vader_wall:.1f}x raw VADER)",
            f"raw VADER on the same texts {vader_wall:.2f} s; "
            f"target < {TARGET_SECONDS:.0f} s at 15,000",
            verdict(seconds < TARGET_SECONDS * n / 15_000) if n >= 2000 else "",
        )
    )
    rows.append(
        Row(
            "replay",
            "CPU time (this process and its scoring worker)",
            f"{cpu:.1f} s ({cpu / vader_cpu:.1f}x raw VADER)",
            f"raw VADER on the same texts {vader_cpu:.2f} s CPU",
        )
    )
    finish(rows, args, "Replay: a generated week with the default routes")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
