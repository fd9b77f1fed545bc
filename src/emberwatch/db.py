"""Engines, sessions and schema migrations.

SQLite is the embedded default (WAL mode so readers never block the poller); PostgreSQL is
chosen by URL. The schema is owned by Alembic: ``emberwatch db upgrade`` applies it, and
``require_current_schema`` stops ``run`` on an out-of-date database with the fix to run.

A database that stops answering (PostgreSQL restarting, connections terminated, a SQLite
file that can no longer be written) is an outage, not a crash: :class:`Availability`
keeps a node's view of it, says so once per outage, and probes until it answers again.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from emberwatch.errors import SchemaOutOfDateError

_MIGRATIONS = Path(__file__).parent / "migrations"
_VERSION_TABLE = "alembic_version"  # Alembic's default, which env.py keeps

log = logging.getLogger("emberwatch.db")


def normalize_url(url: str) -> str:
    """Let users write ``postgresql://`` and still get the psycopg 3 driver we ship."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def create_db_engine(url: str) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # No pre-ping: it guards against a server dropping idle connections, a file has
        # no server, and it cost a statement on every checkout.
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    engine = sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)

    @sa.event.listens_for(engine, "connect")
    def _binary_arrays(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Lists (insert_rows' column arrays) go in binary: psycopg escapes each element
        # of a text-format array with a regular expression, ten times slower.
        from psycopg.types.array import ListBinaryDumper

        dbapi_connection.adapters.register_dumper(list, ListBinaryDumper)

    return engine


def insert_rows(
    session: Session | sa.Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    returning: tuple[str, ...] = (),
) -> sa.CursorResult[Any]:
    """Insert ``rows`` (at least one; dicts with the same keys) in one statement, in their
    order, and return the ``returning`` columns of each.

    On PostgreSQL the statement is ``INSERT ... SELECT * FROM unnest(...)`` with one array
    parameter per column: short and the same for any number of rows, so psycopg converts
    it once and the server prepares it. A multi-row VALUES statement of 100 mentions has
    2,600 parameters, past what psycopg caches: it parsed the whole text again each time,
    and the INSERT cost the poller 10 ms of CPU against 2 ms as ``unnest``. Elsewhere
    (SQLite) it is a multi-row INSERT.
    """
    return session.execute(*insert_query(session, table, rows, returning))


def insert_query(
    session: Session | sa.Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    returning: tuple[str, ...] = (),
) -> tuple[Any, Any]:
    """:func:`insert_rows`' statement and parameters, for a caller that runs it with
    others (:class:`Sent`)."""
    if not on_postgresql(session):
        statement = table.insert()
        if returning:
            statement = statement.returning(*(table.c[name] for name in returning))
        return statement, list(rows)
    return unnest_insert(table, tuple(rows[0]), returning), unnest_arrays(table, rows)


def unnest_arrays(table: sa.Table, rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """The parameters of :func:`unnest_insert` for ``rows``: one list per column."""
    columns = tuple(rows[0])
    arrays = {name: [row[name] for row in rows] for name in columns}
    for name in _float_columns(table, columns):
        # An array holds one type: a score of 0 is an int, and psycopg refuses the mix.
        arrays[name] = [None if v is None else float(v) for v in arrays[name]]
    return arrays


@functools.cache
def _float_columns(table: sa.Table, columns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name for name in columns if isinstance(table.c[name].type, sa.Float))


@functools.cache
def unnest_insert(table: sa.Table, columns: tuple[str, ...], returning: tuple[str, ...]) -> Any:
    """PostgreSQL's ``INSERT INTO table (columns) SELECT * FROM unnest(...) RETURNING ...``,
    one array parameter per column, named after it (:func:`unnest_arrays`). Built once
    per shape: composing the statement costs more than running it."""
    arrays = [sa.bindparam(name, type_=postgresql.ARRAY(table.c[name].type)) for name in columns]
    rows = sa.select(sa.text("*")).select_from(sa.func.unnest(*arrays))
    statement = table.insert().from_select(list(columns), rows)
    return statement.returning(*(table.c[name] for name in returning))


class Sent:
    """Statements sent on a session's connection now, in order, their rows read later: on
    PostgreSQL the server runs them while the caller goes on (psycopg's pipeline mode), in
    one round trip however many; elsewhere they run at once. Use it as a context manager
    around the work that may overlap them, and read :meth:`rows` before leaving.

    Until then the connection is theirs: any other statement on it (a flush, a query)
    first waits for them, through a listener on the connection, so that the transaction
    sees the same rows in the same order as if the caller had waited. An error they
    raised surfaces there, or in :meth:`rows`, as SQLAlchemy's exception for it. Leaving
    the block on an error leaves pipeline mode with it.
    """

    def __init__(self, session: Session, statements: Sequence[tuple[Any, Any]]) -> None:
        self._waiting = False
        self._postgresql = on_postgresql(session)
        self._results: list[list[Any]] | None = None
        if not self._postgresql:
            self._results = [_rows(session.execute(*statement)) for statement in statements]
            return
        import psycopg

        session.flush()  # as session.execute would, so that rows go in in the same order
        self._connection = session.connection()
        driver = self._connection.connection.driver_connection
        sent = []
        for statement, parameters in statements:
            compiled, processors = _compiled(statement, self._connection.dialect)
            values = {
                name: processors.get(name, _same)(value)
                for name, value in compiled.construct_params(parameters).items()
            }
            sent.append((compiled.string, values, driver.cursor()))  # type: ignore[union-attr]
        self._sql = "; ".join(sql for sql, _, _ in sent)
        self._cursors = [cursor for _, _, cursor in sent]
        self._pipeline = driver.pipeline()  # type: ignore[union-attr]
        self._pipeline.__enter__()
        self._waiting = True
        try:
            for sql, values, cursor in sent:
                cursor.execute(sql, values)
        except psycopg.Error as error:
            self._leave(error)
            raise self._wrapped(error) from error
        except BaseException as exc:
            self._leave(exc)
            raise
        sa.event.listen(self._connection, "before_cursor_execute", self._before_another)

    def __enter__(self) -> Sent:
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, traceback: Any) -> None:
        if not self._postgresql:
            return
        try:
            if self._waiting:
                self._leave(exc)
        finally:
            sa.event.remove(self._connection, "before_cursor_execute", self._before_another)

    def rows(self, index: int = 0) -> list[Any]:
        """The rows of the ``index``-th statement, once the server has run them all."""
        if self._waiting:
            self._leave(None)
        if self._results is None:
            self._results = [
                cursor.fetchall() if cursor.description is not None else []
                for cursor in self._cursors
            ]
            for cursor in self._cursors:
                cursor.close()
        return self._results[index]

    def _before_another(self, *_: Any) -> None:
        # SQLAlchemy wraps what this raises as it wraps the driver's errors (invalidating
        # a lost connection), since it runs where the next statement would.
        if self._waiting:
            self._leave(None, wrap=False)

    def _leave(self, exc: BaseException | None, *, wrap: bool = True) -> None:
        """Leave pipeline mode, which waits for the statement; raise its error, if any
        (unless another is on its way: psycopg then logs it)."""
        import psycopg

        self._waiting = False
        try:
            self._pipeline.__exit__(type(exc) if exc else None, exc, None)
        except psycopg.Error as error:
            if not wrap:
                raise
            raise self._wrapped(error) from error

    def _wrapped(self, error: Exception) -> Exception:
        """A driver's error as SQLAlchemy raises it (``IntegrityError``, ...)."""
        import psycopg

        return sa.exc.DBAPIError.instance(
            self._sql, None, error, psycopg.Error, hide_parameters=True
        )


def _rows(result: Any) -> list[Any]:
    # A plain INSERT's result says it has no rows, and reading them would raise.
    return [] if getattr(result, "returns_rows", True) is False else list(result)


def _same(value: Any) -> Any:
    return value


@functools.cache
def _compiled(statement: Any, dialect: sa.Dialect) -> tuple[Any, dict[str, Any]]:
    """``statement`` compiled for the driver, once, and the conversions its parameters
    need on the way, as SQLAlchemy applies them (an aware datetime's check, ...)."""
    compiled = statement.compile(dialect=dialect)
    if compiled.insert_prefetch or compiled.update_prefetch:
        # SQLAlchemy computes those defaults as it executes: the statement must name them.
        raise ValueError("a statement sent ahead gives every column a Python default fills")
    processors = {}
    for name, bind in compiled.binds.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
    return compiled, processors


def commit_without_flush(session: Session | sa.Connection, query: sa.Select[Any]) -> Any:
    """``query``, the transaction's first, with one more column that on PostgreSQL lets
    the transaction's COMMIT return before its WAL is flushed to disk
    (``set_config('synchronous_commit', 'off', true)``, what ``SET LOCAL`` does): a crash
    may lose the last commits of the past ~0.6 s, never part of one. A flush waited for
    3.4 ms on the benchmark machine, longer when its disk was busy; a ``SET LOCAL`` of its
    own took a round trip (0.7 ms). SQLite: the column is NULL."""
    if on_postgresql(session):
        return query.add_columns(_SYNCHRONOUS_COMMIT_OFF)
    return query.add_columns(sa.null())


_SYNCHRONOUS_COMMIT_OFF = sa.func.set_config("synchronous_commit", "off", True)


def on_postgresql(session: Session | sa.Connection) -> bool:
    """Whether the session or connection is on PostgreSQL."""
    bind = session.get_bind() if isinstance(session, Session) else session
    return bind.dialect.name == "postgresql"


def one_of(session: Session | sa.Connection, column: Any, values: Sequence[Any]) -> Any:
    """``column IN values``: on PostgreSQL ``column = ANY(array)``, one parameter however
    many values (see :func:`insert_rows` for why that matters)."""
    if not on_postgresql(session):
        return column.in_(values)
    return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))


