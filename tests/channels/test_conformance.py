"""Every registered channel, through one table of outcomes, against real loopback servers.

Each scenario is played by a real server on 127.0.0.1: an HTTP server for the webhook
channels (Apprise through its ``json://`` URL), an SMTP server for the mail ones, a socket
that accepts and never answers for the timeout, a closed port where SMTP has no "not
found". What each channel makes of it is one row of :data:`EXPECTED`, so a new channel
is added here as one row, and a difference between channels is visible in one place.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from emberwatch.channels import CHANNELS
from emberwatch.channels.base import Channel, Envelope, Notice, Report
from emberwatch.demo.servers import MailCatcher, free_port
from tests.channels.test_slack import mention, view
from tests.helpers import make_config

SECRET = "secret-token-0123456789"
SCENARIOS = (
    "success",
    "rate_limited",
    "server_error",
    "rejected",
    "broken",
    "timeout",
    "oversized",
)
# (status, retry_after) for each channel and scenario. Apprise reports only True/False:
# every failure is a plain retry. SMTP has no rate-limit header and no "not found" for a
# server: a temporary refusal and a closed port are retried.
HTTP = {
    "success": ("sent", None),
    "rate_limited": ("retry", 7.0),
    "server_error": ("retry", None),
    "rejected": ("permanent", None),
    "broken": ("broken", None),
    "timeout": ("retry", None),
    "oversized": ("sent", None),
}
SMTP = {**HTTP, "rate_limited": ("retry", None), "broken": ("retry", None)}
COARSE = {s: ("sent", None) if s in ("success", "oversized") else ("retry", None) for s in HTTP}
EXPECTED: dict[str, dict[str, tuple[str, float | None]]] = {
    "slack": HTTP,
    "webhook": HTTP,
    "teams": HTTP,
    "apprise": COARSE,
    "email": SMTP,
    "digest": SMTP,
}
SMTP_CODES = {"rate_limited": 452, "server_error": 451, "rejected": 550}
HTTP_REPLIES = {
    "success": (200, {}),
    "oversized": (200, {}),
    "rate_limited": (429, {"Retry-After": "7"}),
    "server_error": (503, {}),
    "rejected": (400, {}),
    "broken": (404, {}),
}


@dataclass
class Loopback:
    """An HTTP server that answers every POST with one status and keeps what it got."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                loopback.received.append((dict(self.headers), body))
                self.send_response(loopback.status)
                for name, value in loopback.headers.items():
                    self.send_header(name, value)
                reply = b"ok" if loopback.status < 300 else b"no_service"
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def silent() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def settings_for(name: str, http_port: int, smtp_port: int) -> Any:
    url = f"http://127.0.0.1:{http_port}/hooks/{SECRET}"
    mail = {
        "host": "127.0.0.1",
        "port": smtp_port,
        "security": "none",
        "sender": "ew@acme.example",
        "recipients": ["marketing@acme.example"],
        "timeout": "2s",
    }
    channels: dict[str, Any] = {
        "slack": {"slack": {"webhook_url": url, "timeout": "1s"}},
        "webhook": {"webhook": {"url": url, "secret": SECRET, "timeout": "1s"}},
        "teams": {"teams": {"webhook_url": url, "timeout": "1s"}},
        "apprise": {
            "apprise": {"urls": [f"json://127.0.0.1:{http_port}/hooks/{SECRET}"], "timeout": "2s"}
        },
        "email": {"email": mail},
        "digest": {"email": mail, "digest": {"recipients": ["ops@acme.example"]}},
    }[name]
    return make_config(channels=channels)


def content_for(name: str, scenario: str) -> Any:
    if name == "digest":
        html = "<p>" + "x" * (2_000_000 if scenario == "oversized" else 100) + "</p>"
        return Report("[Emberwatch] Daily digest", "text", html)
    if scenario == "oversized":
        listed = [mention(n, text="word " * 2000) for n in range(60)]
        return view(
            text="word " * 20_000,
            incident_id=3,
            links=LINKS,
            mentions=listed,
            context=listed,
            mention_total=60,
            reasons=["reason " * 500] * 30,
        )
    return view(incident_id=3, links=LINKS)


