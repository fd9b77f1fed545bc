"""Poll fan-out: many sources against a loopback API, through ``poll_all`` and a real ``run``.

Run ``python bench/fanout.py [--quick] [--sources N] [--only round|steady|poll-once]
[--backend sqlite|postgresql|both] [--requests FILE]``. A separate process serves an
Algolia-shaped API on 127.0.0.1 (aiohttp) and records when each request arrived and ended
(``--requests`` writes the round's requests to a JSON file).

- **poll-once**: this process polls N ``hackernews`` sources (default 1,000) with
  ``pipeline.poll_all`` (the ``poll --once`` path) on SQLite, twice; every request is
  answered after a real 200 ms sleep and brings one new mention.
- **round**: a real ``emberwatch run`` process (``python -m emberwatch run``), N sources
  (default 1,000) due at once, 200 ms per answer: the time from the first request to the
  end of the last source's first request.
- **steady**: a real ``emberwatch run`` process, 200 sources every 5 s (default jitter);
  once each has had its first poll, the API publishes 4 new posts a second for a minute
  (each to one source at random), answering at once. Each source's schedule starts at
  its first poll; a poll's lateness is its arrival minus (first poll + k x 5 s) for its
  k-th poll, so a missed poll makes every later one an interval late. Meanwhile this
  process reads the database every 0.2 s to see when each post is stored.

The round's baseline is the lower bound the configuration sets: polls run at most
``max_concurrent_polls`` at a time, and httpx's pool at most ``max_connections`` to one
host, so a round takes at least ``ceil(N / min(max_concurrent_polls, max_connections))
x 200 ms``. Targets: a round within 1.2x of it (poller RSS under 300 MB for poll-once);
steady: every scheduled poll made, p95 lateness <= 1 s, every post stored within one
interval + 2 s.

The ``run`` process imports ``emberwatch`` the way this process does, so
``PYTHONPATH=/other/checkout/src python bench/fanout.py --only steady`` measures another
version of the code with the same bench.
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from _common import Row, arguments, finish, peak_rss_mib, quiet_logs, verdict

DELAY = 0.2
TARGET_RATIO = 1.2
TARGET_RSS_MB = 300
STEADY_SOURCES = 200
STEADY_INTERVAL = 5.0
STEADY_SECONDS = 60.0
POSTS_PER_SECOND = 4.0
TARGET_LATENESS_P95 = 1.0
TARGET_STORE_SLACK = 2.0


def _serve(
    port_queue: multiprocessing.Queue, delay: float, posts_per_second: float, fresh: bool
) -> None:
    """The loopback API (runs in its own process until terminated).

    ``/api/v1/search_by_date?query=Q`` answers after ``delay`` with the source's newest
    posts (with ``fresh``, one new post per request instead); ``/publish?sources=N``
    starts publishing ``posts_per_second`` posts to ``src0000``..; ``/stats`` tells all.
    """
    from aiohttp import web

    served: dict[str, int] = {}
    posts: dict[str, list[dict]] = {}
    published: list[tuple[str, float]] = []
    requests: list[tuple[str, float, float]] = []
    stats = {"in_flight": 0, "max_in_flight": 0}

    async def search(request: web.Request) -> web.Response:
        started = time.time()
        stats["in_flight"] += 1
        stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
        try:
            if delay:
                await asyncio.sleep(delay)
        finally:
            stats["in_flight"] -= 1
        query = request.query.get("query", "")
        if not fresh:
            hits = posts.get(query, [])[-20:]
        else:
            served[query] = served.get(query, 0) + 1
            hits = [
                {
                    "objectID": f"{query}-{served[query]}",
                    "created_at_i": int(time.time()),
                    "title": f"Acme kettle review number {served[query]} from {query}",
                    "author": query,
                    "points": 1,
                    "num_comments": 0,
                }
            ]
        requests.append((query, started, time.time()))
        return web.json_response({"hits": hits, "page": 0, "nbPages": 1, "hitsPerPage": 20})

    async def publish_loop(sources: int, seconds: float) -> None:
        rng = random.Random(11)
        ends = time.time() + seconds
        n = 0
        while time.time() < ends:
            n += 1
            query = f"src{rng.randrange(sources):04d}"
            post_id = f"post-{n}"
            posts.setdefault(query, []).append(
                {
                    "objectID": post_id,
                    "created_at_i": int(time.time()),
                    "title": f"Acme kettle post {n} for {query}",
                    "author": f"author{n}",
                    "points": 1,
                    "num_comments": 0,
                }
            )
            published.append((post_id, time.time()))
            await asyncio.sleep(1 / posts_per_second)

    async def publish(request: web.Request) -> web.Response:
        asyncio.get_running_loop().create_task(
            publish_loop(int(request.query["sources"]), float(request.query["seconds"]))
        )
        return web.json_response({"ok": True})

    async def report(request: web.Request) -> web.Response:
        return web.json_response({**stats, "requests": requests, "published": published})

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/api/v1/search_by_date", search)
        app.router.add_get("/publish", publish)
        app.router.add_get("/stats", report)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


@contextmanager
def _api(delay: float, *, fresh: bool = True):
    """Start the loopback API in its own process; yields its base URL."""
    ctx = multiprocessing.get_context("spawn")
    ports: multiprocessing.Queue = ctx.Queue()
    server = ctx.Process(target=_serve, args=(ports, delay, POSTS_PER_SECOND, fresh), daemon=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{ports.get(timeout=30)}"
    finally:
        server.terminate()
        server.join(10)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _pool_limit(http: object) -> int:
    """The connection cap of httpx's pool (the default client: 100), read from the client."""
    try:
        return int(http._transport._pool._max_connections)  # type: ignore[attr-defined]
    except AttributeError:
        return 100


