"""A real PostgreSQL restart under two `emberwatch run` nodes: ``pg_ctl stop -m fast``,
then start; later ``pg_ctl stop -m immediate`` (a crash: recovery on start), then start.

The shared test server is never restarted: this test makes a private cluster of its own
(``initdb`` in a temporary folder, on a free port) and skips when ``initdb``/``pg_ctl``
are not installed. PostgreSQL refuses to run as root, so as root the cluster runs as
``nobody`` (through ``runuser``), or the test skips.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emberwatch import db as database
from emberwatch.demo.servers import HTTPServer, SlackServer
from tests.conftest import REPO
from tests.test_scale_out import SlowFeeds, _config, _free_port, _outcome, _readyz


def _tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return versions[-1] if versions else None


class Cluster:
    """A private PostgreSQL cluster (trust auth, loopback only) that can be stopped and
    started again on the same port."""

    def __init__(self, folder: Path) -> None:
        self.initdb, self.pg_ctl = _tool("initdb"), _tool("pg_ctl")
        if not self.initdb or not self.pg_ctl:
            pytest.skip("initdb/pg_ctl not installed")
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            if not shutil.which("runuser"):
                pytest.skip("PostgreSQL will not run as root, and runuser is missing")
            self.as_user = ["runuser", "-u", "nobody", "--"]
        self.folder = folder
        self.data = folder / "data"
        self.port = _free_port()
        if self.as_user:
            shutil.chown(folder, "nobody")
        self._run([self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres"])

    def _run(self, command: list[str]) -> None:
        done = subprocess.run([*self.as_user, *command], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"{Path(command[0]).name} failed: {done.stderr.strip()[-300:]}")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        log = str(self.folder / "server.log")
        self._run([self.pg_ctl, "-D", str(self.data), "-o", options, "-l", log, "-w", "start"])

    def stop(self, mode: str) -> None:
        self._run([self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop"])


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    folder = Path(tempfile.mkdtemp(prefix="emberwatch-pg-"))
    try:
        cluster = Cluster(folder)
        cluster.start()
        yield cluster
        subprocess.run(
            [
                *cluster.as_user,
                str(cluster.pg_ctl),
                "-D",
                str(cluster.data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_two_nodes_ride_out_a_real_restart_and_a_crash(tmp_path, cluster):
    feeds = SlowFeeds(delay=0.3)
    server = HTTPServer(feeds.handle).start()
    slack = SlackServer().start()
    port = _free_port()
    http = f'[http]\nbind = "127.0.0.1:{port}"\nsecret = "{"s" * 40}"\n'
    configs = [
        _config(tmp_path, cluster.url, server.base_url, slack, http),
        _config(tmp_path, cluster.url, server.base_url, slack),
    ]
    engine = database.create_db_engine(cluster.url)
    database.upgrade(engine)
    engine.dispose()
    logs = [tmp_path / f"node{i}.log" for i in range(2)]
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "emberwatch", "run"],
            env={**os.environ, "EMBERWATCH_CONFIG": str(config)},
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )
        for config, log in zip(configs, logs, strict=True)
    ]
    back: list[float] = []  # when the server accepted connections again after each stop
    ready_during: list[int] = []
    try:
        deadline = time.time() + 60  # a loaded machine starts nodes slowly
        while time.time() < deadline and not all("monitor started" in p.read_text() for p in logs):
            time.sleep(0.2)
        time.sleep(5)
        for mode in ("fast", "immediate"):
            cluster.stop(mode)
            time.sleep(5)
            ready_during.append(_readyz(port))
            cluster.start()
            back.append(time.time())
            time.sleep(12)
        ready_after = _readyz(port)
        alive = [node.poll() is None for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)
        codes = [node.wait(timeout=60) for node in nodes]
        server.stop()
        slack.stop()

    seen = _outcome(cluster.url, feeds, slack, logs, back)
    print(
        f"\nrestart: polls resumed after (s) {json.dumps(seen.resumed)}, readyz during "
        f"{ready_during} after {ready_after}, 'database unavailable' lines per node "
        f"{seen.outage_lines}, served {len(feeds.served)} stored {len(seen.stored)}, "
        f"deliveries {dict(seen.states)}, received {dict(seen.received)}, "
        f"ambiguous {seen.ambiguous}"
    )
    assert alive == [True, True] and codes == [0, 0]
    assert all(max(delays) <= 10 for delays in seen.resumed.values()), seen.resumed
    assert feeds.served and feeds.served <= seen.stored  # no mention lost
    assert max(seen.per_incident.values()) == 1  # no alert doubled
    # A crash (-m immediate) between a message's send and its record leaves the send
    # ambiguous: the row is sent again once its lease runs out, and counted as such
    # (outbox.py: at most one duplicate an ambiguous send). Nothing else arrives twice.
    for key, times in seen.received.items():
        incident = int(key.split(",")[0])
        assert times <= 1 + seen.ambiguous[incident], (key, times, seen.ambiguous)
    assert len(seen.received) == len(seen.per_incident)
    assert ready_during == [503, 503] and ready_after == 200
    assert all("Traceback" not in text for text in seen.texts), seen.texts
    # One line per outage: two outages, each seen once by each node.
    assert seen.outage_lines == [2, 2], seen.outage_lines
