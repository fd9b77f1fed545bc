"""Under `emberwatch run`, a quiet node is quiet: a heartbeat every `heartbeat_interval`,
and otherwise only what happened (polls with news, alerts, deliveries, errors).

A real `emberwatch run` process polls a loopback RSS feed every second while `/readyz` is
probed twice a second; its log is read as an operator would.
"""

from __future__ import annotations

import time
import urllib.request

import pytest

from emberwatch.demo.servers import free_port
from emberwatch.scheduling import Tally, heartbeat_line
from tests.run_support import Feeds, Node, write_config

IDLE_SECONDS = 10
HEARTBEAT = 4


def test_an_idle_node_logs_only_its_heartbeat_and_a_poll_with_news_one_line(tmp_path):
    feeds = Feeds()
    port = free_port()
    config = tmp_path / "emberwatch.toml"
    write_config(
        config,
        f"sqlite:///{tmp_path / 'quiet.db'}",
        {"feed": feeds.url("feed")},
        f'heartbeat_interval = "{HEARTBEAT}s"\n'
        '[[brands]]\nname = "acme"\ninclude = ["Acme"]\n'
        f'[http]\nbind = "127.0.0.1:{port}"\nsecret = "{"s" * 40}"\n',
    )
    node = Node(config, tmp_path / "node.log")
    try:
        started = node.wait_for("monitor started")
        idle_from, probes = time.time(), 0
        while time.time() < idle_from + IDLE_SECONDS:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as reply:
                assert reply.read() == b"ready\n"
            probes += 1
            time.sleep(0.5)
        idle = node.lines()[started + 1 :]
        polls = feeds.polls("feed")

        feeds.publish("feed", "k1", "My Acme kettle arrived on Tuesday")
        news = node.wait_for(r"source feed: 1 new", after=started + 1 + len(idle))
        time.sleep(3)  # three more polls, with nothing new
        after = node.lines()[started + 1 + len(idle) :]
    finally:
        code = node.stop()
        feeds.stop()
    log = "\n".join(node.lines())
    print(f"\n{IDLE_SECONDS} s idle, {polls} polls, {probes} /readyz probes:\n" + "\n".join(idle))
    assert code == 0
    assert polls >= IDLE_SECONDS - 2 and probes >= IDLE_SECONDS
    assert "apscheduler" not in log and "alembic" not in log
    assert len(idle) in (IDLE_SECONDS // HEARTBEAT, IDLE_SECONDS // HEARTBEAT + 1), idle
    for line in idle:
        assert line.startswith("INFO emberwatch.scheduling: alive: 1 source, "), line
        assert line.endswith(
            f"0 new mentions, 0 alerts, 0 deliveries in the last {HEARTBEAT} s; database ok"
        )
    # The poll that brought the mention: one line. The polls after it: none.
    assert node.lines()[news] == "INFO emberwatch.pipeline: source feed: 1 new, 0 updated, 0 alerts"
    assert [line for line in after if "alive:" not in line] == [node.lines()[news]]


@pytest.mark.parametrize(
    ("tally", "expected"),
    [
        (
            Tally(),
            "0 sources, 0 polls, 0 new mentions, 0 alerts, 0 deliveries in the last 5 min; "
            "database ok",
        ),
        (
            Tally(polls=340, new=18, alerts=2, sent=3),
            "12 sources, 340 polls, 18 new mentions, 2 alerts, 3 deliveries in the last 5 min; "
            "database ok",
        ),
        (
            Tally(polls=1, failed_polls=1, updated=4, alerts=1, sent=1, failed_deliveries=2),
            "12 sources, 1 poll (1 failed), 0 new mentions (4 updated), 1 alert, "
            "1 delivery (2 failed) in the last 5 min; database ok",
        ),
    ],
)
def test_the_heartbeat_says_what_the_node_did(tally, expected):
    sources = 0 if tally.polls == 0 else 12
    assert heartbeat_line(tally, sources=sources, seconds=300.2, database=None) == expected


def test_the_heartbeat_says_when_the_database_is_down():
    line = heartbeat_line(
        Tally(), sources=1, seconds=30, database="unavailable for 12 s: disk I/O error"
    )
    assert line.endswith("in the last 30 s; database unavailable for 12 s: disk I/O error")