def _source(i: int, base_url: str, interval: str | None = None) -> dict:
    source = {
        "name": f"src{i:04d}",
        "type": "hackernews",
        "query": f"src{i:04d}",
        "base_url": base_url,
        "hits_per_page": 20,
        "max_pages": 1,
    }
    if interval:
        source["interval"] = interval
    return source


# -- poll --once: pipeline.poll_all ---------------------------------------------------------


async def _poll_all_rounds(base_url: str, sources: int, folder: Path) -> dict:
    import httpx

    from emberwatch import db as database
    from emberwatch.config import validate_config
    from emberwatch.ingest import Runtime, poll_all

    quiet_logs()
    config = validate_config(
        {
            "database_url": f"sqlite:///{folder / 'fanout.db'}",
            "brands": [{"name": "acme", "include": ["Acme"]}],
            "sources": [_source(i, base_url) for i in range(sources)],
        },
        "bench.toml",
        {},
    )
    engine = database.create_db_engine(config.database_url)
    database.upgrade(engine)
    baseline_rss = peak_rss_mib()
    timings, failures = [], 0
    async with httpx.AsyncClient(follow_redirects=True) as http:
        rt = Runtime.build(config, engine, http)
        pool = _pool_limit(http)
        for _ in range(2):
            started = time.perf_counter()
            reports = await poll_all(rt)
            timings.append(time.perf_counter() - started)
            failures += sum(1 for r in reports if r.error or r.new != 1)
        rt.close()
    engine.dispose()
    return {
        "timings": timings,
        "failures": failures,
        "concurrency": config.max_concurrent_polls,
        "pool": pool,
        "baseline_rss_mib": baseline_rss,
        "peak_rss_mib": peak_rss_mib(),
    }


def _poll_once_rows(sources: int) -> list[Row]:
    with _api(DELAY) as base_url, tempfile.TemporaryDirectory(prefix="emberwatch-") as folder:
        result = asyncio.run(_poll_all_rounds(base_url, sources, Path(folder)))
        in_flight = _get(f"{base_url}/stats")["max_in_flight"]
    width = min(result["concurrency"], result["pool"])
    bound = math.ceil(sources / width) * DELAY
    rows = []
    for label, seconds in zip(("round 1", "round 2"), result["timings"], strict=True):
        ratio = seconds / bound
        rows.append(
            Row(
                "fanout",
                f"poll --once, {sources:,} sources, {label}",
                f"{seconds:.2f} s = {ratio:.2f}x bound",
                f"bound {bound:.1f} s; <= {TARGET_RATIO}x",
                verdict(ratio <= TARGET_RATIO),
            )
        )
    peak_mb = result["peak_rss_mib"] * 1.048576
    rows += [
        Row(
            "fanout",
            "poll --once, peak RSS (poller)",
            f"{peak_mb:,.0f} MB",
            f"< {TARGET_RSS_MB} MB; {result['baseline_rss_mib'] * 1.048576:,.0f} MB before",
            verdict(peak_mb < TARGET_RSS_MB),
        ),
        Row(
            "fanout",
            "poll --once, requests in flight at once",
            f"{in_flight}",
            f"max_concurrent_polls {result['concurrency']}, pool {result['pool']}",
            verdict(in_flight <= width),
        ),
        Row(
            "fanout",
            "poll --once, failed or empty polls",
            f"{result['failures']}",
            f"of {2 * sources:,}",
            verdict(result["failures"] == 0),
        ),
    ]
    return rows


# -- emberwatch run ---------------------------------------------------------------------------


