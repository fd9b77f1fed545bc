import email
import json
import sys
import tomllib
from email import policy
from importlib import resources

from click.testing import CliRunner

from emberwatch.cli import cli
from emberwatch.config import load_config
from emberwatch.demo import packaged_config
from tests.e2e_support import REPO, emberwatch

DEMO_ENV = {
    "DEMO_OUTPUT": "/tmp/demo",
    "DEMO_FEEDS": "http://127.0.0.1:9",
    "DEMO_SLACK_WEBHOOK": "http://127.0.0.1:9/slack",
    "DEMO_SMTP_PORT": "2525",
    "DEMO_HTTP_PORT": "8788",
}


def test_the_demo_runs_offline_and_leaves_mail_slack_digest_and_database(tmp_path):
    output = tmp_path / "out"
    result = emberwatch("demo", "--duration", "8", "--output", str(output), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Summary" in result.stdout and "alerts raised:" in result.stdout
    slack_files = sorted((output / "slack").glob("*.json"))
    mail_files = sorted((output / "mail").glob("*.eml"))
    assert slack_files and mail_files
    assert any("courier" in json.loads(p.read_text())["text"] for p in slack_files)
    subjects = [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)["Subject"]
        for p in mail_files
    ]
    assert any("Daily digest" in s for s in subjects)
    assert (output / "digest.html").read_text().startswith("<!doctype html>")
    assert (output / "emberwatch.db").exists()


def test_the_demo_config_ships_in_the_package_and_config_demo_toml_is_the_same_file():
    packaged = packaged_config()
    assert packaged.is_file()
    assert (REPO / "config" / "demo.toml").read_bytes() == packaged.read_bytes()
    with resources.as_file(packaged) as path:
        config = load_config(path, DEMO_ENV)
    assert [s.name for s in config.sources] == ["kettle-reviews", "business-news", "hn-acme"]
    assert "demo/*" in _package_data()  # so the wheel carries demo.toml


def _package_data() -> list[str]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return pyproject["tool"]["setuptools"]["package-data"]["emberwatch"]


def test_without_aiosmtpd_the_demo_says_in_one_line_what_to_install(monkeypatch):
    # As if the demo extra were not installed: importing aiosmtpd fails, and the demo
    # modules are imported afresh.
    monkeypatch.setitem(sys.modules, "aiosmtpd", None)
    monkeypatch.setitem(sys.modules, "aiosmtpd.controller", None)
    for name in ("emberwatch.demo", "emberwatch.demo.servers"):
        monkeypatch.delitem(sys.modules, name, raising=False)

    result = CliRunner().invoke(cli, ["demo", "--duration", "5"])

    assert result.exit_code != 0
    assert result.output.splitlines() == [
        "emberwatch: the demo needs aiosmtpd, which its extra installs: "
        "pip install 'emberwatch[demo]'"
    ]


def test_the_demo_help_needs_no_aiosmtpd(monkeypatch):
    monkeypatch.setitem(sys.modules, "aiosmtpd", None)
    result = CliRunner().invoke(cli, ["demo", "--help"])
    assert result.exit_code == 0
    assert "the config packaged with emberwatch.demo" in " ".join(result.output.split())
