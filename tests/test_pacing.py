"""Slack pacing per webhook holds across workers and nodes: slots are reserved in the
database with a conditional update, so nodes together send about one message a second."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
from sqlmodel import Session, select

from emberwatch import db as database
from emberwatch.delivery import deliver_due, pacing_key
from emberwatch.demo.servers import HTTPServer, Reply
from emberwatch.models import ChannelPacing, Delivery
from emberwatch.outbox import enqueue, reserve_slot
from tests.conftest import REPO, _postgres_schema_url
from tests.helpers import make_config

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
WEBHOOK = "https://hooks.slack.com/services/T000/B000/very-secret-token"


def _wait(slot: float | None) -> float:
    """Seconds from now until a reserved slot (given on the monotonic clock)."""
    assert slot is not None
    return slot - time.monotonic()


def test_it_gives_the_first_slot_now_and_each_next_one_a_gap_later(engine):
    gap = timedelta(seconds=30)
    waits = [_wait(reserve_slot(engine, "slack:a", gap, HOUR)) for _ in range(3)]
    assert [round(w) for w in waits] == [0, 30, 60]
    assert round(_wait(reserve_slot(engine, "slack:b", gap, HOUR))) == 0  # keys apart


def test_it_reserves_nothing_when_the_slot_lies_beyond_the_wait_allowed(engine):
    gap = timedelta(seconds=30)
    reserve_slot(engine, "slack:a", gap, HOUR)
    assert reserve_slot(engine, "slack:a", gap, timedelta(seconds=10)) is None
    assert round(_wait(reserve_slot(engine, "slack:a", gap, HOUR))) == 30  # still free


def test_racing_workers_on_two_engines_never_share_a_slot(engine, db_url):
    # A gap of an hour makes each slot's number readable from its wait, whatever the timing.
    other = database.create_db_engine(db_url)
    engines = [engine, other] * 4
    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            waits = list(
                pool.map(
                    lambda e: [
                        _wait(reserve_slot(e, "slack:a", HOUR, 100 * HOUR)) for _ in range(5)
                    ],
                    engines,
                )
            )
    finally:
        other.dispose()
    slots = sorted(round(w / HOUR.total_seconds()) for w in itertools.chain(*waits))
    assert slots == list(range(len(engines) * 5))


def test_the_pacing_key_is_per_webhook_and_never_holds_the_url():
    one = make_config(channels={"slack": {"webhook_url": WEBHOOK}})
    two = make_config(channels={"slack": {"webhook_url": WEBHOOK + "x"}})
    key = pacing_key(one, "slack")
    assert key is not None and key.startswith("slack:")
    assert "very-secret-token" not in key and "hooks.slack.com" not in key
    assert key != pacing_key(two, "slack")
    assert pacing_key(one, "email") is None


async def test_it_gives_rows_back_untried_when_no_slot_is_free_within_half_the_lease(engine):
    with Session(engine) as session:
        for key in ("s1", "s2", "s3"):
            enqueue(session, dedup_key=key, channel="slack", kind="rollup", now=NOW)
        session.commit()
    sent = []
    config = make_config(
        channels={"slack": {"webhook_url": WEBHOOK}},
        delivery={"slack_min_gap": "5s", "lease": "4s"},
    )

    def record(request):
        sent.append(request)
        return httpx.Response(200, text="ok")

    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as http:
        report = await deliver_due(config, engine, http, NOW)
    assert (report.sent, report.deferred) == (1, 2) and len(sent) == 1
    with Session(engine) as session:
        rows = session.exec(select(Delivery).order_by(Delivery.id)).all()
        (pacing,) = session.exec(select(ChannelPacing)).all()
    assert [(r.status, r.attempts, r.lease_until) for r in rows[1:]] == [("pending", 0, None)] * 2
    assert pacing.channel == pacing_key(config, "slack")


class _TimedSlack:
    """A Slack webhook server that notes when each post arrives."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.texts: list[str] = []
        self.lock = threading.Lock()
        self.server = HTTPServer(self.handle)

    def handle(self, method: str, path: str, body: bytes) -> Reply:
        with self.lock:
            self.arrivals.append(time.monotonic())
            self.texts.append(json.loads(body)["text"])
        return Reply(200, b"ok", "text/plain")


MESSAGES = 24  # more than one claim (20 rows), so both nodes hold rows at once


def test_two_nodes_send_at_most_one_message_a_second_to_one_webhook(tmp_path, postgres_database):
    db_url = _postgres_schema_url(postgres_database)
    slack = _TimedSlack()
    slack.server.start()
    webhook = f"{slack.server.base_url}/services/T000/B000/pacing"
    config = tmp_path / "pacing.toml"
    config.write_text(
        f'database_url = "{db_url}"\nevaluate_interval = "1s"\n'
        '[[brands]]\nname = "acme"\ninclude = ["Acme"]\n'
        f'[channels.slack]\nwebhook_url = "{webhook}"\n'
        '[[routes]]\nname = "all"\nchannels = ["slack", "digest"]\n'
        '[delivery]\ninterval = "0.5s"\nslack_min_gap = "1s"\n'
    )
    engine = database.create_db_engine(db_url)
    database.upgrade(engine)
    with Session(engine) as session:
        now = datetime.now(UTC)
        for n in range(MESSAGES):
            enqueue(
                session,
                dedup_key=f"pacing-{n}",
                channel="slack",
                kind="rollup",
                now=now,
                payload={"total": 1, "lines": [f"message {n}"]},
            )
        session.commit()
    env = {**os.environ, "EMBERWATCH_CONFIG": str(config)}
    logs = [(tmp_path / f"node{i}.log").open("w") for i in range(2)]
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "emberwatch", "run"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        for log in logs
    ]
    try:
        deadline = time.monotonic() + MESSAGES + 40
        while len(slack.arrivals) < MESSAGES and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)  # anything sent too many would arrive now
    finally:
        for node in nodes:
            node.send_signal(signal.SIGTERM)
        for node in nodes:
            node.wait(timeout=60)
        slack.server.stop()
        for log in logs:
            log.close()
    with Session(engine) as session:
        rows = session.exec(select(Delivery)).all()
    engine.dispose()
    arrivals = sorted(slack.arrivals)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    sender = {r.dedup_key: r.leased_by for r in rows}
    names = {name: "AB"[i] for i, name in enumerate(sorted(set(sender.values())))}
    order = "".join(
        names[sender[f"pacing-{text.split('message ')[1].split()[0]}"]] for text in slack.texts
    )
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    print(
        f"\ntwo-node pacing: {len(arrivals)} messages, {rate:.3f} a second, "
        f"shortest gap {min(gaps):.3f}s, {sum(g < 0.95 for g in gaps)} gaps under 0.95s, "
        f"senders in arrival order {order}"
    )
    trouble = [
        line
        for i in range(2)
        for line in (tmp_path / f"node{i}.log").read_text().splitlines()
        if " WARNING " in line or " ERROR " in line or "Traceback" in line
    ]
    assert len(arrivals) == MESSAGES and {r.status for r in rows} == {"sent"}, trouble[-20:]
    # Both nodes held rows at the same time, taking turns at the one webhook.
    assert re.search("ABA|BAB", order), order
    # One a second: the slots lie exactly a second apart on the database's clock. A send
    # leaves a few milliseconds after its slot on a quiet machine, up to about 150 ms on a
    # busy one, and a late send arrives that much closer to the next. Two nodes pacing
    # alone would send two a second, with gaps of any length.
    assert rate <= 1.02
    assert min(gaps) >= 0.5, gaps
