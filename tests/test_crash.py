"""A process killed mid-poll or mid-delivery loses nothing and doubles nothing on restart."""

import json
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, func, select

from emberwatch import db as database
from emberwatch.config import load_config
from emberwatch.demo.servers import HTTPServer, MailCatcher, Reply
from emberwatch.models import AlertRecord, Delivery, MentionRecord, SourceState
from tests.e2e_support import REPO, Feeds, emberwatch, start_servers, write_config
from tests.helpers import ANGRY, hn_hit

# Runs in the child before the CLI: the first database commit of a poll kills the process
# with SIGKILL, i.e. after the fetch and inside the transaction, before anything commits.
KILL_BEFORE_POLL_COMMIT = """
import os, signal
import emberwatch.ingest as pipeline
from sqlmodel import Session
_real = pipeline.commit_poll
def _dying(*args, **kwargs):
    Session.commit = lambda self: os.kill(os.getpid(), signal.SIGKILL)
    return _real(*args, **kwargs)
pipeline.commit_poll = _dying
"""

# Kills the process after polls commit, while the outbox worker is sending.
KILL_DURING_DELIVERY = """
import os, signal
import emberwatch.delivery as dispatch
async def _dying(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
dispatch.send = _dying
"""


@pytest.fixture
def world(tmp_path):
    feeds, server, slack, mail, config = start_servers(tmp_path)
    assert emberwatch("db", "upgrade", "--config", str(config)).returncode == 0
    yield feeds, slack, mail, config
    server.stop()
    slack.stop()
    mail.stop()


def counts(config):
    engine = database.create_db_engine(load_config(config).database_url)
    with Session(engine) as session:
        return {
            "mentions": session.exec(select(func.count()).select_from(MentionRecord)).one(),
            "alerts": session.exec(select(func.count()).select_from(AlertRecord)).one(),
            "deliveries": session.exec(select(func.count()).select_from(Delivery)).one(),
            "cursors": [s.cursor for s in session.exec(select(SourceState))],
        }


def test_killed_between_fetch_and_commit_repolls_and_stores_each_mention_once(world):
    feeds, slack, mail, config = world
    crashed = emberwatch("poll", "--once", "--config", str(config), script=KILL_BEFORE_POLL_COMMIT)
    assert crashed.returncode == -signal.SIGKILL
    before = counts(config)
    assert before["mentions"] == before["alerts"] == 0
    assert all(cursor is None for cursor in before["cursors"])
    assert len(feeds.requests) >= 1  # the fetch did happen

    restarted = emberwatch("poll", "--once", "--config", str(config))
    assert restarted.returncode == 0, restarted.stderr
    after = counts(config)
    assert after["mentions"] == 3 and after["alerts"] == 2 and after["deliveries"] == 4
    assert len(slack.payloads) == 2 and len(mail.messages) == 2

    emberwatch("poll", "--once", "--config", str(config))
    assert counts(config)["alerts"] == 2 and len(slack.payloads) == 2


def test_killed_while_delivering_sends_every_alert_after_restart_and_none_twice(world):
    _feeds, slack, mail, config = world
    # The killed worker's lease (60 s by default) must expire before another claims its
    # rows; a short lease shows the hand-over without waiting a minute.
    config.write_text(
        config.read_text().replace('interval = "0.5s"', 'interval = "0.5s"\nlease = "1s"')
    )
    crashed = emberwatch("poll", "--once", "--config", str(config), script=KILL_DURING_DELIVERY)
    assert crashed.returncode == -signal.SIGKILL
    assert counts(config)["deliveries"] == 4 and slack.payloads == []

    time.sleep(1.5)
    restarted = emberwatch("poll", "--once", "--config", str(config))
    assert restarted.returncode == 0, restarted.stderr
    assert "deliveries: 4 sent" in restarted.stdout
    assert len(slack.payloads) == 2 and len(mail.messages) == 2
    assert counts(config)["alerts"] == 2


class HangingSlack:
    """A loopback Slack webhook that hangs while ``hanging`` (the sender is killed
    mid-send), then gives the scripted replies, then accepts."""

    def __init__(self) -> None:
        self.hanging = True
        self.script: list[Reply] = []
        self.posts = 0
        self.payloads: list[dict] = []
        self.stop_hanging = threading.Event()
        self.server = HTTPServer(self.handle).start()

    @property
    def webhook_url(self) -> str:
        return f"{self.server.base_url}/services/T000/B000/hang"

    def handle(self, method: str, path: str, body: bytes) -> Reply:
        self.posts += 1
        if self.hanging:
            self.stop_hanging.wait(60)
            return Reply(200, b"ok", "text/plain")
        if self.script:
            return self.script.pop(0)
        self.payloads.append(json.loads(body))
        return Reply(200, b"ok", "text/plain")


def start_emberwatch(*args: str) -> subprocess.Popen:
    code = (
        "import sys\nfrom emberwatch.cli import main\n"
        f"sys.argv = ['emberwatch', *{list(args)!r}]\nmain()\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def the_delivery(config) -> Delivery:
    engine = database.create_db_engine(load_config(config).database_url)
    with Session(engine) as session:
        (row,) = session.exec(select(Delivery)).all()
    engine.dispose()
    return row


def test_seven_kills_mid_send_then_a_500_still_deliver_the_alert(tmp_path):
    feeds = Feeds(hits=[hn_hit("101", ANGRY)], rss_items=[])
    server = HTTPServer(feeds.handle).start()
    slack = HangingSlack()
    mail = MailCatcher(tmp_path / "mail").start()
    config = write_config(tmp_path, server.base_url, slack, mail)  # type: ignore[arg-type]
    config.write_text(
        config.read_text()
        .replace('channels = ["slack", "email", "digest"]', 'channels = ["slack"]')
        .replace('interval = "0.5s"', 'interval = "0.5s"\nlease = "1s"')
    )
    try:
        assert emberwatch("db", "upgrade", "--config", str(config)).returncode == 0
        for kill in range(1, 8):
            before = slack.posts
            process = start_emberwatch("poll", "--once", "--config", str(config))
            deadline = time.monotonic() + 30
            while slack.posts == before and time.monotonic() < deadline:
                time.sleep(0.02)
            assert slack.posts == before + 1, f"kill {kill}: the send never started"
            process.send_signal(signal.SIGKILL)  # mid-send: Slack has not answered
            assert process.wait(10) == -signal.SIGKILL
            row = the_delivery(config)
            assert (row.status, row.attempts, row.lease_until is not None) == ("pending", 0, True)
            time.sleep(1.1)  # the killed worker's lease runs out
        slack.hanging = False
        slack.script = [Reply(500, b"internal_error", "text/plain")]
        answered = emberwatch("poll", "--once", "--config", str(config))
        assert "0 sent, 1 to retry, 0 failed" in answered.stdout, answered.stderr
        row = the_delivery(config)
        assert (row.status, row.attempts, row.ambiguous_attempts) == ("pending", 1, 7)
        assert "HTTP 500" in row.last_error
        time.sleep(max(0.0, (row.next_attempt_at - datetime.now(UTC)).total_seconds()) + 0.1)
        delivered = emberwatch("poll", "--once", "--config", str(config))
        assert "deliveries: 1 sent" in delivered.stdout, delivered.stderr
        row = the_delivery(config)
        assert (row.status, row.attempts, row.ambiguous_attempts) == ("sent", 2, 7)
        assert len(slack.payloads) == 1 and slack.posts == 9
    finally:
        slack.stop_hanging.set()
        slack.server.stop()
        server.stop()
        mail.stop()
