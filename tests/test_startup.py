"""Start-up: each command imports only what it uses.

``emberwatch --help``, ``score`` without ``--config`` and ``sources parse`` used to import
the config loader, which imports pydantic, every connector and the channels' SQLAlchemy
tables: half a second before the first line; ``sources parse`` also imported httpx and
anyio, which only a connector's ``fetch`` uses. Each test runs the real command in a fresh
interpreter and reads ``sys.modules`` when it has finished. How fast they start is
measured by ``bench/startup.py``, not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import emberwatch

SRC = Path(emberwatch.__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Run the command as the console script does, then write the modules it imported.
RUN = """
import json, sys
out, preload, *args = sys.argv[1:]
for name in filter(None, preload.split(",")):
    __import__(name)
sys.argv = ["emberwatch", *args]
from emberwatch.cli import main
try:
    main()
finally:
    with open(out, "w") as f:
        json.dump(sorted(sys.modules), f)
"""

# What none of the three commands needs: the database, the web console, plotting, the
# config loader and the channels it pulls in, and (except the one parsed with) connectors.
HEAVY = ("sqlalchemy", "sqlmodel", "psycopg", "alembic", "matplotlib", "aiohttp")
# What a connector needs for its settings and its fetch, which --help and score do not.
CONNECTOR_NEEDS = {"pydantic", "httpx", "anyio", "emberwatch.sources"}
OURS = ("emberwatch.config", "emberwatch.channels", "emberwatch.db", "emberwatch.models")
# What `score` without --config does not need: pathlib (and urllib.parse through it), the
# signal handling of `run`, and the error classes, which only a raised error brings.
SCORE_NEEDS_NOT = {"pathlib", "urllib.parse", "signal", "emberwatch.errors"}
# What only a connector's fetch needs: parsing a saved body sends no request.
HTTP_CLIENT = ("httpx", "httpcore", "anyio", "emberwatch.sources._http")

LINES = (
    '{"text": "Order #1234 still not here after 3 weeks", "author_followers": 900}\n'
    '{"source": "reddit", "text": "love the new app", "likes": 3, '
    '"snapshots": [{"at": "2026-01-01T00:00:00Z", "likes": 1, "reposts": 0, "replies": 0}]}\n'
)


def modules_after(
    tmp_path: Path, *args: str, stdin: str = "", preload: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """The finished command and every module it imported."""
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBERWATCH_")}
    env["PYTHONPATH"] = str(SRC)
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(out), ",".join(preload), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,  # no ./emberwatch.toml here
        env=env,
        check=False,
    )
    return done, set(json.loads(out.read_text()))


def forbidden(modules: set[str], allowed_connector: str | None = None) -> list[str]:
    """The modules of ``modules`` a start-up-critical command must not import."""
    found = []
    for name in modules:
        top = name.split(".")[0]
        # emberwatch.sources._http and the like are the connectors' shared helpers.
        connector = name.startswith("emberwatch.sources.") and name.split(".")[2][0] != "_"
        if (
            top in HEAVY
            or name.startswith(OURS)
            or (connector and name != f"emberwatch.sources.{allowed_connector}")
        ):
            found.append(name)
    return sorted(found)


def http_client(modules: set[str]) -> list[str]:
    """The modules of ``modules`` that only sending a request needs."""
    return sorted(m for m in modules if m in HTTP_CLIENT or m.split(".")[0] in HTTP_CLIENT)


def test_help_imports_no_config_database_or_connector(tmp_path):
    done, modules = modules_after(tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    assert "score" in done.stdout
    assert forbidden(modules) == []
    assert not (CONNECTOR_NEEDS | {"emberwatch.scoring"}) & modules


def test_score_without_config_imports_no_config_database_or_connector(tmp_path):
    done, modules = modules_after(tmp_path, "score", stdin=LINES)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["scores"]["category"] for line in done.stdout.splitlines()]
    assert len(done.stdout.splitlines()) == 2
    assert forbidden(modules) == []
    assert not CONNECTOR_NEEDS & modules
    assert not SCORE_NEEDS_NOT & modules


def test_score_on_empty_input_imports_no_config_database_or_connector(tmp_path):
    done, modules = modules_after(tmp_path, "score")
    assert (done.returncode, done.stdout) == (0, "")
    assert forbidden(modules) == []
    assert not CONNECTOR_NEEDS & modules
    assert not SCORE_NEEDS_NOT & modules


def test_the_check_sees_what_score_does_not_need(tmp_path):
    # The control: the same run with pathlib and the error classes imported first.
    done, modules = modules_after(tmp_path, "score", preload=("pathlib", "emberwatch.errors"))
    assert done.returncode == 0, done.stderr
    assert {"pathlib", "urllib.parse", "emberwatch.errors"} <= SCORE_NEEDS_NOT & modules


def test_score_still_reports_a_bad_line_and_a_missing_brand(tmp_path):
    # The error classes are not imported for score; its errors still come out as one line.
    done, _ = modules_after(tmp_path, "score", stdin='{"text": "x", "likes": "9"}\n')
    assert done.returncode == 1
    assert done.stderr == "emberwatch: stdin line 1: likes must be a whole number, not '9'\n"
    done, _ = modules_after(tmp_path, "score", "--brand", "acme")
    assert done.returncode == 1
    assert "no such brand in the config" in done.stderr
    assert "Traceback" not in done.stderr


def test_sources_parse_imports_only_its_connector(tmp_path):
    body = FIXTURES / "hackernews" / "search_by_date.json"
    done, modules = modules_after(tmp_path, "sources", "parse", "hackernews", str(body))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "emberwatch.sources.hackernews" in modules
    assert forbidden(modules, allowed_connector="hackernews") == []
    assert http_client(modules) == []


def test_an_unknown_source_type_still_names_the_known_ones(tmp_path):
    body = FIXTURES / "hackernews" / "search_by_date.json"
    done, modules = modules_after(tmp_path, "sources", "parse", "nosuch", str(body))
    assert done.returncode == 2
    assert "known types: appstore, bluesky," in done.stderr
    assert forbidden(modules) == []


def test_the_check_sees_a_forbidden_import(tmp_path):
    # The control: the same run with SQLAlchemy and a second connector imported first.
    done, modules = modules_after(
        tmp_path, "score", preload=("sqlalchemy", "emberwatch.sources.rss")
    )
    assert done.returncode == 0, done.stderr
    assert {"sqlalchemy", "emberwatch.sources.rss"} <= set(forbidden(modules))
    assert "emberwatch.sources.rss" in forbidden(modules, allowed_connector="hackernews")
    assert "emberwatch.sources.rss" not in forbidden(modules, allowed_connector="rss")


def test_the_check_sees_an_http_client(tmp_path):
    # The control for sources parse: the same run with the connectors' HTTP helper (and
    # through it httpx and anyio) imported first.
    body = FIXTURES / "hackernews" / "search_by_date.json"
    done, modules = modules_after(
        tmp_path,
        "sources",
        "parse",
        "hackernews",
        str(body),
        preload=("emberwatch.sources._http",),
    )
    assert done.returncode == 0, done.stderr
    assert {"httpx", "anyio", "emberwatch.sources._http"} <= set(http_client(modules))


def test_score_with_config_still_reads_the_config(tmp_path):
    # The lazy imports must not lose the config path: with --config the loader is used.
    config = tmp_path / "c.toml"
    config.write_text('[[brands]]\nname = "acme"\ninclude = ["Acme"]\n')
    done, modules = modules_after(
        tmp_path, "score", "--config", str(config), "--brand", "acme", stdin=LINES
    )
    assert done.returncode == 0, done.stderr
    assert "emberwatch.config" in modules
