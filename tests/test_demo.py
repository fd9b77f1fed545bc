import email
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from email import policy
from importlib import resources

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine

from emberwatch.cli import cli
from emberwatch.config import load_config
from emberwatch.console.users import check_password
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
    # Without a terminal it exited by itself, after printing the console and its login.
    login = re.search(r"console: (http://127\.0\.0\.1:\d+/)  log in as demo / (\S+)", result.stdout)
    assert login, result.stdout
    assert "Serving the console" not in result.stdout
    engine = create_engine(f"sqlite:///{output / 'emberwatch.db'}")
    assert check_password(engine, "demo", login[2], datetime.now(UTC)).reason == "ok"


def test_from_a_terminal_the_demo_serves_the_console_until_ctrl_c(tmp_path):
    controller, terminal = pty.openpty()
    out = str(tmp_path / "out")
    process = subprocess.Popen(
        [sys.executable, "-m", "emberwatch.cli", "demo", *("--duration", "5"), "--output", out],
        cwd=REPO,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    os.close(terminal)
    seen = ""
    try:
        deadline = time.monotonic() + 60
        while "until Ctrl-C" not in seen and time.monotonic() < deadline:
            if select.select([controller], [], [], 0.5)[0]:
                seen += os.read(controller, 4096).decode(errors="replace")
        url = re.search(r"Serving the console at (http://\S+/) until Ctrl-C", seen)
        assert url, seen
        login = httpx.get(url[1] + "login", timeout=10)
        assert login.status_code == 200 and 'name="password"' in login.text
        process.send_signal(signal.SIGINT)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)


@pytest.mark.parametrize(
    ("args", "serve"), [([], False), (["--no-serve"], False), (["--serve"], True)]
)
def test_the_demo_serves_only_from_a_terminal_or_when_asked(monkeypatch, args, serve):
    asked = []
    monkeypatch.setattr("emberwatch.demo.run_demo", lambda *_args, serve: asked.append(serve))
    result = CliRunner().invoke(cli, ["demo", *args])  # CliRunner's stdin is no terminal
    assert result.exit_code == 0, result.output
    assert asked == [serve]


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
