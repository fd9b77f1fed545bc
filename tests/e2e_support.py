"""Real loopback servers and a config pointing at them, for end-to-end and crash tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from emberwatch.demo.servers import HTTPServer, MailCatcher, Reply, SlackServer
from tests.helpers import ANGRY, HAPPY, hn_hit, hn_page

# A second, unrelated complaint, so the two land in separate incidents.
OTHER_ANGRY = "Acme support ignored three emails about my broken kettle. Awful, useless service."

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Feeds:
    """A loopback Algolia + RSS server whose content tests change between polls."""

    hits: list[dict] = field(default_factory=lambda: [hn_hit("101", ANGRY), hn_hit("102", HAPPY)])
    rss_items: list[tuple[str, str]] = field(default_factory=lambda: [("g1", OTHER_ANGRY)])
    requests: list[str] = field(default_factory=list)

    def handle(self, method: str, path: str, body: bytes) -> Reply:
        self.requests.append(path)
        if path.startswith("/api/v1/search_by_date"):
            return Reply(200, json.dumps(hn_page(*self.hits)).encode())
        if path.startswith("/feed.xml"):
            items = "".join(
                f"<item><guid>{guid}</guid><title>{title}</title></item>"
                for guid, title in self.rss_items
            )
            xml = f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
            return Reply(200, xml.encode(), "application/rss+xml")
        return Reply(404, b"{}")


def write_config(tmp: Path, feeds_url: str, slack: SlackServer, mail: MailCatcher) -> Path:
    path = tmp / "emberwatch.toml"
    path.write_text(
        f"""
database_url = "sqlite:///{tmp / "e2e.db"}"
[[brands]]
name = "acme"
include = ["Acme"]

[[sources]]
name = "hn"
type = "hackernews"
query = "acme"
base_url = "{feeds_url}"
interval = "1s"

[[sources]]
name = "feed"
type = "rss"
url = "{feeds_url}/feed.xml"
interval = "1s"

[channels.email]
host = "127.0.0.1"
port = {mail.port}
security = "none"
sender = "ew@acme.example"
recipients = ["marketing@acme.example"]

[channels.slack]
webhook_url = "${{E2E_SLACK_WEBHOOK}}"

[[routes]]
name = "everything"
channels = ["slack", "email", "digest"]
group_wait = "1s"

[delivery]
interval = "0.5s"
""",
        encoding="utf-8",
    )
    os.environ["E2E_SLACK_WEBHOOK"] = slack.webhook_url
    return path


def emberwatch(
    *args: str, timeout: float = 60, script: str | None = None
) -> subprocess.CompletedProcess:
    """Run the real CLI in a fresh process (optionally after a prelude script)."""
    prelude = script or ""
    code = (
        f"{prelude}\nimport sys\nfrom emberwatch.cli import main\n"
        f"sys.argv = ['emberwatch', *{list(args)!r}]\nmain()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ},
    )


def start_servers(tmp: Path) -> tuple[Feeds, HTTPServer, SlackServer, MailCatcher, Path]:
    feeds = Feeds()
    server = HTTPServer(feeds.handle).start()
    slack = SlackServer(tmp / "slack").start()
    mail = MailCatcher(tmp / "mail").start()
    config = write_config(tmp, server.base_url, slack, mail)
    return feeds, server, slack, mail, config
