"""Simulated reshare cascades for calibrating and testing the virality forecast.

A cascade is SEISMIC's own generative model (Zhao et al., KDD 2015): a self-exciting
(Hawkes) process in which the post and every reshare ``i`` with ``d_i`` followers trigger
``Poisson(p * d_i)`` further reshares at delays drawn from the R package's human
reaction-time kernel (:func:`emberwatch.scoring.virality.memory_ccdf`). Simulated generation
by generation with numpy, so a cascade of 100,000 reshares takes milliseconds.

What is drawn, per cascade (see :func:`draw_cascade`), and why:

- engagers' followers: log-normal with the log-mean 4.49 and log-sd 1.29 of the 15,562
  retweeters in the SEISMIC example cascade (median 89, mean about 250);
- the poster's followers: log-normal, median 300, log-sd 1.8 (most authors are small, a few
  have 100,000 followers or more);
- the branching factor ``p * mean(d)``: log-uniform from 0.02 to 0.5 for 70 % of cascades,
  uniform from 0.5 to 1.0 for the rest, so that some cascades take off and most do not;
- polling: one interval per cascade from 1, 5, 10, 15 or 30 minutes, the way connectors poll.

This is a model of the world, not data. The calibration fitted on it (see
``bench/virality_calibration.py``) is only as right as these choices; the SEISMIC example
cascade is the one real check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from emberwatch.scoring.virality import _CCDF_SCALE, CUTOFF, KERNEL_C, THETA

ENGAGER_LOG_MEAN, ENGAGER_LOG_SD = 4.49, 1.29
POSTER_LOG_MEDIAN, POSTER_LOG_SD = math.log(1000.0), 2.0
POLL_INTERVALS = (60.0, 300.0, 600.0, 900.0, 1800.0)
WEEK = 7 * 24 * 3600.0
MAX_EVENTS = 200_000

_ENGAGER_MEAN = math.exp(ENGAGER_LOG_MEAN + ENGAGER_LOG_SD**2 / 2)


@dataclass(frozen=True)
class Cascade:
    """Reshare times (seconds since the post, sorted, without the post) over one week."""

    times: np.ndarray
    poster_followers: float
    branching: float
    poll_interval: float
    truncated: bool

    def count_at(self, t: float) -> int:
        return int(np.searchsorted(self.times, t, side="right"))


def reaction_delays(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` draws from the SEISMIC memory kernel, by inverting its CDF."""
    q = rng.random(n)
    linear = q <= KERNEL_C * CUTOFF
    out = np.empty(n)
    out[linear] = q[linear] / KERNEL_C
    out[~linear] = ((1.0 - q[~linear]) / _CCDF_SCALE) ** (-1.0 / THETA)
    return out


def simulate(
    rng: np.random.Generator,
    *,
    poster_followers: float,
    branching: float,
    decay: float = 0.0,
    decay_start: float = 3600.0,
    until: float = WEEK,
    max_events: int = MAX_EVENTS,
) -> tuple[np.ndarray, bool]:
    """Reshare times up to ``until``. The infectiousness starts at ``branching`` (mean
    reshares per reshare) and wanes as ``(1 + t / decay_start) ** -decay``, as SEISMIC
    observes on real posts (the example cascade's falls about 2.3-fold from 1 h to 12 h);
    ``decay=0`` is a constant-infectiousness Hawkes process. Waning is simulated by
    thinning: a reshare triggers candidates at its own time's rate and each candidate at
    ``t`` survives with probability ``p(t) / p(parent)``."""
    p0 = branching / _ENGAGER_MEAN
    parents_t = np.zeros(1)
    parents_d = np.array([poster_followers])
    found: list[np.ndarray] = []
    total = 0
    while parents_t.size:
        parents_p = p0 * (1 + parents_t / decay_start) ** -decay
        kids = rng.poisson(parents_p * parents_d)
        n = int(kids.sum())
        if n == 0:
            break
        born = np.repeat(parents_t, kids)
        t = born + reaction_delays(rng, n)
        if decay:
            keep = rng.random(n) < ((1 + t / decay_start) / (1 + born / decay_start)) ** -decay
            t = t[keep]
        t = t[t <= until]
        found.append(t)
        total += t.size
        if total > max_events:
            return np.sort(np.concatenate(found)), True
        parents_t = t
        parents_d = rng.lognormal(ENGAGER_LOG_MEAN, ENGAGER_LOG_SD, t.size)
    times = np.sort(np.concatenate(found)) if found else np.zeros(0)
    return times, False


def draw_cascade(rng: np.random.Generator) -> Cascade:
    """One cascade from the population described in the module docstring."""
    poster = float(rng.lognormal(POSTER_LOG_MEDIAN, POSTER_LOG_SD))
    if rng.random() < 0.5:
        branching = float(math.exp(rng.uniform(math.log(0.05), math.log(0.8))))
    else:
        branching = float(rng.uniform(0.8, 2.0))
    decay = float(rng.uniform(0.0, 0.8))
    times, truncated = simulate(rng, poster_followers=poster, branching=branching, decay=decay)
    interval = float(rng.choice(POLL_INTERVALS))
    return Cascade(times, poster, branching, interval, truncated)


def polls(cascade: Cascade, age: float) -> list[tuple[float, float]]:
    """What a connector polling every ``poll_interval`` seconds has seen at ``age``."""
    step = cascade.poll_interval
    ticks = np.arange(step, age + 1e-9, step)
    counts = np.searchsorted(cascade.times, ticks, side="right")
    return list(zip(ticks.tolist(), counts.astype(float).tolist(), strict=True))
