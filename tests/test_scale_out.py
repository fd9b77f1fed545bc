"""Nodes on one PostgreSQL share the work; killing a node, or every connection to the
database, loses and doubles nothing.

Real processes (`emberwatch run`), a real PostgreSQL, a loopback feed server that answers
slowly (so polls are often in flight when the node dies) and a loopback Slack webhook server.
Outages are made without stopping the shared server: ``pg_terminate_backend`` on every
Emberwatch connection, and ``ALTER DATABASE … ALLOW_CONNECTIONS false`` for an outage
that lasts (new connections are refused, as while PostgreSQL restarts).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlmodel import Session, func, select

from emberwatch import db as database
from emberwatch.demo.servers import HTTPServer, Reply, SlackServer
from emberwatch.models import AlertRecord, Delivery, MentionRecord
from emberwatch.scheduling import RETRY as RETRY_SECONDS
from tests.conftest import REPO, _postgres_schema_url

INTERVAL = 2.0
SOURCES = ("alpha", "beta", "gamma")
RUN_SECONDS = 45
KILL_AT = 18
COMPLAINTS = (
    "Acme lost my parcel {n} and support will not answer my emails, terrible awful service",
    "Acme charged me twice for order {n}, furious, nobody replies, I want a refund now",
    "Acme kettle {n} arrived broken and the replacement never came, disgusting service",
)


class SlowFeeds:
    """Algolia-shaped pages; every third poll of a source brings a new complaint."""

    def __init__(self, delay: float = 1.2) -> None:
        self.polls: dict[str, list[float]] = defaultdict(list)
        self.served: set[str] = set()
        self.lock = threading.Lock()
        self.delay = delay

    def handle(self, method: str, path: str, body: bytes) -> Reply:
        source = path.strip("/").split("/")[0]
        with self.lock:
            self.polls[source].append(time.time())
            count = len(self.polls[source])
        time.sleep(self.delay)  # a slow API: polls are nearly always in flight when a node dies
        hits = []
        for n in range(1, count // 3 + 1):
            text = COMPLAINTS[n % 3].format(n=f"{source}-{n}")
            with self.lock:
                self.served.add(f"{source}-{n}")
            hits.append(
                {
                    "objectID": f"{source}-{n}",
                    "created_at_i": 1_795_176_000 + n,
                    "title": text,
                    "author": f"{source}-author-{n}",
                    "points": 1,
                    "num_comments": 0,
                }
            )
        page = {"hits": hits, "page": 0, "nbPages": 1, "hitsPerPage": 100}
        return Reply(200, json.dumps(page).encode())


def _config(tmp_path, db_url: str, feeds_url: str, slack: SlackServer, extra: str = ""):
    sources = "".join(
        f'\n[[sources]]\nname = "{s}"\ntype = "hackernews"\nquery = "acme"\n'
        f'interval = "{INTERVAL}s"\nbase_url = "{feeds_url}/{s}"\n'
        for s in SOURCES
    )
    path = tmp_path / f"cluster{len(list(tmp_path.glob('cluster*.toml')))}.toml"
    path.write_text(
        f'database_url = "{db_url}"\npoll_jitter = "0s"\nevaluate_interval = "1s"\n{extra}\n'
        '[[brands]]\nname = "acme"\ninclude = ["Acme"]\n'
        f"{sources}\n"
        f'[channels.slack]\nwebhook_url = "{slack.webhook_url}"\n'
        '[[routes]]\nname = "all"\nchannels = ["slack", "digest"]\ngroup_wait = "0s"\n'
        '[delivery]\ninterval = "0.5s"\nlease = "5s"\nslack_min_gap = "0s"\n'
    )
    return path


def test_three_nodes_poll_each_source_once_per_interval_and_survive_a_kill(
    tmp_path, postgres_database
):
    db_url = _postgres_schema_url(postgres_database)
    feeds = SlowFeeds()
    server = HTTPServer(feeds.handle).start()
    slack = SlackServer().start()
    config = _config(tmp_path, db_url, server.base_url, slack)
    engine = database.create_db_engine(db_url)
    database.upgrade(engine)
    env = {**os.environ, "EMBERWATCH_CONFIG": str(config)}
    logs = [(tmp_path / f"node{i}.log").open("w") for i in range(3)]
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "emberwatch", "run"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        for log in logs
    ]
    try:
        time.sleep(KILL_AT)
        killed_at = time.time()
        nodes[1].send_signal(signal.SIGKILL)
        time.sleep(RUN_SECONDS - KILL_AT)
    finally:
        for node in nodes:
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)
        for node in nodes:
            node.wait(timeout=60)
        server.stop()
        slack.stop()
        for log in logs:
            log.close()

    report = {}
    for source in SOURCES:
        times = feeds.polls[source]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        intervals = (times[-1] - times[0]) / INTERVAL
        after_kill = [g for a, g in zip(times, gaps, strict=False) if a >= killed_at - INTERVAL]
        report[source] = {
            "polls": len(times),
            "intervals": round(intervals, 1),
            "min_gap": round(min(gaps), 2),
            "max_gap_after_kill": round(max(after_kill), 2),
            "max_gap_before_kill": round(
                max(
                    (g for a, g in zip(times, gaps, strict=False) if a < killed_at - INTERVAL),
                    default=0.0,
                ),
                2,
            ),
        }
    print("\nthree-node polls:", json.dumps(report))
    for source in SOURCES:
        times = feeds.polls[source]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # Exactly one poll per interval: no two polls of a source closer than half of it.
        assert min(gaps) > INTERVAL / 2, (source, gaps)
        # The killed node's sources move when its lease runs out: no interval is missed
        # by more than one interval, and at most one is missed in all.
        assert max(gaps) <= 2 * INTERVAL + 0.5, (source, gaps)
        assert len(times) >= report[source]["intervals"] - 1
    with Session(engine) as session:
        alerts = session.exec(select(func.count()).select_from(AlertRecord)).one()
        states = Counter(d.status for d in session.exec(select(Delivery)))
        per_incident = Counter(
            d.incident_id for d in session.exec(select(Delivery).where(Delivery.kind == "alert"))
        )
    received = Counter(
        line.split("Incident #")[1].split("*")[0]
        for payload in slack.payloads
        for line in json.dumps(payload).split("\\n")
        if "Incident #" in line
    )
    print(
        "\nthree-node run:",
        json.dumps(report),
        f"alerts={alerts}",
        dict(states),
        f"slack payloads={len(slack.payloads)}",
        f"max per incident={max(received.values())}",
    )
    assert alerts >= 9
    assert states.get("pending", 0) == 0 and states.get("failed", 0) == 0
    assert max(per_incident.values()) == 1  # one notification per incident, never two
    # Each incident reached Slack; only an ambiguous send cut off by the kill may repeat.
    assert len(received) == len(per_incident)
    assert sum(received.values()) <= len(received) + 1


@pytest.mark.skipif(sys.platform != "linux", reason="file locks as on Linux")
def test_a_second_node_on_sqlite_is_refused_with_a_clear_message(tmp_path):
    slack = SlackServer().start()
    try:
        config = _config(tmp_path, f"sqlite:///{tmp_path / 'one.db'}", "http://127.0.0.1:9", slack)
        env = {**os.environ, "EMBERWATCH_CONFIG": str(config)}
        run = [sys.executable, "-m", "emberwatch"]
        subprocess.run([*run, "db", "upgrade"], env=env, cwd=REPO, check=True, capture_output=True)
        first = subprocess.Popen(
            [*run, "run"],
            env=env,
            cwd=REPO,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        time.sleep(3)
        second = subprocess.run(
            [*run, "run"], env=env, cwd=REPO, capture_output=True, text=True, timeout=30
        )
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
    finally:
        slack.stop()
    assert second.returncode == 1
    assert "SQLite serves a single node" in second.stderr and "PostgreSQL" in second.stderr
    assert "Traceback" not in second.stderr


def _admin(postgres_database: str) -> sa.engine.Engine:
    """A superuser connection beside the nodes' (the test server trusts ``postgres``), to
    the maintenance database: a database cannot refuse connections from within."""
    url = sa.engine.make_url(postgres_database).set(database="postgres")
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


def _terminate_all(admin: sa.engine.Engine, name: str) -> int:
    """pg_terminate_backend on every connection to the nodes' database but our own."""
    with admin.connect() as connection:
        return connection.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        ).scalar_one()


