"""Poll fan-out: one full round of many sources against a loopback API that takes 200 ms.

Run ``python bench/fanout.py [--quick] [--sources N]``. A separate process serves an
Algolia-shaped API on 127.0.0.1 (aiohttp), answering every request after a real 200 ms
sleep; this process polls N ``hackernews`` sources pointed at it with the real
``pipeline.poll_all`` on SQLite, twice (the first round also creates each source's state
row). Each poll brings one new mention, so every round stores N mentions.

The baseline is the lower bound the configuration sets: polls run at most
``max_concurrent_polls`` at a time, and httpx's pool (the client the CLI builds) at most
``max_connections`` to one host, so a round takes at least
``ceil(N / min(max_concurrent_polls, max_connections)) x 200 ms``. Target: within 1.2x of
it, with the poller's peak RSS under 300 MB.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import tempfile
import time
from pathlib import Path

from _common import Row, arguments, finish, peak_rss_mib, quiet_logs, verdict

DELAY = 0.2
TARGET_RATIO = 1.2
TARGET_RSS_MB = 300


def _serve(port_queue: multiprocessing.Queue, delay: float) -> None:
    """The loopback API (runs in its own process until terminated)."""
    from aiohttp import web

    served: dict[str, int] = {}
    stats = {"requests": 0, "in_flight": 0, "max_in_flight": 0}

    async def search(request: web.Request) -> web.Response:
        stats["requests"] += 1
        stats["in_flight"] += 1
        stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
        try:
            await asyncio.sleep(delay)
        finally:
            stats["in_flight"] -= 1
        query = request.query.get("query", "")
        served[query] = served.get(query, 0) + 1
        hit = {
            "objectID": f"{query}-{served[query]}",
            "created_at_i": int(time.time()),
            "title": f"Acme kettle review number {served[query]} from {query}",
            "author": query,
            "points": 1,
            "num_comments": 0,
        }
        return web.json_response({"hits": [hit], "page": 0, "nbPages": 1, "hitsPerPage": 20})

    async def report(request: web.Request) -> web.Response:
        return web.json_response(stats)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/api/v1/search_by_date", search)
        app.router.add_get("/stats", report)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


def _pool_limit(http: object) -> int:
    """The connection cap of httpx's pool (the default client: 100), read from the client."""
    try:
        return int(http._transport._pool._max_connections)  # type: ignore[attr-defined]
    except AttributeError:
        return 100


async def _rounds(base_url: str, sources: int, folder: Path) -> dict:
    import httpx

    from emberwatch import db as database
    from emberwatch.config import validate_config
    from emberwatch.pipeline import Runtime, poll_all

    quiet_logs()
    config = validate_config(
        {
            "database_url": f"sqlite:///{folder / 'fanout.db'}",
            "brands": [{"name": "acme", "include": ["Acme"]}],
            "sources": [
                {
                    "name": f"hn{i:04d}",
                    "type": "hackernews",
                    "query": f"acme{i}",
                    "base_url": base_url,
                    "hits_per_page": 20,
                    "max_pages": 1,
                }
                for i in range(sources)
            ],
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
        stats = (await http.get(f"{base_url}/stats")).json()
    engine.dispose()
    return {
        "timings": timings,
        "failures": failures,
        "concurrency": config.max_concurrent_polls,
        "pool": pool,
        "baseline_rss_mib": baseline_rss,
        "peak_rss_mib": peak_rss_mib(),
        "max_in_flight": stats["max_in_flight"],
    }


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, help="sources (default 1,000; --quick 200)")
    args = parser.parse_args()
    sources = args.sources or (200 if args.quick else 1_000)
    ports: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
    server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(ports, DELAY), daemon=True
    )
    server.start()
    try:
        base_url = f"http://127.0.0.1:{ports.get(timeout=30)}"
        with tempfile.TemporaryDirectory(prefix="emberwatch-fanout-") as folder:
            result = asyncio.run(_rounds(base_url, sources, Path(folder)))
    finally:
        server.terminate()
        server.join(10)
    width = min(result["concurrency"], result["pool"])
    bound = math.ceil(sources / width) * DELAY
    rows = []
    for label, seconds in zip(
        ("round 1 (creates state)", "round 2"), result["timings"], strict=True
    ):
        ratio = seconds / bound
        rows.append(
            Row(
                "fanout",
                f"{sources:,} sources, {label}",
                f"{seconds:.2f} s = {ratio:.2f}x bound",
                f"bound {bound:.1f} s; <= {TARGET_RATIO}x",
                verdict(ratio <= TARGET_RATIO),
            )
        )
    peak_mb = result["peak_rss_mib"] * 1.048576
    rows += [
        Row(
            "fanout",
            "peak RSS (poller)",
            f"{peak_mb:,.0f} MB",
            f"< {TARGET_RSS_MB} MB; {result['baseline_rss_mib'] * 1.048576:,.0f} MB before polling",
            verdict(peak_mb < TARGET_RSS_MB),
        ),
        Row(
            "fanout",
            "requests in flight at once (server)",
            f"{result['max_in_flight']}",
            f"max_concurrent_polls {result['concurrency']}, pool {result['pool']}",
        ),
        Row(
            "fanout",
            "failed or empty polls",
            f"{result['failures']}",
            f"of {2 * sources:,}",
            verdict(result["failures"] == 0),
        ),
    ]
    finish(rows, args, f"fanout ({sources:,} sources, {DELAY * 1000:.0f} ms per request)")


if __name__ == "__main__":
    main()