@contextmanager
def _database(backend: str, folder: Path):
    """A fresh database URL: a SQLite file in ``folder`` or a PostgreSQL database of its own."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'run.db'}"
        return
    from _common import postgres_engine

    with postgres_engine() as engine:
        url = engine.url.render_as_string(hide_password=False)
        engine.dispose()
        yield url


def _toml(value: object) -> str:
    return json.dumps(value)  # a JSON string or number is a TOML one


def _write_config(folder: Path, db_url: str, sources: list[dict], extra: str = "") -> Path:
    lines = [
        f"database_url = {_toml(db_url)}",
        extra,
        "[[brands]]",
        'name = "acme"',
        'include = ["Acme"]',
    ]
    for source in sources:
        lines.append("[[sources]]")
        lines += [f"{key} = {_toml(value)}" for key, value in source.items()]
    path = folder / "fanout.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@contextmanager
def _running(config: Path, folder: Path):
    """``emberwatch db upgrade`` then ``emberwatch run`` in its own process; yields it."""
    env = {**os.environ, "EMBERWATCH_CONFIG": str(config)}
    command = [sys.executable, "-m", "emberwatch"]
    subprocess.run([*command, "db", "upgrade"], env=env, check=True, capture_output=True)
    log = (folder / "run.log").open("w")
    node = subprocess.Popen([*command, "run"], env=env, stdout=log, stderr=log)
    try:
        yield node
    finally:
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.kill()
        log.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _round_rows(backend: str, sources: int, requests_file: str | None = None) -> list[Row]:
    with (
        _api(DELAY) as base_url,
        tempfile.TemporaryDirectory(prefix="emberwatch-") as name,
        _database(backend, Path(name)) as db_url,
    ):
        folder = Path(name)
        config = _write_config(
            folder,
            db_url,
            [_source(i, base_url, "1h") for i in range(sources)],
            'poll_jitter = "0s"',
        )
        concurrency = 20  # the default max_concurrent_polls
        with _running(config, folder) as node:
            deadline = time.time() + 120 + sources * DELAY
            # The node's CPU time from its first request on (startup excluded).
            while time.time() < deadline and node.poll() is None:
                if _get(f"{base_url}/stats")["max_in_flight"]:
                    break
                time.sleep(0.02)
            cpu_before = _cpu_seconds(node.pid)
            while time.time() < deadline and node.poll() is None:
                stats = _get(f"{base_url}/stats")
                if len({q for q, _, _ in stats["requests"]}) >= sources:
                    break
                time.sleep(0.5)
            cpu = _cpu_seconds(node.pid) - cpu_before
            stats = _get(f"{base_url}/stats")
        first: dict[str, tuple[float, float]] = {}
        for query, started, ended in stats["requests"]:
            first.setdefault(query, (started, ended))
    bound = math.ceil(sources / min(concurrency, 100)) * DELAY
    if requests_file:
        Path(requests_file).write_text(json.dumps(stats["requests"]), encoding="utf-8")
    durations = sum(e - s for _, s, e in stats["requests"])
    if len(first) < sources:
        seconds, ratio = float("nan"), float("inf")
    else:
        seconds = max(e for _, e in first.values()) - min(s for s, _ in first.values())
        ratio = seconds / bound
    return [
        Row(
            "fanout",
            f"run on {backend}, {sources:,} sources, one round",
            f"{seconds:.2f} s = {ratio:.2f}x bound ({len(first):,} polled)",
            f"bound {bound:.1f} s; <= {TARGET_RATIO}x",
            verdict(ratio <= TARGET_RATIO),
        ),
        Row(
            "fanout",
            f"run on {backend}, mean requests in flight in the round",
            f"{durations / seconds:.1f}",
            f"max_concurrent_polls {concurrency}",
        ),
        Row(
            "fanout",
            f"run on {backend}, CPU of the run process in the round",
            f"{cpu:.2f} s ({cpu / seconds:.0%} of one core)",
            "the round is on time only if the node gets this much CPU",
        ),
        Row(
            "fanout",
            f"run on {backend}, requests in flight at once",
            f"{stats['max_in_flight']}",
            f"max_concurrent_polls {concurrency}",
            verdict(stats["max_in_flight"] <= concurrency),
        ),
    ]


def _stored_times(db_url: str, seen: dict[str, float], stop_at: float) -> None:
    """Until ``stop_at``, read the stored mentions' ids every 0.2 s; note when each appears."""
    import sqlalchemy as sa

    from emberwatch import db as database

    engine = database.create_db_engine(db_url)
    try:
        while time.time() < stop_at:
            try:
                with engine.connect() as connection:
                    ids = connection.execute(sa.text("SELECT external_id FROM mentions")).scalars()
                    now = time.time()
                    for external_id in ids:
                        seen.setdefault(external_id, now)
            except sa.exc.OperationalError:
                pass  # a busy SQLite file: read again next time
            time.sleep(0.2)
    finally:
        engine.dispose()


