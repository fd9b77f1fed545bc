"""Failed deliveries are visible and recoverable: ``poll --once`` fails loudly, ``deliveries
list`` shows them, ``deliveries retry`` sends them again (real SMTP and Slack on loopback)."""

import json

import pytest

from tests.e2e_support import emberwatch, start_servers

MARKETING = "marketing@acme.example"


@pytest.fixture
def world(tmp_path):
    _feeds, server, slack, mail, config = start_servers(tmp_path)
    assert emberwatch("db", "upgrade", "--config", str(config)).returncode == 0
    yield slack, mail, config
    server.stop()
    slack.stop()
    mail.stop()


def listed(config, *args: str) -> list[dict]:
    shown = emberwatch("deliveries", "list", "--format", "jsonl", "--config", str(config), *args)
    assert shown.returncode == 0, shown.stderr
    return [json.loads(line) for line in shown.stdout.splitlines()]


def test_failed_deliveries_fail_the_poll_are_listed_and_sent_again_on_retry(world):
    _slack, mail, config = world
    mail.refuse[MARKETING] = 550
    polled = emberwatch("poll", "--once", "--config", str(config))
    assert polled.returncode == 1
    assert "deliveries: 2 sent, 0 to retry, 2 failed" in polled.stdout
    assert polled.stderr.strip().splitlines()[-1] == (
        "emberwatch: 2 deliveries failed; see them with: emberwatch deliveries list "
        f"--state failed --config {config}"
    )

    failed = listed(config, "--state", "failed")
    assert [(d["channel"], d["recipient"], d["state"]) for d in failed] == [
        ("email", MARKETING, "failed")
    ] * 2
    assert all("550" in d["last_error"] and d["attempts"] == 1 for d in failed)
    assert {d["state"] for d in listed(config)} == {"sent", "failed"}
    table = emberwatch("deliveries", "list", "--state", "failed", "--config", str(config))
    assert table.stdout.splitlines()[0].split()[:6] == [
        "ID",
        "CREATED_AT",
        "CHANNEL",
        "KIND",
        "RECIPIENT",
        "STATE",
    ]
    assert len(table.stdout.splitlines()) == 3

    sent_id = listed(config, "--state", "sent")[0]["id"]
    wrong = emberwatch("deliveries", "retry", str(sent_id), "--config", str(config))
    assert wrong.returncode == 1 and f"delivery {sent_id}: sent, not failed" in wrong.stderr
    neither = emberwatch("deliveries", "retry", "--config", str(config))
    assert neither.returncode == 1 and "give delivery IDs or --all-failed" in neither.stderr

    mail.refuse.clear()  # the mailbox is fixed
    retried = emberwatch(
        "deliveries", "retry", "--all-failed", "--by", "ana", "--config", str(config)
    )
    assert retried.returncode == 0, retried.stderr
    assert "2 deliveries queued again" in retried.stdout
    pending = listed(config, "--state", "pending")
    assert len(pending) == 2 and all(d["attempts"] == 0 for d in pending)
    assert all(d["last_error"].startswith("retry asked by ana at ") for d in pending)
    assert all("550" in d["last_error"] for d in pending)  # the old error is kept

    again = emberwatch("poll", "--once", "--config", str(config))
    assert again.returncode == 0, again.stderr
    assert "deliveries: 2 sent, 0 to retry, 0 failed" in again.stdout
    assert len(mail.messages) == 2 and listed(config, "--state", "failed") == []


def test_deliveries_commands_have_help_with_examples():
    for command in (["deliveries", "list"], ["deliveries", "retry"]):
        shown = emberwatch(*command, "--help")
        assert shown.returncode == 0 and "Examples:" in shown.stdout
