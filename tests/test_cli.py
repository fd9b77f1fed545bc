import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from emberwatch.cli import cli
from tests.conftest import FIXTURES, REPO
from tests.e2e_support import start_servers

COMMANDS = [
    "alerts",
    "check-config",
    "db",
    "demo",
    "digest",
    "mentions",
    "poll",
    "run",
    "score",
    "sources",
]


def invoke(*args, input=None, env=None):
    return CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=False)


def test_help_lists_every_command():
    output = invoke("--help").output
    for command in COMMANDS:
        assert f"  {command} " in output or f"  {command}\n" in output


@pytest.mark.parametrize(
    "command",
    [
        ["run"],
        ["poll"],
        ["demo"],
        ["check-config"],
        ["db", "upgrade"],
        ["mentions"],
        ["alerts"],
        ["sources", "parse"],
        ["sources", "status"],
        ["score"],
        ["digest"],
    ],
)
def test_every_command_has_help_with_an_example(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0 and "Example:" in result.output


def test_sources_parse_prints_normalized_json_lines():
    result = invoke(
        "sources", "parse", "hackernews", str(FIXTURES / "hackernews" / "search_by_date.json")
    )
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["external_id"] for r in rows] == ["41000003", "41000002"]
    assert set(rows[0]) == {
        "source",
        "external_id",
        "url",
        "author",
        "author_followers",
        "title",
        "text",
        "published_at",
        "rating",
        "likes",
        "reposts",
        "replies",
        "thread",
    }
    assert rows[1]["published_at"].endswith("Z")


