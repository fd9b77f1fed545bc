"""The ``emberwatch`` command line."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from emberwatch.mention import Mention
from emberwatch.text import jsonl, terminal, web_link

# The config loader (pydantic, every connector, the channels' SQLAlchemy tables), the
# database, anyio and httpx are imported inside the commands that use them, so `--help`,
# `score` and `sources parse` start in a tenth of the time (tests/test_startup.py); so
# are pathlib, signal and the error classes, which `score` without --config never needs.
if TYPE_CHECKING:
    from emberwatch.config import Config
    from emberwatch.scoring import Scores

log = logging.getLogger("emberwatch")

EXIT_ERROR = 1
EXIT_CONFIG = 2
DEFAULT_CONFIG_PATH = "./emberwatch.toml"


def _config_before_subcommand(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """``--config`` given before the subcommand (``emberwatch --config x db upgrade``)
    counts, unless the subcommand was given its own."""
    if ctx.get_parameter_source(param.name or "") is ParameterSource.COMMANDLINE:
        return value
    parent = ctx.parent
    while parent is not None:
        if parent.get_parameter_source("config_path") is ParameterSource.COMMANDLINE:
            return parent.params["config_path"]
        parent = parent.parent
    return value


config_option = click.option(
    "--config",
    "config_path",
    default=DEFAULT_CONFIG_PATH,
    envvar="EMBERWATCH_CONFIG",
    show_default=True,
    metavar="FILE",
    callback=_config_before_subcommand,
    help="Config file (or set EMBERWATCH_CONFIG).",
)


def _fail(message: str, code: int = EXIT_ERROR) -> None:
    click.echo(f"emberwatch: {message}", err=True)
    sys.exit(code)


def handles_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected errors into one clear line and an exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            try:
                return func(*args, **kwargs)
            except BaseExceptionGroup as group:  # errors raised inside a task group
                raise _first_leaf(group) from None
        except _loaded("emberwatch.errors", "ConfigError") as exc:
            click.echo(str(exc), err=True)
            sys.exit(EXIT_CONFIG)
        except _loaded("emberwatch.errors", "EmberwatchError") as exc:
            _fail(str(exc))
        except _database_errors() as exc:
            from emberwatch import db as database

            _fail(f"cannot use the database: {database.reason(exc)}")
        except _loaded("sqlalchemy.exc", "ArgumentError") as exc:
            _fail(f"database_url is not a usable database URL: {str(exc).splitlines()[0]}")
        except OSError as exc:
            if exc.filename is None:  # not a file: a network or system error, shown as is
                raise
            _fail(f"{exc.filename}: {exc.strerror or exc}")
        except KeyboardInterrupt:
            _fail("interrupted", 130)

    return wrapper


def _loaded(module: str, *names: str) -> tuple[type[BaseException], ...]:
    """The named exception classes of ``module`` if it has been imported, else none: an
    error of a library (or of emberwatch.errors) that was never imported cannot have been
    raised, and importing SQLAlchemy or psycopg just to compare would slow every command
    that exits early."""
    found = sys.modules.get(module)
    return tuple(getattr(found, name) for name in names) if found is not None else ()


def _database_errors() -> tuple[type[BaseException], ...]:
    """What an unusable database raises: SQLAlchemy's wrappers, and psycopg's own errors
    (which reach us unwrapped from a driver-level call)."""
    return (
        *_loaded("sqlalchemy.exc", "OperationalError", "InterfaceError"),
        *_loaded("psycopg", "OperationalError", "InterfaceError"),
        *_loaded("sqlite3", "OperationalError"),
    )


def _first_leaf(group: BaseExceptionGroup) -> BaseException:
    """The first Emberwatch or database error in a group (else the group): one line, not
    a traceback."""
    for leaf in group.exceptions:
        if isinstance(leaf, BaseExceptionGroup):
            leaf = _first_leaf(leaf)
        ours = _loaded("emberwatch.errors", "EmberwatchError")
        if isinstance(leaf, (*ours, KeyboardInterrupt, *_database_errors())):
            return leaf
    return group


def _load(config_path: str, *, need_secrets: bool = True) -> Config:
    """The config; commands that never deliver or sign links pass ``need_secrets=False``,
    so an unset ``${SLACK_WEBHOOK_URL}`` or link secret does not stop them."""
    from emberwatch.config import load_config

    return load_config(config_path, need_secrets=need_secrets)


def _write_output(path: str, text: str, option: str = "--out") -> None:
    """Write a file a command was asked to write; a bad path is one line, not a traceback."""
    from pathlib import Path

    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        hint = " (does the directory exist?)" if isinstance(exc, FileNotFoundError) else ""
        _fail(f"{option} {path}: cannot write: {exc.strerror or exc}{hint}")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="EMBERWATCH_LOG_FORMAT",
    show_default=True,
    help="json: one object per line, with source, mention and alert ids as fields.",
)
@click.option(
    "--config",
    "config_path",
    default=None,
    metavar="FILE",
    help="Config file for the command (also accepted after it; or set EMBERWATCH_CONFIG).",
)
@click.version_option(package_name="emberwatch")
def cli(verbose: int, log_format: str, config_path: str | None) -> None:
    """Emberwatch hears the first spark of a public blow-up about your brand.

    It polls review sites and social networks, scores each mention for sentiment,
    complaint and virality, and alerts marketing (email), on-call (Slack) and ops
    (daily digest) with what to do next.

    \b
    Start here:
      emberwatch demo                          # the whole job, offline, in a minute
      emberwatch check-config emberwatch.toml  # validate your config
      emberwatch db upgrade                    # create or migrate the database
      emberwatch run                           # the long-running monitor
    """
    from emberwatch import logs

    logs.configure(logging.WARNING - 10 * min(verbose, 2), log_format)


@cli.command("check-config")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@config_option
@handles_errors
def check_config(file: str | None, config_path: str) -> None:
    """Validate a config file and report every problem at once.

    Exits 0 when the file is valid, 2 when it is not; each problem names the file, the
    key path and the reason. Secrets are never printed.

    \b
    Example:
      emberwatch check-config config/emberwatch.example.toml
    """
    from emberwatch.config import load_config

    file = file or config_path
    config = load_config(file)
    enabled = sum(s.enabled for s in config.sources)
    click.echo(
        f"{file}: ok ({len(config.brands)} brands, {len(config.sources)} sources, "
        f"{enabled} enabled)"
    )


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@config_option
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json: one object, {mentions, alerts, incidents, channels: {name: figures}}.",
)
@click.option(
    "--resolve-after",
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="Resolve each incident this long after it opened, or 'never'.",
)
@handles_errors
def replay(file: str, config_path: str, output: str, resolve_after: str) -> None:
    """What would this config have sent? Replays mentions through the real matching,
    scoring, alert decisions, grouping, routes and timers on a simulated clock.

    FILE holds one normalized mention per line (JSON: source, external_id, text,
    published_at, and optionally source_name, author, url, thread, likes, reposts,
    replies and snapshots [{at, likes, reposts, replies}]). Nothing is stored in the
    configured database and nothing is sent. Prints per channel the messages, the
    incidents they were about, the summaries that budgets rolled messages into, and the
    most messages in any hour.

    \b
    Example:
      emberwatch replay last-month.jsonl --config emberwatch.toml
      emberwatch replay last-month.jsonl --config strict.toml --format json
    """
    from emberwatch import replay as replaying
    from emberwatch.settings import parse_duration

    config = _load(config_path, need_secrets=False)
    after = None
    if resolve_after.strip().lower() != "never":
        try:
            after = parse_duration(resolve_after)
        except ValueError as exc:
            _fail(f"--resolve-after: {exc}")
    sightings = replaying.read_mentions(file)
    progress = None
    if sys.stderr.isatty():

        def progress(done: int, total: int) -> None:
            click.echo(f"\rreplayed {done:,} of {total:,} polls", err=True, nl=done == total)

    result = replaying.replay(config, sightings, resolve_after=after, progress=progress)
    if output == "json":
        click.echo(json.dumps(result.as_json()))
    else:
        click.echo(result.table())


@cli.group()
def db() -> None:
    """Database schema commands."""


@db.command("prune")
@config_option
@click.option("--older-than", "older_than", required=True, help="Age, e.g. 180d or 26w.")
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@handles_errors
def db_prune(config_path: str, older_than: str, dry_run: bool) -> None:
    """Delete mentions older than an age unless an alert refers to them, and old finished
    outbox rows; report what was removed.

    Mentions that are part of an alert are always kept, with their snapshots. Rows go in
    batches of 1,000, each its own transaction, so a running monitor is not held up;
    progress ("pruned 12,000 of 40,000 mentions") goes to stderr.

    \b
    Example:
      emberwatch db prune --older-than 180d --dry-run
    """
    from emberwatch import retention
    from emberwatch.settings import parse_duration

    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        _fail(f"--older-than: {exc}", EXIT_CONFIG)
    config = _load(config_path, need_secrets=False)
    engine = _runtime_engine(config, config_path)
    cutoff = datetime.now(UTC) - age

    def progress(what: str, done: int, total: int) -> None:
        click.echo(f"pruned {done:,} of {total:,} {what}", err=True)

    pruned = retention.prune(
        engine, cutoff, dry_run=dry_run, batch_size=retention.BATCH_SIZE, progress=progress
    )
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {pruned.mentions} mentions, {pruned.snapshots} engagement snapshots and "
        f"{pruned.deliveries} finished deliveries older than {cutoff:%Y-%m-%d %H:%M}Z "
        "(mentions in alerts are kept)"
    )


@db.command("upgrade")
@config_option
@handles_errors
def db_upgrade(config_path: str) -> None:
    """Create the database schema, or migrate it to this release. Never loses data.

    \b
    Example:
      emberwatch db upgrade --config emberwatch.toml
    """
    from emberwatch import db as database

    config = _load(config_path, need_secrets=False)
    engine = database.create_db_engine(config.database_url)
    before, after = database.upgrade(engine)
    where = database.redacted(config.database_url)
    if before == after:
        click.echo(f"{where}: already at revision {after}")
    else:
        click.echo(f"{where}: upgraded from {before or 'empty'} to {after}")


def _runtime_engine(config: Config, config_path: str) -> Any:
    from emberwatch import db as database

    engine = database.create_db_engine(config.database_url)
    database.require_current_schema(engine, config_path)
    return engine


@cli.command()
@config_option
@handles_errors
def run(config_path: str) -> None:
    """Run the monitor until SIGINT or SIGTERM; SIGHUP reloads the config file.

    Polls every enabled source on its interval, delivers alerts from the outbox and
    queues the daily digest. On a signal, the poll in flight finishes (or rolls back)
    before the process exits: nothing is half-written. On SIGHUP, the file is read again:
    one line says what changed, or why the file was refused (the running config stays).

    \b
    Example:
      emberwatch run --config /etc/emberwatch/emberwatch.toml
    """
    import signal

    import anyio

    config = _load(config_path)
    engine = _runtime_engine(config, config_path)
    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger().setLevel(logging.INFO)
    # A SIGHUP while starting must not end the process (its default): it is noted, and
    # the file is read again once the monitor runs.
    early: list[int] = []
    signal.signal(signal.SIGHUP, lambda signum, _frame: early.append(signum))
    anyio.run(_run, config, engine, config_path, early)


async def _run(config: Config, engine: Any, config_path: str, early: list[int]) -> None:
    import signal

    import anyio
    import httpx

    from emberwatch.ingest import Runtime
    from emberwatch.scheduling import run_monitor

    stop = anyio.Event()
    # One pending reload at most: SIGHUPs while one waits read the same (latest) file.
    request_reload, reloads = anyio.create_memory_object_stream[str](1)

    async def wait_for_hangups(*, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.open_signal_receiver(signal.SIGHUP) as hangups:
            task_status.started()
            if early:
                request_reload.send_nowait(config_path)
            async for _ in hangups:
                if not request_reload.statistics().current_buffer_used:
                    request_reload.send_nowait(config_path)

    async def wait_for_signal() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("received %s", signal.Signals(signum).name)
                stop.set()
                return

    async with httpx.AsyncClient(follow_redirects=True) as http, anyio.create_task_group() as tg:
        tg.start_soon(wait_for_signal)
        await tg.start(wait_for_hangups)
        rt = Runtime.build(config, engine, http)
        try:
            await run_monitor(rt, stop, reloads=reloads)
        finally:
            tg.cancel_scope.cancel()
            rt.close()


@cli.command()
@config_option
@click.option("--once", is_flag=True, required=True, help="Poll once and exit (required).")
@click.option("--source", "source_name", metavar="NAME", help="Poll only this source.")
@handles_errors
def poll(config_path: str, once: bool, source_name: str | None) -> None:
    """Poll every enabled source (or one) once, deliver the alerts raised, and exit.

    Prints one line per source: new mentions, updated ones, alerts, errors, then what the
    deliveries came to. Exits 1 if any source failed or any delivery failed (refused for
    good, out of attempts, or past its deadline); `emberwatch deliveries list --state
    failed` shows them and `emberwatch deliveries retry` sends them again.

    \b
    Example:
      emberwatch poll --once --source acme-news
    """
    import anyio

    config = _load(config_path)
    if source_name and config.source(source_name) is None:
        known = ", ".join(s.name for s in config.sources) or "none"
        _fail(f"{config_path}: no source named {source_name!r} (sources: {known})", EXIT_CONFIG)
    engine = _runtime_engine(config, config_path)
    reports, delivered = anyio.run(_poll_once, config, engine, source_name)
    for report in reports:
        click.echo(terminal(report.line()))
    expired = f", {delivered.expired} expired" if delivered.expired else ""
    click.echo(
        f"deliveries: {delivered.sent} sent, {delivered.retrying} to retry, "
        f"{delivered.failed} failed{expired}"
    )
    undelivered = delivered.failed + delivered.expired
    if undelivered:
        noun = "delivery" if undelivered == 1 else "deliveries"
        click.echo(
            f"emberwatch: {undelivered} {noun} failed; see them with: emberwatch deliveries "
            f"list --state failed --config {config_path}",
            err=True,
        )
    if undelivered or any(r.error for r in reports):
        sys.exit(EXIT_ERROR)


async def _poll_once(config: Config, engine: Any, source_name: str | None) -> Any:
    import anyio
    import httpx

    from emberwatch.alerts.policy import evaluate
    from emberwatch.delivery import DeliveryReport, deliver_due
    from emberwatch.ingest import Runtime, poll_all

    async with httpx.AsyncClient(follow_redirects=True) as http:
        rt = Runtime.build(config, engine, http)
        try:
            reports = await poll_all(rt, source_name, force=True)
        finally:
            rt.close()
        # One run cannot wait out group_wait, so it notifies what it raised right away.
        await anyio.to_thread.run_sync(lambda: evaluate(engine, config, rt.clock(), flush=True))
        total = DeliveryReport()
        while True:
            step = await deliver_due(config, engine, http, rt.clock())
            total.sent += step.sent
            total.failed += step.failed
            total.retrying += step.retrying
            total.expired += step.expired
            if step.deferred and not (step.sent or step.failed):
                # Other sends hold the channel's next slots: wait for one, don't leave
                # the row behind (one run has no later pass).
                await anyio.sleep(config.delivery.slack_min_gap.total_seconds() / 2)
                continue
            if not (step.sent or step.failed):
                break
        return reports, total


# A table column: the row key (also its heading) and its width; optionally, what the table
# shows for a row instead of row[key] (jsonl always prints the rows as they are). A width of
# 0 is a last column printed whole (a link, which a cut would break).
Column = tuple[str, int] | tuple[str, int, Callable[[dict[str, Any]], Any]]


def _cell(value: Any) -> str:
    """A value as a table shows it: UTC times to the minute, scores to two decimals."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%MZ")
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _cut_words(text: str, width: int) -> str:
    """At most ``width`` characters, cut at a word boundary when one is near, with "…"."""
    if width <= 0 or len(text) <= width:
        return text
    head = text[: width - 1]
    space = head.rfind(" ")
    if space >= width // 2:
        head = head[:space]
    return head.rstrip(" ,;:.-") + "…"


