"""`emberwatch users`: add, list, set-password and remove console users, on SQLite and
PostgreSQL; passwords come from stdin (or a terminal prompt), never from an argument."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlmodel import Session, select

from emberwatch.cli import cli
from emberwatch.console.users import (
    check_password,
    session_user,
    start_session,
)
from emberwatch.models import UserRecord
from tests.console.auth_helpers import use_cheap_hashes

NOW = datetime.now(UTC)


@pytest.fixture
def config_file(tmp_path, db_url, engine):
    path = tmp_path / "emberwatch.toml"
    path.write_text(
        f'database_url = "{db_url}"\n[[brands]]\nname = "acme"\ninclude = ["acme"]\n',
        encoding="utf-8",
    )
    return str(path)


@pytest.fixture
def cheap(monkeypatch):
    use_cheap_hashes(monkeypatch)


def users(config_file, *args, input=None):
    return CliRunner().invoke(cli, ["users", *args, "--config", config_file], input=input)


def record(engine, name) -> UserRecord | None:
    with Session(engine) as session:
        return session.exec(select(UserRecord).where(UserRecord.name == name)).first()


def test_add_stores_an_argon2id_hash_at_the_real_cost_never_the_password(config_file, engine):
    result = users(
        config_file,
        "add",
        "ana",
        "--role",
        "responder",
        "--password-stdin",
        input="s3cret horse battery\n",
    )
    assert result.exit_code == 0, result.output
    assert result.output == "user ana added (responder)\n"
    stored = record(engine, "ana")
    assert stored.role == "responder"
    assert stored.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert "s3cret" not in stored.password_hash
    assert check_password(engine, "ana", "s3cret horse battery", NOW).reason == "ok"


def test_list_shows_names_roles_and_lockouts(config_file, engine, cheap):
    for name, role in (("bo", "viewer"), ("ana", "admin")):
        assert (
            users(
                config_file, "add", name, "--role", role, "--password-stdin", input="long enough\n"
            ).exit_code
            == 0
        )
    # `users list` judges the lock by the real clock, so lock at the real time, not at the
    # module's import time (a long suite run would otherwise see the lock already lifted).
    for _ in range(5):
        check_password(engine, "bo", "wrong", datetime.now(UTC))
    table = users(config_file, "list")
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split()[:2] == ["NAME", "ROLE"]
    assert lines[1].split()[:2] == ["ana", "admin"] and lines[2].split()[:2] == ["bo", "viewer"]
    rows = [
        json.loads(line)
        for line in users(config_file, "list", "--format", "jsonl").output.splitlines()
    ]
    assert [(r["name"], r["role"]) for r in rows] == [("ana", "admin"), ("bo", "viewer")]
    assert rows[0]["locked_until"] is None and rows[1]["locked_until"] is not None


def test_set_password_changes_it_unlocks_and_ends_every_session(config_file, engine, cheap):
    users(
        config_file, "add", "ana", "--role", "viewer", "--password-stdin", input="first password\n"
    )
    user = check_password(engine, "ana", "first password", NOW).user
    token = start_session(engine, user, NOW, timedelta(hours=1))
    for _ in range(5):
        check_password(engine, "ana", "wrong", NOW)
    result = users(
        config_file, "set-password", "ana", "--password-stdin", input="second password\n"
    )
    assert result.exit_code == 0, result.output
    assert result.output == "password of ana changed; 1 session ended\n"
    assert session_user(engine, token, NOW) is None
    assert check_password(engine, "ana", "first password", NOW).reason == "wrong"
    assert check_password(engine, "ana", "second password", NOW).reason == "ok"


def test_remove_deletes_the_user_and_their_sessions(config_file, engine, cheap):
    users(config_file, "add", "ana", "--role", "viewer", "--password-stdin", input="long enough\n")
    user = check_password(engine, "ana", "long enough", NOW).user
    token = start_session(engine, user, NOW, timedelta(hours=1))
    check_password(engine, "ana", "wrong", NOW)
    result = users(config_file, "remove", "ana")
    assert result.exit_code == 0 and result.output == "user ana removed\n"
    assert record(engine, "ana") is None and session_user(engine, token, NOW) is None


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ["add", "ana", "--role", "root", "--password-stdin"],
            "long enough\n",
            "Invalid value for '--role'",
        ),
        (
            ["add", "ana", "--role", "viewer", "--password-stdin"],
            "short\n",
            "password too short: use at least 8",
        ),
        (["add", "ana", "--role", "viewer", "--password-stdin"], "\n", "read an empty line"),
        (["add", "ana", "--role", "viewer"], "long enough\n", "give --password-stdin"),
        (
            ["add", "a b", "--role", "viewer", "--password-stdin"],
            "long enough\n",
            "user name 'a b' not allowed",
        ),
        (
            ["add", "bo", "--role", "viewer", "--password-stdin"],
            "long enough\n",
            "user 'bo' exists",
        ),
        (["set-password", "nobody", "--password-stdin"], "long enough\n", "no user 'nobody'"),
        (["remove", "nobody"], None, "no user 'nobody' (see `emberwatch users list`)"),
    ],
)
def test_mistakes_are_one_line_errors(config_file, engine, cheap, args, stdin, message):
    users(config_file, "add", "bo", "--role", "viewer", "--password-stdin", input="long enough\n")
    result = users(config_file, *args, input=stdin)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    if not message.startswith("Invalid value"):
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_every_users_command_has_help_with_an_example():
    for command in ("add", "list", "set-password", "remove"):
        result = CliRunner().invoke(cli, ["users", command, "--help"])
        assert result.exit_code == 0 and "emberwatch users " + command in result.output
    overview = CliRunner().invoke(cli, ["users", "--help"]).output
    assert "viewer" in overview and "responder" in overview and "admin" in overview
