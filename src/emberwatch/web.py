"""The small HTTP endpoint inside ``emberwatch run``.

- The incident console (:mod:`emberwatch.console`): its pages, ``/login`` and ``/logout``,
  and the auth that guards every route here (a session, CSRF tokens, security headers).
- ``GET /actions/{incident}/{episode}/{action}?who=…&sig=…``: a signed link from Slack or
  email. Behind the login, it checks the signature and sends the person to the console's
  incident page (``/incidents/{id}?action=…``), where they confirm the action as
  themselves; a GET never changes anything, so link scanners and chat unfurlers cannot
  act. A link whose episode has closed says so (410).
- ``GET /healthz``: the process is up. ``GET /readyz``: the node's jobs last found the
  database available, it answers now and its schema is current. ``GET /metrics``:
  Prometheus metrics (``[http] metrics_public``, or a bearer ``metrics_token``).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from datetime import datetime

import anyio
from aiohttp import web
from sqlalchemy.engine import Engine
from sqlmodel import Session

from emberwatch import db as database
from emberwatch import metrics
from emberwatch.alerts import links
from emberwatch.alerts.lifecycle import ACTIONS, episode_closed
from emberwatch.config import Config
from emberwatch.console import add_console
from emberwatch.errors import EmberwatchError
from emberwatch.models import Incident

log = logging.getLogger("emberwatch.web")


def _incident_exists(engine: Engine, incident_id: int) -> bool:
    with Session(engine) as session:
        return session.get(Incident, incident_id) is not None


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

    async def action_link(request: web.Request) -> web.Response:
        """A link from Slack or email: the console's incident page, where the logged-in
        user confirms the action (the auth middleware sent them to log in first)."""
        parsed = _parse(request)
        if isinstance(parsed, web.Response):
            return parsed
        incident_id, episode, action, _who = parsed
        if not await anyio.to_thread.run_sync(_incident_exists, engine, incident_id):
            return _page(404, "Unknown incident", f"There is no incident #{incident_id}.")
        closed = await anyio.to_thread.run_sync(episode_closed, engine, incident_id, episode)
        page = f"/incidents/{incident_id}"
        if closed:
            body = (
                f"<p>{html.escape(closed)}</p>"
                f'<p><a href="{page}">Open incident #{incident_id}</a></p>'
            )
            return _page(410, "Link expired", body, raw=True)
        return web.Response(status=303, headers={"Location": f"{page}?action={action}"})

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
    app.router.add_get("/actions/{incident}/{episode}/{action}", action_link)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)
    # Every route above and the console's pages behind the login (see emberwatch.console).
    add_console(app, config, engine, clock)
    return app


def _page(status: int, title: str, body: str, *, raw: bool = False) -> web.Response:
    content = body if raw else f"<p>{html.escape(body)}</p>"
    page = (
        f"<!doctype html><html><head><title>{html.escape(title)}</title>"
        '<link rel="stylesheet" href="/static/console.css"></head><body>'
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
