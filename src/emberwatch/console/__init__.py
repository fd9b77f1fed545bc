"""The incident console: web pages behind a login, served by ``emberwatch run``.

:func:`add_console` adds it to the endpoint's app: first :mod:`~emberwatch.console.auth`
(who is asking, CSRF, security headers, ``/login``), then the pages
(:mod:`~emberwatch.console.views`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiohttp import web
from sqlalchemy.engine import Engine

from emberwatch.config import Config
from emberwatch.console.auth import add_auth

__all__ = ["add_console"]


def add_console(
    app: web.Application, config: Config, engine: Engine, clock: Callable[[], datetime]
) -> None:
    """Put the console on ``app``: auth first, so no page is served without it."""
    add_auth(app, config, engine, clock)
    try:
        from emberwatch.console import views
    except ModuleNotFoundError as exc:  # the pages are not written yet
        if exc.name != "emberwatch.console.views":
            raise
        return
    views.add_pages(app, config, engine, clock)
