"""Shared fixtures: real databases (SQLite, and PostgreSQL when configured) and paths.

PostgreSQL tests read ``EMBERWATCH_TEST_DATABASE_URL``. Each test run creates its own
database and drops it at the end, and each test gets its own schema inside it, so runs and
tests never see each other's rows. Without the variable those tests skip, saying why; with
``EMBERWATCH_REQUIRE_POSTGRES=1`` (set by .ci/run) an unreachable server fails instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from emberwatch import db as database

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = Path(os.environ.get("EMBERWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
PG_ENV = "EMBERWATCH_TEST_DATABASE_URL"


def fixture_bytes(source_type: str, name: str) -> bytes:
    return (FIXTURES / source_type / name).read_bytes()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    admin = sa.create_engine(database.normalize_url(url), isolation_level="AUTOCOMMIT")
    name = f"emberwatch_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        if os.environ.get("EMBERWATCH_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"PostgreSQL at {database.redacted(url)} unreachable: {exc.orig}")
    try:
        yield (
            make_url(database.normalize_url(url))
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _postgres_schema_url(base_url: str) -> str:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return (
        make_url(base_url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL with no schema yet: SQLite in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'emberwatch.db'}"
    return _postgres_schema_url(request.getfixturevalue("postgres_database"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a migrated, empty database (both backends)."""
    engine = database.create_db_engine(db_url)
    database.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = database.create_db_engine(f"sqlite:///{tmp_path / 'emberwatch.db'}")
    database.upgrade(engine)
    yield engine
    engine.dispose()
