import email
import json
from email import policy

from tests.e2e_support import REPO, emberwatch


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
    assert (REPO / "config" / "demo.toml").exists()