def redacted(url: str) -> str:
    """The URL with any password hidden, for logs and messages."""
    try:
        return make_url(normalize_url(url)).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def _alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    script = ScriptDirectory(str(_MIGRATIONS))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: no Emberwatch schema).

    Read from Alembic's version table directly: ``/readyz`` asks on every probe, and a
    migration context would log two lines each time.
    """
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(_VERSION_TABLE):
            return None
        versions = connection.execute(sa.text(f"SELECT version_num FROM {_VERSION_TABLE}"))
        found = versions.scalars().all()
    if len(found) > 1:  # Emberwatch's migrations are one line of revisions
        raise SchemaOutOfDateError(
            f"the database {redacted(str(engine.url))} is at several revisions "
            f"({', '.join(sorted(found))}); this release has one line of migrations"
        )
    return found[0] if found else None


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Apply every pending migration; returns (revision before, revision after).

    Safe while nodes run, except across 0011: migrations add tables, columns (with
    defaults) and indices, which older nodes ignore, but 0011 renames tables and columns
    ("receiver" to "channel"), so nodes older than it must be stopped first. Two upgrades
    started at once take turns (an advisory lock on PostgreSQL), so the second finds nothing
    left to do.
    """
    with cluster_lock(engine, "emberwatch-migrations", wait=True):
        before = current_revision(engine)
        command.upgrade(_alembic_config(engine), "head")
    return before, head_revision()