def _allow_connections(admin: sa.engine.Engine, name: str, allow: bool) -> None:
    with admin.connect() as connection:
        connection.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {allow!s}'))


def _readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_nodes_ride_out_terminated_connections_and_a_refusing_database(
    tmp_path, postgres_database
):
    db_url = _postgres_schema_url(postgres_database)
    name = sa.engine.make_url(postgres_database).database
    admin = _admin(postgres_database)
    feeds = SlowFeeds(delay=0.3)
    server = HTTPServer(feeds.handle).start()
    slack = SlackServer().start()
    port = _free_port()
    http = f'[http]\nbind = "127.0.0.1:{port}"\nsecret = "{"s" * 40}"\n'
    configs = [
        _config(tmp_path, db_url, server.base_url, slack, http),
        _config(tmp_path, db_url, server.base_url, slack),
    ]
    engine = database.create_db_engine(db_url)
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
    back: list[float] = []  # when the database was whole again after each outage
    ready_during = ready_after = None
    try:
        deadline = time.time() + 60  # a loaded machine starts nodes slowly
        while time.time() < deadline and not all("monitor started" in p.read_text() for p in logs):
            time.sleep(0.2)
        time.sleep(4)
        for _ in range(2):
            assert _terminate_all(admin, name) > 0
            back.append(time.time())
            time.sleep(7)
        # A longer outage: new connections refused, as while PostgreSQL restarts.
        _allow_connections(admin, name, False)
        _terminate_all(admin, name)
        time.sleep(RETRY_SECONDS * 2)
        ready_during = _readyz(port)
        time.sleep(2)
        _allow_connections(admin, name, True)
        back.append(time.time())
        time.sleep(12)
        ready_after = _readyz(port)
        alive = [node.poll() is None for node in nodes]
    finally:
        _allow_connections(admin, name, True)
        for node in nodes:
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)
        codes = [node.wait(timeout=60) for node in nodes]
        server.stop()
        slack.stop()
        admin.dispose()

    seen = _outcome(db_url, feeds, slack, logs, back)
    print(
        f"\noutages: polls resumed after (s) {json.dumps(seen.resumed)}, readyz during "
        f"{ready_during} after {ready_after}, 'database unavailable' lines per node "
        f"{seen.outage_lines}, served {len(feeds.served)} stored {len(seen.stored)}, "
        f"deliveries {dict(seen.states)}"
    )
    assert alive == [True, True] and codes == [0, 0]
    assert all(max(delays) <= 10 for delays in seen.resumed.values()), seen.resumed
    assert feeds.served and feeds.served <= seen.stored  # no mention lost
    assert max(seen.per_incident.values()) == 1 and max(seen.received.values()) == 1  # none doubled
    assert len(seen.received) == len(seen.per_incident)
    assert ready_during == 503 and ready_after == 200
    assert all("Traceback" not in text for text in seen.texts), seen.texts
    # One line per outage at most (a terminated idle connection is replaced unseen).
    assert all(1 <= lines <= 3 for lines in seen.outage_lines), seen.outage_lines


