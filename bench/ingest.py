"""Ingest throughput: N mentions through parse → match → store → score → decide.

Run ``python bench/ingest.py [--quick] [-n N]``. Mentions arrive as Algolia (Hacker News)
result pages of 100 hits, as a poll would fetch them; each page goes through the
connector's ``parse``, ``pipeline.match_stage`` and ``pipeline.commit_poll`` (store, score,
decide, file alerts into incidents), one transaction per page, as production does.

The runtime scores each poll's new mentions in its scoring process (``scoring_processes``,
default 1), so the bench keeps up to ``AHEAD`` pages scoring there while the poller stores
and files an earlier page, as happens when several sources are due at once.

The baseline is raw vaderSentiment ``polarity_scores`` on the same texts, in the same
process: the pipeline's rate is reported as a share of it (target: at least half on
SQLite, 40% on PostgreSQL). This machine's speed drifts by a fifth from one minute to the
next, so the baseline is measured in slices: before each block of ``BLOCK`` pages, VADER
reads that block's texts while the pipeline is idle, and then the pipeline takes the
block. Each backend runs in its own subprocess so that its peak RSS is its own;
PostgreSQL gets a fresh database that is dropped afterwards. Only the stages are timed,
not the building of the synthetic pages.

``--rows PREFIX`` also writes every column of every row the pipeline stored (mentions,
snapshots, alerts, incidents, incident keys, the source), ids included, to
``PREFIX.<backend>.json``: every time in them comes from the pages' clock, so a change
that stores the same rows leaves the file the same (``cmp`` two versions' files).
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import (
    Row,
    arguments,
    finish,
    mention_text,
    peak_rss_mib,
    postgres_engine,
    quiet_logs,
    sqlite_engine,
    verdict,
)

PAGE = 100
BLOCK = 50  # pages between two slices of the baseline
AHEAD = 2  # polls being scored while the poller stores an earlier one
SEED = 20_261_120
AUTHORS = 30_000
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TARGET_SHARE = {"sqlite": 0.5, "postgresql": 0.4}


def page_hits(page: int, size: int) -> tuple[list[dict], list[str]]:
    """One Algolia page of hits (a fifth stories, the rest comments) and their plain texts."""
    rng = random.Random(SEED + page)
    hits, texts = [], []
    for k in range(size):
        number = page * PAGE + k
        text, _ = mention_text(rng)
        texts.append(text)
        created = int((START - timedelta(seconds=rng.randint(0, 6 * 3600))).timestamp())
        hit: dict = {
            "objectID": str(40_000_000 + number),
            "created_at_i": created,
            "author": f"user{rng.randrange(AUTHORS)}",
        }
        if rng.random() < 0.2:
            title, _, rest = text.partition(". ")
            hit |= {
                "title": title,
                "story_text": f"<p>{rest}</p>" if rest else None,
                "points": rng.randint(1, 300),
                "num_comments": rng.randint(0, 80),
            }
        else:
            sentences = text.split(". ")
            paragraphs = [". ".join(sentences[i : i + 3]) for i in range(0, len(sentences), 3)]
            hit |= {
                "comment_text": "<p>".join(paragraphs),
                "story_title": None,
                "points": None,
                "num_comments": None,
            }
        hits.append(hit)
    return hits, texts


def pages(n: int) -> Iterator[tuple[int, bytes, list[str]]]:
    for page in range((n + PAGE - 1) // PAGE):
        hits, texts = page_hits(page, min(PAGE, n - page * PAGE))
        body = {"hits": hits, "page": page, "nbPages": page + 2, "hitsPerPage": PAGE}
        yield page, json.dumps(body).encode(), texts


def blocks(n: int) -> Iterator[list[tuple[int, bytes, list[str]]]]:
    block: list[tuple[int, bytes, list[str]]] = []
    for item in pages(n):
        block.append(item)
        if len(block) == BLOCK:
            yield block
            block = []
    if block:
        yield block


def vader_seconds(analyzer: Any, texts: list[str]) -> float:
    """Raw vaderSentiment on ``texts``: the seconds it takes."""
    started = time.perf_counter()
    for text in texts:
        analyzer.polarity_scores(text)
    return time.perf_counter() - started


def run_backend(backend: str, n: int, rows: str | None = None) -> dict:
    """The pipeline on one backend; called in a subprocess of its own."""
    import httpx
    import sqlalchemy as sa
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from emberwatch import ingest as pipeline
    from emberwatch.config import validate_config
    from emberwatch.models import AlertRecord, Incident, MentionRecord
    from emberwatch.sources import hackernews

    quiet_logs()
    config = validate_config(
        {
            "brands": [{"name": "acme", "include": ["Acme", "@acme"], "vip": ["user7"]}],
            "sources": [
                {
                    "name": "hn",
                    "type": "hackernews",
                    "query": "acme",
                    "base_url": "http://127.0.0.1:9",
                }
            ],
        },
        "bench.toml",
        {},
    )
    settings = config.sources[0]
    baseline_rss = peak_rss_mib()
    opened = sqlite_engine() if backend == "sqlite" else postgres_engine()
    with opened as engine:
        http = httpx.AsyncClient()  # required by Runtime, unused: nothing is fetched
        rt = pipeline.Runtime.build(config, engine, http)
        if rt.scoring_pool is not None:
            # Started before the clock: a monitor starts it once, at its first large poll.
            rt.scoring_pool.start()
        pipeline._load_state(engine, settings)
        spent = {"parse": 0.0, "match": 0.0, "score (wait)": 0.0, "store+decide": 0.0}
        grouping = _time_incident_grouping(pipeline)
        analyzer = SentimentIntensityAnalyzer()
        baseline = characters = 0.0

        def commit(matched: list, ahead: Any, now: datetime) -> None:
            t0 = time.perf_counter()
            presumed = ahead.result() if ahead is not None else None
            t1 = time.perf_counter()
            cursor = json.dumps({"since": int(now.timestamp())})
            pipeline.commit_poll(rt, settings, matched, cursor, 1, now, presumed=presumed)
            spent["score (wait)"] += t1 - t0
            spent["store+decide"] += time.perf_counter() - t1

        for block in blocks(n):
            texts = [text for _, _, page_texts in block for text in page_texts]
            characters += sum(map(len, texts))
            baseline += vader_seconds(analyzer, texts)
            # Up to AHEAD polls are scored while the poller stores and files an earlier
            # one; the block ends with nothing in flight, as the baseline needs.
            waiting: deque[tuple[list, Any, datetime]] = deque()
            for page, body, _ in block:
                now = START + timedelta(seconds=3 * page)
                t0 = time.perf_counter()
                mentions = hackernews.parse(body)
                t1 = time.perf_counter()
                matched = pipeline.match_stage(mentions, rt.matchers, settings)
                waiting.append((matched, pipeline.score_ahead(rt, matched, now), now))
                spent["parse"] += t1 - t0
                spent["match"] += time.perf_counter() - t1
                if len(waiting) > AHEAD:
                    commit(*waiting.popleft())
            while waiting:
                commit(*waiting.popleft())
        scoring_processes = rt.scoring_pool.processes if rt.scoring_pool else 0
        rt.close()
        if rows:
            Path(rows).write_text(stored_rows(engine))
        with engine.connect() as connection:
            counts = {
                name: connection.execute(sa.select(sa.func.count()).select_from(table)).scalar()
                for name, table in (
                    ("mentions", MentionRecord.__table__),
                    ("alerts", AlertRecord.__table__),
                    ("incidents", Incident.__table__),
                )
            }
    total = sum(spent.values())
    peak_rss = peak_rss_mib()
    # The scoring process has exited (rt.close), so the children's figure holds its peak.
    worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "backend": backend,
        "n": n,
        "vader": n / baseline,
        "mean_chars": int(characters // n),
        "seconds": total,
        "rate": n / total,
        "stages": spent,
        "grouping_seconds": grouping[0],
        "baseline_rss_mib": baseline_rss,
        "peak_rss_mib": peak_rss,
        "scoring_processes": scoring_processes,
        "scoring_rss_mib": worker_rss if scoring_processes else 0.0,
        **counts,
    }


def _time_incident_grouping(pipeline: Any) -> list[float]:
    """Time ``alerts.incidents.attach`` (called once per alert) by wrapping the pipeline's
    reference to it; the total accumulates in the returned one-item list."""
    attach, spent = pipeline.attach, [0.0]

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return attach(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started

    pipeline.attach = timed
    return spent


def stored_rows(engine: Any) -> str:
    """Every column of every row the pipeline wrote, ids included, as JSON: the same
    pages give the same text on any version that stores the same rows."""
    import sqlalchemy as sa

    from emberwatch.models import (
        AlertRecord,
        EngagementSnapshot,
        Incident,
        IncidentKey,
        MentionRecord,
        SourceState,
    )

    tables = (MentionRecord, EngagementSnapshot, AlertRecord, Incident, IncidentKey, SourceState)
    found = {}
    with engine.connect() as connection:
        for model in tables:
            table = model.__table__  # type: ignore[attr-defined]
            found[table.name] = [
                {name: repr(value) for name, value in row.items()}
                for row in connection.execute(sa.select(table).order_by(table.c.id)).mappings()
            ]
    return json.dumps(found, indent=0, sort_keys=True)


def child(backend: str, n: int, rows: str | None) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, __file__, "--backend", backend, "-n", str(n)]
        command += ["--result", out.name] + (["--rows", f"{rows}.{backend}.json"] if rows else [])
        subprocess.run(command, check=True)
        return json.loads(Path(out.name).read_text())


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, help="mentions (default 100,000; --quick 2,000)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), help=argparse_hidden())
    parser.add_argument("--result", help=argparse_hidden())
    parser.add_argument(
        "--rows",
        metavar="PREFIX",
        help="write every stored row to PREFIX.<backend>.json (compare two versions with cmp)",
    )
    parser.add_argument(
        "--backends", default="sqlite,postgresql", help="comma-separated (default both)"
    )
    args = parser.parse_args()
    n = args.n or (2_000 if args.quick else 100_000)
    if args.backend:
        Path(args.result).write_text(json.dumps(run_backend(args.backend, n, args.rows)))
        return
    rows = []
    for backend in args.backends.split(","):
        result = child(backend, n, args.rows)
        vader = result["vader"]
        share = result["rate"] / vader
        target = TARGET_SHARE[backend]
        grouping = result.get("grouping_seconds", 0.0) / result["seconds"]
        stages = ", ".join(
            f"{name} {seconds / result['seconds']:.0%}"
            for name, seconds in result["stages"].items()
        )
        print(
            f"  {backend}: {n:,} mentions, mean {result['mean_chars']} characters; "
            f"raw VADER {vader:,.0f}/s; "
            f"pipeline {result['rate']:,.0f}/s in {result['seconds']:.1f} s ({stages}; "
            f"incident grouping {grouping:.0%}); "
            f"{result['mentions']:,} stored, {result['alerts']:,} alerts, "
            f"{result['incidents']:,} incidents"
        )
        rows += [
            Row(
                "ingest",
                f"{backend}: pipeline throughput",
                f"{result['rate']:,.0f} mentions/s = {share:.1%} of raw VADER",
                f"raw VADER {vader:,.0f}/s; target >= {target:.0%}",
                verdict(share >= target),
            ),
            Row(
                "ingest",
                f"{backend}: time in incident grouping",
                f"{grouping:.0%} of pipeline time",
                f"alerts.incidents.attach, {result['alerts']:,} alerts",
            ),
            Row(
                "ingest",
                f"{backend}: peak RSS",
                f"{result['peak_rss_mib']:,.0f} MiB poller"
                + (
                    f" + {result['scoring_rss_mib']:,.0f} MiB scoring process"
                    if result["scoring_processes"]
                    else ""
                ),
                f"{result['baseline_rss_mib']:,.0f} MiB after imports",
            ),
        ]
    finish(rows, args, f"ingest ({n:,} mentions, pages of {PAGE})")


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
