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
