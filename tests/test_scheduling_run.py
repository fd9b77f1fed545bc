"""Under `emberwatch run`, sources poll side by side up to `max_concurrent_polls`, and a
source that hangs delays only itself.

Real `emberwatch run` processes against a threaded loopback feed server that records when
each request starts and ends.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

from emberwatch.demo.servers import HTTPServer, Reply
from tests.conftest import REPO, _postgres_schema_url


class TimedFeeds:
    """Algolia-shaped empty pages, each source answering after its own delay."""

    def __init__(self, delays: dict[str, float], default: float = 0.0) -> None:
        self.delays = delays
        self.default = default
        self.lock = threading.Lock()
        self.events: list[tuple[float, int]] = []  # (time, +1 start / -1 end)
        self.starts: dict[str, list[float]] = defaultdict(list)

    def handle(self, method: str, path: str, body: bytes) -> Reply:
        source = path.strip("/").split("/")[0]
        with self.lock:
            now = time.time()
            self.starts[source].append(now)
            self.events.append((now, 1))
        time.sleep(self.delays.get(source, self.default))
        with self.lock:
            self.events.append((time.time(), -1))
        page = {"hits": [], "page": 0, "nbPages": 1, "hitsPerPage": 100}
        return Reply(200, json.dumps(page).encode())


def _write_config(path: Path, db_url: str, feeds_url: str, sources: dict[str, str], extra: str):
    blocks = "".join(
        f'\n[[sources]]\nname = "{name}"\ntype = "hackernews"\nquery = "acme"\n'
        f'interval = "{interval}"\nbase_url = "{feeds_url}/{name}"\ntimeout = "45s"\n'
        for name, interval in sources.items()
    )
    path.write_text(
        f'database_url = "{db_url}"\npoll_jitter = "0s"\n{extra}\n'
        f'[[brands]]\nname = "acme"\ninclude = ["Acme"]\n{blocks}'
    )
    return path


def _start(config: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "EMBERWATCH_CONFIG": str(config)}
    command = [sys.executable, "-m", "emberwatch"]
    subprocess.run([*command, "db", "upgrade"], env=env, cwd=REPO, check=True, capture_output=True)
    return subprocess.Popen(
        [*command, "run"], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("w")
    )


def test_run_keeps_exactly_max_concurrent_polls_in_flight(tmp_path, postgres_database):
    sources = {f"s{i:02d}": "1h" for i in range(50)}
    feeds = TimedFeeds({}, default=1.0)
    server = HTTPServer(feeds.handle).start()
    db_url = _postgres_schema_url(postgres_database)
    config = _write_config(
        tmp_path / "limit.toml", db_url, server.base_url, sources, "max_concurrent_polls = 5"
    )
    node = _start(config, tmp_path / "node.log")
    try:
        deadline = time.time() + 60
        while time.time() < deadline and len(feeds.starts) < len(sources):
            time.sleep(0.2)
        time.sleep(1.5)  # the last polls finish
    finally:
        node.send_signal(signal.SIGTERM)
        node.wait(timeout=60)
        server.stop()
    assert len(feeds.starts) == len(sources), "every source polled once"
    assert all(len(times) == 1 for times in feeds.starts.values())
    # Replay the requests in flight over time.
    level, peak = 0, 0
    busy_until = sorted(t for t, _ in feeds.events)[-1]
    # While 5 or more sources were still waiting for their poll, count how long fewer
    # than 5 requests were in flight.
    starts = sorted(t for times in feeds.starts.values() for t in times)
    window = (starts[4], starts[len(sources) - 5])
    short_time, dip, longest_dip, last = 0.0, 0.0, 0.0, None
    for at, change in sorted(feeds.events):
        if last is not None:
            lo, hi = max(last, window[0]), min(at, window[1])
            if level < 5 and hi > lo:
                short_time += hi - lo
                dip += hi - lo
                longest_dip = max(longest_dip, dip)
            elif level >= 5:
                dip = 0.0
        level += change
        peak = max(peak, level)
        last = at
    span = window[1] - window[0]
    print(
        f"\nlimit: peak {peak}, fewer than 5 for {short_time:.2f} s of {span:.1f} s, "
        f"longest dip {longest_dip:.2f} s, round {busy_until - starts[0]:.1f} s"
    )
    assert peak == 5
    # A finished poll hands its slot to the next due source at once: the dips are the
    # gaps between one request ending and the next starting, never a tick of waiting.
    assert longest_dip < 0.35
    assert short_time < 0.1 * span
    assert busy_until - starts[0] < 10 * 1.0 * 1.2  # 50 polls, 5 at a time, 1 s each


def test_a_hanging_source_delays_only_itself(tmp_path):
    feeds = TimedFeeds({"hang": 30.0, "fast": 0.0})
    server = HTTPServer(feeds.handle).start()
    db_url = f"sqlite:///{tmp_path / 'hang.db'}"
    config = _write_config(
        tmp_path / "hang.toml",
        db_url,
        server.base_url,
        {"hang": "2s", "fast": "2s"},
        "max_concurrent_polls = 2",
    )
    node = _start(config, tmp_path / "node.log")
    try:
        time.sleep(20)
    finally:
        node.send_signal(signal.SIGKILL)  # the hanging poll would hold a SIGTERM 30 s
        node.wait(timeout=30)
        server.stop()
    fast = feeds.starts["fast"]
    gaps = [b - a for a, b in itertools.pairwise(fast)]
    print(f"\nhanging source: fast polled {len(fast)} times, max gap {max(gaps):.2f} s")
    assert len(feeds.starts["hang"]) == 1  # still hanging: never polled twice at once
    assert len(fast) >= 8
    assert max(gaps) < 2.5
    assert min(gaps) > 1.5  # and not more often than its interval
