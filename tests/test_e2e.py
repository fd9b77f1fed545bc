"""The whole pipeline in real processes against real loopback HTTP and SMTP servers."""

import email
import json
from email import policy

import pytest

from tests.e2e_support import emberwatch, start_servers


@pytest.fixture
def world(tmp_path):
    feeds, server, slack, mail, config = start_servers(tmp_path)
    yield feeds, slack, mail, config
    server.stop()
    slack.stop()
    mail.stop()


def test_poll_once_stores_scores_alerts_and_delivers_to_slack_and_email(world):
    _feeds, slack, mail, config = world
    assert emberwatch("db", "upgrade", "--config", str(config)).returncode == 0
    result = emberwatch("poll", "--once", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "hn: 2 new, 0 updated, 1 alerts" in result.stdout
    assert "feed: 1 new, 0 updated, 1 alerts" in result.stdout
    assert "deliveries: 4 sent" in result.stdout
    assert len(slack.payloads) == 2 and len(mail.messages) == 2
    assert any("Acme lost my order" in json.dumps(p) for p in slack.payloads)
    message = email.message_from_bytes(mail.messages[0], policy=policy.default)
    assert "complaint about acme" in message["Subject"]

    again = emberwatch("poll", "--once", "--config", str(config))
    assert "hn: 0 new, 0 updated, 0 alerts" in again.stdout
    assert len(slack.payloads) == 2 and len(mail.messages) == 2

    listed = emberwatch("alerts", "--format", "jsonl", "--config", str(config))
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == 2 and all(r["reason"] for r in rows)
    mentions = emberwatch(
        "mentions", "--sentiment", "negative", "--format", "jsonl", "--config", str(config)
    )
    assert len(mentions.stdout.splitlines()) == 2


def test_run_refuses_an_unmigrated_database_and_says_what_to_run(world):
    _feeds, _slack, _mail, config = world
    result = emberwatch("run", "--config", str(config))
    assert result.returncode == 1
    assert f"Run: emberwatch db upgrade --config {config}" in result.stderr
    assert "Traceback" not in result.stderr
