"""Helpers the benchmarks share: result rows, peak RSS, the machine, mention texts, databases.

Every figure a bench reports is a ratio or is printed beside the baseline it was measured
against in the same run, because absolute speeds only mean something on one machine.
A bench never asserts on timing: ``verdict`` is informational.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from emberwatch import db as database

PG_URL = os.environ.get(
    "EMBERWATCH_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass(frozen=True)
class Row:
    """One line of a bench's table: a figure, its value, what it is compared with."""

    bench: str
    figure: str
    value: str
    baseline: str = ""
    verdict: str = ""  # "pass", "FAIL" or "" when there is no target


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("pass" if ok else "FAIL")


def print_table(rows: list[Row], title: str | None = None) -> None:
    header = ("bench", "figure", "value", "baseline / target", "vs target")
    cells = [header, *[(r.bench, r.figure, r.value, r.baseline, r.verdict) for r in rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    if title:
        print(f"## {title}")
    for i, line in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small N, for a smoke check")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON here")
    return parser


def finish(rows: list[Row], args: argparse.Namespace, title: str) -> None:
    print_table(rows, title)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows]), encoding="utf-8")


def peak_rss_mib() -> float:
    """This process's peak resident set size (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        ram = f"{kib / 1024**2:.0f} GiB"
    except (OSError, StopIteration):
        ram = "unknown RAM"
    return f"{os.cpu_count()} CPUs ({cpu}), {ram}, Python {platform.python_version()}"


# -- mention texts --------------------------------------------------------------------------
# Sentences a forum comment or a review might hold. Roughly one mention in five is built from
# the negative pool, and half of those carry a complaint's cues (an order, a refund, support).

NEUTRAL = (
    "I have been using {brand} for about {n} months now at work.",
    "We moved our team over to {brand} {product} last {day}.",
    "Does anyone know whether {brand} ships the {product} to Canada?",
    "The {product} from {brand} arrived in a plain brown box.",
    "{brand} announced a new {product} line this {day}, according to the blog post.",
    "Our office uses the {brand} {product} alongside a couple of other tools.",
    "The pricing page for {brand} lists three tiers and an enterprise plan.",
    "I read the {brand} changelog and the {product} got a firmware update.",
    "There is a thread about {brand} on the forum with {n} replies so far.",
    "Has anyone compared the {brand} {product} with the older model?",
    "The documentation covers setup in {n} steps and a troubleshooting section.",
    "My neighbour bought the same {product} from a local shop.",
    "It took {n} minutes to set up, mostly waiting for the update to download.",
    "The manual mentions a warranty of {n} years on the motor.",
)
POSITIVE = (
    "Honestly the {brand} {product} is great and the build quality is excellent.",
    "Support at {brand} sorted my question within an hour, really friendly people.",
    "Love the new {product}, it is quiet, fast and looks lovely on the counter.",
    "{brand} has been reliable for us, no complaints after {n} months.",
    "Impressed by how well the {product} handles heavy use, good value too.",
    "Delivery was quick and the packaging was neat, very happy with {brand}.",
)
NEGATIVE = (
    "The {brand} {product} stopped working after {n} days, which is disappointing.",
    "Honestly {brand} has gone downhill, the new {product} feels cheap and flimsy.",
    "The app update from {brand} is slow and buggy and the battery drains fast.",
    "I regret buying the {product}, it is noisy and the lid cracked already.",
    "Terrible experience with the {brand} {product}, awful design and poor quality.",
    "The {product} is worse than the old one and nobody at {brand} seems to care.",
)
COMPLAINT = (
    "{brand} lost my order and support ignored {n} emails, I want a refund now.",
    "Still no refund from {brand} after {n} weeks, customer service is useless.",
    "My {product} arrived broken and {brand} refuses to replace it, absolutely furious.",
    "{brand} charged me twice for the {product} and nobody answers the phone.",
    "Order #{n} never arrived, {brand} keeps saying it is on its way, awful service.",
    "I was promised a callback from {brand} {n} times and nothing ever happened.",
)
DETAIL = (
    "{name} from {city} ordered the {product} on the {ordinal} of {month}.",
    "We are in {city} and {name} handles the {product} account since {month}.",
    "{name} says the {city} store had {n} of them on the shelf in {month}.",
    "Bought mine in {month} at the {city} outlet, receipt number {n}{ordinal}.",
)
NAMES = (
    "Dana", "Priya", "Marco", "Lena", "Tomasz", "Aisha", "Jonas", "Mei", "Rafael", "Ingrid",
    "Kofi", "Sven", "Yuki", "Carmen", "Oskar", "Nadia", "Hugo", "Zofia", "Emeka", "Freya",
    "Luis", "Hana", "Piotr", "Amara", "Felix", "Greta", "Omar", "Ines", "Bram", "Sakura",
)  # fmt: skip
CITIES = (
    "Leeds", "Austin", "Lyon", "Krakow", "Porto", "Osaka", "Denver", "Ghent", "Malmo", "Cork",
    "Tampere", "Bilbao", "Graz", "Halifax", "Dunedin", "Turin", "Lagos", "Quito", "Perth",
    "Bergen", "Utrecht", "Brno", "Aarhus", "Nantes", "Tucson", "Leipzig", "Kyoto", "Cusco",
)  # fmt: skip
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
PRODUCTS = ("kettle", "toaster", "anvil", "router", "blender", "headphones", "scooter", "lamp")
DAYS = ("Monday", "Tuesday", "week", "month", "spring", "autumn", "weekend")
FILLER = (
    "anyway", "to be fair", "for what it is worth", "in my experience", "as far as I can tell",
    "at least for now", "so far", "by the way", "if that matters", "more or less",
)  # fmt: skip


def _sentence(rng: random.Random, pool: tuple[str, ...], brand: str) -> str:
    text = rng.choice(pool).format(
        brand=brand,
        product=rng.choice(PRODUCTS),
        day=rng.choice(DAYS),
        n=rng.randint(2, 90),
        name=rng.choice(NAMES),
        city=rng.choice(CITIES),
        month=rng.choice(MONTHS),
        ordinal=f"{rng.randint(1, 28)}th",
    )
    if rng.random() < 0.3:
        text = f"{text[:-1]}, {rng.choice(FILLER)}{text[-1]}"
    return text


def mention_text(rng: random.Random, brand: str = "Acme") -> tuple[str, str]:
    """One mention's text and its kind ("neutral", "positive", "negative", "complaint").

    Lengths follow a forum's mix: half are tweet-length (2 to 3 sentences), a third a
    paragraph (4 to 8), the rest a long comment (9 to 18).
    """
    roll = rng.random()
    kind = (
        "complaint"
        if roll < 0.10
        else "negative"
        if roll < 0.20
        else "positive"
        if roll < 0.45
        else "neutral"
    )
    size = rng.random()
    count = rng.randint(1, 2) if size < 0.5 else rng.randint(3, 6) if size < 0.85 else 0
    count = count or rng.randint(8, 16)
    lead = {"complaint": COMPLAINT, "negative": NEGATIVE, "positive": POSITIVE}.get(kind, NEUTRAL)
    # Every mention names the brand in its first sentence, as a search result would.
    sentences = [_sentence(rng, tuple(t for t in lead if "{brand}" in t), brand)]
    # A personal detail or two (names, places, dates) makes each mention its own story.
    sentences.insert(rng.randint(0, 1), _sentence(rng, DETAIL, brand))
    if count > 2:
        sentences.append(_sentence(rng, DETAIL, brand))
    for _ in range(count - 1):
        # Negative mentions stay mostly negative; the rest is neutral colour.
        pool = lead if kind != "neutral" and rng.random() < 0.5 else NEUTRAL
        sentences.append(_sentence(rng, pool, brand))
    return " ".join(sentences), kind


# -- databases ------------------------------------------------------------------------------


@contextmanager
def sqlite_engine() -> Iterator[Engine]:
    """A migrated SQLite database in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="emberwatch-bench-") as folder:
        engine = database.create_db_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        database.upgrade(engine)
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def postgres_engine(url: str = PG_URL) -> Iterator[Engine]:
    """A migrated database of its own on the local PostgreSQL, dropped afterwards."""
    admin = sa.create_engine(database.normalize_url(url), isolation_level="AUTOCOMMIT")
    name = f"emberwatch_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = None
    try:
        own = make_url(database.normalize_url(url)).set(database=name)
        engine = database.create_db_engine(own.render_as_string(hide_password=False))
        database.upgrade(engine)
        yield engine
    finally:
        if engine is not None:
            engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def quiet_logs() -> None:
    """Keep the pipeline's per-poll INFO lines out of the bench's output, and let SIGTERM
    unwind (so temporary files and databases are removed)."""
    import logging
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    logging.getLogger("emberwatch").setLevel(logging.ERROR)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
