"""Who acted on an incident: the CLI records the logged-in user by default and ``alerts``
lists who last acknowledged, snoozed or resolved each incident."""

import getpass
import json
from datetime import timedelta

from click.testing import CliRunner
from tests.alerts.test_incidents import T0, file_alerts

from emberwatch.cli import cli


def write_config(tmp_path, db_url: str):
    path = tmp_path / "emberwatch.toml"
    path.write_text(
        f'database_url = "{db_url}"\n[[brands]]\nname = "acme"\ninclude = ["Acme"]\n',
        encoding="utf-8",
    )
    return str(path)


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_alerts_lists_who_acted_and_by_defaults_to_the_login_name(
    tmp_path, sqlite_engine, monkeypatch
):
    config = write_config(tmp_path, str(sqlite_engine.url))
    first, second = file_alerts(
        sqlite_engine,
        dict(now=T0, url="https://example.com/1"),
        dict(now=T0 + timedelta(minutes=1), url="https://example.com/2", text="other words"),
    )
    monkeypatch.setattr(getpass, "getuser", lambda: "sam")
    assert (
        run("alerts", "ack", str(first), "--config", config)
        .output.strip()
        .endswith("acknowledged by sam")
    )
    assert (
        "snoozed by ana"
        in run(
            "alerts", "snooze", str(first), "--for", "2h", "--by", "ana", "--config", config
        ).output
    )
    rows = [
        json.loads(line)
        for line in run("alerts", "--format", "jsonl", "--config", config).output.splitlines()
    ]
    by_incident = {row["incident"]: row for row in rows}
    assert by_incident[first]["by"] == "snoozed by ana" and by_incident[first]["actor"] == "ana"
    assert by_incident[second]["by"] == "" and by_incident[second]["actor"] is None
    table = run("alerts", "--config", config).output
    assert "BY" in table.splitlines()[0] and "snoozed by ana" in table


def test_without_a_login_name_by_is_required(tmp_path, sqlite_engine, monkeypatch):
    config = write_config(tmp_path, str(sqlite_engine.url))
    (incident,) = file_alerts(sqlite_engine, dict(now=T0, url="https://example.com/1"))

    def no_login() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", no_login)
    refused = run("alerts", "resolve", str(incident), "--config", config)
    assert refused.exit_code == 2 and "say who is acting with --by NAME" in refused.output
    done = run("alerts", "resolve", str(incident), "--by", "cy", "--config", config)
    assert done.exit_code == 0 and "resolved by cy" in done.output
