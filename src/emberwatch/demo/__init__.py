"""``emberwatch demo``: the real scheduler and pipeline against a simulated internet.

Everything runs on loopback: a feed server publishing :mod:`emberwatch.demo.story`, a
real SMTP server (aiosmtpd, from the ``demo`` extra) and a Slack webhook server. Output
lands in one folder. The demo's config ships inside the package (``demo.toml`` here, read
through :mod:`importlib.resources`), so the demo runs from an installed wheel too.

The incident console is served on loopback while the story unfolds, with a demo user whose
random password is printed; with ``serve`` (the CLI's default when run from a terminal) it
keeps serving the console on the story's database until Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import anyio
import click
import httpx

from emberwatch import db as database
from emberwatch.config import Config, load_config
from emberwatch.console.users import add_user
from emberwatch.delivery import deliver_due
from emberwatch.demo.servers import HTTPServer, MailCatcher, SlackServer, free_port
from emberwatch.demo.story import StoryFeeds
from emberwatch.digest import build_digest, enqueue_digest, render
from emberwatch.ingest import PollReport, Runtime
from emberwatch.outbox import pending_count
from emberwatch.scheduling import run_monitor
from emberwatch.text import terminal
from emberwatch.web import serve as serve_http

DRAIN_SECONDS = 10.0
DEMO_USER = "demo"


def packaged_config() -> Traversable:
    """The demo's config as shipped in the package (config/demo.toml links to it)."""
    return resources.files(__name__).joinpath("demo.toml")


def run_demo(
    output: Path, duration: float, config_path: Path | None = None, *, serve: bool = False
) -> None:
    """Run the demo with ``config_path``, or with the packaged config when it is None; with
    ``serve``, keep serving the console afterwards until Ctrl-C."""
    with ExitStack() as stack:
        if config_path is None:
            config_path = stack.enter_context(resources.as_file(packaged_config()))
        _run(output, duration, config_path, serve)


def _run(output: Path, duration: float, config_path: Path, serve: bool) -> None:
    started_wall = time.monotonic()
    if output.exists():
        shutil.rmtree(output)
    (output / "mail").mkdir(parents=True)
    (output / "slack").mkdir(parents=True)

    story = StoryFeeds(datetime.now(UTC), duration)
    feeds = HTTPServer(story.handle).start()
    slack = SlackServer(output / "slack").start()
    mail = MailCatcher(output / "mail").start()
    try:
        os.environ.update(
            DEMO_OUTPUT=str(output.resolve()),
            DEMO_FEEDS=feeds.base_url,
            DEMO_SLACK_WEBHOOK=slack.webhook_url,
            DEMO_SMTP_PORT=str(mail.port),
            DEMO_HTTP_PORT=str(free_port()),
        )
        config = load_config(config_path)
        engine = database.create_db_engine(config.database_url)
        database.upgrade(engine)
        password = secrets.token_urlsafe(12)
        add_user(engine, DEMO_USER, "admin", password, datetime.now(UTC))
        click.echo(f"emberwatch demo: feeds at {feeds.base_url}, SMTP on 127.0.0.1:{mail.port}")
        click.echo(f"  console: {_console_url(config)}  log in as {DEMO_USER} / {password}")
        click.echo(f"  a complaint will spread over the next {duration:.0f} s; polling every 3 s\n")
        anyio.run(_monitor, config, engine, duration, slack, mail, started_wall)

        today = datetime.now(UTC).date()
        zone = config.channels.digest.timezone if config.channels.digest else "UTC"
        summary = build_digest(engine, today, zone, config=config)
        _subject, _text, html = render(summary)
        (output / "digest.html").write_text(html, encoding="utf-8")
    finally:
        feeds.stop()
        slack.stop()
        mail.stop()
    elapsed = time.monotonic() - started_wall
    click.echo("\nSummary")
    click.echo(f"  mentions seen:   {summary.mentions}")
    click.echo(f"  alerts raised:   {len(summary.alerts)}")
    click.echo(f"  Slack messages:  {len(slack.payloads)} in {output / 'slack'}/")
    click.echo(f"  emails:          {len(mail.messages)} in {output / 'mail'}/")
    click.echo(f"  digest:          {output / 'digest.html'}")
    click.echo(f"  database:        {output / 'emberwatch.db'}")
    click.echo(f"  took {elapsed:.1f} s")
    if serve:
        _serve_console(config, engine, password)


def _console_url(config: Config) -> str:
    assert config.http is not None  # the demo's config has an [http] table
    return config.http.public_url.rstrip("/") + "/"


def _serve_console(config: Config, engine: object, password: str) -> None:
    """Serve the console on the demo's database until Ctrl-C (the story is over)."""
    click.echo(f"\nServing the console at {_console_url(config)} until Ctrl-C")
    click.echo(f"  log in as {DEMO_USER} / {password}")

    async def forever() -> None:
        runner = await serve_http(config, engine, lambda: datetime.now(UTC))  # type: ignore[arg-type]
        try:
            await anyio.sleep_forever()
        finally:
            await runner.cleanup()

    try:
        anyio.run(forever)
    except KeyboardInterrupt:
        click.echo("\nemberwatch demo: stopped serving the console")


async def _monitor(
    config: object,
    engine: object,
    duration: float,
    slack: SlackServer,
    mail: MailCatcher,
    started: float,
) -> None:
    def show(report: PollReport) -> None:
        if report.new or report.updated or report.alerts or report.error:
            stamp = f"[{time.monotonic() - started:5.1f}s]"
            click.echo(f"{stamp} {terminal(report.line())}")

    stop = anyio.Event()
    async with httpx.AsyncClient() as http:
        runtime = Runtime.build(config, engine, http)  # type: ignore[arg-type]

        async def stop_after() -> None:
            seen = (0, 0)
            deadline = anyio.current_time() + duration
            while anyio.current_time() < deadline:
                await anyio.sleep(0.5)
                now = (len(slack.payloads), len(mail.messages))
                if now != seen:
                    seen = now
                    stamp = f"[{time.monotonic() - started:5.1f}s]"
                    click.echo(f"{stamp} delivered so far: {now[0]} Slack, {now[1]} email")
            stop.set()

        async with anyio.create_task_group() as group:
            group.start_soon(stop_after)
            try:
                await run_monitor(runtime, stop, on_report=show)
            finally:
                runtime.close()

        # The ops digest for today, sent like the scheduled one, then drain the outbox.
        await anyio.to_thread.run_sync(
            enqueue_digest, engine, datetime.now(UTC).date(), datetime.now(UTC)
        )
        with anyio.move_on_after(DRAIN_SECONDS):
            while await anyio.to_thread.run_sync(pending_count, engine):
                await deliver_due(runtime.config, runtime.engine, http, datetime.now(UTC))
                await anyio.sleep(0.2)
