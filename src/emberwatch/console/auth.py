"""Who may use the console, enforced once for every route.

:func:`add_auth` installs, in this order, on every request:

1. **who**: the user of the signed session cookie (a server-side row that logout, a
   password change or removing the user deletes), or, from a trusted reverse proxy only,
   the user its ``[http] trusted_user_header`` names.
2. **CSRF**: a POST (or any other unsafe method) without the form's ``csrf_token`` (or an
   ``X-CSRF-Token`` header) matching this browser's gets 403, whatever the handler.
3. **default deny**: every path but :data:`PUBLIC_PATHS` (and ``/static/``) needs a user;
   a browser is sent to ``/login?next=…``, anything else gets 401. ``/metrics`` is open
   only with ``[http] metrics_public``, else it needs ``Authorization: Bearer <token>``.

Handlers ask for more with :func:`require` (``@require("responder")``); too low a role
gets 403. Every response carries the security headers (:data:`SECURITY_HEADERS`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import wraps
from typing import Any
from urllib.parse import urlencode

import anyio
from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy.engine import Engine

from emberwatch.config import Config
from emberwatch.console import users
from emberwatch.console.users import ROLES, User

__all__ = [
    "ROLES",
    "User",
    "add_auth",
    "csrf_token",
    "current_user",
    "require",
]

log = logging.getLogger("emberwatch.console")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION_COOKIE = "emberwatch_session"
# Before login there is no session: this cookie's random value anchors the CSRF token.
BROWSER_COOKIE = "emberwatch_browser"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
PUBLIC_PATHS = frozenset({"/login", "/logout", "/healthz", "/readyz"})
PUBLIC_PREFIXES = ("/static/",)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# What the middleware learns about a request, for the handlers and csrf_token().
_USER = web.RequestKey("console_user", User | None)
_TOKEN = web.RequestKey("console_session_token", str)  # the cookie's, signature checked
_ANCHOR = web.RequestKey("console_csrf_anchor", str)  # what the CSRF token is bound to
_NEW_ANCHOR = web.RequestKey("console_new_browser_anchor", str)  # to set as a cookie
_NEXT = web.RequestKey("console_login_next", str)

_PAGES = Environment(
    loader=PackageLoader("emberwatch", "templates"), autoescape=True, undefined=StrictUndefined
)


def current_user(request: web.Request) -> User | None:
    """The logged-in user of this request, or None."""
    return request.get(_USER)


def require(role: str) -> Callable[[Handler], Handler]:
    """Decorate a handler: no user gets the login redirect (browsers) or 401, a role below
    ``role`` gets 403."""
    users.check_role(role)

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            user = current_user(request)
            if user is None:
                return _login_required(request)
            if not user.can(role):
                return _text(403, f"forbidden: this needs the {role} role (you are {user.role})")
            return await handler(request)

        return wrapper

    return decorate


def csrf_token(request: web.Request) -> str:
    """The token a form must send back as ``csrf_token`` (templates put it in a hidden
    field). It is bound to this browser's session, or before login to a browser cookie."""
    state = request.app[_STATE]
    anchor = request.get(_ANCHOR)
    if anchor is None:
        anchor = secrets.token_urlsafe(24)
        request[_ANCHOR] = anchor
        request[_NEW_ANCHOR] = anchor
    return state.csrf_for(anchor)


# -- the pieces ---------------------------------------------------------------------------


