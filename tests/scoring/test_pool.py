"""The scoring pool scores in a real worker process exactly as the poller would."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta

import pytest

from emberwatch.mention import Mention
from emberwatch.scoring import Scorer
from emberwatch.scoring.pool import MIN_BATCH, Presumed, ScoringPool, score_as_new

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
TEXTS = (
    "Acme lost my order and support hung up on me twice. I want a refund now!",
    "Loving the new Acme kettle, it boils in a minute and looks great.",
    "Is Acme open on Sunday? Asking for a friend.",
    "Acme charged me twice and nobody answers. Lawyer is next, this is a scam.",
)


def batch(size: int) -> list[Presumed]:
    return [
        Presumed(
            Mention(
                source="reddit",
                external_id=str(i),
                url=f"https://reddit.example/r/x/comments/{i}",
                author=f"user{i}",
                author_followers=i * 100 or None,
                title=None,
                text=TEXTS[i % len(TEXTS)],
                published_at=NOW - timedelta(minutes=i),
                rating=(i % 5) + 1 if i % 3 == 0 else None,
                likes=i * 7 if i % 2 else None,
                replies=i if i % 2 else None,
            ),
            "acme",
            i % 4 == 0,
        )
        for i in range(size)
    ]


@pytest.fixture
def scorer() -> Scorer:
    return Scorer({"acme": {"kettle": 1.5}}, viral_threshold=200, high_reach_followers=1_000)


@pytest.fixture
def pool(scorer: Scorer):
    pool = ScoringPool(scorer)
    yield pool
    pool.close()


def test_a_worker_scores_a_batch_exactly_as_the_poller_does(scorer, pool):
    items = batch(MIN_BATCH + 8)
    future = pool.submit(items, NOW)
    assert future is not None
    assert future.result(timeout=60) == score_as_new(scorer, items, NOW)
    # The brand lexicon travelled with the scorer: without it "kettle" scores otherwise.
    assert future.result() != score_as_new(
        Scorer(viral_threshold=200, high_reach_followers=1_000), items, NOW
    )


def test_a_small_batch_is_left_to_the_poller(pool):
    assert pool.submit(batch(MIN_BATCH - 1), NOW) is None
    assert pool._executor is None  # no process was started for it


def test_a_dead_worker_costs_nothing_but_time(scorer, pool):
    pool.start()
    for pid in list(pool._executor._processes):  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
    items = batch(MIN_BATCH)
    # Whether the death is seen at submit or at result, the batch is still scored...
    try:
        future = pool.submit(items, NOW)
    except Exception as exc:  # pragma: no cover - would be the defect under test
        pytest.fail(f"submit raised {exc!r}")
    assert pool.result(future, items, NOW) == score_as_new(scorer, items, NOW)
    # ...and the next batch gets a new worker.
    again = pool.submit(items, NOW)
    assert again is not None
    assert again.result(timeout=60) == score_as_new(scorer, items, NOW)


def test_a_closed_pool_starts_again_when_needed(scorer, pool):
    items = batch(MIN_BATCH)
    pool.start()
    pool.close()
    assert pool._executor is None
    future = pool.submit(items, NOW)
    assert future is not None and future.result(timeout=60) == score_as_new(scorer, items, NOW)


def test_a_pool_needs_a_process():
    with pytest.raises(ValueError, match="at least 1"):
        ScoringPool(Scorer(), 0)


def test_a_worker_that_cannot_start_leaves_the_batch_to_the_poller(scorer, pool, monkeypatch):
    def no_process():
        raise OSError("fork failed: out of memory")

    monkeypatch.setattr(pool, "_pool", no_process)
    items = batch(MIN_BATCH)
    assert pool.submit(items, NOW) is None
    assert pool.result(None, items, NOW) == score_as_new(scorer, items, NOW)