@dataclass
class Outcome:
    """What a run of nodes through database outages left: read after the nodes stopped."""

    resumed: dict[str, list[float]]  # per source, the wait for its first poll after each return
    texts: list[str]  # each node's log
    stored: set[str]  # external ids of the stored mentions
    per_incident: Counter[int | None]  # alert deliveries per incident
    ambiguous: dict[int | None, int]  # each alert delivery's ambiguous sends, by incident
    states: Counter[str]  # deliveries by status
    received: Counter[str]  # Slack messages received, by the incident line they name
    outage_lines: list[int]  # "database unavailable" lines per node


def _outcome(db_url: str, feeds: SlowFeeds, slack: SlackServer, logs: list, back: list) -> Outcome:
    resumed = {
        source: [
            round(min((t for t in feeds.polls[source] if t > at), default=float("inf")) - at, 2)
            for at in back
        ]
        for source in SOURCES
    }
    texts = [log.read_text() for log in logs]
    engine = database.create_db_engine(db_url)
    with Session(engine) as session:
        stored = set(session.exec(select(MentionRecord.external_id)).all())
        alert_rows = session.exec(select(Delivery).where(Delivery.kind == "alert")).all()
        states = Counter(d.status for d in session.exec(select(Delivery)))
    engine.dispose()
    received = Counter(
        line.split("Incident #")[1].split("*")[0]
        for payload in slack.payloads
        for line in json.dumps(payload).split("\\n")
        if "Incident #" in line
    )
    return Outcome(
        resumed,
        texts,
        stored,
        Counter(d.incident_id for d in alert_rows),
        {d.incident_id: d.ambiguous_attempts for d in alert_rows},
        states,
        received,
        [t.count("database unavailable, retrying") for t in texts],
    )
