"""Storage failures are loud and survivable: one line, not ready, a clear exit.

Real `emberwatch` processes. An unwritable SQLite file is a real one: read-only modes, and
when the tests run as root the process runs without the capability to override them
(``setpriv --bounding-set=-dac_override``), as root writes through file modes otherwise. A
PostgreSQL outage that lasts is made by refusing new connections to the test database
(``ALTER DATABASE … ALLOW_CONNECTIONS false``) and terminating the open ones; the shared
server keeps running.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from emberwatch import db as database
from emberwatch.demo.servers import HTTPServer, Reply
from tests.conftest import REPO, _postgres_schema_url


def _emberwatch(*args: str) -> list[str]:
    """The command line, for a process that file modes bind even when the tests run as root."""
    command = [sys.executable, "-m", "emberwatch", *args]
    if os.geteuid() != 0:
        return command
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: file modes cannot be made to bind")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]


class Feed:
    def __init__(self) -> None:
        self.polls: list[float] = []

    def handle(self, method: str, path: str, body: bytes) -> Reply:
        self.polls.append(time.time())
        hit = {
            "objectID": f"p{len(self.polls)}",
            "created_at_i": int(time.time()),
            "title": f"Acme kettle post {len(self.polls)}",
            "author": "someone",
            "points": 1,
            "num_comments": 0,
        }
        page = {"hits": [hit], "page": 0, "nbPages": 1, "hitsPerPage": 100}
        return Reply(200, json.dumps(page).encode())


def _config(folder: Path, db_url: str, feed_url: str, extra: str = "") -> Path:
    path = folder / "emberwatch.toml"
    path.write_text(
        f'database_url = "{db_url}"\npoll_jitter = "0s"\n{extra}\n'
        '[[brands]]\nname = "acme"\ninclude = ["Acme"]\n'
        '[[sources]]\nname = "hn"\ntype = "hackernews"\nquery = "acme"\ninterval = "1s"\n'
        f'base_url = "{feed_url}"\n'
    )
    return path


def _upgrade(config: Path) -> dict:
    env = {**os.environ, "EMBERWATCH_CONFIG": str(config)}
    subprocess.run(
        [sys.executable, "-m", "emberwatch", "db", "upgrade"],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _make_read_only(db_file: Path) -> None:
    for path in db_file.parent.glob(db_file.name + "*"):
        if not path.name.endswith("node-lock"):
            path.chmod(0o444)


def test_poll_once_on_an_unwritable_sqlite_file_says_one_line_and_fails(tmp_path):
    feed = Feed()
    server = HTTPServer(feed.handle).start()
    db_file = tmp_path / "ro.db"
    try:
        env = _upgrade(_config(tmp_path, f"sqlite:///{db_file}", server.base_url))
        _make_read_only(db_file)
        done = subprocess.run(
            _emberwatch("poll", "--once"),
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.stop()
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert lines[-1].startswith("emberwatch: cannot use the database:"), lines
    assert "readonly" in lines[-1] or "read-only" in lines[-1]
    assert len(lines) <= 2, lines  # the source's poll line at most, then the reason


def test_run_on_an_unwritable_sqlite_file_is_not_ready_then_recovers(tmp_path):
    feed = Feed()
    server = HTTPServer(feed.handle).start()
    db_file = tmp_path / "ro.db"
    port = _free_port()
    http = f'[http]\nbind = "127.0.0.1:{port}"\nsecret = "{"s" * 40}"\n'
    config = _config(tmp_path, f"sqlite:///{db_file}", server.base_url, http)
    env = _upgrade(config)
    _make_read_only(db_file)
    log = tmp_path / "run.log"
    node = subprocess.Popen(
        _emberwatch("run"),
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    try:
        _wait_for(log, "database unavailable, retrying in")
        time.sleep(1)
        ready_during = _readyz(port)
        stored_during = _stored(db_file)
        for path in tmp_path.glob("ro.db*"):
            path.chmod(0o666)
        writable_at = time.time()
        time.sleep(6)
        ready_after = _readyz(port)
        alive = node.poll() is None
    finally:
        node.send_signal(signal.SIGTERM)
        code = node.wait(timeout=60)
        server.stop()
    text = log.read_text()
    resumed = [t for t in feed.polls if t > writable_at]
    print(f"\nunwritable SQLite: readyz {ready_during} then {ready_after}; log:\n{text[-1500:]}")
    assert alive and code == 0
    assert ready_during == 503 and ready_after == 200
    assert stored_during == 0
    assert text.count("database unavailable, retrying in") == 1
    assert "database available again" in text
    assert "Traceback" not in text
    assert resumed and _stored(db_file) > 0


def _wait_for(log: Path, text: str, seconds: float = 60) -> None:
    """Until the node's log holds ``text`` (a loaded machine starts a node slowly)."""
    deadline = time.time() + seconds
    while text not in log.read_text() and time.time() < deadline:
        time.sleep(0.2)


