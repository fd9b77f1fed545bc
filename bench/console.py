"""Console page times with 100,000 mentions and 5,000 incidents, on SQLite and PostgreSQL.

Run ``python bench/console.py [--backend sqlite|postgresql|both] [--rounds N] [--quick]``.
It fills a fresh database (PostgreSQL: one of its own on ``EMBERWATCH_BENCH_DATABASE_URL``,
dropped afterwards) with a realistic spread over 60 days: 100,000 mentions across three
brands and eight sources (about one in five negative, a tenth complaints), 5,000 incidents
with 1 to 12 alerts each (the newest few hundred still open, the rest resolved), five
engagement snapshots per alerted mention, every source's state and 60 sent digests. Then it
serves the real endpoint (``emberwatch.web.build_app``: auth and pages) on 127.0.0.1, logs
in through ``/login`` like a browser, and requests each page ``--rounds`` times, reading
the whole body (``/mentions?format=csv``: until its first row has arrived, after the
header line). It prints the median and p95 per page beside the 200 ms target of the console issue
and beside its baseline, measured in the same rounds: before each timed request for a page,
the same client, logged in, asks the same server for ``/healthz``. That request takes the
path every page takes (HTTP on loopback, the auth middleware, the session looked up in the
database through a worker thread) and does nothing else, so a page's figure less its
``/healthz`` figure is what the page itself costs. The text searches cover a common word
(and its 20th page), a rare phrase, a word in most mentions, two characters (too short for
the trigram index: LIKE alone) and a phrase that matches nothing (without the index, every
row read). The client runs in the server's event loop, so its parsing is inside the figures.
"""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import sqlalchemy as sa
from _common import (
    Row,
    arguments,
    finish,
    machine,
    mention_text,
    postgres_engine,
    quiet_logs,
    sqlite_engine,
    verdict,
)
from aiohttp import web
from sqlalchemy.engine import Engine

from emberwatch.config import Config, validate_config
from emberwatch.console.users import add_user
from emberwatch.models import (
    AlertRecord,
    EngagementSnapshot,
    Incident,
    MentionRecord,
    SentDigest,
    SourceState,
)
from emberwatch.web import build_app

TARGET_MS = 200.0
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAYS = 60
BRANDS = ("acme", "globex", "initech")
SOURCES = (
    ("hn", "hackernews"),
    ("reddit-support", "reddit"),
    ("mastodon", "mastodon"),
    ("bluesky", "bluesky"),
    ("trustpilot", "trustpilot"),
    ("appstore", "appstore"),
    ("news", "rss"),
    ("youtube", "youtube"),
)
LANGUAGES = ("en",) * 17 + ("de", "fr", "es")
PASSWORD = "bench password 123"
BATCH = 5000


def _config() -> Config:
    raw = {
        "brands": [{"name": b, "include": [b.title()]} for b in BRANDS],
        "sources": [
            {"name": name, "type": "rss", "url": f"https://{name}.example/feed"}
            for name, _type in SOURCES
        ],
        "http": {"secret": "bench-secret-" + "x" * 20},
        "channels": {
            "email": {"host": "127.0.0.1", "sender": "e@bench.example", "recipients": ["m@x.y"]},
            "digest": {"recipients": ["ops@bench.example"], "timezone": "Europe/London"},
        },
    }
    return validate_config(raw, "bench.toml", {})


# -- filling ------------------------------------------------------------------------------


def _insert(engine: Engine, table: sa.Table, rows: list[dict]) -> None:
    with engine.begin() as connection:
        for start in range(0, len(rows), BATCH):
            connection.execute(table.insert(), rows[start : start + BATCH])


SCORES = {
    "complaint": (-0.6, 0.85, "complaint"),
    "negative": (-0.45, 0.3, "other"),
    "positive": (0.6, 0.02, "praise"),
    "neutral": (0.0, 0.05, "question"),
}


