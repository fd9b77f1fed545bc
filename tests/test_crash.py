"""A process killed mid-poll or mid-delivery loses nothing and doubles nothing on restart."""

import signal
import time

import pytest
from sqlmodel import Session, func, select

from emberwatch import db as database
from emberwatch.config import load_config
from emberwatch.models import AlertRecord, Delivery, MentionRecord, SourceState
from tests.e2e_support import emberwatch, start_servers

# Runs in the child before the CLI: the first database commit of a poll kills the process
# with SIGKILL, i.e. after the fetch and inside the transaction, before anything commits.
KILL_BEFORE_POLL_COMMIT = """
import os, signal
import emberwatch.pipeline as pipeline
from sqlmodel import Session
_real = pipeline._commit_poll
def _dying(*args, **kwargs):
    Session.commit = lambda self: os.kill(os.getpid(), signal.SIGKILL)
    return _real(*args, **kwargs)
pipeline._commit_poll = _dying
"""

# Kills the process after polls commit, while the outbox worker is sending.
KILL_DURING_DELIVERY = """
import os, signal
import emberwatch.channels.dispatch as dispatch
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
