"""Simulated reshare cascades for calibrating and testing the virality forecast.

A cascade is SEISMIC's own generative model (Zhao et al., KDD 2015) in the polling
forecaster's own units, so that the only ways it differs from what
:func:`emberwatch.scoring.virality.forecast_from_polls` assumes are the real-world
misspecifications listed below. It is a self-exciting (Hawkes) process in which the post and
every reshare ``i`` with ``d_i`` followers excite reshares at rate ``p(t) * d_i * phi(t - s_i)``,
``phi`` being the R package's human reaction-time kernel
(:func:`emberwatch.scoring.virality.memory_ccdf`). Simulated generation by generation with
numpy, the decline by thinning, so a cascade of 100,000 reshares takes milliseconds.

The forecaster's units: the per-follower infectiousness ``p``, engagers whose followers
average the platform prior's ``engager_followers`` (250 for X/Twitter, the mean of the
15,562 retweeters' follower counts in the SEISMIC example is 252), the poster's known
follower count and the same memory kernel. So a reshare's expected number of direct
reshares is ``p * 250``, which is what the forecaster's window estimate measures.

The misspecifications, drawn per cascade (see :func:`draw_cascade`):

(a) *infectiousness declines* over the post's life, whereas the forecaster holds today's
    ``p`` constant: ``p(t) = p * profile(t)``, the profile of the SEISMIC example from the R
    package's infectiousness series (:data:`PROFILE`, :data:`PROFILE_TAIL`, refitted and
    printed by ``bench/virality_calibration.py``), relative to its plateau from 1 h to 6 h:
    about 1.9 at 6 min, a burst at half an hour, 1 from 1 h to 6 h, 0.55 at 13-20 h and
    falling as ``t ** -0.28`` after that. Per cascade the clock runs ``speed`` times as fast
    (log-uniform from 1/3 to 3) and the log-profile swings ``depth`` times as far (uniform
    from 0.5 to 1.5), since one cascade's curve is not every post's;
(b) *engagers' followers are heterogeneous*: log-normal with the SAME MEAN (250) as the
    forecaster's ``engager_followers`` and the log-sd (1.29) of the SEISMIC example's
    retweeters (median about 110), so the expected branching matches the forecaster's but a
    rare big account sets off a burst that counts alone cannot explain;
(c) *polling*: counts only, one interval per cascade from 1, 5, 10, 15 or 30 minutes.

The *level* is drawn from a broad prior: the plateau branching ``p * 250`` log-uniform from
0.01 to 2 (:data:`LEVEL_RANGE`), so most posts go nowhere and a few take off until the
decline brings them below 1. The poster's followers are log-normal, median 1,000, log-sd 2.0
(most authors are small, a few have 100,000 followers or more).

The forecaster projects later generations with the same 250 followers per engager it
measures ``p`` against (``PlatformPrior.projection_n_star``), so its branching factor is the
one simulated here. (It used SEISMIC's ``n_star`` = 100, i.e. 0.4 of the branching it
measured; the size forecast now gets that kind of discount explicitly, as a damping of later
generations fitted on the SEISMIC example.)

This is a model of the world, not data. The calibration fitted on it (see
``bench/virality_calibration.py``) is only as right as these choices; the SEISMIC example
cascade is the one real check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from emberwatch.scoring.virality import _CCDF_SCALE, CUTOFF, KERNEL_C, THETA, platform_prior

# (b): log-normal engagers' followers with the forecaster's mean and the example's spread.
ENGAGER_MEAN = platform_prior("twitter").engager_followers
ENGAGER_LOG_SD = 1.29
ENGAGER_LOG_MEAN = math.log(ENGAGER_MEAN) - ENGAGER_LOG_SD**2 / 2
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
# The plateau branching p * ENGAGER_MEAN, log-uniform over this range.
LEVEL_RANGE = (0.01, 2.0)


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
    p0 = branching / ENGAGER_MEAN
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
    branching = float(math.exp(rng.uniform(*np.log(LEVEL_RANGE))))
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