@contextmanager
def cluster_lock(engine: Engine, name: str, *, wait: bool = False) -> Iterator[bool]:
    """A lock every node sees: a PostgreSQL advisory lock; on SQLite (one node) always held.

    Yields whether it was acquired (with ``wait`` it always is).
    """
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as connection:
        function = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
        acquired = connection.execute(
            sa.text(f"SELECT {function}(hashtext(:name))"), {"name": name}
        ).scalar()
        acquired = True if wait else bool(acquired)
        try:
            yield acquired
        finally:
            if acquired:
                connection.execute(
                    sa.text("SELECT pg_advisory_unlock(hashtext(:name))"), {"name": name}
                )
            connection.commit()


def require_current_schema(engine: Engine, config_path: str) -> None:
    current, head = current_revision(engine), head_revision()
    if current != head:
        state = "has no Emberwatch schema" if current is None else f"is at revision {current}"
        raise SchemaOutOfDateError(
            f"the database {redacted(str(engine.url))} {state}; this release needs {head}. "
            f"Run: emberwatch db upgrade --config {config_path}"
        )


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be used right now (as opposed to a bug):
    a lost or refused connection, a server shutting down, a read-only or full SQLite file,
    a pool that timed out waiting for a connection."""
    import psycopg

    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        sa.exc.OperationalError
        | sa.exc.InterfaceError
        | sa.exc.TimeoutError
        | psycopg.OperationalError
        | psycopg.InterfaceError
        | sqlite3.OperationalError,
    )


def reason(exc: BaseException) -> str:
    """The first line of what the driver said, for a one-line message."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def probe(engine: Engine) -> None:
    """Raise unless the database takes work now: a write on SQLite (a read-only or full
    file still reads), a round trip on PostgreSQL."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(sa.text("UPDATE sources SET id = id WHERE 0"))
        else:
            connection.execute(sa.text("SELECT 1"))


class Availability:
    """A node's view of its database: up, or down since when.

    Jobs report a failure with :meth:`failed`; the first one of an outage logs one line
    and drops the pooled connections (a SQLite connection opened read-only stays so).
    While the database is down, :meth:`check` probes it; the first success logs one line
    and drops the pool again. :meth:`exceeded` says when the outage outlasted ``limit``.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        limit: timedelta,
        retry: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.limit = limit
        self.retry = retry
        self.clock = clock
        self.down_since: float | None = None
        self.why: str | None = None
        self.outages = 0

    @property
    def up(self) -> bool:
        return self.down_since is None

    def failed(self, exc: BaseException) -> None:
        if self.down_since is not None:
            return
        self.down_since = self.clock()
        self.why = reason(exc)
        self.outages += 1
        log.warning("database unavailable, retrying in %g s: %s", self.retry, self.why)
        self.engine.dispose()

    def check(self) -> bool:
        """Probe the database (blocking: call it in a thread); True when it answers."""
        try:
            probe(self.engine)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            if self.down_since is None:
                self.failed(exc)
            else:
                self.why = reason(exc)
                # The next probe opens a new connection: a SQLite file opened while it
                # was read-only stays read-only on that connection.
                self.engine.dispose()
            return False
        if self.down_since is not None:
            log.warning("database available again after %.1f s", self.clock() - self.down_since)
            self.down_since = None
            self.why = None
            self.engine.dispose()
        return True

    def exceeded(self) -> bool:
        return (
            self.down_since is not None
            and self.clock() - self.down_since > self.limit.total_seconds()
        )

    def not_ready(self) -> str | None:
        """Why the node is not ready, or None."""
        if self.down_since is None:
            return None
        return f"database unavailable for {self.clock() - self.down_since:.0f} s: {self.why}"
