"""Team labels through the CLI, on real databases: import (all or nothing), list, export
that imports back, label one stored mention, and the layer that score and the pipeline use."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlmodel import Session, select

from emberwatch import db as database
from emberwatch import labels
from emberwatch.cli import CATEGORY_CHOICES, cli
from emberwatch.ingest import Runtime
from emberwatch.models import FittedModel, Label, MentionRecord
from emberwatch.scoring.triage import CATEGORIES
from tests.helpers import make_config
from tests.scoring.label_examples import examples

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BRANDS = '[[brands]]\nname = "kestrel"\ninclude = ["Kestrel"]\n'


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input)


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        f'database_url = "{db_url}"\n[[brands]]\nname = "kestrel"\ninclude = ["Kestrel"]\n'
    )
    engine = database.create_db_engine(db_url)
    database.upgrade(engine)
    engine.dispose()
    return path


def label_lines(n: int) -> list[str]:
    out = []
    for example in examples(n, seed=5):
        data = example.mention.to_dict()
        data["complaint"] = example.complaint
        data["category"] = example.category
        out.append(json.dumps(data))
    return out


def write(tmp_path: Path, lines: list[str], name: str = "labels.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def engine_of(config: Path):
    from emberwatch.config import load_config

    return database.create_db_engine(load_config(str(config)).database_url)


def test_import_stores_every_label_and_fits_a_layer(config, tmp_path):
    result = invoke(
        "labels", "import", str(write(tmp_path, label_lines(40))), "--config", str(config)
    )
    assert result.exit_code == 0, result.output
    assert "stored 80 labels of 40 mentions" in result.output
    assert "learned layer v1 fitted from 40 labels" in result.output
    engine = engine_of(config)
    with Session(engine) as session:
        assert len(session.exec(select(Label)).all()) == 80
        assert session.exec(select(FittedModel.version)).all() == [1]
    assert labels.load_layer(engine).n_labels == 40


def test_a_bad_line_stores_nothing_and_names_its_line(config, tmp_path):
    lines = label_lines(10)
    bad = json.loads(lines[6])
    bad["category"] = "foo"
    lines[6] = json.dumps(bad)
    path = write(tmp_path, lines)
    result = invoke("labels", "import", str(path), "--config", str(config))
    assert result.exit_code == 1
    assert f"{path}: line 7: category: 'foo' is not one of complaint, legal_threat" in result.output
    assert "Traceback" not in result.output
    with Session(engine_of(config)) as session:
        assert session.exec(select(Label)).all() == []
        assert session.exec(select(FittedModel)).all() == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 1: not JSON"),
        ('{"text": "x", "complaint": "yes"}', "line 1: complaint: 'yes' is not true or false"),
        ('{"text": "x"}', "line 1: no label"),
        ('{"text": "", "complaint": true}', "line 1: text: empty"),
        ('{"text": "x", "complaint": true, "catgory": "abuse"}', "unknown field 'catgory'"),
        ('{"text": "x", "complaint": true, "published_at": "soon"}', "line 1: mention:"),
    ],
)
def test_each_kind_of_bad_line_is_one_clear_message(tmp_path, line, message):
    path = write(tmp_path, [line])
    result = invoke("labels", "import", str(path), "--config", str(tmp_path / "none.toml"))
    assert result.exit_code == 1 and message in result.output, result.output


def test_export_reads_back_as_the_same_labels(config, tmp_path, db_url):
    assert (
        invoke(
            "labels", "import", str(write(tmp_path, label_lines(12))), "--config", str(config)
        ).exit_code
        == 0
    )
    exported = invoke("labels", "export", "--config", str(config))
    assert exported.exit_code == 0
    other = tmp_path / "other"
    other.mkdir()
    copy = other / "c.toml"
    copy.write_text(f'database_url = "sqlite:///{other / "o.db"}"\n{BRANDS}')
    database.upgrade(database.create_db_engine(f"sqlite:///{other / 'o.db'}"))
    again = invoke(
        "labels", "import", str(write(other, exported.output.splitlines())), "--config", str(copy)
    )
    assert again.exit_code == 0, again.output
    assert invoke("labels", "export", "--config", str(copy)).output == exported.output


def test_a_newer_label_of_a_mention_replaces_the_older_one(config, tmp_path):
    first = {"source": "x", "external_id": "1", "text": "zero bars again", "complaint": True}
    invoke(
        "labels",
        "import",
        str(write(tmp_path, [json.dumps(first)], "a.jsonl")),
        "--config",
        str(config),
    )
    invoke(
        "labels",
        "import",
        str(write(tmp_path, [json.dumps({**first, "complaint": False})], "b.jsonl")),
        "--config",
        str(config),
    )
    listed = invoke("labels", "list", "--config", str(config), "--format", "jsonl")
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [(r["field"], r["value"]) for r in rows] == [("complaint", "false")]
    everything = invoke("labels", "list", "--all", "--config", str(config), "--format", "jsonl")
    assert len(everything.output.splitlines()) == 2


def test_mentions_label_labels_a_stored_mention_and_refits(config):
    engine = engine_of(config)
    with Session(engine) as session:
        record = MentionRecord(
            source="rss", external_id="a1", source_name="news", brand="kestrel",
            text="Kestrel zero bars at Leeds", first_seen_at=NOW, language="en",
        )  # fmt: skip
        session.add(record)
        session.commit()
        mention_id = record.id
    result = invoke(
        "mentions", "label", str(mention_id), "--complaint", "yes", "--category", "complaint",
        "--by", "sam", "--config", str(config),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        f"mention {mention_id} labelled complaint true, category complaint by sam" in result.output
    )
    with Session(engine) as session:
        stored = session.exec(select(Label)).all()
    assert {(lab.field, lab.value, lab.labelled_by, lab.via, lab.mention_id) for lab in stored} == {
        ("complaint", "true", "sam", "cli", mention_id),
        ("category", "complaint", "sam", "cli", mention_id),
    }
    assert labels.newest_version(engine) == 1
    shown = invoke("mentions", "--config", str(config), "--format", "jsonl")
    assert json.loads(shown.output.splitlines()[0])["language"] == "en"
    missing = invoke("mentions", "label", "999", "--complaint", "no", "--config", str(config))
    assert missing.exit_code == 1 and "no mention 999" in missing.output
    neither = invoke("mentions", "label", str(mention_id), "--config", str(config))
    assert neither.exit_code == 2


def test_score_uses_the_stored_layer_and_is_unchanged_without_one(config, tmp_path):
    line = json.dumps({"text": "Kestrel zero bars at the campsite since Tuesday"}) + "\n"
    bare = invoke("score", input=line).output
    assert invoke("score", "--config", str(config), input=line).output == bare
    invoke("labels", "import", str(write(tmp_path, label_lines(200))), "--config", str(config))
    taught = json.loads(invoke("score", "--config", str(config), input=line).output)["scores"]
    assert any(r.startswith("learned from ") for r in taught["reasons"])
    assert taught["complaint"] > json.loads(bare)["scores"]["complaint"]


def test_score_needs_no_database_to_exist(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "absent.db"}"\n{BRANDS}')
    result = invoke("score", "--config", str(config), input='{"text": "fine"}\n')
    assert result.exit_code == 0 and not (tmp_path / "absent.db").exists()


def test_the_pipeline_picks_up_a_newer_layer(config, tmp_path, monkeypatch):
    from emberwatch.config import load_config

    loaded = load_config(str(config))
    engine = engine_of(config)
    rt = Runtime.build(loaded, engine, httpx.AsyncClient())
    assert rt.scorer.learned is None and rt.learned_version is None
    assert rt.refresh_learned() is False
    invoke("labels", "import", str(write(tmp_path, label_lines(30))), "--config", str(config))
    assert rt.refresh_learned() is True
    assert rt.learned_version == 1 and rt.scorer.learned.n_labels == 30
    assert rt.refresh_learned() is False
    rebuilt = Runtime.build(loaded, engine, httpx.AsyncClient())
    assert rebuilt.learned_version == 1


def test_label_commands_have_help_with_examples():
    for command in (
        ["labels", "import"],
        ["labels", "list"],
        ["labels", "export"],
        ["mentions", "label"],
    ):
        result = invoke(*command, "--help")
        assert result.exit_code == 0 and "Example:" in result.output


def test_the_cli_offers_exactly_the_scorer_categories():
    assert tuple(CATEGORY_CHOICES) == CATEGORIES


def test_pipeline_config_builds_scorer_with_layer():
    assert labels.scorer_for(make_config()).learned is None
