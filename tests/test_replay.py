"""``emberwatch replay``: the same figures as the live pipeline, timers honoured, nothing
stored where the config points, and one clear line for a bad input line."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import Session, select

from emberwatch import db as database
from emberwatch.alerts.lifecycle import act
from emberwatch.alerts.policy import evaluate
from emberwatch.cli import cli
from emberwatch.digest import digest_due, enqueue_digest, last_queued_day
from emberwatch.ingest import Runtime, commit_poll, match_stage
from emberwatch.mention import Mention
from emberwatch.models import Incident, SourceState
from emberwatch.replay import ReplayInputError, _figures, _polls, _settings_for, read_mentions
from emberwatch.replay import replay as run_replay
from tests.helpers import ANGRY, HAPPY, make_config

START = datetime(2026, 3, 2, 9, tzinfo=UTC)
COMPLAINTS = (
    "Acme lost my order and support ignored five emails, I want a refund now",
    "Still no refund from Acme after three weeks, customer service is useless",
    "My kettle arrived broken and Acme refuses to replace it, absolutely furious",
    "Acme charged me twice for the toaster and nobody answers the phone",
    "Order 4411 never arrived, Acme keeps saying it is on its way, awful service",
    "I was promised a callback from Acme six times and nothing ever happened",
    "Acme cancelled my subscription without asking and kept the money, terrible",
    "The Acme courier left my parcel in the rain and support just laughed, disgusting",
)
CRITICAL = "@acme I am suing Acme, my lawyer is sending a letter before action about my refund"


def config_for(tmp_path: Path, **overrides):
    raw = {
        "database_url": f"sqlite:///{tmp_path / 'configured.db'}",
        "evaluate_interval": "60s",
        "channels": {
            "slack": {"webhook_url": "https://hooks.example/x"},
            "email": {
                "host": "smtp.example",
                "sender": "e@example.com",
                "recipients": ["m1@example.com", "m2@example.com"],
                "max_per_hour": 3,
            },
            "digest": {"recipients": ["ops@example.com"], "send_at": "12:00"},
        },
        "escalation": {"emails": ["boss@example.com"]},
    }
    raw.update(overrides)
    return make_config(**raw)


def line(external_id: str, text: str, at: datetime, **fields) -> dict:
    return {
        "source": "hackernews",
        "source_name": "hn",
        "external_id": external_id,
        "url": f"https://news.example/item?id={external_id}",
        "author": f"user{external_id}",
        "text": text,
        "published_at": at.isoformat(),
        **fields,
    }


def write(tmp_path: Path, lines: list[dict]) -> Path:
    path = tmp_path / "mentions.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in lines), encoding="utf-8")
    return path


def a_busy_morning() -> list[dict]:
    """Complaints from different people (one incident each), a thread that grows, a legal
    threat (critical), praise, over a few hours: enough to fill the email budget."""
    lines = []
    for n, complaint in enumerate(COMPLAINTS):
        lines.append(line(f"c{n}", complaint, START + timedelta(minutes=9 * n)))
    for n in range(6):
        lines.append(line(f"h{n}", HAPPY, START + timedelta(minutes=13 * n)))
    story = START + timedelta(minutes=20)
    growing = [
        {"at": (story + timedelta(minutes=30 * k)).isoformat(), "likes": 3 * 4**k, "replies": k}
        for k in range(1, 5)
    ]
    lines.append(line("s1", ANGRY, story, likes=2, replies=0, thread="hn:1", snapshots=growing))
    lines.append(line("s2", CRITICAL, START + timedelta(hours=2, minutes=5)))
    return lines


def live_figures(config, path: Path, resolve_after: timedelta | None) -> dict:
    """The same mentions through the live path: each poll's commit at its time, and the
    alert policy on every tick of its grid over every incident (plus after each poll that
    filed an alert, as ``run`` does), incidents resolved when replay resolves them, the
    digest checked every tick; then what the outbox holds, counted as replay counts."""
    config = config.model_copy(update={"scoring_processes": 0})
    sightings = read_mentions(path)
    polls = _polls(sightings, _settings_for(config))
    engine = database.create_db_engine(f"sqlite:///{path.parent / 'live.db'}")
    database.upgrade(engine)
    now = polls[0][0]
    runtime = Runtime.build(config, engine, None, clock=lambda: now)  # type: ignore[arg-type]
    with Session(engine) as session:
        session.add(SourceState(name="hn", type="hackernews"))
        session.commit()
    every = config.evaluate_interval
    end = polls[-1][0] + timedelta(hours=1)
    by_time = {at: (settings, seen) for at, settings, seen in polls}
    digest = config.channels.digest
    ticks = math.floor((end - now) / every) + 1
    for step in range(ticks):
        now = polls[0][0] + step * every
        if resolve_after is not None:
            with Session(engine) as session:
                due = [
                    (i.id, i.episode)
                    for i in session.exec(select(Incident)).all()
                    if i.status != "resolved" and now - resolve_after >= i.opened_at - every
                    and now >= _tick(polls[0][0], every, i.opened_at + resolve_after)
                ]  # fmt: skip
            for incident_id, episode in due:
                act(engine, incident_id, "resolve", actor="t", via="t", now=now, episode=episode)
        evaluate(engine, config, now)
        if now in by_time:
            settings, seen = by_time[now]
            matched = match_stage([s.mention for s in seen], runtime.matchers, settings)
            report = commit_poll(runtime, settings, matched, None, 1, now, bookkeeping=False)
            if report.alerts:
                evaluate(engine, config, now)
        if digest is not None:
            day = digest_due(now, digest.send_at, digest.timezone, last_queued_day(engine))
            if day is not None and now > polls[0][0]:
                enqueue_digest(engine, day, now)
    mentions = len({(s.mention.source, s.mention.external_id) for s in sightings})
    return _figures(engine, config, mentions).as_json()


def _tick(start: datetime, every: timedelta, moment: datetime) -> datetime:
    return start + max(math.ceil((moment - start) / every), 0) * every


@pytest.mark.parametrize("resolve_after", [timedelta(hours=2), None])
def test_replay_counts_what_the_live_pipeline_enqueues(tmp_path, resolve_after):
    config = config_for(tmp_path)
    path = write(tmp_path, a_busy_morning())
    replayed = run_replay(config, read_mentions(path), resolve_after=resolve_after).as_json()
    live = live_figures(config, path, resolve_after)
    assert replayed == live
    assert replayed["incidents"] >= 8
    assert replayed["channels"]["email"]["rollups"] >= 1  # the budget of 3 an hour held
    assert replayed["channels"]["slack"]["messages"] >= 1  # the legal threat is critical


def test_an_escalation_comes_only_after_its_interval(tmp_path):
    path = write(tmp_path, [line("1", ANGRY, START)])
    # The clock runs an hour past the last mention: escalating after 15 minutes fits
    # three times, after 2 hours never.
    soon = run_replay(config_for(tmp_path), read_mentions(path))
    late = run_replay(
        config_for(tmp_path, escalation={"emails": ["boss@example.com"], "after": "2h"}),
        read_mentions(path),
    )
    assert soon.channels["email"].messages == 1 + 3
    assert late.channels["email"].messages == 1
    assert (soon.alerts, soon.incidents) == (1, 1)


def test_a_repeat_comes_only_after_the_repeat_interval(tmp_path):
    routes = [{"name": "all", "channels": ["email"], "repeat_interval": "45m"}]
    path = write(tmp_path, [line("1", ANGRY, START)])
    result = run_replay(config_for(tmp_path, routes=routes, escalation={}), read_mentions(path))
    # Told after the group wait, again 45 minutes later; the hour ends before a third.
    assert result.channels["email"].messages == 2


def test_json_has_exactly_the_documented_shape(tmp_path):
    config_path = tmp_path / "c.toml"
    config_path.write_text(
        '[[brands]]\nname = "acme"\ninclude = ["Acme"]\n'
        '[channels.slack]\nwebhook_url = "https://hooks.example/x"\n'
        '[channels.email]\nhost = "smtp.example"\nsender = "e@example.com"\n'
        'recipients = ["m@example.com"]\n'
        f'database_url = "sqlite:///{tmp_path / "configured.db"}"\n'.replace(
            "database_url", "[thresholds]\n#"
        ),
        encoding="utf-8",
    )
    path = write(tmp_path, [line("1", ANGRY, START), line("2", HAPPY, START)])
    result = CliRunner().invoke(cli, ["replay", str(path), "--config", str(config_path),
                                      "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"mentions", "alerts", "incidents", "channels"}
    assert (data["mentions"], data["alerts"], data["incidents"]) == (2, 1, 1)
    assert set(data["channels"]) == {"slack", "email"}
    for figures in data["channels"].values():
        assert set(figures) == {"messages", "peak_per_hour", "rollups"}
        assert all(isinstance(v, int) for v in figures.values())


def test_a_bad_line_is_one_line_naming_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps(line("1", HAPPY, START)) + "\n" + '{"source": "hackernews", "text": "x"\n',
        encoding="utf-8",
    )
    config_path = tmp_path / "c.toml"
    config_path.write_text('[[brands]]\nname = "acme"\ninclude = ["Acme"]\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["replay", str(path), "--config", str(config_path)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert f"{path}:2: not JSON" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"published_at": None}, "published_at is missing"),
        ({"published_at": "yesterday"}, "published_at"),
        ({"likes": -1}, "likes must be a whole number"),
        ({"snapshots": [{"at": "2026-03-02T10:00:00Z", "likes": "many"}]}, "snapshots[0].likes"),
        ({"external_id": ""}, "external_id is missing"),
    ],
)
def test_each_bad_field_is_named(tmp_path, fields, reason):
    path = write(tmp_path, [line("1", HAPPY, START), {**line("2", HAPPY, START), **fields}])
    with pytest.raises(ReplayInputError) as caught:
        read_mentions(path)
    assert caught.value.line == 2 and reason in str(caught.value)


def test_nothing_is_written_to_the_configured_database(tmp_path):
    config = config_for(tmp_path)
    path = write(tmp_path, a_busy_morning()[:5])
    run_replay(config, read_mentions(path))
    assert not (tmp_path / "configured.db").exists()


def test_snapshots_are_seen_later_with_their_counts(tmp_path):
    growing = [{"at": (START + timedelta(hours=1)).isoformat(), "likes": 900, "replies": 40}]
    path = write(tmp_path, [line("1", HAPPY, START, likes=1, snapshots=growing)])
    sightings = read_mentions(path)
    assert [(s.at, s.mention.likes) for s in sightings] == [
        (START, None),
        (START + timedelta(hours=1), 900),
    ]
    assert isinstance(sightings[0].mention, Mention)


def test_scoring_ahead_in_a_worker_gives_the_same_figures(tmp_path):
    """Large replays score new mentions in a worker process; the figures must not move."""
    config = config_for(tmp_path)
    sightings = read_mentions(write(tmp_path, a_busy_morning()))
    here = run_replay(config, sightings, score_ahead=False)
    ahead = run_replay(config, sightings, score_ahead=True)
    assert ahead == here