def _stored(db_file: Path) -> int:
    engine = database.create_db_engine(f"sqlite:///{db_file}")
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text("SELECT count(*) FROM mentions")).scalar_one()
    finally:
        engine.dispose()


def test_a_node_whose_database_stays_away_exits_with_one_line(tmp_path, postgres_database):
    feed = Feed()
    server = HTTPServer(feed.handle).start()
    db_url = _postgres_schema_url(postgres_database)
    name = sa.engine.make_url(postgres_database).database
    admin = sa.create_engine(
        sa.engine.make_url(postgres_database).set(database="postgres"),
        isolation_level="AUTOCOMMIT",
    )
    config = _config(tmp_path, db_url, server.base_url, 'database_outage_limit = "3s"')
    env = {**os.environ, "EMBERWATCH_CONFIG": str(config)}
    engine = database.create_db_engine(db_url)
    database.upgrade(engine)
    engine.dispose()
    log = tmp_path / "run.log"
    node = subprocess.Popen(
        [sys.executable, "-m", "emberwatch", "run"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    try:
        _wait_for(log, "monitor started")
        time.sleep(1)
        with admin.connect() as connection:
            connection.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
        refused_at = time.time()
        code = node.wait(timeout=60)
        exited_after = time.time() - refused_at
        stderr = log.read_text()
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        if node.poll() is None:
            node.kill()
        server.stop()
        admin.dispose()
    last = stderr.strip().splitlines()[-1]
    print(f"\noutage past the limit: exit {code} after {exited_after:.1f} s: {last}")
    assert code == 1
    assert last.startswith("emberwatch: database unavailable for more than 3 s")
    assert stderr.count("database unavailable, retrying in") == 1
    assert "Traceback" not in stderr
    assert exited_after < 15


def test_an_outage_is_said_once_and_its_end_once(tmp_path, caplog):
    engine = database.create_db_engine(f"sqlite:///{tmp_path / 'a.db'}")
    database.upgrade(engine)
    now = [100.0]
    availability = database.Availability(
        engine, limit=timedelta(seconds=30), retry=2, clock=lambda: now[0]
    )
    error = sa.exc.OperationalError("UPDATE", {}, Exception("attempt to write a readonly database"))
    with caplog.at_level("WARNING", logger="emberwatch.db"):
        availability.failed(error)
        now[0] += 10
        availability.failed(error)
        assert not availability.up and not availability.exceeded()
        assert availability.not_ready() == (
            "database unavailable for 10 s: attempt to write a readonly database"
        )
        now[0] += 25
        assert availability.exceeded()
        assert availability.check()  # the file is writable: the outage ends
        assert availability.up and availability.not_ready() is None
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "database unavailable, retrying in 2 s: attempt to write a readonly database",
        "database available again after 35.0 s",
    ]
    engine.dispose()