class _AuthState:
    """Keys derived from ``[http] secret`` and what the middlewares need from config."""

    def __init__(self, config: Config, engine: Engine, clock: Callable[[], datetime]) -> None:
        assert config.http is not None
        self.http = config.http
        self.engine = engine
        self.clock = clock
        secret = config.http.secret.get_secret_value().encode()
        # One key per use, so a signature made for one can never pass as another.
        self.cookie_key = hmac.new(secret, b"emberwatch console session cookie", "sha256").digest()
        self.csrf_key = hmac.new(secret, b"emberwatch console csrf token", "sha256").digest()
        self.networks = config.http.trusted_networks
        self.warned_untrusted_header = False
        self._hashing: anyio.CapacityLimiter | None = None

    @property
    def hashing(self) -> anyio.CapacityLimiter:
        """At most two password checks at once: each takes 64 MiB and a core for a while,
        so a flood of logins queues instead of exhausting the node's memory."""
        if self._hashing is None:
            self._hashing = anyio.CapacityLimiter(2)
        return self._hashing

    def sign(self, value: str) -> str:
        mac = hmac.new(self.cookie_key, value.encode(), hashlib.sha256).digest()
        return f"{value}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"

    def unsign(self, signed: str) -> str | None:
        value, _, _mac = signed.rpartition(".")
        if value and hmac.compare_digest(self.sign(value), signed):
            return value
        return None

    def csrf_for(self, anchor: str) -> str:
        mac = hmac.new(self.csrf_key, anchor.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def trusted(self, remote: str | None) -> bool:
        if not remote:
            return False
        try:
            address = ipaddress.ip_address(remote)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def cookie(self, response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=self.http.secure_cookies,
        )


_STATE = web.AppKey("console_auth", _AuthState)


def _is_browser(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=text + "\n", headers=headers)


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _login_required(request: web.Request) -> web.Response:
    if _is_browser(request):
        location = "/login?" + urlencode({"next": request.raw_path})
        return web.Response(status=302, headers={"Location": location})
    return _text(401, "unauthorized: log in at /login first")


def _safe_next(value: str | None) -> str:
    """Only a path on this site: never ``//evil.example`` or ``https://…``."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith(("//", "/\\"))
        or any(ord(ch) < 32 for ch in value)
    ):
        return "/"
    return value


def _public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _metrics_allowed(state: _AuthState, request: web.Request) -> bool:
    if state.http.metrics_public:
        return True
    token = state.http.metrics_token
    if token is None:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)


async def _resolve_user(state: _AuthState, request: web.Request) -> None:
    """Set ``console_user``, the session token and the CSRF anchor for this request."""
    header = state.http.trusted_user_header
    if header and header in request.headers:
        if state.trusted(request.remote):
            name = request.headers[header].strip()
            found = await anyio.to_thread.run_sync(users.find_user, state.engine, name)
            if found is None:
                log.warning(
                    "console: %s names unknown user %r; add it with `users add`", header, name
                )
            request[_USER] = found
        elif not state.warned_untrusted_header:
            state.warned_untrusted_header = True
            log.warning(
                "console: ignored %s from %s: not in [http] trusted_proxies (logged once)",
                header,
                request.remote,
            )
    signed = request.cookies.get(SESSION_COOKIE)
    token = state.unsign(signed) if signed else None
    if token is not None:
        request[_TOKEN] = token
        request[_ANCHOR] = "session:" + token
        if request.get(_USER) is None:
            request[_USER] = await anyio.to_thread.run_sync(
                users.session_user, state.engine, token, state.clock()
            )
    else:
        browser = request.cookies.get(BROWSER_COOKIE)
        anchor = state.unsign(browser) if browser else None
        if anchor is not None:
            request[_ANCHOR] = anchor


async def _csrf_ok(state: _AuthState, request: web.Request) -> bool:
    anchor = request.get(_ANCHOR)
    if anchor is None:
        return False
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.post()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    return given is not None and hmac.compare_digest(given, state.csrf_for(anchor))


def _middleware(state: _AuthState) -> Any:
    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/metrics":
            if not _metrics_allowed(state, request):
                return _text(
                    401,
                    "unauthorized: /metrics needs Authorization: Bearer <[http] metrics_token>",
                    {"WWW-Authenticate": 'Bearer realm="emberwatch metrics"'},
                )
            return await handler(request)
        await _resolve_user(state, request)
        if request.method not in _SAFE_METHODS and not await _csrf_ok(state, request):
            return _text(403, "forbidden: missing or stale form token; reload the page and retry")
        if current_user(request) is None and not _public(request.path):
            return _login_required(request)
        response = await handler(request)
        new_anchor = request.get(_NEW_ANCHOR)
        if new_anchor is not None and not response.prepared:
            state.cookie(response, BROWSER_COOKIE, state.sign(new_anchor), max_age=24 * 3600)
        return response

    return auth


async def _security_headers(_request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


# -- login and logout ---------------------------------------------------------------------


def _login_page(
    request: web.Request, *, status: int = 200, error: str | None = None, username: str = ""
) -> web.Response:
    text = _PAGES.get_template("console/login.html").render(
        csrf_token=csrf_token(request),
        next=_safe_next(request.query.get("next") or request.get(_NEXT)),
        error=error,
        username=username,
    )
    return web.Response(status=status, text=text, content_type="text/html")


def _routes(state: _AuthState) -> list[web.RouteDef]:
    async def login_form(request: web.Request) -> web.Response:
        if current_user(request) is not None:
            return _see_other(_safe_next(request.query.get("next")))
        return _login_page(request)

    async def login(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        name = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        request[_NEXT] = str(form.get("next") or "")
        if not name or not password:
            return _login_page(
                request, status=400, error="Give your user name and password.", username=name
            )
        now = state.clock()
        outcome = await anyio.to_thread.run_sync(
            lambda: users.check_password(
                state.engine, name, password, now, remote=request.remote or "?"
            ),
            limiter=state.hashing,
        )
        if outcome.user is None:
            if outcome.reason == "locked":
                assert outcome.locked_until is not None
                minutes = max(1, int((outcome.locked_until - now).total_seconds() + 59) // 60)
                error = (
                    "Too many wrong passwords for this user: it is locked for "
                    f"{minutes} more minute{'s' if minutes != 1 else ''}."
                )
                return _login_page(request, status=429, error=error, username=name)
            error = "Wrong user name or password."
            return _login_page(request, status=401, error=error, username=name)
        # A new session id at every login: one planted before login is worthless after it.
        old = request.get(_TOKEN)
        if old is not None:
            await anyio.to_thread.run_sync(users.end_session, state.engine, old)
        lifetime = state.http.session_lifetime
        token = await anyio.to_thread.run_sync(
            users.start_session, state.engine, outcome.user, now, lifetime
        )
        response = _see_other(_safe_next(str(form.get("next") or "")))
        state.cookie(
            response, SESSION_COOKIE, state.sign(token), max_age=int(lifetime.total_seconds())
        )
        response.del_cookie(BROWSER_COOKIE, path="/")
        return response

    async def logout(request: web.Request) -> web.StreamResponse:
        token = request.get(_TOKEN)
        if token is not None:
            await anyio.to_thread.run_sync(users.end_session, state.engine, token)
            user = current_user(request)
            if user is not None:
                log.info("console: %r logged out", user.name)
        response = _see_other("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    return [
        web.get("/login", login_form),
        web.post("/login", login),
        web.post("/logout", logout),
    ]


def add_auth(
    app: web.Application, config: Config, engine: Engine, clock: Callable[[], datetime]
) -> None:
    """Install the middlewares (who, CSRF, default deny, security headers) and the
    ``/login`` and ``/logout`` routes on ``app``."""
    state = _AuthState(config, engine, clock)
    if not state.http.metrics_public and state.http.metrics_token is None:
        log.info("console: /metrics answers 401: set [http] metrics_token or metrics_public")
    app[_STATE] = state
    app.middlewares.append(_middleware(state))
    app.on_response_prepare.append(_security_headers)
    app.router.add_routes(_routes(state))