def test_sources_parse_explains_a_bad_body_and_an_unknown_type(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("<html>nope</html>")
    result = CliRunner().invoke(cli, ["sources", "parse", "hackernews", str(bad)])
    assert result.exit_code == 1 and "not JSON" in result.output
    unknown = CliRunner().invoke(cli, ["sources", "parse", "myspace", str(bad)])
    assert unknown.exit_code == 2 and "known types" in unknown.output


def test_score_adds_scores_to_each_line_and_reports_bad_lines():
    lines = (
        '{"text": "Acme is wonderful, I love it"}\n'
        "not json\n"
        '{"text": "terrible, broken, refund now"}\n'
    )
    result = CliRunner().invoke(cli, ["score"], input=lines)
    assert result.exit_code == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 2
    assert rows[0]["scores"]["sentiment"] > 0 > rows[1]["scores"]["sentiment"]
    assert {
        "sentiment",
        "complaint",
        "virality",
        "expected_engagement",
        "category",
        "severity",
        "reasons",
    } <= set(rows[1]["scores"])
    assert "stdin line 2" in result.stderr


def test_a_missing_config_is_one_clear_line_and_exit_2(tmp_path):
    result = CliRunner().invoke(cli, ["mentions", "--config", str(tmp_path / "none.toml")])
    assert result.exit_code == 2 and "file not found" in result.output


def test_poll_names_an_unknown_source(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[[brands]]\nname = "a"\ninclude = ["a"]\n')
    result = CliRunner().invoke(
        cli, ["poll", "--once", "--source", "nope", "--config", str(config)]
    )
    assert result.exit_code == 2 and "no source named 'nope'" in result.output


def test_run_stops_cleanly_on_sigterm(tmp_path):
    _feeds, server, slack, mail, config = start_servers(tmp_path)
    try:
        env = {**os.environ, "EMBERWATCH_CONFIG": str(config)}
        subprocess.run(
            [sys.executable, "-m", "emberwatch", "db", "upgrade"], env=env, check=True, cwd=REPO
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "emberwatch", "run"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 20
        while (len(slack.payloads), len(mail.messages)) < (2, 2) and time.monotonic() < deadline:
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=40)
        assert process.returncode == 0, err
        assert len(slack.payloads) == 2 and len(mail.messages) == 2
        assert "monitor stopped" in err and "Traceback" not in err
    finally:
        server.stop()
        slack.stop()
        mail.stop()


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(
        'database_url = "postgresql://ew:s3cret-pw@127.0.0.1:1/ew"\n'
        '[[brands]]\nname = "a"\ninclude = ["a"]\n'
    )
    result = CliRunner().invoke(cli, ["mentions", "--config", str(config)])
    assert result.exit_code == 1
    assert "cannot use the database" in result.output
    assert "s3cret-pw" not in result.output and "Traceback" not in result.output


SECRET_CONFIG = """
database_url = "sqlite:///{db}"
[[brands]]
name = "acme"
include = ["Acme"]
[[sources]]
name = "acme-news"
type = "rss"
url = "https://news.example/feed"
[channels.slack]
webhook_url = "${{SLACK_WEBHOOK_URL}}"
[http]
secret = "${{EMBERWATCH_LINK_SECRET}}"
"""
NO_SECRETS = {"SLACK_WEBHOOK_URL": None, "EMBERWATCH_LINK_SECRET": None, "EMBERWATCH_CONFIG": None}
SECRETS = {
    "SLACK_WEBHOOK_URL": "https://hooks.slack.example/T/B/sekrit-hook",
    "EMBERWATCH_LINK_SECRET": "0123456789abcdef-sekrit",
    "EMBERWATCH_CONFIG": None,
}


@pytest.fixture
def secret_config(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(SECRET_CONFIG.format(db=tmp_path / "ew.db"))
    result = CliRunner().invoke(cli, ["db", "upgrade", "--config", str(path)], env=NO_SECRETS)
    assert result.exit_code == 0, result.output
    return path


def seed(config_path):
    """One mention in an alert of a snoozed incident, and one source's state."""
    from datetime import UTC, datetime

    from sqlmodel import Session

    from emberwatch import db as database
    from emberwatch.config import load_config
    from emberwatch.models import AlertRecord, Incident, MentionRecord, SourceState

    now = datetime.now(UTC)
    engine = database.create_db_engine(load_config(config_path, need_secrets=False).database_url)
    with Session(engine) as session:
        mention = MentionRecord(
            source="rss",
            external_id="1",
            source_name="acme-news",
            brand="acme",
            author="dana_k",
            url="https://news.example/posts/1",
            text="Acme charged me twice",
            published_at=datetime(2026, 11, 20, 9, 15, 42, 123456, tzinfo=UTC),
            first_seen_at=datetime(2026, 11, 20, 9, 16, 1, 654321, tzinfo=UTC),
            sentiment=-0.83164,
            severity="warning",
        )
        incident = Incident(
            brand="acme",
            source_name="acme-news",
            status="acknowledged",
            severity="warning",
            category="complaint",
            opened_at=now,
            updated_at=now,
            acknowledged_at=now,
            snoozed_until=datetime(2099, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
        )
        session.add_all([mention, incident])
        session.flush()
        session.add(
            AlertRecord(
                mention_id=mention.id,
                incident_id=incident.id,
                brand="acme",
                source_name="acme-news",
                category="complaint",
                severity="warning",
                reason="negative sentiment -0.83 and complaint markers (charged twice, refund "
                "please) from a customer with 12,000 followers",
                created_at=datetime(2026, 11, 20, 9, 17, 3, 999, tzinfo=UTC),
                updated_at=now,
            )
        )
        session.add(
            SourceState(
                name="acme-news",
                type="rss",
                last_success_at=datetime(2026, 11, 20, 9, 20, 11, 424242, tzinfo=UTC),
                items_last_poll=3,
            )
        )
        session.commit()
    engine.dispose()


@pytest.mark.parametrize(
    "command",
    [
        ["mentions"],
        ["alerts"],
        ["sources", "status"],
        ["labels", "list"],
        ["labels", "export"],
        ["silence", "list"],
        ["db", "upgrade"],
        ["db", "prune", "--older-than", "180d", "--dry-run"],
    ],
)
def test_commands_that_only_read_need_no_delivery_secrets(secret_config, command):
    result = CliRunner().invoke(cli, [*command, "--config", str(secret_config)], env=NO_SECRETS)
    assert result.exit_code == 0, result.output
    assert "SLACK_WEBHOOK_URL" not in result.output and "unset.invalid" not in result.output


def test_commands_that_deliver_still_need_the_secrets_and_say_each_once(secret_config):
    result = CliRunner().invoke(
        cli, ["poll", "--once", "--config", str(secret_config)], env=NO_SECRETS
    )
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"{secret_config}: channels.slack.webhook_url: environment variable SLACK_WEBHOOK_URL "
        "is not set",
        f"{secret_config}: http.secret: environment variable EMBERWATCH_LINK_SECRET is not set",
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["--config", "{c}", "db", "upgrade"],
        ["db", "upgrade", "--config", "{c}"],
        ["--config", "{c}", "check-config"],
        ["--config", "{c}", "sources", "status"],
        ["--config", "{c}", "mentions", "--limit", "1"],
    ],
)
def test_config_is_accepted_before_or_after_the_subcommand(secret_config, args):
    args = [a.format(c=secret_config) for a in args]
    result = CliRunner().invoke(cli, args, env=SECRETS)
    assert result.exit_code == 0, result.output


def test_the_subcommands_own_config_wins_over_one_given_before_it(secret_config, tmp_path):
    result = CliRunner().invoke(
        cli,
        ["--config", str(tmp_path / "absent.toml"), "check-config", "--config", str(secret_config)],
        env=SECRETS,
    )
    assert result.exit_code == 0 and result.output.startswith(f"{secret_config}: ok")
    missing = CliRunner().invoke(
        cli, ["--config", str(tmp_path / "absent.toml"), "db", "upgrade"], env=SECRETS
    )
    assert missing.exit_code == 2 and "absent.toml: <root>: file not found" in missing.output


def test_an_unwritable_digest_out_is_one_line(secret_config):
    out = "/no/such/dir/d.html"
    result = CliRunner().invoke(
        cli, ["digest", "--out", out, "--config", str(secret_config)], env=SECRETS
    )
    assert result.exit_code == 1
    assert len(result.output.splitlines()) == 1
    assert result.output.startswith(f"emberwatch: --out {out}: cannot write: ")
    assert "Traceback" not in result.output


def test_mentions_table_shows_time_author_link_and_rounded_scores(secret_config):
    seed(secret_config)
    result = CliRunner().invoke(cli, ["mentions", "--config", str(secret_config)], env=NO_SECRETS)
    header, row = result.output.splitlines()
    assert header.split() == [
        "ID", "TIME", "BRAND", "SOURCE_NAME", "AUTHOR", "LANGUAGE", "SENTIMENT", "SEVERITY",
        "ENGAGEMENT", "TEXT", "LINK",
    ]  # fmt: skip
    assert "2026-11-20 09:15Z" in row and "dana_k" in row
    assert row.endswith("https://news.example/posts/1")
    assert " -0.83 " in row and "0.8316" not in row


def test_mentions_jsonl_keeps_full_values(secret_config):
    seed(secret_config)
    result = CliRunner().invoke(
        cli, ["mentions", "--format", "jsonl", "--config", str(secret_config)], env=NO_SECRETS
    )
    row = json.loads(result.output)
    assert row["sentiment"] == -0.83164 and row["first_seen_at"].startswith("2026-11-20")


def test_alerts_table_shows_time_snooze_and_cuts_the_reason_at_a_word(secret_config):
    seed(secret_config)
    result = CliRunner().invoke(cli, ["alerts", "--config", str(secret_config)], env=NO_SECRETS)
    header, row = result.output.splitlines()
    assert header.split()[:4] == ["ID", "TIME", "INCIDENT", "STATUS"]
    assert "2026-11-20 09:17Z" in row
    assert "snoozed (until 2099-01-02 03:04Z)" in row and "acknowledged" not in row
    reason = row[header.index("REASON") :]
    assert reason.endswith("…")
    full = (
        "negative sentiment -0.83 and complaint markers (charged twice, refund please) from a "
        "customer with 12,000 followers"
    )
    kept = reason.removesuffix("…")
    assert full.startswith(kept) and full[len(kept)] == " "  # cut between words


def test_sources_status_prints_times_without_microseconds(secret_config):
    seed(secret_config)
    result = CliRunner().invoke(
        cli, ["sources", "status", "--config", str(secret_config)], env=NO_SECRETS
    )
    assert "2026-11-20 09:20Z" in result.output
    assert "424242" not in result.output and "09:20:11." not in result.output


def test_a_snooze_that_ended_shows_the_status_as_it_is():
    from datetime import UTC, datetime

    from emberwatch.cli import _alert_status

    now = datetime(2026, 11, 20, tzinfo=UTC)
    ended = {"status": "acknowledged", "snoozed_until": datetime(2026, 11, 19, tzinfo=UTC)}
    assert _alert_status(ended, now) == "acknowledged"
    naive = {"status": "acknowledged", "snoozed_until": datetime(2026, 11, 21, 8, 0)}
    assert _alert_status(naive, now) == "snoozed (until 2026-11-21 08:00Z)"


@pytest.mark.parametrize(
    ("text", "width", "shown"),
    [
        ("short", 10, "short"),
        ("refund please from a customer", 20, "refund please from…"),
        ("averyveryverylongwordwithoutspaces", 10, "averyvery…"),
        ("one, two three", 7, "one…"),
    ],
)
def test_table_cells_are_cut_at_a_word_boundary(text, width, shown):
    from emberwatch.cli import _cut_words

    assert _cut_words(text, width) == shown and len(shown) <= width
