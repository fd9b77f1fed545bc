"""Simulated reshare cascades for calibrating and testing the virality forecast.

A cascade is SEISMIC's own generative model (Zhao et al., KDD 2015) with the infectiousness
declining over the post's life, as the paper reports for real tweets: a self-exciting
(Hawkes) process in which the post and every reshare ``i`` with ``d_i`` followers excite
reshares at rate ``p(t) * d_i * phi(t - s_i)``, ``phi`` being the R package's human
reaction-time kernel (:func:`emberwatch.scoring.virality.memory_ccdf`). Simulated generation
by generation with numpy, the decline by thinning, so a cascade of 100,000 reshares takes
milliseconds.

What is drawn, per cascade (see :func:`draw_cascade`), and why:

- the *shape* of the decline: ``p(t) = p(0) * (1 + t / tau) ** -a``, fitted to the R
  package's infectiousness series on the SEISMIC example cascade (``obs_time_s`` every 60 s
  for 24 h, geometric means over 18 log-spaced bins from 5 min to 24 h, least squares in
  log p): ``tau`` = :data:`PROFILE_TAU` (2.7 h) and ``a`` = :data:`PROFILE_EXPONENT` (0.54),
  so p falls to 0.84 of its start at 1 h, 0.61 at 4 h and 0.29 at 24 h
  (``bench/virality_calibration.py`` refits and prints them);
- per-cascade *speed* and *depth* of the decline: ``tau`` times a log-uniform factor from
  1/3 to 3 and ``a`` times a uniform factor from 0.5 to 1.5, since one cascade's curve is
  not every post's;
- the *level*, the initial branching factor ``p(0) * mean(d)``: log-uniform from 0.02 to 1.0
  for 85 % of cascades, uniform from 1.0 to 2.0 for the rest, so that most posts fizzle and
  some take off for a while before the decline brings them below 1 (the example's is about
  1.0 by the fit, and it is an exceptionally viral tweet);
- engagers' followers: log-normal with the log-mean 4.49 and log-sd 1.29 of the 15,562
  retweeters in the SEISMIC example cascade (median 89, mean about 205), so an occasional big
  account sets off a burst that counts alone cannot explain;
- the poster's followers: log-normal, median 1,000, log-sd 2.0 (most authors are small, a
  few have 100,000 followers or more);
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
# The infectiousness profile of the SEISMIC example, from the R reference series by
# ``bench/virality_calibration.py`` (``seismic_profile``): (seconds, p(t) / plateau) knots,
# the plateau being p's geometric mean from 1 h to 6 h; log-linear in log t between knots,
# flat before the first, falling as t ** PROFILE_TAIL after the last.
PROFILE: tuple[tuple[float, float], ...] = (
    (357, 1.9045),
    (566, 1.2411),
    (836, 0.9025),
    (1250, 0.9239),
    (1879, 4.7366),
    (2801, 1.8404),
    (4202, 1.2395),
    (6316, 1.0261),
    (9477, 0.9750),
    (14184, 1.0193),
    (21247, 0.7912),
    (31854, 0.9201),
    (47740, 0.5310),
    (71546, 0.5495),
)
PROFILE_TAIL = -0.2769
SPEED_RANGE = (1 / 3, 3.0)
DEPTH_RANGE = (0.5, 1.5)
TAKE_OFF_SHARE = 0.15

_ENGAGER_MEAN = math.exp(ENGAGER_LOG_MEAN + ENGAGER_LOG_SD**2 / 2)


@dataclass(frozen=True)
class Cascade:
    """Reshare times (seconds since the post, sorted, without the post) over one week.

    ``truncated`` cascades stopped at :data:`MAX_EVENTS`: their counts are lower bounds.
    """

    times: np.ndarray
    poster_followers: float
    branching: float
    poll_interval: float
    truncated: bool
    speed: float = 1.0
    depth: float = 0.0

    def count_at(self, t: float) -> int:
        return int(np.searchsorted(self.times, t, side="right"))


_LOG_T = np.log([t for t, _ in PROFILE])
_LOG_F = np.log([f for _, f in PROFILE])
# Where the profile is evaluated to bound it from above: every knot and a fine grid.
_GRID = np.unique(np.concatenate([_LOG_T, np.linspace(0.0, math.log(100 * WEEK), 4000)]))


def _log_profile(log_t: np.ndarray) -> np.ndarray:
    inside = np.interp(log_t, _LOG_T, _LOG_F)
    tail = _LOG_F[-1] + PROFILE_TAIL * (log_t - _LOG_T[-1])
    return np.where(log_t > _LOG_T[-1], tail, inside)


# The profile's maximum from each grid point on, for thinning (the profile rises and falls).
_AHEAD = np.maximum.accumulate(_log_profile(_GRID)[::-1])[::-1]


def profile(t: np.ndarray | float, speed: float = 1.0, depth: float = 1.0) -> np.ndarray:
    """Infectiousness at ``t`` seconds relative to the SEISMIC example's plateau, for a
    cascade that runs ``speed`` times as fast and swings ``depth`` times as far (in log)."""
    log_t = np.log(np.maximum(np.asarray(t, dtype=float) * speed, 1.0))
    return np.exp(depth * _log_profile(log_t))


def profile_ahead(t: np.ndarray | float, speed: float = 1.0, depth: float = 1.0) -> np.ndarray:
    """An upper bound of :func:`profile` from ``t`` on (its running maximum ahead)."""
    log_t = np.log(np.maximum(np.asarray(t, dtype=float) * speed, 1.0))
    i = np.clip(np.searchsorted(_GRID, log_t, side="right") - 1, 0, _GRID.size - 1)
    return np.exp(depth * _AHEAD[i])


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
    speed: float = 1.0,
    depth: float = 0.0,
    until: float = WEEK,
    max_events: int = MAX_EVENTS,
) -> tuple[np.ndarray, bool]:
    """Reshare times up to ``until``. The infectiousness is ``branching`` (mean reshares per
    reshare) times :func:`profile`; ``depth=0`` is a constant-infectiousness Hawkes process.
    By thinning: a reshare at ``s`` triggers candidates at the highest rate ahead of it
    (:func:`profile_ahead`) and each candidate at ``t`` survives with probability
    ``p(t) / that rate``."""
    p0 = branching / _ENGAGER_MEAN
    parents_t = np.zeros(1)
    parents_d = np.array([poster_followers])
    found: list[np.ndarray] = []
    total = 0
    while parents_t.size:
        parents_p = p0 * profile_ahead(parents_t, speed, depth)
        kids = rng.poisson(parents_p * parents_d)
        n = int(kids.sum())
        if n == 0:
            break
        born = np.repeat(parents_t, kids)
        t = born + reaction_delays(rng, n)
        if depth:
            ahead = profile_ahead(born, speed, depth)
            keep = rng.random(n) < profile(t, speed, depth) / ahead
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
    if rng.random() < TAKE_OFF_SHARE:
        branching = float(rng.uniform(1.0, 2.0))
    else:
        branching = float(math.exp(rng.uniform(math.log(0.02), math.log(1.0))))
    lo, hi = SPEED_RANGE
    speed = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    depth = float(rng.uniform(*DEPTH_RANGE))
    times, truncated = simulate(
        rng, poster_followers=poster, branching=branching, speed=speed, depth=depth
    )
    interval = float(rng.choice(POLL_INTERVALS))
    return Cascade(times, poster, branching, interval, truncated, speed, depth)


def polls(cascade: Cascade, age: float) -> list[tuple[float, float]]:
    """What a connector polling every ``poll_interval`` seconds has seen at ``age``."""
    step = cascade.poll_interval
    ticks = np.arange(step, age + 1e-9, step)
    counts = np.searchsorted(cascade.times, ticks, side="right")
    return list(zip(ticks.tolist(), counts.astype(float).tolist(), strict=True))
