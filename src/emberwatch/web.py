"""The small HTTP endpoint inside ``emberwatch run``.

- ``GET /actions/{incident}/{episode}/{action}?who=…&sig=…`` shows the incident (title,
  severity, mentions) and asks who is acting; ``POST`` to the same URL with that ``name``
  performs the action and records the name as the actor (without a name, the form comes
  back with an error). A GET never changes anything, so link scanners and chat unfurlers
  cannot acknowledge an incident by fetching its link.
- ``GET /healthz``: the process is up. ``GET /readyz``: the node's jobs last found the
  database available, it answers now and its schema is current. ``GET /metrics``:
  Prometheus metrics.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import quote, unquote

import anyio
from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy.engine import Engine
from sqlmodel import Session

from emberwatch import db as database
from emberwatch import metrics
from emberwatch.alerts import links
from emberwatch.alerts.lifecycle import ACTIONS, UnknownIncident, act, episode_closed
from emberwatch.alerts.view import ACTOR_LIMIT, IncidentPage, clean_actor, load_incident_page
from emberwatch.config import Config, duration_words
from emberwatch.errors import EmberwatchError

log = logging.getLogger("emberwatch.web")

_LABELS = {"ack": "Acknowledge", "snooze": "Snooze", "resolve": "Resolve"}
# The name given last time, so the form is filled in (URL-quoted: names need not be ASCII).
_NAME_COOKIE = "emberwatch_name"
_PAGES = Environment(
    loader=PackageLoader("emberwatch", "templates"), autoescape=True, undefined=StrictUndefined
)


def _incident_page(engine: Engine, incident_id: int, shown: int) -> IncidentPage | None:
    with Session(engine) as session:
        return load_incident_page(session, incident_id, shown)


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
        closed = await anyio.to_thread.run_sync(episode_closed, engine, incident_id, episode)
        if closed:
            return _page(410, "Link expired", closed)
        name = unquote(request.cookies.get(_NAME_COOKIE, ""))
        return await form_page(incident_id, action, who, clean_actor(name), None, 200)

    async def form_page(
        incident_id: int, action: str, who: str, name: str, error: str | None, status: int
    ) -> web.Response:
        """The incident, its mentions and the form asking who is acting."""
        shown = config.alert_mentions
        page = await anyio.to_thread.run_sync(_incident_page, engine, incident_id, shown)
        if page is None:
            return _page(404, "Unknown incident", f"There is no incident #{incident_id}.")
        text = _PAGES.get_template("action.html").render(
            label=_LABELS[action],
            action=action,
            incident=page,
            who=who,
            name=name,
            error=error,
            name_limit=ACTOR_LIMIT,
            snooze_choices=[duration_words(c) for c in config.actions.snooze_choices],
            snooze_default=duration_words(config.actions.snooze_default),
        )
        return web.Response(status=status, text=text, content_type="text/html")

    async def perform(request: web.Request) -> web.Response:
        parsed = _parse(request)
        if isinstance(parsed, web.Response):
            return parsed
        incident_id, episode, action, who = parsed
        form = await request.post()
        name = clean_actor(str(form.get("name") or ""))
        # A closed episode changes nothing, so its link says "expired" without asking.
        if not name and not await anyio.to_thread.run_sync(
            episode_closed, engine, incident_id, episode
        ):
            error = "Please give your name: it is recorded as who acted."
            return await form_page(incident_id, action, who, "", error, 400)
        snooze_for: timedelta | None = None
        if action == "snooze":
            # Only the page's own choices ([actions] snooze_choices): a forged "3650d" is
            # refused, not a snooze until the next decade.
            try:
                snooze_for = config.actions.snooze_span(str(form.get("for") or ""), exact=True)
            except ValueError:
                allowed = f"Snooze for {config.actions.choice_words}."
                return _page(400, "Bad duration", allowed)
        try:
            outcome = await anyio.to_thread.run_sync(
                lambda: act(
                    engine,
                    incident_id,
                    action,
                    actor=name,
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
        response = _page(status, _LABELS[action], outcome.message)
        if name:
            response.set_cookie(
                _NAME_COOKIE,
                quote(name),
                max_age=365 * 24 * 3600,
                path="/actions",
                httponly=True,
                samesite="Strict",
            )
        return response

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
