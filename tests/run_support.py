"""A real `emberwatch run` process and a loopback RSS server, for tests of what it logs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from emberwatch.demo.servers import HTTPServer, Reply
from tests.conftest import REPO


class Feeds:
    """RSS feeds on loopback: ``/<name>.xml`` serves the items published to ``name``, and
    every request is recorded (its start time), optionally after a delay."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.requests: dict[str, list[float]] = defaultdict(list)
        self.delays: dict[str, float] = {}
        self.server = HTTPServer(self.handle).start()

    def url(self, name: str) -> str:
        return f"{self.server.base_url}/{name}.xml"

    def publish(self, name: str, guid: str, title: str) -> None:
        with self.lock:
            self.items[name].append((guid, title))

    def polls(self, name: str) -> int:
        with self.lock:
            return len(self.requests[name])

    def handle(self, method: str, path: str, body: bytes) -> Reply:
        name = path.strip("/").removesuffix(".xml")
        with self.lock:
            self.requests[name].append(time.time())
            items = list(self.items[name])
            delay = self.delays.get(name, 0.0)
        time.sleep(delay)
        now = format_datetime(datetime.now(UTC))
        entries = "".join(
            f"<item><title>{escape(title)}</title><link>https://news.example.com/{guid}</link>"
            f'<guid isPermaLink="false">{guid}</guid><pubDate>{now}</pubDate></item>'
            for guid, title in items
        )
        xml = (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
            f"<link>https://news.example.com/</link><description>d</description>{entries}"
            "</channel></rss>"
        )
        return Reply(200, xml.encode(), content_type="application/rss+xml")

    def stop(self) -> None:
        self.server.stop()


def write_config(path: Path, db_url: str, sources: dict[str, str], body: str = "") -> None:
    """A config with ``sources`` (name -> feed URL, polled every second) and ``body``
    (brands and any other keys), written whole before it replaces the old file."""
    blocks = "".join(
        f'\n[[sources]]\nname = "{name}"\ntype = "rss"\ninterval = "1s"\nurl = "{url}"\n'
        for name, url in sources.items()
    )
    text = f'database_url = "{db_url}"\npoll_jitter = "0s"\n{body}\n{blocks}'
    scratch = path.with_suffix(".new")
    scratch.write_text(text)
    scratch.replace(path)


class Node:
    """``emberwatch run`` in its own process; its log (stderr) read line by line."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        env = {**os.environ, "EMBERWATCH_CONFIG": str(config)}
        command = [sys.executable, "-m", "emberwatch"]
        subprocess.run(
            [*command, "db", "upgrade"], env=env, cwd=REPO, check=True, capture_output=True
        )
        self.process = subprocess.Popen(
            [*command, "run"], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("w")
        )

    def lines(self) -> list[str]:
        """The log's lines, without their time stamps."""
        text = self.log.read_text()
        return [re.sub(r"^\S+ \S+ ", "", line) for line in text.splitlines()]

    def wait_for(self, pattern: str, timeout: float = 30.0, after: int = 0) -> int:
        """The index of the first line from ``after`` on that matches ``pattern``."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for i, line in enumerate(self.lines()[after:], start=after):
                if re.search(pattern, line):
                    return i
            assert self.process.poll() is None, "\n".join(self.lines())
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r}:\n" + "\n".join(self.lines()))

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
