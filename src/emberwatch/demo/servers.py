"""Loopback stand-ins for the internet: a feed server, a Slack webhook and an SMTP server.

The demo uses them, and so do the end-to-end tests: they are real servers on 127.0.0.1
speaking real HTTP and SMTP, never mocks.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class _Server:
    """A threaded HTTP server on 127.0.0.1 with a free port, started and stopped explicitly."""

    def __init__(self, handler: Callable[[str, str, bytes], Reply]) -> None:
        answer = handler

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = answer(self.command, self.path, body)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the demo's and the tests' output clean

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> _Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class HTTPServer(_Server):
    """Serve whatever ``handler(method, path, body) -> Reply`` answers."""


class SlackServer(_Server):
    """Accepts Slack incoming-webhook posts, keeps them, and saves each as a .json file.

    ``script`` may hold replies to give before answering ``ok`` (e.g. a 429 with
    ``Retry-After``), so tests can exercise failure handling against a real server.
    """

    def __init__(self, folder: Path | None = None, script: list[Reply] | None = None) -> None:
        self.folder = folder
        self.payloads: list[dict[str, Any]] = []
        self.script = list(script or [])
        self._lock = threading.Lock()
        super().__init__(self._handle)

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/services/T000/B000/demo"

    def _handle(self, method: str, path: str, body: bytes) -> Reply:
        with self._lock:
            if self.script:
                return self.script.pop(0)
            try:
                payload = json.loads(body)
            except ValueError:
                return Reply(400, b"invalid_payload", "text/plain")
            self.payloads.append(payload)
            if self.folder is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
                name = self.folder / f"{len(self.payloads):03d}.json"
                name.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
        return Reply(200, b"ok", "text/plain")


class _MailHandler:
    def __init__(self, catcher: MailCatcher) -> None:
        self.catcher = catcher

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        code = self.catcher.refuse.get(address)
        if code:
            return f"{code} mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        data = envelope.original_content or envelope.content
        self.catcher.messages.append(data)
        if self.catcher.folder is not None:
            self.catcher.folder.mkdir(parents=True, exist_ok=True)
            name = self.catcher.folder / f"{len(self.catcher.messages):03d}.eml"
            name.write_bytes(data)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MailCatcher:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps and saves every message.

    ``refuse`` maps a recipient address to an SMTP code to answer for it (e.g. 550).
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self.messages: list[bytes] = []
        self.refuse: dict[str, int] = {}
        # aiosmtpd connects to its own port to check it is up, so it needs a real one.
        self._controller = Controller(_MailHandler(self), hostname="127.0.0.1", port=free_port())

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> MailCatcher:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