LINKS = {a: f"https://ew.example/incidents/3?do={a}" for a in ("ack", "snooze", "resolve")}
RECIPIENT = {"email": "marketing@acme.example", "apprise": "target-1", "digest": None}


async def play(channel: Channel, scenario: str, silent_port: int) -> tuple[Any, Any, Any]:
    smtp = channel.name in ("email", "digest")
    server = None if smtp else Loopback(*HTTP_REPLIES.get(scenario, (200, {})))
    catcher = MailCatcher().start() if smtp else None
    try:
        if smtp:
            assert catcher is not None
            address = "ops@acme.example" if channel.name == "digest" else "marketing@acme.example"
            if scenario in SMTP_CODES:
                catcher.refuse[address] = SMTP_CODES[scenario]
            port = {"timeout": silent_port, "broken": free_port()}.get(scenario, catcher.port)
            config = settings_for(channel.name, 1, port)
        else:
            assert server is not None
            port = silent_port if scenario == "timeout" else server.port
            config = settings_for(channel.name, port, 1)
        settings = getattr(config.channels, channel.name)
        async with httpx.AsyncClient() as http:
            envelope = Envelope(
                channel.name,
                "digest" if channel.name == "digest" else "alert",
                settings,
                http,
                RECIPIENT.get(channel.name),
                {"number": 1},
                config,
            )
            outcome = await channel.send(envelope, content_for(channel.name, scenario))
        return outcome, server, catcher
    finally:
        if server is not None:
            server.stop()
        if catcher is not None:
            catcher.stop()


def test_every_registered_channel_has_a_row():
    assert set(EXPECTED) == set(CHANNELS)
    for channel in CHANNELS.values():
        assert isinstance(channel, Channel)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_each_channel_reports_each_outcome_as_the_table_says(name, scenario, silent):
    channel = CHANNELS[name]
    outcome, server, catcher = await play(channel, scenario, silent)
    status, retry_after = EXPECTED[name][scenario]
    assert (outcome.status, outcome.retry_after) == (status, retry_after), outcome.error
    assert SECRET not in outcome.error  # no URL token or signing secret in any error
    if status != "sent":
        assert outcome.error.startswith(f"{name}:")  # the error names the channel's step
        return
    if server is not None:
        [(_, body)] = server.received
        assert len(body) <= channel.max_bytes
    else:
        assert len(catcher.messages) == 1


def test_content_a_channel_cannot_send_is_permanent():
    async def run() -> None:
        for name, channel in CHANNELS.items():
            config = settings_for(name, 1, 1)
            async with httpx.AsyncClient() as http:
                envelope = Envelope(
                    name, "rollup", getattr(config.channels, name), http, None, {}, config
                )
                wrong = Notice("x", ["y"]) if name == "digest" else Report("s", "t", "h")
                outcome = await channel.send(envelope, wrong)
            assert outcome.status == "permanent", name

    import anyio

    anyio.run(run)


def test_the_webhook_body_is_signed_over_timestamp_and_body():
    import hashlib
    import hmac

    import anyio

    channel = CHANNELS["webhook"]
    server = Loopback()
    try:
        outcome, *_ = anyio.run(play_on, channel, server)
    finally:
        server.stop()
    assert outcome.status == "sent"
    [(headers, body)] = server.received
    stamp = headers["X-Emberwatch-Timestamp"]
    expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    assert headers["X-Emberwatch-Signature"] == "sha256=" + expected.hexdigest()
    data = json.loads(body)
    assert set(data) >= {"incident", "mentions", "scores", "reasons", "playbook", "links"}
    assert data["links"] == LINKS


async def play_on(channel: Channel, server: Loopback) -> tuple[Any]:
    config = settings_for(channel.name, server.port, 1)
    async with httpx.AsyncClient() as http:
        envelope = Envelope(
            channel.name, "alert", getattr(config.channels, channel.name), http, None, {}, config
        )
        return (await channel.send(envelope, content_for(channel.name, "success")),)
