from pathlib import Path

import pytest
from click.testing import CliRunner

from emberwatch.cli import cli
from emberwatch.config import load_config, validate_config
from emberwatch.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
ENV = {
    "SMTP_PASSWORD": "hunter2-secret",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/T/B/xyz",
    "EMBERWATCH_LINK_SECRET": "0123456789abcdef0123",
}

MINIMAL = {"brands": [{"name": "acme", "include": ["Acme"]}]}


def test_the_example_config_is_valid_and_reads_secrets_from_the_environment():
    config = load_config(REPO / "config" / "emberwatch.example.toml", environ=ENV)
    assert config.channels.slack.webhook_url.get_secret_value() == ENV["SLACK_WEBHOOK_URL"]
    assert "hunter2" not in repr(config)


def test_defaults_are_a_sqlite_file_and_warning_alerts():
    config = validate_config(MINIMAL, "x.toml", {})
    assert config.database_url == "sqlite:///./emberwatch.db"
    assert config.thresholds.min_severity == "warning"


def test_every_problem_is_reported_at_once_with_file_and_key():
    raw = {
        "brands": [{"name": "acme", "include": ["Acme"], "colour": "red"}],
        "sources": [
            {"name": "news", "type": "rss", "url": "http://x", "interval": "often"},
            {"name": "hn", "type": "hackernews"},
            {"name": "what", "type": "myspace"},
        ],
        "channels": {"slack": {"webhook_url": "${NOPE}"}},
    }
    with pytest.raises(ConfigError) as caught:
        validate_config(raw, "cfg.toml", {})
    lines = str(caught.value).splitlines()
    assert "cfg.toml: brands[acme].colour: unknown key" in lines[1] or any(
        line.startswith("cfg.toml: brands[acme].colour: unknown key") for line in lines
    )
    assert any(line.startswith("cfg.toml: sources[news].interval: ") for line in lines)
    assert any(line == "cfg.toml: sources[hn].query: Field required" for line in lines)
    assert any("sources[what]: unknown source type" in line for line in lines)
    assert any(
        "channels.slack.webhook_url: environment variable NOPE is not set" in line for line in lines
    )
    assert len(lines) == 5


def test_an_empty_environment_variable_is_an_error_naming_the_key():
    raw = {**MINIMAL, "channels": {"slack": {"webhook_url": "${HOOK}"}}}
    with pytest.raises(
        ConfigError, match=r"channels.slack.webhook_url: environment variable HOOK is empty"
    ):
        validate_config(raw, "x.toml", {"HOOK": ""})


def test_a_source_serving_an_undefined_brand_is_rejected():
    raw = {
        **MINIMAL,
        "sources": [{"name": "n", "type": "rss", "url": "http://x", "brands": ["ac"]}],
    }
    with pytest.raises(ConfigError, match="undefined brand 'ac'"):
        validate_config(raw, "x.toml", {})


def test_duplicate_source_names_are_rejected():
    source = {"name": "n", "type": "rss", "url": "http://x"}
    with pytest.raises(ConfigError, match="source name 'n' is used twice"):
        validate_config({**MINIMAL, "sources": [source, source]}, "x.toml", {})


def test_an_unknown_time_zone_is_rejected():
    raw = {
        **MINIMAL,
        "channels": {
            "email": {"host": "h", "sender": "a@b", "recipients": ["c@d"]},
            "digest": {"recipients": ["o@d"], "timezone": "Mars/Olympus"},
        },
    }
    with pytest.raises(ConfigError, match=r"channels\.digest\.timezone: unknown IANA time zone"):
        validate_config(raw, "x.toml", {})


def test_durations_accept_units():
    raw = {
        **MINIMAL,
        "sources": [{"name": "n", "type": "rss", "url": "http://x", "interval": "90s"}],
    }
    assert validate_config(raw, "x.toml", {}).sources[0].interval.total_seconds() == 90


def test_check_config_exits_2_and_never_prints_a_secret(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        '[[brands]]\nname = "acme"\ninclude = ["Acme"]\nbogus = 1\n'
        '[channels.slack]\nwebhook_url = "${SLACK_WEBHOOK_URL}"\ntimeout = "soon"\n'
    )
    result = CliRunner().invoke(cli, ["check-config", str(path)], env=ENV)
    assert result.exit_code == 2
    assert f"{path}: brands[acme].bogus: unknown key" in result.output
    assert f"{path}: channels.slack.timeout:" in result.output
    assert "xyz" not in result.output and "Traceback" not in result.output


def test_check_config_reports_a_missing_file_and_bad_toml(tmp_path):
    missing = CliRunner().invoke(cli, ["check-config", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 2 and "file not found" in missing.output
    broken = tmp_path / "broken.toml"
    broken.write_text("[[brands]\n")
    result = CliRunner().invoke(cli, ["check-config", str(broken)])
    assert result.exit_code == 2 and "not valid TOML" in result.output


def test_the_demo_config_is_valid():
    env = {
        "DEMO_OUTPUT": "/tmp/x",
        "DEMO_FEEDS": "http://127.0.0.1:1",
        "DEMO_SMTP_PORT": "25",
        "DEMO_SLACK_WEBHOOK": "http://127.0.0.1:2/hook",
        "DEMO_HTTP_PORT": "8787",
    }
    config = load_config(REPO / "config" / "demo.toml", environ=env)
    assert config.channels.email.port == 25
