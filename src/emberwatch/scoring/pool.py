"""Scoring in a separate process, so that it runs beside storing and filing on another core.

Scoring is most of a poll's CPU, and Python runs one thread's bytecode at a time: while
one poll stores and files its alerts, the next one's mentions can be scored in a worker
process. The worker holds a copy of the poller's :class:`Scorer` and scores each mention
as if it were new (its current counts its only snapshot), which is what the pipeline
needs for every mention it has not stored before. A stored mention whose counts changed
is scored again in the poller, with its history.

A batch smaller than :data:`MIN_BATCH` is scored in the poller: for a few mentions the
round trip to the worker costs more than it frees. If the worker dies or cannot start, the
batch is scored in the poller and the next batch starts a new worker; no mention waits
on a dead process.

A worker never outlives its poller: a thread in it checks every
:data:`ORPHAN_CHECK_SECONDS` that its parent is still the process that started it, and
ends the worker when not (the poller was SIGKILLed, so nothing shut the pool down). With
the worker gone, the last copy of the multiprocessing resource tracker's pipe closes and
the tracker exits too.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from emberwatch.mention import Mention
from emberwatch.scoring.scorer import Scorer, Scores

log = logging.getLogger("emberwatch.scoring")

# Below this many mentions a batch is scored in the poller. The round trip to the worker
# makes a poll about 1 ms later for one mention and 3 ms for 32 (measured on 2 cores);
# that buys the poller's time only when polls are large, and a monitor whose polls stay
# small never starts a process.
MIN_BATCH = 32

# How often a worker checks that its poller is alive; an orphan exits within this.
ORPHAN_CHECK_SECONDS = 0.5


class Presumed(NamedTuple):
    """One mention to score as new: its brand and whether its author is a VIP."""

    mention: Mention
    brand: str
    vip: bool


def score_as_new(scorer: Scorer, batch: Sequence[Presumed], now: datetime) -> list[Scores]:
    """Each mention's scores as :meth:`Scorer.score_new` gives them."""
    return [scorer.score_new(m, brand=brand, vip=vip, now=now) for m, brand, vip in batch]


class ScoringPool:
    """Worker processes that score batches of new mentions with a copy of ``scorer``.

    Processes start on :meth:`start` or the first batch, not on construction, so that a
    runtime that never sees a large poll never pays for one. ``spawn`` starts them: the
    poller runs threads, and forking a threaded process can copy a held lock.
    """

    def __init__(self, scorer: Scorer, processes: int = 1) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        self.scorer = scorer
        self.processes = processes
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the workers now and wait until they can score, instead of on first use."""
        self._pool().submit(_ready).result()

    def submit(
        self, batch: Sequence[Presumed], now: datetime
    ) -> concurrent.futures.Future[list[Scores]] | None:
        """Start scoring ``batch`` in a worker; None when it is small enough to score here."""
        if len(batch) < MIN_BATCH:
            return None
        try:
            return self._pool().submit(_score_in_worker, list(batch), now)
        except Exception as exc:  # a dead worker, or none could start: score here
            log.warning("scoring process unavailable (%s); scoring %d here", exc, len(batch))
            self.close(wait=False)
            return None

    def result(
        self,
        future: concurrent.futures.Future[list[Scores]] | None,
        batch: Sequence[Presumed],
        now: datetime,
    ) -> list[Scores]:
        """The batch's scores: the worker's, or the poller's own if there was no worker
        or it failed."""
        if future is not None:
            try:
                return future.result()
            except concurrent.futures.process.BrokenProcessPool:
                log.warning("scoring process died; scoring %d mentions here", len(batch))
                self.close(wait=False)
        return score_as_new(self.scorer, batch, now)

    def renew(self) -> None:
        """Start fresh workers for later batches, with :attr:`scorer` as it is now (a new
        learned layer); batches already sent finish in the old workers, which then exit."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=False)

    def close(self, *, wait: bool = True) -> None:
        """Stop the workers; ``wait`` false leaves a dead or stuck one behind unwaited."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=True)

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ProcessPoolExecutor(
                    self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_install,
                    initargs=(self.scorer, os.getpid()),
                )
            return self._executor


# The worker process's copy of the poller's scorer, installed once when it starts: the
# scorer's lexicons are too large to send with every batch.
_worker_scorer: Scorer | None = None


def _install(scorer: Scorer, parent: int | None = None) -> None:
    global _worker_scorer
    _worker_scorer = scorer
    if parent is not None:
        threading.Thread(
            target=_exit_when_orphaned, args=(parent,), name="orphan-watch", daemon=True
        ).start()


def _exit_when_orphaned(parent: int) -> None:
    """End this worker once ``parent`` is gone (a dead parent's children are re-parented,
    so the parent pid changes). ``os._exit``: no clean-up can need a dead poller."""
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_SECONDS)
    os._exit(0)


def _ready() -> bool:
    return _worker_scorer is not None


def _score_in_worker(batch: list[Presumed], now: datetime) -> list[Scores]:
    assert _worker_scorer is not None, "the pool's initializer installs the scorer"
    return score_as_new(_worker_scorer, batch, now)