def _steady_rows(backend: str, sources: int) -> list[Row]:
    import threading

    seen: dict[str, float] = {}
    with (
        _api(0, fresh=False) as base_url,
        tempfile.TemporaryDirectory(prefix="emberwatch-") as name,
        _database(backend, Path(name)) as db_url,
    ):
        folder = Path(name)
        config = _write_config(
            folder, db_url, [_source(i, base_url, f"{STEADY_INTERVAL:g}s") for i in range(sources)]
        )
        with _running(config, folder) as node:
            # Publishing starts once every source has had its first poll (or 30 s on).
            ready_by = time.time() + 30
            while time.time() < ready_by and node.poll() is None:
                stats = _get(f"{base_url}/stats")
                if len({q for q, _, _ in stats["requests"]}) >= sources:
                    break
                time.sleep(0.2)
            _get(f"{base_url}/publish?sources={sources}&seconds={STEADY_SECONDS}")
            started = time.time()
            cpu_before = _cpu_seconds(node.pid)
            window_ends = started + STEADY_SECONDS
            reader = threading.Thread(
                target=_stored_times,
                args=(db_url, seen, window_ends + STEADY_INTERVAL + TARGET_STORE_SLACK + 3),
                daemon=True,
            )
            reader.start()
            time.sleep(STEADY_SECONDS)
            cpu = (_cpu_seconds(node.pid) - cpu_before) / STEADY_SECONDS
            reader.join()
            alive = node.poll() is None
        stats = _get(f"{base_url}/stats")
    polls: dict[str, list[float]] = {f"src{i:04d}": [] for i in range(sources)}
    for query, arrived, _ in stats["requests"]:
        if arrived <= window_ends and query in polls:
            polls[query].append(arrived)
    scheduled = made = 0
    lateness: list[float] = []
    for times in polls.values():
        # A source's schedule: its first poll, then every interval. A slot in the window
        # is made by the source's poll of the same rank; a poll never made is as late as
        # the window let it be.
        origin = times[0] if times else started
        for k in range(int((window_ends - origin) // STEADY_INTERVAL) + 1):
            slot = origin + k * STEADY_INTERVAL
            if slot < started:
                continue
            scheduled += 1
            if k < len(times):
                made += 1
                lateness.append(times[k] - slot)
            else:
                lateness.append(window_ends - slot)
    never = sum(1 for t in polls.values() if not t)
    p95 = statistics.quantiles(lateness, n=20)[-1] if len(lateness) >= 2 else float("nan")
    late_max = max(lateness, default=float("nan"))
    published = stats["published"]
    delays = [seen[pid] - at for pid, at in published if pid in seen]
    missing = sum(1 for pid, _ in published if pid not in seen)
    budget = STEADY_INTERVAL + TARGET_STORE_SLACK
    in_time = sum(1 for d in delays if d <= budget)
    return [
        Row(
            "fanout",
            f"run on {backend}, {sources} sources every {STEADY_INTERVAL:g} s, polls made",
            f"{made:,} of {scheduled:,} scheduled; {never} sources never polled",
            "every scheduled poll",
            verdict(made == scheduled and never == 0),
        ),
        Row(
            "fanout",
            f"run on {backend}, poll lateness p95 / max",
            f"{p95:.2f} s / {late_max:.2f} s",
            f"p95 <= {TARGET_LATENESS_P95:g} s",
            verdict(p95 <= TARGET_LATENESS_P95),
        ),
        Row(
            "fanout",
            f"run on {backend}, posts stored within {budget:g} s",
            f"{in_time:,} of {len(published):,} (not stored: {missing}; "
            f"max {max(delays, default=float('nan')):.1f} s)",
            f"all within interval + {TARGET_STORE_SLACK:g} s",
            verdict(in_time == len(published)),
        ),
        Row(
            "fanout",
            f"run on {backend}, CPU of the run process",
            f"{cpu:.0%} of one core",
            "" if alive else "the process exited early",
        ),
    ]


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument(
        "--sources", type=int, help="sources for rounds (default 1,000; --quick 200)"
    )
    parser.add_argument("--only", choices=("poll-once", "round", "steady"), action="append")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--requests", metavar="FILE", help="round: write each request's [query, start, end] here"
    )
    args = parser.parse_args()
    sources = args.sources or (200 if args.quick else 1_000)
    parts = args.only or ["poll-once", "round", "steady"]
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    rows: list[Row] = []
    if "poll-once" in parts:
        rows += _poll_once_rows(sources)
    for backend in backends:
        if "round" in parts:
            rows += _round_rows(backend, sources, args.requests)
        if "steady" in parts:
            rows += _steady_rows(backend, STEADY_SOURCES)
    finish(rows, args, f"fanout ({sources:,} sources per round, {DELAY * 1000:.0f} ms per request)")


if __name__ == "__main__":
    main()
