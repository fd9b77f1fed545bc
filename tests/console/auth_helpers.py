"""Helpers for console tests: users, logging in, and the form token on a page."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher
from sqlalchemy.engine import Engine

from emberwatch.console import users
from emberwatch.console.users import User, add_user

PASSWORD = "correct horse battery"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BROWSER = {"Accept": "text/html,application/xhtml+xml"}


def use_cheap_hashes(monkeypatch) -> None:
    """argon2id at a test-sized cost (the real one takes 64 MiB and up to a second)."""
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(users, "_HASHER", cheap)
    monkeypatch.setattr(users, "_DUMMY_HASH", cheap.hash("not a password"))


def make_user(engine: Engine, name: str = "ana", role: str = "responder") -> User:
    return add_user(engine, name, role, PASSWORD, T0)


def form_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no csrf_token field on the page"
    return found[1]


async def login_token(client: TestClient) -> str:
    """The form token of the login page (sets this client's browser cookie)."""
    response = await client.get("/login", headers=BROWSER)
    assert response.status == 200
    return form_token(await response.text())


async def log_in(
    client: TestClient, name: str = "ana", password: str = PASSWORD, next_path: str = "/"
):
    """POST the login form as a browser would; the response is not followed."""
    token = await login_token(client)
    return await client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": token, "next": next_path},
        headers=BROWSER,
        allow_redirects=False,
    )
