"""The small HTTP endpoint inside ``emberwatch run``.

- ``GET /actions/{incident}/{episode}/{action}?who=…&sig=…`` shows a confirmation page;
  ``POST`` to the same URL performs the action. A GET never changes anything, so link
  scanners and chat unfurlers cannot acknowledge an incident by fetching its link.
- ``GET /healthz``: the process is up. ``GET /readyz``: the node's jobs last found the
  database available, it answers now and its schema is current. ``GET /metrics``:
  Prometheus metrics.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import anyio
from aiohttp import web
from sqlalchemy.engine import Engine

from emberwatch import db as database
from emberwatch import metrics
from emberwatch.alerts import links
from emberwatch.alerts.lifecycle import ACTIONS, UnknownIncident, act, episode_closed
from emberwatch.config import Config
from emberwatch.errors import EmberwatchError
from emberwatch.sources._settings import parse_duration

log = logging.getLogger("emberwatch.web")

_LABELS = {"ack": "Acknowledge", "snooze": "Snooze", "resolve": "Resolve"}


def build_app(
    config: Config,
    engine: Engine,
    clock: Callable[[], datetime],
    ready: Callable[[], str | None] | None = None,
) -> web.Application:
    """The endpoint's routes. ``ready`` says why the node is not ready (a database
    outage its jobs met), or None."""
    assert config.http is not None
    secret = config.http.secret.get_secret_value()

    def _parse(request: web.Request) -> tuple[int, int, str, str] | web.Response:
        try:
            incident_id = int(request.match_info["incident"])
            episode = int(request.match_info["episode"])
        except ValueError:
            return _page(404, "Not found", "That link is not an Emberwatch action link.")
        action = request.match_info["action"]
        who = request.query.get("who", "")
        sig = request.query.get("sig", "")
        if (
            action not in ACTIONS
            or not who
            or not links.verify(secret, incident_id, episode, action, who, sig)
        ):
            return _page(403, "Invalid link", "This link's signature does not match.")
        return incident_id, episode, action, who

    async def confirm(request: web.Request) -> web.Response:
        parsed = _parse(request)
        if isinstance(parsed, web.Response):
            return parsed
        incident_id, episode, action, who = parsed
        label = _LABELS[action]
        closed = await anyio.to_thread.run_sync(episode_closed, engine, incident_id, episode)
        if closed:
            return _page(410, "Link expired", closed)
        extra = ""
        if action == "snooze":
            extra = (
                '<label>for <select name="for"><option>30m</option><option selected>1h'
                "</option><option>4h</option><option>24h</option></select></label> "
            )
        body = (
            f"<p>{label} incident #{incident_id} as <strong>{html.escape(who)}</strong>?</p>"
            f'<form method="post">{extra}<button type="submit">{label}</button></form>'
        )
        return _page(200, f"{label} incident #{incident_id}", body, raw=True)

    async def perform(request: web.Request) -> web.Response:
        parsed = _parse(request)
        if isinstance(parsed, web.Response):
            return parsed
        incident_id, episode, action, who = parsed
        form = await request.post()
        snooze_for: timedelta | None = None
        if action == "snooze":
            try:
                snooze_for = parse_duration(str(form.get("for") or links.SNOOZE_DEFAULT))
            except ValueError:
                return _page(400, "Bad duration", "Snooze for 30m, 1h, 4h or 24h.")
        try:
            outcome = await anyio.to_thread.run_sync(
                lambda: act(
                    engine,
                    incident_id,
                    action,
                    actor=who,
                    via="link",
                    now=clock(),
                    episode=episode,
                    snooze_for=snooze_for,
                )
            )
        except UnknownIncident:
            return _page(404, "Unknown incident", f"There is no incident #{incident_id}.")
        metrics.INCIDENT_ACTIONS.labels(action=action, via="link").inc()
        status = 410 if outcome.expired else 200
        return _page(status, _LABELS[action], outcome.message)

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_request: web.Request) -> web.Response:
        why = ready() if ready is not None else None
        if why is not None:
            return web.Response(status=503, text=f"{why}\n")
        try:
            current = await anyio.to_thread.run_sync(database.current_revision, engine)
        except Exception as exc:  # any database failure means not ready
            return web.Response(status=503, text=f"database unreachable: {type(exc).__name__}\n")
        if current != database.head_revision():
            return web.Response(status=503, text=f"schema at {current}, needs upgrade\n")
        return web.Response(text="ready\n")

    async def metrics_page(_request: web.Request) -> web.Response:
        await anyio.to_thread.run_sync(metrics.refresh_gauges, engine, clock())
        body, content_type = metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/actions/{incident}/{episode}/{action}", confirm)
    app.router.add_post("/actions/{incident}/{episode}/{action}", perform)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)
    return app


def _page(status: int, title: str, body: str, *, raw: bool = False) -> web.Response:
    content = body if raw else f"<p>{html.escape(body)}</p>"
    page = (
        f"<!doctype html><html><head><title>{html.escape(title)}</title></head>"
        f'<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">'
        f"<h2>{html.escape(title)}</h2>{content}</body></html>"
    )
    return web.Response(status=status, text=page, content_type="text/html")


async def serve(
    config: Config,
    engine: Engine,
    clock: Callable[[], datetime],
    ready: Callable[[], str | None] | None = None,
) -> web.AppRunner:
    """Start the endpoint on ``[http] bind``; the caller cleans the runner up."""
    assert config.http is not None
    runner = web.AppRunner(build_app(config, engine, clock, ready), access_log=None)
    await runner.setup()
    host, port = config.http.host_port
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise EmberwatchError(
            f"[http] bind = {config.http.bind!r}: cannot listen there ({exc.strerror}); "
            "free the port or choose another bind address"
        ) from None
    log.info("HTTP endpoint on %s:%d", host, port)
    return runner
