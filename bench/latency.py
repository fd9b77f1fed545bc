"""Time to alert: from a mention published on a loopback feed to Slack holding the alert.

Run ``python bench/latency.py [--quick] [--mentions N]``. The real monitor
(``scheduling.run_monitor``) runs on SQLite, polling one ``hackernews`` source every 2 s
against an Algolia-shaped feed on 127.0.0.1; a loopback Slack webhook server records when
each message arrives. At random moments (gaps of 0.5 to 2.5 s) the feed publishes a critical
complaint: strongly negative, from one of the brand's VIP customers. Each has its own
author, URL and reference token, and ``[grouping] similarity = 100``, so each opens its own
incident, which notifies at once (a new critical incident skips ``group_wait``).

Latency is the arrival time at that server minus the publication time, matched by the token.
The poll interval is printed beside p50 and p95: polling alone adds up to one interval.
Target: p95 <= poll interval + 2 s.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from _common import Row, arguments, finish, quiet_logs, verdict

POLL_INTERVAL = 2.0
TARGET_SLACK = 2.0
SEED = 7

COMPLAINTS = (
    "Acme lost my order {token} and support ignored five emails, terrible awful service, "
    "I want a refund now.",
    "Furious with Acme: the kettle in order {token} arrived broken and they refuse to replace "
    "it. Useless, horrible customer service.",
    "Acme charged me twice for order {token} and nobody answers the phone. Worst company "
    "ever, disgusting treatment.",
    "Still no refund from Acme for {token} after three weeks. Awful, hopeless support, I am "
    "so angry.",
    "Acme cancelled my delivery {token} without telling me and their chat bot is useless. "
    "Terrible, infuriating experience.",
)


class _Feed:
    """An Algolia-shaped feed whose hits appear when the bench publishes them."""

    def __init__(self) -> None:
        self.hits: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def publish(self, hit: dict[str, Any]) -> None:
        with self.lock:
            self.hits.append(hit)

    def handle(self, method: str, path: str, body: bytes) -> Any:
        from emberwatch.demo.servers import Reply

        parts = urlsplit(path)
        if not parts.path.startswith("/api/v1/search_by_date"):
            return Reply(404, b"{}")
        since = 0
        for rule in parse_qs(parts.query).get("numericFilters", []):
            if rule.startswith("created_at_i>="):
                since = int(rule.split(">=", 1)[1])
        with self.lock:
            hits = [h for h in self.hits if h["created_at_i"] >= since][::-1]  # newest first
        page = {"hits": hits, "page": 0, "nbPages": 1, "hitsPerPage": 100}
        return Reply(200, json.dumps(page).encode())


def _hits(count: int, rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for i in range(count):
        token = f"EW{i:03d}X{rng.randrange(10**6):06d}"
        text = COMPLAINTS[i % len(COMPLAINTS)].format(token=token)
        hit = {
            "objectID": str(50_000_000 + i),
            "title": text,
            "author": f"vip{i:03d}",
            "points": 1,
            "num_comments": 0,
        }
        out.append((token, hit))
    return out


def _config(folder: Path, feed_url: str, webhook_url: str, count: int) -> Any:
    from emberwatch.config import validate_config

    return validate_config(
        {
            "database_url": f"sqlite:///{folder / 'latency.db'}",
            "brands": [
                {"name": "acme", "include": ["Acme"], "vip": [f"vip{i:03d}" for i in range(count)]}
            ],
            "sources": [
                {
                    "name": "hn",
                    "type": "hackernews",
                    "query": "acme",
                    "base_url": feed_url,
                    "interval": f"{POLL_INTERVAL:g}s",
                }
            ],
            "channels": {"slack": {"webhook_url": webhook_url}},
            "routes": [{"name": "oncall", "channels": ["slack"], "group_wait": "0s"}],
            "delivery": {"interval": "0.25s"},
            "evaluate_interval": "0.5s",
            "grouping": {"similarity": 100},
        },
        "bench.toml",
        {},
    )


def _critical_share(config: Any, hits: list[tuple[str, dict[str, Any]]]) -> float:
    """How many of the published mentions the scorer grades critical (should be all)."""
    from emberwatch.matching import BrandMatcher
    from emberwatch.scoring import Scorer
    from emberwatch.sources import hackernews

    # Built as Runtime.build builds them.
    scorer = Scorer(
        {b.name: b.lexicon for b in config.brands},
        viral_threshold=config.thresholds.viral_engagement,
        high_reach_followers=config.thresholds.high_reach_followers,
    )
    matcher = BrandMatcher.build(config.brands[0])
    now = int(time.time())
    page = json.dumps({"hits": [{**h, "created_at_i": now} for _, h in hits]}).encode()
    graded = [
        scorer.score(m, vip=matcher.is_vip(m.author), now=m.published_at).severity == "critical"
        for m in hackernews.parse(page)
    ]
    return sum(graded) / len(graded)


async def _run(count: int, folder: Path) -> dict[str, Any]:
    import anyio
    import httpx

    from emberwatch import db as database
    from emberwatch.demo.servers import HTTPServer, SlackServer
    from emberwatch.ingest import Runtime
    from emberwatch.scheduling import run_monitor

    arrivals: list[tuple[float, str]] = []

    class TimedSlack(SlackServer):
        def _handle(self, method: str, path: str, body: bytes) -> Any:
            arrivals.append((time.monotonic(), body.decode("utf-8", "replace")))
            return super()._handle(method, path, body)

    rng = random.Random(SEED)
    feed = _Feed()
    server = HTTPServer(feed.handle).start()
    slack = TimedSlack().start()
    published: dict[str, float] = {}
    try:
        config = _config(folder, server.base_url, slack.webhook_url, count)
        hits = _hits(count, rng)
        critical = _critical_share(config, hits)
        engine = database.create_db_engine(config.database_url)
        database.upgrade(engine)
        async with httpx.AsyncClient(follow_redirects=True) as http:
            runtime = Runtime.build(config, engine, http)
            stop = anyio.Event()

            async def publish() -> None:
                await anyio.sleep(POLL_INTERVAL)  # let the first (empty) poll pass
                for token, hit in hits:
                    await anyio.sleep(rng.uniform(0.5, 2.5))
                    feed.publish({**hit, "created_at_i": int(time.time())})
                    published[token] = time.monotonic()
                deadline = time.monotonic() + POLL_INTERVAL + 15
                while time.monotonic() < deadline and len(_matched(published, arrivals)) < count:
                    await anyio.sleep(0.1)
                stop.set()

            async with anyio.create_task_group() as group:
                group.start_soon(publish)
                await run_monitor(runtime, stop, serve_http=False)
        engine.dispose()
    finally:
        server.stop()
        slack.stop()
    latencies = sorted(_matched(published, arrivals).values())
    return {"latencies": latencies, "published": len(published), "critical": critical}


def _matched(published: dict[str, float], arrivals: list[tuple[float, str]]) -> dict[str, float]:
    """Each token's latency: its first arrival at the server after its publication."""
    found: dict[str, float] = {}
    for at, body in arrivals:
        for token, sent in published.items():
            if token not in found and token in body:
                found[token] = at - sent
    return found


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, round(q / 100 * len(sorted_values) + 0.4999))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, help="critical mentions (default 50; --quick 10)")
    args = parser.parse_args()
    count = args.mentions or (10 if args.quick else 50)
    quiet_logs()
    with tempfile.TemporaryDirectory(prefix="emberwatch-latency-") as folder:
        result = _run_sync(count, Path(folder))
    latencies = result["latencies"]
    target = POLL_INTERVAL + TARGET_SLACK
    rows = [
        Row(
            "latency",
            "critical alerts that reached Slack",
            f"{len(latencies)}/{result['published']}",
            f"scorer grades {result['critical']:.0%} of them critical",
            verdict(len(latencies) == result["published"]),
        )
    ]
    if latencies:
        p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
        rows += [
            Row(
                "latency",
                "publish -> Slack, p50",
                f"{p50:.2f} s",
                f"poll interval {POLL_INTERVAL:g} s",
            ),
            Row(
                "latency",
                "publish -> Slack, p95",
                f"{p95:.2f} s",
                f"poll interval {POLL_INTERVAL:g} s; <= {target:g} s",
                verdict(p95 <= target),
            ),
            Row(
                "latency",
                "publish -> Slack, max",
                f"{max(latencies):.2f} s",
                f"mean {statistics.fmean(latencies):.2f} s",
            ),
        ]
    finish(rows, args, f"time to alert ({count} critical mentions, poll every {POLL_INTERVAL:g} s)")


def _run_sync(count: int, folder: Path) -> dict[str, Any]:
    import anyio

    return anyio.run(_run, count, folder)


if __name__ == "__main__":
    main()
