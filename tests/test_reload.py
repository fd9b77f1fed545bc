"""SIGHUP reloads the configuration: one line says what changed, or why the file was
refused (and the running configuration stays); work in flight finishes.

The end-to-end test runs a real `emberwatch run` process against loopback RSS feeds and
rewrites its config file between SIGHUPs. The line itself is a pure comparison of two
configs (:mod:`emberwatch.reload`), tested table-driven.
"""

from __future__ import annotations

import signal
import time

import pytest
import sqlalchemy as sa

from emberwatch.config import validate_config
from emberwatch.reload import compare, keep_restart_keys
from tests.run_support import Feeds, Node, write_config

BRAND = '[[brands]]\nname = "acme"\ninclude = ["Acme"]\n'
BRAND_WITH_TERM = '[[brands]]\nname = "acme"\ninclude = ["Acme", "Kettleco"]\n'


def _wait(condition, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def test_sighup_reloads_sources_and_brands_refuses_a_broken_file_and_keeps_polling(tmp_path):
    feeds = Feeds()
    db_url = f"sqlite:///{tmp_path / 'reload.db'}"
    config = tmp_path / "emberwatch.toml"
    # Only the new brand term matches feed-b's post: storing it proves both changes.
    feeds.publish("feed-b", "b1", "Kettleco lid cracked on day two")
    write_config(config, db_url, {"feed-a": feeds.url("feed-a")}, BRAND)
    node = Node(config, tmp_path / "node.log")
    try:
        started = node.wait_for("monitor started: 1 source")
        _wait(lambda: feeds.polls("feed-a") >= 2)
        assert feeds.polls("feed-b") == 0

        # A second source and a brand term.
        both = {"feed-a": feeds.url("feed-a"), "feed-b": feeds.url("feed-b")}
        write_config(config, db_url, both, BRAND_WITH_TERM)
        node.signal(signal.SIGHUP)
        added = node.wait_for("reload:", after=started)
        node.wait_for(r"source feed-b: 1 new, 0 updated", after=added)
        assert feeds.polls("feed-b") >= 1

        # A broken file: refused in one line, and both sources keep being polled.
        config.write_text(config.read_text().replace('interval = "1s"', 'interval = "0s"', 1))
        node.signal(signal.SIGHUP)
        refused = node.wait_for("reload refused", after=added + 1)
        polls = feeds.polls("feed-a"), feeds.polls("feed-b")
        _wait(lambda: min(feeds.polls("feed-a") - polls[0], feeds.polls("feed-b") - polls[1]) > 2)

        # The good file again, which is what runs: no changes.
        write_config(config, db_url, both, BRAND_WITH_TERM)
        node.signal(signal.SIGHUP)
        unchanged = node.wait_for("reload: no changes", after=refused + 1)

        # feed-a removed while its poll is in flight: that poll finishes and stores its
        # mention; feed-a is not polled again, and its row and mentions stay.
        feeds.delays["feed-a"] = 1.5
        published = time.time()
        feeds.publish("feed-a", "a1", "Acme kettles on sale")
        _wait(lambda: feeds.requests["feed-a"][-1] > published)
        write_config(config, db_url, {"feed-b": feeds.url("feed-b")}, BRAND_WITH_TERM)
        node.signal(signal.SIGHUP)
        removed = node.wait_for("reload: -source feed-a", after=unchanged + 1)
        finished = node.wait_for(r"source feed-a: 1 new", after=removed)
        last_a = feeds.polls("feed-a")
        time.sleep(3)
        assert feeds.polls("feed-a") == last_a, "a removed source is not polled again"
    finally:
        code = node.stop()
        feeds.stop()
    lines = node.lines()
    print("\n" + "\n".join(lines[started:]))
    assert code == 0
    assert "Traceback" not in "\n".join(lines)
    assert lines[added] == (
        "INFO emberwatch.scheduling: reload: +source feed-b, brands changed: acme (include), "
        "routes unchanged, channels unchanged"
    )
    assert lines[refused].startswith(
        f"ERROR emberwatch.scheduling: reload refused: {config}: sources[feed-a].interval: "
    )
    assert lines[refused].endswith("; keeping the running configuration")
    assert lines[removed] == (
        "INFO emberwatch.scheduling: reload: -source feed-a, brands unchanged, "
        "routes unchanged, channels unchanged"
    )
    assert finished > removed  # the poll in flight finished after the reload
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        sources = set(connection.execute(sa.text("SELECT name FROM sources")).scalars())
        mentions = dict(
            connection.execute(
                sa.text("SELECT source_name, count(*) FROM mentions GROUP BY source_name")
            ).all()
        )
    assert sources == {"feed-a", "feed-b"}
    assert mentions == {"feed-a": 1, "feed-b": 1}


ENV = {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/old-secret"}
BASE = {
    "brands": [{"name": "acme", "include": ["Acme"]}, {"name": "brewly", "include": ["Brewly"]}],
    "sources": [
        {"name": "old-rss", "type": "rss", "url": "https://e.example/old.xml"},
        {"name": "acme-rss", "type": "rss", "url": "https://e.example/acme.xml"},
    ],
    "channels": {"slack": {"webhook_url": "${SLACK_WEBHOOK_URL}"}},
    "routes": [
        {"name": "oncall", "channels": ["slack"]},
        {"name": "all", "channels": ["slack"], "continue_matching": True},
    ],
    "http": {"secret": "s" * 40},
}


def _with(**changes) -> dict:
    return {**BASE, **changes}


@pytest.mark.parametrize(
    ("new", "env", "line"),
    [
        (BASE, ENV, "reload: no changes"),
        (
            _with(
                sources=[
                    BASE["sources"][1],
                    {"name": "acme-yelp", "type": "rss", "url": "https://e.example/y.xml"},
                ],
                brands=[{"name": "acme", "include": ["Acme", "Kettleco"]}, BASE["brands"][1]],
            ),
            ENV,
            "reload: +source acme-yelp, -source old-rss, brands changed: acme (include), "
            "routes unchanged, channels unchanged",
        ),
        (
            _with(sources=[BASE["sources"][0], {**BASE["sources"][1], "interval": "1m"}]),
            ENV,
            "reload: sources changed: acme-rss (interval), brands unchanged, routes unchanged, "
            "channels unchanged",
        ),
        (
            _with(routes=[BASE["routes"][1], {**BASE["routes"][0], "group_wait": "0s"}]),
            ENV,
            "reload: sources unchanged, brands unchanged, routes changed: oncall (group_wait), "
            "routes reordered, channels unchanged",
        ),
        (
            BASE,
            {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/new-secret"},
            "reload: sources unchanged, brands unchanged, routes unchanged, "
            "channels changed: slack (webhook_url)",
        ),
        (
            _with(channels={}, routes=[], thresholds={"viral_engagement": 50}),
            ENV,
            "reload: sources unchanged, brands unchanged, -route oncall, -route all, "
            "-channel slack; also changed: thresholds",
        ),
        (
            _with(database_url="sqlite:///./other.db", http={"secret": "t" * 40}),
            ENV,
            "reload: sources unchanged, brands unchanged, routes unchanged, channels unchanged; "
            "changed but kept until a restart: database_url, http (the running values stay)",
        ),
    ],
)
def test_the_reload_line_names_what_changed(new, env, line):
    old = validate_config(BASE, "old.toml", ENV)
    assert compare(old, validate_config(new, "new.toml", env)).line() == line


def test_the_reload_line_never_shows_a_secret():
    old = validate_config(BASE, "old.toml", ENV)
    new = validate_config(
        _with(http={"secret": "t" * 40}),
        "new.toml",
        {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/new-secret"},
    )
    line = compare(old, new).line()
    assert "secret" not in line.replace("kept", "") and "hooks.slack.com" not in line
    assert "t" * 40 not in line and "s" * 40 not in line


def test_a_reload_keeps_the_running_database_and_http_endpoint():
    old = validate_config(BASE, "old.toml", ENV)
    new = validate_config(
        _with(database_url="sqlite:///./other.db", http={"secret": "t" * 40}, scoring_processes=0),
        "new.toml",
        ENV,
    )
    kept = keep_restart_keys(old, new)
    assert kept.database_url == old.database_url
    assert kept.http == old.http
    assert kept.scoring_processes == old.scoring_processes
