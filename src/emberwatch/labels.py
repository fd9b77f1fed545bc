"""Team labels: read, store, list and export them, and refit the learned layer on change.

A label says what a team member judged of one mention: ``complaint`` true or false, or
its ``category``. Labels come from a JSON-lines file (:func:`parse_file`, then
:func:`import_labels`) or from one stored mention (:func:`label_mention`). Either way the
labels and the layer refitted from all labels (:func:`refit`) commit in one transaction:
a file with one bad line stores nothing, and the stored layer always matches the labels.

The pipeline and ``emberwatch score`` read the newest layer with :func:`load_layer`;
:func:`newest_version` is the cheap check a poll makes to see if a newer one exists.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, select

from emberwatch import db as database
from emberwatch.config import Config
from emberwatch.errors import LabelError
from emberwatch.mention import Mention, parse_timestamp
from emberwatch.models import FittedModel, Label, MentionRecord
from emberwatch.scoring import Scorer, learned
from emberwatch.scoring.triage import CATEGORIES
from emberwatch.text import jsonl

log = logging.getLogger("emberwatch.labels")

FIELDS = ("complaint", "category")
KEEP_MODELS = 3  # fitted versions kept; older ones are deleted when a new one is stored
_MENTION_KEYS = frozenset(f.name for f in fields(Mention))
_LINE_KEYS = _MENTION_KEYS | {"complaint", "category", "brand", "labelled_by", "labelled_at"}


@dataclass(frozen=True)
class NewLabel:
    """One mention's labels as read from a line or the command line, not yet stored."""

    mention: Mention
    values: dict[str, str]
    brand: str | None = None
    labelled_by: str | None = None
    labelled_at: datetime | None = None
    mention_id: int | None = None


@dataclass(frozen=True)
class Refit:
    """What a refit did: the stored version (None when there are no labels), the labels
    it learned from and how long fitting took."""

    version: int | None
    n_labels: int
    seconds: float

    def line(self) -> str:
        if self.version is None:
            return "no labels: scores are the cues' alone"
        return (
            f"learned layer v{self.version} fitted from {self.n_labels} labels "
            f"in {self.seconds:.1f} s"
        )


@dataclass
class Stored:
    labels: int = 0
    mentions: int = 0
    refit: Refit | None = field(default=None)


def mention_key(mention: Mention) -> str:
    """The name two labels of one mention share: ``source:external_id``, or a hash of
    the text for a mention without an id."""
    if mention.source and mention.external_id:
        return f"{mention.source}:{mention.external_id}"[:600]
    digest = hashlib.sha256(mention.full_text.encode()).hexdigest()[:32]
    return f"text:{digest}"