def fill(engine: Engine, mentions: int, incidents: int, seed: int = 7) -> dict[str, int]:
    """The database as a busy team's would be after two months; returns a few ids."""
    rng = random.Random(seed)
    started = time.monotonic()
    rows, negatives = [], []
    for n in range(mentions):
        brand = rng.choices(BRANDS, weights=(6, 3, 1))[0]
        source, kind_of_source = rng.choice(SOURCES)
        text, kind = mention_text(rng, brand.title())
        seen = NOW - timedelta(seconds=rng.random() * DAYS * 86400)
        sentiment, complaint, category = SCORES[kind]
        likes = int(rng.paretovariate(1.2)) - 1
        rows.append(
            dict(
                id=n + 1,
                source=kind_of_source,
                external_id=f"{source}-{n}",
                source_name=source,
                brand=brand,
                url=f"https://{source}.example/p/{n}",
                author=f"user{rng.randint(1, 40000)}",
                author_followers=int(rng.paretovariate(1.1) * 50),
                title=None if rng.random() < 0.6 else text[:80],
                text=text,
                published_at=seen - timedelta(minutes=rng.randint(0, 90)),
                first_seen_at=seen,
                likes=likes,
                reposts=likes // 4,
                replies=likes // 3,
                engagement=likes + likes // 4 + likes // 3,
                sentiment=sentiment + rng.uniform(-0.3, 0.3),
                complaint=min(1.0, complaint + rng.uniform(0, 0.15)),
                virality=rng.random() ** 3,
                category=category,
                severity="warning" if kind == "complaint" else None,
                reasons='["bench"]',
                vip=rng.random() < 0.002,
                language=rng.choice(LANGUAGES),
            )
        )
        if kind in ("complaint", "negative"):
            negatives.append(rows[-1])
    _insert(engine, MentionRecord.__table__, rows)  # type: ignore[attr-defined]

    # Incidents: the newest are open, the rest resolved; each groups 1 to 12 alerts.
    rng.shuffle(negatives)
    incident_rows, alert_rows, snapshot_rows = [], [], []
    cursor = 0
    open_from = incidents - max(1, incidents // 12)
    for i in range(incidents):
        group = negatives[cursor : cursor + min(12, int(rng.paretovariate(1.5)))]
        cursor += len(group)
        if not group:
            break
        lead = group[0]
        opened = min(r["first_seen_at"] for r in group)
        status = "resolved"
        if i >= open_from:
            status = rng.choice(("triggered", "triggered", "acknowledged"))
            opened = NOW - timedelta(hours=rng.random() * 48)
        severity = rng.choices(("info", "warning", "critical"), weights=(2, 6, 1))[0]
        category = rng.choices(
            ("complaint", "legal_threat", "freebie_seeking", "abuse"), weights=(20, 1, 2, 1)
        )[0]
        incident_rows.append(
            dict(
                id=i + 1,
                brand=lead["brand"],
                source_name=lead["source_name"],
                title=lead["text"][:120],
                status=status,
                episode=1,
                severity=severity,
                category=category,
                opened_at=opened,
                updated_at=opened + timedelta(minutes=30),
                acknowledged_at=opened + timedelta(minutes=9) if status != "triggered" else None,
                acknowledged_by="ana" if status != "triggered" else None,
                resolved_at=opened + timedelta(hours=3) if status == "resolved" else None,
                resolved_by="ana" if status == "resolved" else None,
                alert_count=len(group),
                engagement=sum(r["engagement"] for r in group),
            )
        )
        for r in group:
            alert_rows.append(
                dict(
                    mention_id=r["id"],
                    incident_id=i + 1,
                    brand=r["brand"],
                    source_name=r["source_name"],
                    category=category,
                    severity=severity,
                    reason="bench",
                    status=status,
                    created_at=max(opened, r["first_seen_at"]),
                    updated_at=max(opened, r["first_seen_at"]),
                )
            )
            for step in range(5):
                snapshot_rows.append(
                    dict(
                        mention_id=r["id"],
                        seen_at=opened + timedelta(minutes=20 * step),
                        likes=r["likes"] * (step + 1) // 5,
                        reposts=r["reposts"] * (step + 1) // 5,
                        replies=r["replies"] * (step + 1) // 5,
                    )
                )
    _insert(engine, Incident.__table__, incident_rows)  # type: ignore[attr-defined]
    _insert(engine, AlertRecord.__table__, alert_rows)  # type: ignore[attr-defined]
    _insert(engine, EngagementSnapshot.__table__, snapshot_rows)  # type: ignore[attr-defined]
    _insert(
        engine,
        SourceState.__table__,  # type: ignore[attr-defined]
        [
            dict(
                name=name,
                type="rss",
                last_poll_at=NOW - timedelta(minutes=1),
                last_success_at=NOW - timedelta(minutes=1),
                next_poll_after=NOW + timedelta(minutes=4),
                items_last_poll=rng.randint(0, 40),
                polls_total=DAYS * 288,
            )
            for name, _type in SOURCES
        ],
    )
    _insert(
        engine,
        SentDigest.__table__,  # type: ignore[attr-defined]
        [
            dict(
                day=(NOW.date() - timedelta(days=d)).isoformat(),
                subject=f"Daily digest {d}",
                text="digest " * 400,
                html="<!doctype html><p>" + "digest " * 2000,
                sent_at=NOW - timedelta(days=d),
            )
            for d in range(DAYS)
        ],
    )
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            for table in ("mentions", "incidents", "alerts", "engagement_snapshots"):
                connection.execute(
                    sa.text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
                )
            connection.execute(sa.text("ANALYZE"))
    else:
        with engine.begin() as connection:
            connection.execute(sa.text("ANALYZE"))
    add_user(engine, "bench", "responder", PASSWORD, NOW)
    busiest = max(incident_rows[open_from:], key=lambda r: r["alert_count"])
    print(
        f"  filled {len(rows):,} mentions, {len(incident_rows):,} incidents, "
        f"{len(alert_rows):,} alerts, {len(snapshot_rows):,} snapshots "
        f"in {time.monotonic() - started:.0f} s",
        flush=True,
    )
    return {"incident": busiest["id"], "old_incident": incident_rows[10]["id"]}


# -- timing -------------------------------------------------------------------------------


def pages(ids: dict[str, int]) -> list[tuple[str, str]]:
    return [
        ("/", "/"),
        ("/?filters", "/?status=all&severity=warning&brand=acme&source=hn&category=complaint"),
        ("/incidents/<id> (open, busiest)", f"/incidents/{ids['incident']}"),
        ("/incidents/<id> (resolved)", f"/incidents/{ids['old_incident']}"),
        ("/mentions", "/mentions"),
        ("/mentions?brand&sentiment", "/mentions?brand=acme&sentiment=negative"),
        ("/mentions?q= (text search)", "/mentions?q=refund"),
        ("/mentions?q= (two words, rare)", "/mentions?q=refuses+to+replace"),
        ("/mentions?q= (in most mentions)", "/mentions?q=acme"),
        ("/mentions?q= (two characters)", "/mentions?q=ac"),
        ("/mentions?q= (no match)", "/mentions?q=zebra+crossing"),
        ("/mentions?q= (text search, page 20)", "/mentions?q=refund&page=20"),
        ("/mentions?format=csv (first row)", "/mentions?format=csv&q=refund"),
        ("/sources", "/sources"),
        ("/digests", "/digests"),
    ]


async def _time(
    engine: Engine, config: Config, ids: dict[str, int], rounds: int
) -> dict[str, tuple[list[float], list[float]]]:
    """Per page: its request times and those of ``/healthz`` asked just before each, in ms."""
    app = build_app(config, engine, lambda: NOW)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    browser = {"Accept": "text/html"}
    results: dict[str, list[float]] = {}
    try:
        async with aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            login = await (await http.get("/login", headers=browser)).text()
            token = re.search(r'name="csrf_token" value="([^"]+)"', login)
            assert token, "no csrf token on /login"
            form = {"username": "bench", "password": PASSWORD, "csrf_token": token[1]}
            answer = await http.post("/login", data=form, headers=browser, allow_redirects=False)
            assert answer.status == 303, f"login failed: {answer.status}"
            for name, path in pages(ids):
                times, floor = [], []
                for _ in range(rounds + 1):  # the first request warms caches; not counted
                    # The baseline just before each request for the page, so that a change
                    # in the machine's load touches both alike.
                    started = time.perf_counter()
                    async with http.get("/healthz", headers=browser) as response:
                        assert response.status == 200, f"/healthz: HTTP {response.status}"
                        await response.read()
                    floor.append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    async with http.get(path, headers=browser) as response:
                        assert response.status == 200, f"{path}: HTTP {response.status}"
                        if "format=csv" in path:
                            # The export writes its header line before the first query, so
                            # read on until the first row has arrived.
                            body = b""
                            while body.count(b"\n") < 2:
                                chunk = await response.content.readany()
                                if not chunk:
                                    break
                                body += chunk
                            times.append((time.perf_counter() - started) * 1000)
                            await response.read()  # the rest, untimed
                        else:
                            await response.read()
                            times.append((time.perf_counter() - started) * 1000)
                results[name] = (times[1:], floor[1:])
    finally:
        await runner.cleanup()
    return results


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def bench(backend: str, mentions: int, incidents: int, rounds: int) -> list[Row]:
    opened = sqlite_engine() if backend == "sqlite" else postgres_engine()
    config = _config()
    with opened as engine:
        print(f"{backend}: filling", flush=True)
        ids = fill(engine, mentions, incidents)
        results = asyncio.run(_time(engine, config, ids, rounds))
    every_floor = [ms for _times, floor in results.values() for ms in floor]
    rows = [
        Row(
            "console",
            f"{backend} /healthz, logged in (the baseline: HTTP, auth, session lookup)",
            f"median {statistics.median(every_floor):.1f} ms, p95 {p95(every_floor):.1f} ms",
            f"{len(every_floor)} requests, one before each timed page request",
        )
    ]
    for name, (times, floor) in results.items():
        median, high = statistics.median(times), p95(times)
        rows.append(
            Row(
                "console",
                f"{backend} {name}",
                f"median {median:.1f} ms, p95 {high:.1f} ms",
                f"/healthz median {statistics.median(floor):.1f} ms, p95 {p95(floor):.1f} ms; "
                f"target p95 < {TARGET_MS:.0f} ms",
                verdict(high < TARGET_MS),
            )
        )
    return rows


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=20, help="timed requests per page")
    args = parser.parse_args()
    quiet_logs()
    mentions, incidents = (10_000, 500) if args.quick else (100_000, 5_000)
    rounds = 5 if args.quick else args.rounds
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    print(f"machine: {machine()}; {mentions:,} mentions, {incidents:,} incidents, {rounds} rounds")
    rows: list[Row] = []
    for backend in backends:
        rows += bench(backend, mentions, incidents, rounds)
    finish(rows, args, "Console pages (median and p95 per page beside /healthz; target 200 ms)")


if __name__ == "__main__":
    main()