def _print_rows(rows: list[dict[str, Any]], fmt: str, columns: list[Column]) -> None:
    if fmt == "jsonl":
        for row in rows:
            click.echo(jsonl(row))
        return
    header = "  ".join(column[0].upper().ljust(column[1]) for column in columns)
    click.echo(header.rstrip())
    for row in rows:
        cells = []
        for name, width, *show in columns:
            value = show[0](row) if show else row.get(name)
            cells.append(_cut_words(terminal(_cell(value)), width).ljust(width))
        click.echo("  ".join(cells).rstrip())


CATEGORY_CHOICES = (
    "complaint",
    "legal_threat",
    "freebie_seeking",
    "abuse",
    "question",
    "praise",
    "other",
)  # emberwatch.scoring.triage.CATEGORIES, without importing scoring at start-up

format_option = click.option(
    "--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True
)


@cli.group(invoke_without_command=True)
@config_option
@click.option("--brand", help="Only this brand.")
@click.option("--source", "source_name", help="Only this configured source.")
@click.option(
    "--sentiment",
    type=click.Choice(["negative", "neutral", "positive"]),
    help="Only this sentiment.",
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@format_option
@click.pass_context
@handles_errors
def mentions(
    ctx: click.Context,
    config_path: str,
    brand: str | None,
    source_name: str | None,
    sentiment: str | None,
    limit: int,
    fmt: str,
) -> None:
    """List recent mentions, newest first; label one with `mentions label`.

    LANG is the language the text was detected in ("en", "ja"; "und" when too short to
    tell). A mention in a language other than English is not scored by its text.

    \b
    Example:
      emberwatch mentions --brand acme --sentiment negative --format jsonl
      emberwatch mentions label 1042 --complaint no --by sam
    """
    if ctx.invoked_subcommand is not None:
        return
    from sqlmodel import Session, select

    from emberwatch.models import MentionRecord

    config = _load(config_path, need_secrets=False)
    engine = _runtime_engine(config, config_path)
    query = select(MentionRecord).order_by(MentionRecord.id.desc()).limit(limit)  # type: ignore[union-attr]
    if brand:
        query = query.where(MentionRecord.brand == brand)
    if source_name:
        query = query.where(MentionRecord.source_name == source_name)
    if sentiment == "negative":
        query = query.where(MentionRecord.sentiment <= -0.05)  # type: ignore[operator]
    elif sentiment == "positive":
        query = query.where(MentionRecord.sentiment >= 0.05)  # type: ignore[operator]
    elif sentiment == "neutral":
        query = query.where(MentionRecord.sentiment.between(-0.05, 0.05))  # type: ignore[union-attr]
    with Session(engine) as session:
        rows = [
            {
                "id": r.id,
                "brand": r.brand,
                "source": r.source,
                "source_name": r.source_name,
                "external_id": r.external_id,
                "published_at": r.published_at,
                "first_seen_at": r.first_seen_at,
                "author": r.author,
                "sentiment": r.sentiment,
                "category": r.category,
                "severity": r.severity,
                "engagement": r.engagement,
                "language": r.language,
                "title": r.title,
                "text": r.text,
                "url": r.url,
            }
            for r in session.exec(query)
        ]
    columns: list[Column] = [
        ("id", 6),
        ("time", 17, lambda r: r["published_at"] or r["first_seen_at"]),
        ("brand", 10),
        ("source_name", 14),
        ("author", 16),
        ("language", 8),
        ("sentiment", 9),
        ("severity", 8),
        ("engagement", 10),
        ("text", 50),
        ("link", 0, lambda r: web_link(r["url"])),
    ]
    _print_rows(rows, fmt, columns)


@cli.group(invoke_without_command=True)
@config_option
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@format_option
@click.pass_context
@handles_errors
def alerts(ctx: click.Context, config_path: str, limit: int, fmt: str) -> None:
    """List alerts, newest first, with why each fired, the incident each belongs to and who
    last acknowledged, snoozed or resolved it.

    Related alerts are grouped into incidents; act on an incident with the subcommands
    (or the links in Slack and email). Every action is recorded with who and when.

    \b
    Example:
      emberwatch alerts --format jsonl
      emberwatch alerts ack 12 --by "sam@acme.example"
      emberwatch alerts snooze 12 --for 2h
      emberwatch alerts resolve 12
    """
    if ctx.invoked_subcommand is not None:
        return
    from sqlmodel import Session, select

    from emberwatch.alerts.view import latest_actions
    from emberwatch.models import AlertRecord, Incident, MentionRecord

    config = _load(config_path, need_secrets=False)
    engine = _runtime_engine(config, config_path)
    with Session(engine) as session:
        query = (
            select(AlertRecord, MentionRecord, Incident)
            .join(MentionRecord, AlertRecord.mention_id == MentionRecord.id)  # type: ignore[arg-type]
            .outerjoin(Incident, AlertRecord.incident_id == Incident.id)  # type: ignore[arg-type]
            .order_by(AlertRecord.id.desc())  # type: ignore[union-attr]
            .limit(limit)
        )
        found = session.exec(query).all()
        acted = latest_actions(
            session, sorted({a.incident_id for a, _, _ in found if a.incident_id})
        )
        rows = [
            {
                "id": a.id,
                "incident": a.incident_id,
                "status": "silenced" if a.silenced_by else (i.status if i else ""),
                "by": acted[i.id].words if i and i.id in acted else "",
                "actor": acted[i.id].actor if i and i.id in acted else None,
                "acted_at": acted[i.id].at if i and i.id in acted else None,
                "snoozed_until": i.snoozed_until if i else None,
                "created_at": a.created_at,
                "brand": a.brand,
                "source_name": a.source_name,
                "severity": a.severity,
                "category": a.category,
                "reason": a.reason,
                "url": m.url,
                "text": m.text,
            }
            for a, m, i in found
        ]
    now = datetime.now(UTC)
    columns: list[Column] = [
        ("id", 5),
        ("time", 17, lambda r: r["created_at"]),
        ("incident", 8),
        ("status", 33, lambda r: _alert_status(r, now)),
        ("by", 24),
        ("brand", 10),
        ("severity", 8),
        ("category", 14),
        ("source_name", 14),
        ("reason", 60),
    ]
    _print_rows(rows, fmt, columns)


def _alert_status(row: dict[str, Any], now: datetime) -> str:
    """The incident's status as a reader needs it: a snooze shows until when it lasts."""
    until = row.get("snoozed_until")
    if row["status"] == "acknowledged" and until is not None:
        if until.tzinfo is None:  # SQLite hands back naive UTC
            until = until.replace(tzinfo=UTC)
        if until > now:
            return f"snoozed (until {_cell(until)})"
    return str(row["status"])


def _incident_action(action: str, config_path: str, incident: int, by: str, snooze: Any) -> None:
    from emberwatch.alerts.lifecycle import UnknownIncident, act

    config = _load(config_path)
    engine = _runtime_engine(config, config_path)
    try:
        outcome = act(
            engine,
            incident,
            action,
            actor=by,
            via="cli",
            now=datetime.now(UTC),
            snooze_for=snooze,
        )
    except UnknownIncident as exc:
        _fail(str(exc))
    click.echo(outcome.message)


def _default_actor() -> str:
    """The logged-in user's name; without one (some containers), ``--by`` is required, so
    no action is ever recorded as done by nobody in particular."""
    import getpass

    try:
        name = getpass.getuser()
    except Exception:  # no login name in some containers
        name = ""
    if not name.strip():
        raise click.UsageError("there is no login name here; say who is acting with --by NAME")
    return name


by_option = click.option(
    "--by",
    default=_default_actor,
    show_default="your login name",
    help="Who is acting (recorded with the action).",
)


@alerts.command("ack")
@click.argument("incident", type=int)
@config_option
@by_option
@handles_errors
def alerts_ack(incident: int, config_path: str, by: str) -> None:
    """Acknowledge an incident: someone is on it. Stops repeats and escalation.

    \b
    Example:
      emberwatch alerts ack 12 --by sam
    """
    _incident_action("ack", config_path, incident, by, None)


@alerts.command("snooze")
@click.argument("incident", type=int)
@config_option
@by_option
@click.option(
    "--for",
    "duration",
    default=None,
    show_default="[actions] snooze_default, 1h",
    help="e.g. 30m or 2h; at most the longest of [actions] snooze_choices (24h by default).",
)
@handles_errors
def alerts_snooze(incident: int, config_path: str, by: str, duration: str | None) -> None:
    """Acknowledge an incident for a while; it re-triggers when the snooze ends.

    Any duration up to the longest snooze a link offers ([actions] snooze_choices).

    \b
    Example:
      emberwatch alerts snooze 12 --for 2h
    """
    try:
        span = _load(config_path, need_secrets=False).actions.snooze_span(duration, exact=False)
    except ValueError as exc:
        _fail(f"--for: {exc}", EXIT_CONFIG)
    _incident_action("snooze", config_path, incident, by, span)


@alerts.command("resolve")
@click.argument("incident", type=int)
@config_option
@by_option
@handles_errors
def alerts_resolve(incident: int, config_path: str, by: str) -> None:
    """Resolve an incident. A related alert after this opens a new episode.

    \b
    Example:
      emberwatch alerts resolve 12 --by sam
    """
    _incident_action("resolve", config_path, incident, by, None)


@cli.group()
def silence() -> None:
    """Mute notifications for matching alerts for a while (alerts are still stored)."""


@silence.command("add")
@config_option
@click.option("--match", "match", required=True, help="brand=…,source=…,category=…,severity=…")
@click.option("--for", "duration", required=True, help="How long, e.g. 2h or 1d.")
@click.option("--comment", required=True, help="Why (required: silences must explain).")
@by_option
@handles_errors
def silence_add(config_path: str, match: str, duration: str, comment: str, by: str) -> None:
    """Add a silence. It needs a comment and an end time; the digest lists it.

    \b
    Example:
      emberwatch silence add --match brand=acme,source=reddit --for 2h \\
        --comment "known outage, statement posted"
    """
    from sqlmodel import Session

    from emberwatch.alerts.silences import add_silence, parse_matchers
    from emberwatch.settings import parse_duration

    try:
        matchers = parse_matchers(match)
        span = parse_duration(duration)
    except ValueError as exc:
        _fail(f"silence: {exc}", EXIT_CONFIG)
    if not comment.strip():
        _fail("silence: --comment must say why", EXIT_CONFIG)
    config = _load(config_path, need_secrets=False)
    engine = _runtime_engine(config, config_path)
    now = datetime.now(UTC)
    with Session(engine) as session:
        created = add_silence(session, matchers, now + span, comment, by, now)
        session.commit()
        click.echo(f"silence {created.id} until {created.ends_at:%Y-%m-%d %H:%M}Z: {match}")


@silence.command("list")
@config_option
@click.option("--all", "show_all", is_flag=True, help="Include expired silences.")
@format_option
@handles_errors
def silence_list(config_path: str, show_all: bool, fmt: str) -> None:
    """List silences (active ones unless --all).

    \b
    Example:
      emberwatch silence list
    """
    from sqlmodel import Session, select

    from emberwatch.models import Silence

    config = _load(config_path, need_secrets=False)
    engine = _runtime_engine(config, config_path)
    now = datetime.now(UTC)
    with Session(engine) as session:
        query = select(Silence).order_by(Silence.id)  # type: ignore[arg-type]
        if not show_all:
            query = query.where(Silence.ends_at > now)  # type: ignore[operator]
        rows = [
            {
                "id": s.id,
                "match": ",".join(f"{k}={v}" for k, v in json.loads(s.matchers).items()),
                "ends_at": s.ends_at,
                "by": s.created_by,
                "comment": s.comment,
            }
            for s in session.exec(query)
        ]
    _print_rows(rows, fmt, [("id", 4), ("match", 30), ("ends_at", 17), ("by", 12), ("comment", 40)])


@silence.command("expire")
@click.argument("silence_id", type=int)
@config_option
@handles_errors
def silence_expire(silence_id: int, config_path: str) -> None:
    """End a silence now.

    \b
    Example:
      emberwatch silence expire 3
    """
    from sqlmodel import Session

    from emberwatch.models import Silence

    config = _load(config_path, need_secrets=False)
    engine = _runtime_engine(config, config_path)
    with Session(engine) as session:
        found = session.get(Silence, silence_id)
        if found is None:
            _fail(f"no silence {silence_id}")
        found.ends_at = min(found.ends_at, datetime.now(UTC))
        session.add(found)
        session.commit()
    click.echo(f"silence {silence_id} expired")


@cli.group()
def deliveries() -> None:
    """The outbox: every message queued for Slack, email and the digest, and its state.

    A delivery is pending (queued or waiting to retry), sent, failed (refused for good,
    out of attempts, or too many sends that ended with no answer) or expired (its
    deadline passed). Failed ones are kept; `deliveries retry` sends them again.
    """


DELIVERY_STATES = ("pending", "sent", "failed", "expired")


@deliveries.command("list")
@config_option
@click.option("--state", type=click.Choice(DELIVERY_STATES), help="Only deliveries in this state.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1_000_000))
@format_option
@handles_errors
def deliveries_list(config_path: str, state: str | None, limit: int, fmt: str) -> None:
    """List deliveries, newest first.

    Shows each one's channel, recipient, state, attempts and last error. ATTEMPTS counts
    sends that got an answer; a second number ("1+3") counts sends that ended with no
    answer (the sender was killed or hung mid-send).

    \b
    Examples:
      emberwatch deliveries list --state failed
      emberwatch deliveries list --state pending --format jsonl
    """
    from sqlmodel import Session, select

    from emberwatch.models import Delivery

    config = _load(config_path, need_secrets=False)
    engine = _runtime_engine(config, config_path)
    with Session(engine) as session:
        query = select(Delivery).order_by(Delivery.id.desc()).limit(limit)  # type: ignore[union-attr]
        if state:
            query = query.where(Delivery.status == state)
        rows = [
            {
                "id": d.id,
                "created_at": d.created_at,
                "channel": d.channel,
                "kind": d.kind,
                "recipient": d.recipient,
                "state": d.status,
                "attempts": d.attempts,
                "ambiguous_attempts": d.ambiguous_attempts,
                "next_attempt_at": d.next_attempt_at if d.status == "pending" else None,
                "sent_at": d.sent_at,
                "incident_id": d.incident_id,
                "last_error": d.last_error,
            }
            for d in session.exec(query)
        ]
    if fmt == "jsonl":
        for row in rows:
            for key in ("created_at", "next_attempt_at", "sent_at"):
                row[key] = row[key].isoformat() if row[key] else None
    _print_rows(
        rows,
        fmt,
        [
            ("id", 6),
            ("created_at", 17),
            ("channel", 7),
            ("kind", 12),
            ("recipient", 24),
            ("state", 7),
            ("attempts", 8, _attempts_cell),
            ("last_error", 0),
        ],
    )


def _attempts_cell(row: dict[str, Any]) -> str:
    ambiguous = row["ambiguous_attempts"]
    return f"{row['attempts']}+{ambiguous}" if ambiguous else str(row["attempts"])


@deliveries.command("retry")
@click.argument("ids", metavar="[ID]...", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True, help="Every failed delivery.")
@config_option
@by_option
@handles_errors
def deliveries_retry(ids: tuple[int, ...], all_failed: bool, config_path: str, by: str) -> None:
    """Send failed deliveries again.

    Each goes back in the queue, due now, with fresh attempts and a fresh deadline. The
    running monitor (or the next `poll --once`) sends
    it. Who asked, when, and the error it had are kept in its last error.

    Exits 1 if any ID was not a failed delivery.

    \b
    Examples:
      emberwatch deliveries retry 41 42
      emberwatch deliveries retry --all-failed --by ana
    """
    from emberwatch.outbox import retry_failed

    if bool(ids) == all_failed:
        _fail("give delivery IDs or --all-failed (see: emberwatch deliveries list --state failed)")
    config = _load(config_path, need_secrets=False)
    engine = _runtime_engine(config, config_path)
    done = retry_failed(
        engine, config, None if all_failed else list(ids), by=by, now=datetime.now(UTC)
    )
    for item in done:
        click.echo(item.message, err=not item.retried)
    queued = sum(item.retried for item in done)
    click.echo(f"{queued} {'delivery' if queued == 1 else 'deliveries'} queued again")
    if any(not item.retried for item in done):
        sys.exit(EXIT_ERROR)


def _yes_no(value: str | None) -> str | None:
    return None if value is None else ("true" if value == "yes" else "false")


@mentions.command("label")
@click.argument("mention_id", metavar="ID", type=int)
@config_option
@click.option(
    "--complaint",
    type=click.Choice(["yes", "no"]),
    help="Is this mention a complaint (a product or service fell short)?",
)
@click.option("--category", type=click.Choice(CATEGORY_CHOICES), help="Its right category.")
@by_option
@handles_errors
def mentions_label(
    mention_id: int, config_path: str, complaint: str | None, category: str | None, by: str
) -> None:
    """Label one stored mention (its ID from `emberwatch mentions`) and refit.

    The learned layer is refitted from all labels at once; the pipeline picks up the new
    one at its next poll. A newer label of the same mention replaces an older one.

    \b
    Example:
      emberwatch mentions label 1042 --complaint no --by sam
      emberwatch mentions label 1043 --complaint yes --category complaint
    """
    from emberwatch.labels import label_mention

    values = {
        k: v
        for k, v in (("complaint", _yes_no(complaint)), ("category", category))
        if v is not None
    }
    if not values:
        _fail("mentions label: give --complaint yes|no and/or --category", EXIT_CONFIG)
    config = _load(config_path, need_secrets=False)
    engine = _runtime_engine(config, config_path)
    stored = label_mention(
        engine, _rules_scorer(config), mention_id, values, by=by, now=datetime.now(UTC)
    )
    said = ", ".join(f"{k} {v}" for k, v in values.items())
    refit = stored.refit.line() if stored.refit else ""
    click.echo(f"mention {mention_id} labelled {said} by {by}; {refit}")


def _rules_scorer(config: Config) -> Any:
    from emberwatch.labels import scorer_for

    return scorer_for(config)


@cli.group()
def labels() -> None:
    """The team's labels, which teach the scorer (per installation, on this machine).

    A label says whether a mention is a complaint, or what its category is. After every
    change, a learned layer is fitted from all labels and combined with the cues; with
    no labels, scores are the cues' alone. Reasons name the learned part
    ("learned from 212 team labels: +1.3 -> complaint 0.81").
    """


@labels.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@config_option
@by_option
@handles_errors
def labels_import(file: str, config_path: str, by: str) -> None:
    """Store labels from a JSON-lines file and refit the learned layer.

    Each line holds the normalized mention fields (source, external_id, url, author,
    author_followers, title, text, published_at, rating, likes, reposts, replies) plus
    "complaint": true|false and/or "category": one of the categories (complaint,
    legal_threat, freebie_seeking, abuse, question, praise, other). Optional: "brand"
    (read the text with that brand's lexicon), "labelled_by" and "labelled_at" (default:
    --by and now). Lines `labels export` writes read back as they were.

    A bad line stops the import with its line number, and nothing from the file is
    stored. A newer label of the same mention (same source and external_id, or the same
    text) replaces an older one when fitting; the older one is kept as history.

    \b
    Example:
      echo '{"source": "x", "external_id": "1", "text": "charged twice",
             "complaint": true}' > labels.jsonl     # one object per line
      emberwatch labels import labels.jsonl --config emberwatch.toml
    """
    from emberwatch.labels import import_labels, parse_file

    parsed = parse_file(file)
    config = _load(config_path, need_secrets=False)
    engine = _runtime_engine(config, config_path)
    stored = import_labels(
        engine, _rules_scorer(config), parsed, by=by, via="import", now=datetime.now(UTC)
    )
    refit = stored.refit.line() if stored.refit else ""
    click.echo(f"{file}: stored {stored.labels} labels of {stored.mentions} mentions; {refit}")


@labels.command("list")
@config_option
@click.option("--all", "show_all", is_flag=True, help="Include labels a newer one replaced.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1_000_000))
@format_option
@handles_errors
def labels_list(config_path: str, show_all: bool, limit: int, fmt: str) -> None:
    """List labels, newest first: the ones in force, or all with --all.

    \b
    Example:
      emberwatch labels list --limit 20
    """
    from sqlmodel import Session, select

    from emberwatch.labels import current_labels
    from emberwatch.models import Label

    config = _load(config_path, need_secrets=False)
    engine = _runtime_engine(config, config_path)
    with Session(engine) as session:
        found = list(session.exec(select(Label))) if show_all else current_labels(session)
    found.sort(key=lambda lab: (lab.labelled_at, lab.id), reverse=True)
    rows = [
        {
            "id": lab.id,
            "field": lab.field,
            "value": lab.value,
            "by": lab.labelled_by,
            "at": lab.labelled_at,
            "via": lab.via,
            "mention_id": lab.mention_id,
            "mention": lab.mention_key,
            "text": Mention.from_dict(json.loads(lab.mention)).full_text.replace("\n", " "),
        }
        for lab in found[:limit]
    ]
    columns = [
        ("id", 6),
        ("field", 9),
        ("value", 15),
        ("by", 10),
        ("at", 17),
        ("via", 6),
        ("text", 50),
    ]
    _print_rows(rows, fmt, columns)


@labels.command("export")
@config_option
@handles_errors
def labels_export(config_path: str) -> None:
    """Write the labels in force as JSON lines that `labels import` reads back.

    One line per mention and field, oldest first, with who labelled it and when.

    \b
    Example:
      emberwatch labels export > labels.jsonl
      emberwatch labels import labels.jsonl --config other.toml
    """
    from sqlmodel import Session

    from emberwatch.labels import current_labels, export_line

    config = _load(config_path, need_secrets=False)
    engine = _runtime_engine(config, config_path)
    with Session(engine) as session:
        found = current_labels(session)
    found.sort(key=lambda lab: (lab.labelled_at, lab.id))
    for label in found:
        click.echo(export_line(label))


@cli.group()
def sources() -> None:
    """Inspect connectors and source health."""


@sources.command("parse")
@click.argument("source_type", metavar="TYPE")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@handles_errors
def sources_parse(source_type: str, file: str) -> None:
    """Run a connector's parse on a saved response body; print mentions as JSON lines.

    This is how to find out why a post did or did not show up: save the API's response
    (e.g. with curl) and see exactly what Emberwatch reads from it.

    \b
    Example:
      curl -s 'https://hn.algolia.com/api/v1/search_by_date?query=acme' > hn.json
      emberwatch sources parse hackernews hn.json
    """
    from pathlib import Path

    from emberwatch.errors import ParseError
    from emberwatch.sources import connector

    try:
        module = connector(source_type)
    except KeyError as exc:
        _fail(str(exc.args[0]), EXIT_CONFIG)
    body = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    try:
        parsed: list[Mention] = module.parse(body)
    except ParseError as exc:
        _fail(f"{file}: {exc}")
    for mention in parsed:
        click.echo(jsonl(mention.to_dict()))


@sources.command("test")
@click.argument("name")
@config_option
@handles_errors
def sources_test(name: str, config_path: str) -> None:
    """Make one live request to a source and say plainly what came back.

    Use it to check credentials: the answer is ok (with how many items the first page
    held), auth failed, rate-limited, not found, or the error. Nothing is stored.
    Exits 0 when the source answered ok, 1 otherwise.

    \b
    Example:
      emberwatch sources test acme-reddit
    """
    import anyio

    config = _load(config_path)
    settings = config.source(name)
    if settings is None:
        known = ", ".join(s.name for s in config.sources) or "none"
        _fail(f"{config_path}: no source named {name!r} (sources: {known})", EXIT_CONFIG)
    verdict, ok = anyio.run(_test_source, settings)
    click.echo(f"{name}: {terminal(verdict)}")
    if not ok:
        sys.exit(EXIT_ERROR)


async def _test_source(settings: Any) -> tuple[str, bool]:
    import httpx

    from emberwatch.errors import FetchError, SourceError
    from emberwatch.sources import connector

    one_page = settings.model_copy(update={"max_pages": 1})
    async with httpx.AsyncClient(follow_redirects=True) as http:
        try:
            fetched = await connector(settings.type).fetch(http, one_page, None, datetime.now(UTC))
        except FetchError as exc:
            if exc.status in (401, 403) and not exc.retryable:
                return f"auth failed (HTTP {exc.status}): check the credentials", False
            if exc.status == 429:
                wait = f"; retry after {exc.retry_after:.0f} s" if exc.retry_after else ""
                return f"rate-limited (HTTP 429{wait})", False
            if exc.status == 404:
                return "not found (HTTP 404): check the id, query or base_url", False
            return f"failed: {exc}", False
        except SourceError as exc:
            return f"failed: {exc}", False
    return f"ok: {len(fetched.mentions)} items on the first page", True


@sources.command("status")
@config_option
@format_option
@handles_errors
def sources_status(config_path: str, fmt: str) -> None:
    """Show each source's health: last success, last error, failures, items per poll.

    \b
    Example:
      emberwatch sources status
    """
    from sqlmodel import Session, select

    from emberwatch.models import SourceState

    config = _load(config_path, need_secrets=False)
    engine = _runtime_engine(config, config_path)
    with Session(engine) as session:
        states = {s.name: s for s in session.exec(select(SourceState))}
    rows = []
    for source in config.sources:
        state = states.get(source.name)
        rows.append(
            {
                "name": source.name,
                "type": source.type,
                "enabled": source.enabled,
                "last_success": state.last_success_at if state else None,
                "failures": state.consecutive_failures if state else 0,
                "items_last_poll": state.items_last_poll if state else 0,
                "last_error": state.last_error if state else None,
            }
        )
    columns = [
        ("name", 18),
        ("type", 12),
        ("enabled", 7),
        ("last_success", 17),
        ("failures", 8),
        ("items_last_poll", 15),
        ("last_error", 50),
    ]
    _print_rows(rows, fmt, columns)


# What `emberwatch score` adds to each line, in this order.
SCORE_KEYS = (
    "sentiment",
    "complaint",
    "virality",
    "expected_engagement",
    "category",
    "severity",
    "reasons",
)


@cli.command()
@click.option(
    "--viral-threshold",
    type=click.IntRange(min=1),
    default=None,
    help="Engagement within 24 h that counts as viral (default 500).",
)
@click.option(
    "--brand",
    help="Score as a mention of this brand (needs --config): its lexicon overrides apply and "
    "its own names, @handles and #hashtags count as neutral.",
)
@click.option(
    "--config",
    "config_path",
    default=None,
    envvar="EMBERWATCH_CONFIG",
    metavar="FILE",
    callback=_config_before_subcommand,
    help="Config file, for brand lexicons (optional).",
)
@handles_errors
def score(viral_threshold: int | None, brand: str | None, config_path: str | None) -> None:
    """Score JSON lines from stdin; write each with its scores to stdout.

    Input lines hold normalized mention fields (source, external_id, url, author,
    author_followers, title, text, published_at, rating, likes, reposts, replies) and
    optionally "snapshots": [{"at", "likes", "reposts", "replies"}]. Output adds
    "scores": {sentiment, complaint, virality, expected_engagement, category, severity,
    reasons}. With --config, the learned layer fitted from the team's labels in that
    config's database is applied too (see `emberwatch labels`).

    \b
    Example:
      echo '{"text": "Order #1234 still not here after 3 weeks", "author_followers": 900}' \\
        | emberwatch score
    """
    from emberwatch.scoring import DEFAULT_VIRAL_THRESHOLD, Scorer, snapshots_from_json

    lexicons: dict[str, dict[str, float]] = {}
    terms: dict[str, list[str]] = {}
    config = None
    if config_path:
        from pathlib import Path

        if Path(config_path).exists():
            from emberwatch.config import load_config

            config = load_config(config_path)
            lexicons = {b.name: b.lexicon for b in config.brands}
            terms = {b.name: b.include for b in config.brands}
    if brand is not None and brand not in terms:
        known = ", ".join(sorted(terms)) or "none: pass --config FILE"
        _fail(f"--brand {brand!r}: no such brand in the config (brands: {known})")
    scorer = Scorer(
        lexicons, brand_terms=terms, viral_threshold=viral_threshold or DEFAULT_VIRAL_THRESHOLD
    )
    if config is not None:
        from emberwatch.labels import stored_layer

        scorer.learned = stored_layer(config.database_url)
    failures = 0
    texts: dict[str, str] = {}
    numbers: dict[float, str] = {}
    # One buffered write a line: click.echo resolves the stream and flushes on every call,
    # which cost more than scoring's JSON. A terminal still sees each line as it is scored
    # (Python line-buffers a tty); a pipe gets the output in blocks, as from grep.
    write = sys.stdout.write
    # The scanner json.loads uses, called directly: loads adds two whitespace searches and
    # three Python calls a line (0.9 -> 0.3 us). A line that is not one value followed by
    # JSON whitespace goes to json.loads, which reads it or raises its usual error.
    scan = json.JSONDecoder().scan_once
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            try:
                data, end = scan(line, 0)
                if line[end:].strip(" \t\n\r"):
                    raise ValueError(line)
            except (StopIteration, ValueError):
                data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("each line must be a JSON object")
            mention = Mention.from_dict(data)
            # Most lines have no snapshots: snapshots_from_json would return [] for them.
            given = data.get("snapshots")
            snapshots = snapshots_from_json(given) if given else []
        except (ValueError, TypeError) as exc:
            click.echo(f"emberwatch: stdin line {number}: {exc}", err=True)
            failures += 1
            continue
        scores = scorer.score(mention, snapshots=snapshots, brand=brand)
        write(_scored_line(data, scores, texts, numbers))
    sys.stdout.flush()
    if failures:
        sys.exit(EXIT_ERROR)


# How many strings and numbers each dict of _scored_line keeps the JSON of: enough for the
# templated reasons that recur line after line ("category other") and the scores' rounded
# numbers, bounded for a stream.
KNOWN_PIECES = 10_000


def _scored_line(
    data: dict[str, Any], scores: Scores, texts: dict[str, str], numbers: dict[float, str]
) -> str:
    """``jsonl({**data, "scores": {SCORE_KEYS...}})`` and a line break, written in pieces.

    A JSON object is its members joined by ", " inside braces, and jsonl escapes character
    by character, so the line is the input's own jsonl less its "}", then the scores from
    pieces: each reason, category, severity (``texts``) and number (``numbers``) as jsonl
    writes it, looked up when it was met before, where encoding it is a C call that copies
    a string character by character or formats a float: half the instructions of encoding
    the whole (callgrind, bench/score_cli.py's lines: 55,000 -> 27,000 a line).
    Input that already has "scores" (the key keeps its place), numbers that are not floats
    and reasons that are not a list take the whole-object path.
    """
    sentiment, complaint, virality = scores.sentiment, scores.complaint, scores.virality
    engagement, reasons = scores.expected_engagement, scores.reasons
    category, severity = scores.category, scores.severity
    # Exact floats only: an int or a bool would find the float it equals (1 == 1.0).
    if (
        type(sentiment) is type(complaint) is type(virality) is type(engagement) is float
        and type(reasons) is list
        and "scores" not in data
    ):
        known, number = texts.get, numbers.get
        try:
            words = [*map(known, reasons)]
            category_json = known(category) or _piece(category, texts)
            severity_json = known(severity) or _piece(severity, texts)
        except TypeError:  # an unhashable reason: not one scoring writes
            pass
        else:
            if not all(words):
                words = [w or _piece(r, texts) for w, r in zip(words, reasons, strict=True)]
            head = jsonl(data)[:-1]
            return (
                f'{head}{", " if len(head) > 1 else ""}"scores": {{"sentiment": '
                f"{number(sentiment) or _number(sentiment, numbers)}, "
                f'"complaint": {number(complaint) or _number(complaint, numbers)}, '
                f'"virality": {number(virality) or _number(virality, numbers)}, '
                f'"expected_engagement": {number(engagement) or _number(engagement, numbers)}, '
                f'"category": {category_json}, "severity": {severity_json}, '
                f'"reasons": [{", ".join(words)}]}}}}\n'
            )
    # SCORE_KEYS, written out: a dict display is a quarter of the time of dict(zip()).
    # A "scores" key of the input keeps its place, as dict(data) then setting it would.
    out = {
        **data,
        "scores": {
            "sentiment": sentiment,
            "complaint": complaint,
            "virality": virality,
            "expected_engagement": engagement,
            "category": category,
            "severity": severity,
            "reasons": reasons,
        },
    }
    return f"{jsonl(out)}\n"


def _piece(value: Any, known: dict[Any, str]) -> str:
    """``jsonl(value)``, kept in ``known`` while there is room when it is a string."""
    piece = jsonl(value)
    if type(value) is str and len(known) < KNOWN_PIECES:
        known[value] = piece
    return piece


def _number(value: float, known: dict[float, str]) -> str:
    """``jsonl(value)`` of a float, kept in ``known`` while there is room. Not zeros: -0.0
    == 0.0 would find the other's; their JSON is their repr."""
    if not value:
        return repr(value)
    piece = jsonl(value)
    if len(known) < KNOWN_PIECES:
        known[value] = piece
    return piece


@cli.command()
@config_option
@click.option(
    "--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="Local day (default: yesterday)."
)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Write HTML here.")
@handles_errors
def digest(config_path: str, day: datetime | None, out: str) -> None:
    """Render the daily digest for a day to an HTML file, without sending it.

    \b
    Example:
      emberwatch digest --date 2026-11-21 --out digest.html
    """
    from emberwatch.digest import build_digest, digest_day, render

    config = _load(config_path)
    engine = _runtime_engine(config, config_path)
    zone = config.channels.digest.timezone if config.channels.digest else "UTC"
    the_day: date = day.date() if day else digest_day(datetime.now(UTC), zone)
    _subject, _text, html = render(build_digest(engine, the_day, zone, config=config))
    _write_output(out, html)
    click.echo(f"digest for {the_day.isoformat()} written to {out}")


DEMO_EXTRA_MISSING = (
    "the demo needs aiosmtpd, which its extra installs: pip install 'emberwatch[demo]'"
)


@cli.command()
@click.option(
    "--output",
    default="demo-output",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the demo writes its database, mail and Slack payloads.",
)
@click.option(
    "--duration",
    default=60.0,
    show_default=True,
    type=click.FloatRange(5, 600),
    help="Seconds the scripted story takes to unfold.",
)
@click.option(
    "--config",
    "config_path",
    default=None,
    show_default="the config packaged with emberwatch.demo",
    metavar="FILE",
    callback=_config_before_subcommand,
    help="The demo's config (its ${DEMO_*} references are filled in by the demo).",
)
@click.option(
    "--serve/--no-serve",
    default=None,
    show_default="--serve when run from a terminal",
    help="Keep serving the incident console after the story until Ctrl-C.",
)
@handles_errors
def demo(output: str, duration: float, config_path: str | None, serve: bool | None) -> None:
    """Run the whole monitor offline against a simulated internet on loopback.

    Starts a feed server that publishes a scripted story (one customer's complaint
    spreading among ordinary mentions), a real SMTP server and a Slack webhook server,
    then runs the real scheduler and pipeline on SQLite. Everything lands in --output:
    mail/*.eml, slack/*.json, the database and the digest. The incident console is on
    loopback throughout; its address and the demo user's login are printed, and from a
    terminal it keeps serving after the story until Ctrl-C.

    \b
    Example:
      emberwatch demo --output demo-output
    """
    from pathlib import Path

    try:
        from emberwatch.demo import run_demo
    except ModuleNotFoundError as missing:  # the demo extra is not installed
        if (missing.name or "").partition(".")[0] != "aiosmtpd":
            raise
        _fail(DEMO_EXTRA_MISSING)

    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger("emberwatch").setLevel(logging.ERROR)
    if serve is None:
        serve = sys.stdin.isatty() and sys.stdout.isatty()
    run_demo(Path(output), duration, Path(config_path) if config_path else None, serve=serve)


@cli.group()
def users() -> None:
    """Who may log in to the console (served by `emberwatch run`), and with what role.

    \b
    Roles, each allowed what the one before it is:
      viewer     reads every page and export
      responder  also acknowledges, snoozes, resolves, assigns, notes and labels
      admin      also manages users and silences
    """


def _read_password(from_stdin: bool) -> str:
    """The password: the first line of stdin (--password-stdin), or typed twice at a
    terminal; never an argument, where it would land in shell history and ``ps``."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            _fail("users: --password-stdin read an empty line; pipe the password in", EXIT_CONFIG)
        return password
    if not sys.stdin.isatty():
        _fail("users: give --password-stdin and pipe the password in", EXIT_CONFIG)
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


password_stdin_option = click.option(
    "--password-stdin",
    "password_stdin",
    is_flag=True,
    help="Read the password from the first line of stdin (else prompt at a terminal).",
)


@users.command("add")
@click.argument("name")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["viewer", "responder", "admin"]),
    help="What they may do.",
)
@password_stdin_option
@config_option
@handles_errors
def users_add(name: str, role: str, password_stdin: bool, config_path: str) -> None:
    """Add a console user.

    \b
    Examples:
      printf '%s\\n' "$PASSWORD" | emberwatch users add ana --role responder --password-stdin
      emberwatch users add sam@acme.example --role admin     # prompts twice
    """
    from emberwatch.console.users import add_user

    password = _read_password(password_stdin)
    config = _load(config_path, need_secrets=False)
    engine = _runtime_engine(config, config_path)
    user = add_user(engine, name, role, password, datetime.now(UTC))
    click.echo(f"user {user.name} added ({user.role})")


@users.command("list")
@config_option
@format_option
@handles_errors
def users_list(config_path: str, fmt: str) -> None:
    """List console users, their roles and whether they are locked out.

    \b
    Example:
      emberwatch users list
    """
    from emberwatch.console.users import list_users

    config = _load(config_path, need_secrets=False)
    engine = _runtime_engine(config, config_path)
    now = datetime.now(UTC)
    rows = [
        {
            "name": u.name,
            "role": u.role,
            "created_at": u.created_at,
            "password_changed_at": u.password_changed_at,
            "locked_until": u.locked_until if u.locked_until and u.locked_until > now else None,
        }
        for u in list_users(engine)
    ]
    _print_rows(
        rows,
        fmt,
        [
            ("name", 24),
            ("role", 10),
            ("created_at", 17),
            ("password_changed_at", 19),
            ("locked_until", 17),
        ],
    )


@users.command("set-password")
@click.argument("name")
@password_stdin_option
@config_option
@handles_errors
def users_set_password(name: str, password_stdin: bool, config_path: str) -> None:
    """Change a user's password; it also unlocks them and ends every login of theirs.

    \b
    Example:
      printf '%s\\n' "$PASSWORD" | emberwatch users set-password ana --password-stdin
    """
    from emberwatch.console.users import set_password

    password = _read_password(password_stdin)
    config = _load(config_path, need_secrets=False)
    engine = _runtime_engine(config, config_path)
    ended = set_password(engine, name, password, datetime.now(UTC))
    click.echo(f"password of {name} changed; {ended} session{'s' if ended != 1 else ''} ended")


@users.command("remove")
@click.argument("name")
@config_option
@handles_errors
def users_remove(name: str, config_path: str) -> None:
    """Remove a console user and end their logins (their past actions keep their name).

    \b
    Example:
      emberwatch users remove ana
    """
    from emberwatch.console.users import remove_user

    config = _load(config_path, need_secrets=False)
    engine = _runtime_engine(config, config_path)
    remove_user(engine, name)
    click.echo(f"user {name} removed")


def main() -> None:
    try:
        cli(prog_name="emberwatch")
    except KeyboardInterrupt:
        click.echo("emberwatch: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