def parse_line(data: Any) -> NewLabel:
    """One line's labels. Raises ``LabelError`` naming the field at fault."""
    if not isinstance(data, dict):
        raise LabelError(f"expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - _LINE_KEYS - {"snapshots", "scores", "id", "language"})
    if unknown:
        raise LabelError(f"unknown field {unknown[0]!r}; labels are 'complaint' and 'category'")
    values: dict[str, str] = {}
    if "complaint" in data and data["complaint"] is not None:
        flag = data["complaint"]
        if not isinstance(flag, bool):
            raise LabelError(f"complaint: {flag!r} is not true or false")
        values["complaint"] = "true" if flag else "false"
    if "category" in data and data["category"] is not None:
        category = data["category"]
        if category not in CATEGORIES:
            raise LabelError(f"category: {category!r} is not one of {', '.join(CATEGORIES)}")
        values["category"] = category
    if not values:
        raise LabelError('no label: give "complaint": true|false and/or "category"')
    try:
        mention = Mention.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise LabelError(f"mention: {exc}") from None
    if not mention.full_text.strip():
        raise LabelError("text: empty; a label needs the mention's text")
    brand = data.get("brand")
    by = data.get("labelled_by")
    for name, value in (("brand", brand), ("labelled_by", by)):
        if value is not None and not isinstance(value, str):
            raise LabelError(f"{name}: {value!r} is not a string")
    try:
        at = parse_timestamp(data.get("labelled_at"))
    except (ValueError, TypeError) as exc:
        raise LabelError(f"labelled_at: {exc}") from None
    return NewLabel(mention, values, brand or None, by or None, at)


def parse_file(path: str | Path) -> list[NewLabel]:
    """Every line of a JSON-lines labels file, or ``LabelError`` for the first bad one
    ("labels.jsonl: line 7: category: 'foo' is not one of ...")."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"{name}: cannot read: {exc}") from None
    return parse_lines(text.splitlines(), name)


def parse_lines(lines: Iterable[str], name: str) -> list[NewLabel]:
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LabelError(f"{name}: line {number}: not JSON: {exc.msg}") from None
        try:
            out.append(parse_line(data))
        except LabelError as exc:
            raise LabelError(f"{name}: line {number}: {exc}") from None
    return out


def import_labels(
    engine: Engine, scorer: Scorer, labels: list[NewLabel], *, by: str, via: str, now: datetime
) -> Stored:
    """Store labels and refit the layer, in one transaction."""
    with Session(engine) as session:
        stored = _store(session, labels, by=by, via=via, now=now)
        stored.refit = refit(session, scorer, now)
        session.commit()
    return stored


def label_mention(
    engine: Engine,
    scorer: Scorer,
    mention_id: int,
    values: dict[str, str],
    *,
    by: str,
    now: datetime,
    via: str = "cli",
) -> Stored:
    """Label one stored mention and refit. Raises ``LabelError`` for an unknown id.
    ``via`` says where the label came from: ``cli`` or ``console``."""
    with Session(engine) as session:
        record = session.get(MentionRecord, mention_id)
        if record is None:
            raise LabelError(f"no mention {mention_id}")
        label = NewLabel(_mention_of(record), values, brand=record.brand, mention_id=record.id)
        stored = _store(session, [label], by=by, via=via, now=now)
        stored.refit = refit(session, scorer, now)
        session.commit()
    return stored


def _store(session: Session, labels: list[NewLabel], *, by: str, via: str, now: datetime) -> Stored:
    rows = []
    for label in labels:
        mention_json = json.dumps(label.mention.to_dict(), ensure_ascii=False)
        for name, value in label.values.items():
            rows.append(
                {
                    "mention_id": label.mention_id,
                    "mention_key": mention_key(label.mention),
                    "mention": mention_json,
                    "brand": label.brand,
                    "field": name,
                    "value": value,
                    "labelled_by": label.labelled_by or by,
                    "labelled_at": label.labelled_at or now,
                    "via": via,
                }
            )
    if rows:
        session.execute(sa.insert(Label), rows)
    return Stored(labels=len(rows), mentions=len(labels))


def current_labels(session: Session) -> list[Label]:
    """Each mention's newest label of each field (newest by time, then by id)."""
    newest: dict[tuple[str, str], Label] = {}
    query = select(Label).order_by(Label.labelled_at, Label.id)  # type: ignore[arg-type]
    for label in session.exec(query):
        newest[(label.mention_key, label.field)] = label
    return list(newest.values())


def examples(session: Session) -> list[learned.Example]:
    """The current labels as learning examples, one per mention."""
    by_mention: dict[str, dict[str, Any]] = {}
    for label in current_labels(session):
        entry = by_mention.setdefault(
            label.mention_key, {"mention": label.mention, "brand": label.brand}
        )
        entry[label.field] = label.value
    out = []
    for entry in by_mention.values():
        complaint = entry.get("complaint")
        out.append(
            learned.Example(
                Mention.from_dict(json.loads(entry["mention"])),
                complaint=None if complaint is None else complaint == "true",
                category=entry.get("category"),
                brand=entry["brand"],
            )
        )
    return out


def refit(session: Session, scorer: Scorer, now: datetime) -> Refit:
    """Fit the layer from the current labels and store it as the next version; with no
    labels, store nothing (scores stay the cues')."""
    started = time.perf_counter()
    taught = examples(session)
    layer = learned.fit(taught, scorer)
    seconds = time.perf_counter() - started
    if layer is None:
        return Refit(None, 0, seconds)
    newest = session.exec(select(sa.func.max(FittedModel.version))).one()
    version = (newest or 0) + 1
    session.add(
        FittedModel(
            version=version,
            format=learned.FORMAT,
            fitted_at=now,
            n_labels=layer.n_labels,
            weights=layer.to_bytes(),
        )
    )
    session.execute(
        sa.delete(FittedModel).where(FittedModel.version <= version - KEEP_MODELS)  # type: ignore[arg-type,operator]
    )
    log.info("learned layer v%d fitted from %d labels in %.2f s", version, layer.n_labels, seconds)
    return Refit(version, layer.n_labels, seconds)


def newest_version(engine: Engine) -> int | None:
    """The newest fitted version, or None: one indexed query."""
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.max(FittedModel.version))).scalar()  # type: ignore[arg-type]


def load_layer(engine: Engine) -> learned.LearnedLayer | None:
    """The newest fitted layer, or None when there is none (or it is in a format this
    release does not read, which is logged)."""
    with Session(engine) as session:
        row = session.exec(
            select(FittedModel).order_by(FittedModel.version.desc()).limit(1)  # type: ignore[attr-defined]
        ).first()
        if row is None:
            return None
        if row.format != learned.FORMAT:
            log.warning("fitted model v%d has format %r; ignored", row.version, row.format)
            return None
        return learned.from_bytes(row.weights, version=row.version, fitted_at=row.fitted_at)


def stored_layer(database_url: str) -> learned.LearnedLayer | None:
    """The newest layer in a database that may not exist or be migrated yet (for
    ``emberwatch score``, which needs no database): None then, and nothing is created."""
    url = make_url(database.normalize_url(database_url))
    if url.get_backend_name() == "sqlite" and (
        not url.database or url.database == ":memory:" or not Path(url.database).exists()
    ):
        return None
    engine = database.create_db_engine(database_url)
    try:
        if not sa.inspect(engine).has_table(FittedModel.__tablename__):
            return None
        return load_layer(engine)
    finally:
        engine.dispose()


def scorer_for(config: Config, learned_layer: learned.LearnedLayer | None = None) -> Scorer:
    """The scorer a config describes: brand lexicons and terms, thresholds, and a layer."""
    return Scorer(
        {b.name: b.lexicon for b in config.brands},
        brand_terms={b.name: b.include for b in config.brands},
        viral_threshold=config.thresholds.viral_engagement,
        high_reach_followers=config.thresholds.high_reach_followers,
        learned=learned_layer,
    )


def export_line(label: Label) -> str:
    """A label as a line ``emberwatch labels import`` reads back, with who and when."""
    data = json.loads(label.mention)
    data[label.field] = label.value == "true" if label.field == "complaint" else label.value
    if label.brand:
        data["brand"] = label.brand
    data["labelled_by"] = label.labelled_by
    data["labelled_at"] = label.labelled_at.isoformat().replace("+00:00", "Z")
    return jsonl(data)


def _mention_of(record: MentionRecord) -> Mention:
    """The normalized mention a stored one came from."""
    names = [f.name for f in fields(Mention)]
    return Mention.from_dict({name: getattr(record, name, None) for name in names})
