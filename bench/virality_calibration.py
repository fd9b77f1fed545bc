"""Fit, and check, the virality forecast's calibration and size shrink on simulated cascades.

Run ``.venv/bin/python bench/virality_calibration.py`` (60-90 s; ``--cascades N`` to change
the size). It

1. fits the infectiousness profile of the SEISMIC example (``../shared/data/virality``) from
   the R package's reference series, as :data:`cascades.PROFILE` (printed, to compare with the
   constants the simulator uses);
2. simulates two independent sets of cascades with ``tests/scoring/cascades.py`` (seed 12 to
   fit, seed 13 held out) and forecasts each at several ages from its polls, uncalibrated and
   unshrunk;
3. fits the shrink of the still-to-come engagement (:func:`virality.shrunk_to_come`) on the
   seed-12 set (per-age direct factors with a damping, and a damping alone) and the damping
   alone on the SEISMIC example at 1, 2, 4 and 6 h (with a margin from the cliff where the
   example is near critical at 1 h), checks them on the example and picks by the rule in
   :func:`choose_shrink` (real example first, 4-6 h within 15 %, 1 h at most 1.5x, no worse
   on the simulation);
4. fits the calibration on the seed-12 cascades and the SEISMIC example: per band of ages
   (10-30 min, 1-2 h, 4-12 h; :data:`BANDS`), an isotonic (pool-adjacent-violators) fit
   of "reached the threshold within 24 h" on the raw, unrounded probability, at most
   ``--knots`` blocks, kept as (mean raw, observed frequency) knots between (0, 0) and
   (1, 1); printed as :data:`virality._CALIBRATION`, which interpolates them linearly and
   blends neighbouring bands in log age. The same with one band for all ages, to compare;
5. prints, on the held-out seed-13 set and on the example (which is in the fit), the
   reliability table, AUC, Brier score, calibration error (ECE), the share of forecasts at
   0.5 or more and the hit rate among them, and the mean forecast by age, for the raw
   probability, the one-sided step table that shipped before (:data:`BEFORE_STEPS`) and
   both fits; then the same on cascades simulated without the half-hour burst
   (:func:`without_burst`, seed 14), a what-if for the assumption the young band rests on,
   and on seed 13 seen in one snapshot per forecast (:func:`one_snapshot`); and, as the one
   out-of-sample check on real data, the example against the same bands fitted on the
   simulation alone;
   and a verdict (:func:`verdict`): the first fit that is no worse than the table that
   shipped before on the Brier score and the calibration error (simulation and example),
   does not widen the gap between mean forecast and hit rate among forecasts at 0.5 or more
   beyond 0.05, whose forecasts at 0.5 or more come true at least as often (within 0.05)
   and that keeps the AUC ships; otherwise the one that shipped before stays.

The size ratios and the calibration are reported with the probabilities rounded to 4
decimals, as the forecaster ships them. Deterministic: the seeds are fixed.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from bisect import bisect_right
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path

import numpy as np

from emberwatch.scoring import virality
from emberwatch.scoring.virality import forecast_from_polls, platform_prior

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "scoring"))
import cascades  # noqa: E402
from cascades import draw_cascade, polls  # noqa: E402

AGES = (600.0, 1800.0, 3600.0, 7200.0, 14400.0, 21600.0, 28800.0, 43200.0)
THRESHOLDS = (100.0, 500.0, 1000.0)
BINS = (0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)
PRIOR = platform_prior("twitter")
MIN_SEEN = 5  # the shrink is fitted on forecasts with this much engagement seen
# Columns of a dataset row.
RAW_P, RAW_EXP, SEEN, PENDING, BRANCHING, REACHED, FINAL, TRUNCATED, AGE = range(9)
SEISMIC_FINAL = 15_562
SEISMIC_HOURS = (1, 2, 4, 6)


def shared_data() -> Path:
    env = os.environ.get("EMBERWATCH_SHARED_DATA")
    return (Path(env) if env else ROOT / ".." / "shared" / "data") / "virality"


def seismic_profile() -> tuple[list[tuple[float, float]], float] | None:
    """The SEISMIC example's infectiousness shape: geometric means of the R series over 14
    log-spaced bins from 5 min to 24 h, divided by the plateau (geometric mean of the bins
    between 1 h and 6 h), and the log-log slope of the bins after 1 h for the tail."""
    path = shared_data() / "seismic_reference_series_nstar100.csv"
    if not path.exists():
        return None
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    t = np.array([float(r["obs_time_s"]) for r in rows])
    p = np.array([float(r["infectiousness"]) for r in rows])
    edges = np.geomspace(300, 86401, 15)
    bt, bp = [], []
    for lo, hi in pairwise(edges):
        m = (t >= lo) & (t < hi) & (p > 0)
        bt.append(math.exp(np.log(t[m]).mean()))
        bp.append(math.exp(np.log(p[m]).mean()))
    bt_a, bp_a = np.array(bt), np.array(bp)
    plateau = math.exp(np.log(bp_a[(bt_a >= 3600) & (bt_a <= 21600)]).mean())
    late = bt_a >= 3600
    tail = float(np.polyfit(np.log(bt_a[late]), np.log(bp_a[late]), 1)[0])
    return [(float(a), float(b / plateau)) for a, b in zip(bt, bp, strict=True)], tail


def _row(seen, threshold, followers, reached, final, truncated) -> tuple[float, ...]:
    f = forecast_from_polls(
        seen, threshold=threshold, poster_followers=followers, prior=PRIOR,
        calibrate=False, shrink=False,
    )  # fmt: skip
    cap = virality._BRANCHING_CAP
    pending = (f.expected_final - f.engagement) * (1 - min(f.branching, cap))
    return (f.probability, f.expected_final, f.engagement, pending, f.branching,
            float(reached), float(final), float(truncated), f.age)  # fmt: skip


def dataset(seed: int, n: int) -> np.ndarray:
    """One row per cascade, age and threshold with the count still below the threshold.
    Truncated cascades (over 200,000 reshares) count where they reached the threshold
    within 24 h; their 7-day size is unknown, so they stay out of the size ratios."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        cascade = draw_cascade(rng)
        threshold = float(rng.choice(THRESHOLDS))
        reached = cascade.count_at(virality.HORIZON) >= threshold
        if cascade.truncated and not reached:
            continue
        for age in AGES:
            if age < cascade.poll_interval:
                continue
            seen = polls(cascade, age)
            if seen[-1][1] >= threshold:
                break
            rows.append(_row(seen, threshold, cascade.poster_followers, reached,
                             cascade.times.size, cascade.truncated))  # fmt: skip
    return np.array(rows, dtype=float)


def seismic_times() -> list[float] | None:
    path = shared_data() / "seismic_tweet_127001313513967616.csv"
    if not path.exists():
        return None
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    return [float(r["relative_time_second"]) for r in rows][1:], float(
        rows[0]["number_of_followers"]
    )


def seismic_rows() -> np.ndarray:
    """The SEISMIC example cascade polled every 5 minutes, for several thresholds and ages."""
    found = seismic_times()
    if found is None:
        return np.zeros((0, 9))
    times, followers = found
    by_day, final = bisect_right(times, virality.HORIZON), len(times)
    out = []
    for threshold in (1000.0, 2000.0, 5000.0, 10000.0, 14000.0, 15000.0, 20000.0):
        for age in range(1800, 12 * 3600 + 1, 1800):
            seen = [(t, float(bisect_right(times, t))) for t in range(300, age + 1, 300)]
            if seen[-1][1] >= threshold:
                break
            out.append(_row(seen, threshold, followers, by_day >= threshold, final, False))
    return np.array(out, dtype=float)


def shrunk(rows: np.ndarray, direct, damping: float) -> np.ndarray:
    return np.array([
        r[SEEN] + virality.shrunk_to_come(r[PENDING], r[BRANCHING], r[AGE], r[SEEN],
                                          direct=direct, damping=damping)
        for r in rows
    ])  # fmt: skip


def fit_shrink(rows: np.ndarray) -> tuple[list[tuple[float, tuple[float, ...]]], float]:
    """For each damping on a grid, and each age and class of engagement seen (5-49, 50-499,
    500 and more, matching ``virality._SHRINK_SEEN``), the direct factor (at most 1) that
    brings the median expected/actual to 1, by bisection; the damping with the least mean
    absolute log ratio wins. Where the median is below 1 even unshrunk the factor stays 1
    (this only ever shrinks); a class with fewer than 20 forecasts at an age takes the
    factor of the class below it."""
    ok = (rows[:, SEEN] >= MIN_SEEN) & (rows[:, TRUNCATED] == 0) & (rows[:, FINAL] >= 1)
    use = rows[ok]
    edges = (*virality._SHRINK_SEEN[1:], math.inf)
    best = None
    for damping in np.arange(0.5, 1.0001, 0.05):
        table, loss = [], 0.0
        cap = virality._BRANCHING_CAP
        for age in AGES:
            factors: list[float] = []
            for lo, hi in zip(virality._SHRINK_SEEN, edges, strict=True):
                r = use[(use[:, AGE] == age) & (use[:, SEEN] >= lo) & (use[:, SEEN] < hi)]
                if len(r) < 20:
                    factors.append(factors[-1] if factors else 1.0)
                    continue
                mult = r[:, PENDING] / (1 - np.minimum(damping * r[:, BRANCHING], cap))

                def median_ratio(k, r=r, mult=mult):
                    return float(np.median((r[:, SEEN] + k * mult) / r[:, FINAL]))

                lo_k, hi_k = 0.0, 1.0
                if median_ratio(hi_k) > 1:
                    for _ in range(40):
                        mid = (lo_k + hi_k) / 2
                        lo_k, hi_k = (mid, hi_k) if median_ratio(mid) < 1 else (lo_k, mid)
                k = round(hi_k, 3)
                factors.append(k)
                loss += float(np.abs(np.log((r[:, SEEN] + k * mult) / r[:, FINAL])).sum())
            table.append((age, tuple(factors)))
        if best is None or loss < best[0]:
            best = (loss, table, round(float(damping), 2))
    _, table, damping = best
    return table, damping


def isotonic(x: np.ndarray, y: np.ndarray) -> list[list[float]]:
    """Pool-adjacent-violators on y sorted by x: blocks [lowest x, sum y, count], in order.
    Equal x values always share a block."""
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    blocks: list[list[float]] = []
    i = 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[i]:
            j += 1
        blocks.append([float(xs[i]), float(ys[i : j + 1].sum()), float(j + 1 - i)])
        i = j + 1
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] >= blocks[-1][1] / blocks[-1][2]:
            _, sy, c = blocks.pop()
            blocks[-1][1] += sy
            blocks[-1][2] += c
    return blocks


def merge_blocks(blocks: list[list[float]], keep: int) -> list[list[float]]:
    """At most ``keep`` isotonic blocks, by repeatedly pooling the adjacent pair whose pooling
    costs least squared error (``n1 n2 / (n1 + n2) * (y1 - y2) ** 2``). A pooled block's
    value is the observed frequency over both, so the blocks stay increasing."""
    blocks = [list(b) for b in blocks]
    while len(blocks) > keep:
        costs = [
            a[2] * b[2] / (a[2] + b[2]) * (a[1] / a[2] - b[1] / b[2]) ** 2
            for a, b in pairwise(blocks)
        ]
        k = int(np.argmin(costs))
        blocks[k][1] += blocks[k + 1][1]
        blocks[k][2] += blocks[k + 1][2]
        del blocks[k + 1]
    return blocks


def knots(x: np.ndarray, y: np.ndarray, keep: int) -> list[tuple[float, float]]:
    """The isotonic fit of ``y`` on ``x`` as (mean x, observed frequency) per block, at most
    ``keep`` blocks, between (0, 0) and (1, 1) (a block at x = 0 or 1 replaces that end)."""
    blocks = merge_blocks(isotonic(x, y), keep)
    xs = np.sort(x, kind="stable")
    out, i = [], 0
    for _, hits, count in blocks:
        n = int(count)
        out.append((float(f"{xs[i : i + n].mean():.6g}"), round(hits / count, 4)))
        i += n
    if out[0][0] > 0:
        out.insert(0, (0.0, 0.0))
    if out[-1][0] < 1:
        out.append((1.0, 1.0))
    # Rounding may tie neighbours; keep the map a function.
    return [k for i, k in enumerate(out) if i == 0 or k[0] > out[i - 1][0]]


def band_edges(groups) -> list[float]:
    """Age limits of the bands: geometric midpoints between neighbouring groups of ages."""
    mids = [math.sqrt(max(a) * min(b)) for a, b in pairwise(groups)]
    return [0.0, *mids, math.inf]


def fit_calibration(train: np.ndarray, groups, keep: int, *, quiet: bool = False):
    """One knot table per band of ages (``groups`` of AGES, bands split at the geometric
    midpoints between them; the SEISMIC example's half-hourly ages fall in by age), each
    anchored at its group's geometric mean age: :data:`virality._CALIBRATION`'s shape."""
    bands = []
    for g, (lo, hi) in zip(groups, pairwise(band_edges(groups)), strict=True):
        m = (train[:, AGE] >= lo) & (train[:, AGE] < hi)
        anchor = round(math.exp(float(np.mean(np.log(g)))))
        bands.append((float(anchor), tuple(knots(train[m, RAW_P], train[m, REACHED], keep))))
        if not quiet:
            reached, n = int(train[m, REACHED].sum()), len(bands[-1][1])
            print(f"# band {lo / 60:.0f}-{hi / 60:.0f} min (anchor {anchor} s):"
                  f" {m.sum()} forecasts, {reached} reached, {n} knots")  # fmt: skip
    return tuple(bands)


# What shipped before: a one-sided step table (commit 9fc1141), kept here to compare with.
BEFORE_STEPS = ((0, 0.0009), (0.0001, 0.0181), (0.0002, 0.0409), (0.0003, 0.0775),
                (0.0004, 0.1284), (0.0015, 0.1613), (0.0017, 0.1991), (0.0081, 0.2000),
                (0.0084, 0.2558), (0.0128, 0.3178), (0.0351, 0.3256), (0.0489, 0.3333),
                (0.0496, 0.3529), (0.0742, 0.3901), (0.5952, 0.5000), (0.7536, 0.5556),
                (0.8228, 0.5625), (0.8927, 0.5833), (0.9118, 0.6000), (0.9188, 0.6111),
                (0.9723, 0.6250), (0.9774, 0.7000), (0.9814, 0.8333), (0.9944, 0.8718),
                (0.9991, 0.8929), (0.9998, 0.9412), (1, 0.9899))  # fmt: skip


def before_one_sided(raw: float) -> float:
    """The calibration that shipped before, on the raw value rounded to 4 decimals: the
    step's frequency plus a tie-break ramp of 0.1 of the gap to the next step, never above
    the raw value."""
    raw = round(raw, 4)
    xs = [x for x, _ in BEFORE_STEPS]
    i = max(bisect_right(xs, raw) - 1, 0)
    x0, y0 = BEFORE_STEPS[i]
    x1, y1 = BEFORE_STEPS[i + 1] if i + 1 < len(BEFORE_STEPS) else (1.0, 1.0)
    where = min(max((raw - x0) / (x1 - x0), 0.0), 1.0) if x1 > x0 else 0.0
    return min(y0 + 0.1 * (y1 - y0) * where, raw)


def auc(p: np.ndarray, y: np.ndarray) -> float:
    """Probability that a random positive outranks a random negative (ties count half)."""
    order = np.argsort(p, kind="stable")
    ranks = np.empty(len(p))
    sorted_p = p[order]
    i = 0
    while i < len(p):
        j = i
        while j + 1 < len(p) and sorted_p[j + 1] == sorted_p[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def reliability(p: np.ndarray, y: np.ndarray) -> list[str]:
    lines = [f"{'predicted':<12}{'n':>7}{'mean p':>9}{'observed':>10}"]
    for lo, hi in pairwise(BINS):
        m = (p >= lo) & (p < hi)
        if m.any():
            lines.append(
                f"{lo:.2f}-{min(hi, 1):.2f}  {m.sum():>7}{p[m].mean():>9.3f}{y[m].mean():>10.3f}"
            )
    return lines


def calibrate_all(rows: np.ndarray, bands) -> np.ndarray:
    """The forecaster's calibrated output (4 decimals, as it ships) for the rows' raw
    probabilities at their ages; ``bands`` None is the calibration that shipped before."""
    if bands is None:
        return np.array([round(before_one_sided(p), 4) for p in rows[:, RAW_P]])
    return np.array([
        round(min(max(virality.calibrated(p, age, bands), 0.0), 1.0), 4)
        for p, age in zip(rows[:, RAW_P], rows[:, AGE], strict=True)
    ])  # fmt: skip


def ece(q: np.ndarray, y: np.ndarray) -> float:
    """Mean |mean forecast - observed rate| over the reliability bins, weighted by count."""
    total = 0.0
    for lo, hi in pairwise(BINS):
        m = (q >= lo) & (q < hi)
        if m.any():
            total += m.sum() * abs(q[m].mean() - y[m].mean())
    return total / len(q)


def scores(q: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """AUC, Brier, calibration error, share of forecasts >= 0.5, the hit rate and mean
    forecast among them and the gap between the two (positive: overconfident at the top)."""
    top = q >= 0.5
    hit = float(y[top].mean()) if top.any() else math.nan
    mean = float(q[top].mean()) if top.any() else math.nan
    return {"auc": auc(q, y), "brier": float(np.mean((q - y) ** 2)), "ece": ece(q, y),
            "share": float(top.mean()), "hit": hit, "mean_top": mean,
            "gap": mean - hit if top.any() else 0.0}  # fmt: skip


def summary(s: dict[str, float]) -> str:
    return (f"AUC {s['auc']:.5f}, Brier {s['brier']:.4f}, ECE {s['ece']:.4f},"
            f" share >= 0.5 {s['share']:.2%} (mean forecast {s['mean_top']:.2f},"
            f" reached {s['hit']:.2f}, gap {s['gap']:+.2f})")  # fmt: skip


def report(name: str, rows: np.ndarray, candidates: dict) -> dict[str, dict[str, float]]:
    """Reliability of the raw forecast and of each candidate calibration (name -> bands,
    None for the one that shipped before), their scores, and the mean forecast against the
    observed rate by age. Returns the scores by name (and "raw")."""
    y = rows[:, REACHED]
    out = {"raw": rows[:, RAW_P]} | {k: calibrate_all(rows, b) for k, b in candidates.items()}
    print(f"## {name}: {len(rows)} forecasts, {y.mean():.1%} reached the threshold within 24 h")
    tables = {k: reliability(q, y) for k, q in out.items()}
    names = list(out)
    for i in range(0, len(names), 2):
        pair = names[i : i + 2]
        print("".join(f"{k:<40}" for k in pair))
        left, right = tables[pair[0]], tables[pair[1]] if len(pair) > 1 else []
        for j in range(max(len(left), len(right))):
            a = left[j] if j < len(left) else ""
            b = right[j] if j < len(right) else ""
            print(f"{a:<40}{b}")
    result = {}
    for k, q in out.items():
        result[k] = scores(q, y)
        print(f"{k + ':':<40} {summary(result[k])}")
    ages = sorted(set(rows[:, AGE]))
    if len(ages) <= len(AGES):
        print("mean forecast by age (" + ", ".join(names) + ") | observed rate")
        for age in ages:
            m = rows[:, AGE] == age
            means = " ".join(f"{out[k][m].mean():.4f}" for k in names)
            print(f"  {age / 3600:5.2f} h ({m.sum():>5}): {means} | {y[m].mean():.4f}")
    print()
    return result


def size_ratios(rows: np.ndarray, direct, damping) -> None:
    expected = shrunk(rows, direct, damping)
    ok = (rows[:, TRUNCATED] == 0) & (rows[:, FINAL] >= 1)
    print("median expected/actual 7-day size by age, unshrunk -> shipped shrink"
          " (IQR; n), for 5+ engagements seen | for any")  # fmt: skip
    for age in [a for a in AGES if (rows[:, AGE] == a).any()]:
        parts = []
        for m in (ok & (rows[:, AGE] == age) & (rows[:, SEEN] >= MIN_SEEN),
                  ok & (rows[:, AGE] == age)):  # fmt: skip
            if m.sum() < 5:
                parts.append("n/a")
                continue
            r0, r1 = rows[m, RAW_EXP] / rows[m, FINAL], expected[m] / rows[m, FINAL]
            q0, q1 = np.percentile(r0, [25, 75]), np.percentile(r1, [25, 75])
            iqr = f"{q0[0]:.2f}-{q0[1]:.2f} -> {q1[0]:.2f}-{q1[1]:.2f}"
            parts.append(f"{np.median(r0):.2f} -> {np.median(r1):.2f} ({iqr}; {m.sum()})")
        print(f"  {age / 3600:5.2f} h  {parts[0]:<40}| {parts[1]}")


def seismic_ratios(direct, damping) -> list[float] | None:
    """The SEISMIC example polled every 5 min: expected/actual final size at 1, 2, 4, 6 h,
    with the given shrink (identity constants give the unshrunk forecast)."""
    found = seismic_times()
    if found is None:
        return None
    times, followers = found
    out = []
    for hours in SEISMIC_HOURS:
        seen = [(t, float(bisect_right(times, t))) for t in range(300, hours * 3600 + 1, 300)]
        raw = forecast_from_polls(seen, threshold=10**6, poster_followers=followers,
                                  prior=platform_prior("x"), shrink=False)  # fmt: skip
        pending = (raw.expected_final - raw.engagement) * (
            1 - min(raw.branching, virality._BRANCHING_CAP)
        )
        new = raw.engagement + virality.shrunk_to_come(
            pending, raw.branching, raw.age, raw.engagement, direct=direct, damping=damping
        )
        out.append(new / SEISMIC_FINAL)
    return out


def log_error(ratios: list[float]) -> float:
    return float(np.mean(np.abs(np.log(ratios))))


def sim_loss(rows: np.ndarray, direct, damping) -> float:
    """Mean absolute log of expected/actual 7-day size over simulated forecasts with 5+
    engagements seen (the fit's criterion)."""
    ok = (rows[:, SEEN] >= MIN_SEEN) & (rows[:, TRUNCATED] == 0) & (rows[:, FINAL] >= 1)
    return float(np.abs(np.log(shrunk(rows[ok], direct, damping) / rows[ok, FINAL])).mean())


def choose_shrink(sim: np.ndarray):
    """Fit the shrink on the simulation and the damping on the real example, check the
    variants on the real example and apply the rule: the full shrink only if it beats
    unshrunk on the example overall (mean absolute log ratio at 1, 2, 4 and 6 h) and keeps
    4-6 h within 15 %; else the damping-only variant (fitted on the simulation or on the
    example) that does best on the example among those that beat unshrunk there, keep 4-6 h
    within 15 %, stay under 1.5x at 1 h and are no worse on the simulation; else none."""
    identity = [(600.0, (1.0, 1.0, 1.0)), (43200.0, (1.0, 1.0, 1.0))]
    direct, damping = fit_shrink(sim)
    only = fit_damping_only(sim)
    real_fit = fit_damping_on_example()
    variants = [
        ("unshrunk", identity, 1.0),
        (f"fitted shrink (direct factors, damping {damping})", direct, damping),
        (f"damping only fitted on the simulation (x{only})", identity, only),
    ]
    if real_fit is not None:
        variants.append((f"damping only fitted on the example (x{real_fit})", identity, real_fit))
    print("## expected_final / actual on the SEISMIC example (15,562 retweets), polled every"
          " 5 min; sim = mean |log expected/actual| on the seed-12 simulation")  # fmt: skip
    print(f"  {'variant':<50}" + "".join(f"{h:>7} h " for h in SEISMIC_HOURS)
          + "  mean|log|     sim")  # fmt: skip
    real, simulated = {}, {}
    for name, d, k in variants:
        ratios = seismic_ratios(d, k)
        simulated[name] = sim_loss(sim, d, k)
        if ratios is None:
            print("  (the SEISMIC example is absent: the fitted shrink is not checked)")
            return variants[1][1], variants[1][2], "unchecked"
        real[name] = ratios
        print(f"  {name:<50}" + "".join(f"{r:>9.3f}" for r in ratios)
              + f"  {log_error(ratios):9.3f}  {simulated[name]:6.3f}")  # fmt: skip

    def passes(name: str) -> bool:
        ratios = real[name]
        return (
            log_error(ratios) < log_error(real["unshrunk"])
            and all(abs(r - 1) < 0.15 for r in ratios[2:])
            and ratios[0] <= 1.5
        )

    choice = variants[0]
    if passes(variants[1][0]):
        choice = variants[1]
    else:
        ok = [v for v in variants[2:] if passes(v[0]) and simulated[v[0]] <= simulated["unshrunk"]]
        if ok:
            choice = min(ok, key=lambda v: log_error(real[v[0]]))
    print(f"-> shipping: {choice[0]}")
    print()
    return choice[1], choice[2], choice[0]


def fit_damping_on_example() -> float | None:
    """The later-generation damping (direct factor 1), on a 0.01 grid, with the least mean
    absolute log of expected/actual on the SEISMIC example at 1, 2, 4 and 6 h among those
    that keep 4-6 h within 15 % and 1 h at most 1.5x, and whose neighbours 0.02 either side
    do too at 1 h: at 1 h the example is near critical, where the size is steep in the
    damping (x0.36: 0.65, x0.40: 1.56), so the choice keeps a margin from that cliff.
    Prints the curve."""
    identity = [(600.0, (1.0, 1.0, 1.0)), (43200.0, (1.0, 1.0, 1.0))]
    grid = [round(x, 2) for x in np.arange(0.2, 1.0001, 0.01)]
    found = {d: seismic_ratios(identity, d) for d in grid}
    if found[grid[0]] is None:
        return None
    print("# damping on the SEISMIC example: expected/actual at 1, 2, 4, 6 h")
    for d in grid[::2]:
        if d <= 0.6:
            print(f"#   x{d:.2f} " + " ".join(f"{r:.3f}" for r in found[d])
                  + f"  mean|log| {log_error(found[d]):.3f}")  # fmt: skip

    def ok(d: float) -> bool:
        r = found[d]
        near = [found[n][0] for n in (round(d - 0.02, 2), round(d + 0.02, 2)) if n in found]
        return all(abs(x - 1) < 0.15 for x in r[2:]) and r[0] <= 1.5 and max(near) <= 1.5

    good = [d for d in grid if ok(d)]
    return min(good, key=lambda d: log_error(found[d])) if good else None


def fit_damping_only(rows: np.ndarray) -> float:
    """The branching damping (direct factor 1) with the least mean absolute log of
    expected/actual over the simulated forecasts with 5+ engagements seen."""
    ok = (rows[:, SEEN] >= MIN_SEEN) & (rows[:, TRUNCATED] == 0) & (rows[:, FINAL] >= 1)
    r = rows[ok]
    cap = virality._BRANCHING_CAP
    best = None
    for damping in np.arange(0.3, 1.0001, 0.05):
        expected = r[:, SEEN] + r[:, PENDING] / (1 - np.minimum(damping * r[:, BRANCHING], cap))
        loss = float(np.abs(np.log(expected / r[:, FINAL])).mean())
        if best is None or loss < best[0]:
            best = (loss, round(float(damping), 2))
    return best[1]


# The age groups of the calibration's bands (seconds, from AGES) and one band for all ages.
BANDS = ((600.0, 1800.0), (3600.0, 7200.0), (14400.0, 21600.0, 28800.0, 43200.0))
ONE_BAND = (AGES,)


@contextmanager
def without_burst():
    """Simulate, for a what-if, with the infectiousness profile capped at 1.3 times its
    plateau: the SEISMIC example's burst at half an hour (4.7 times), which the simulator
    gives every cascade, is gone. The young band's lift is fitted on cascades that have it;
    this shows what the lift does where it is absent. Patches ``cascades`` and restores it."""
    saved = cascades._LOG_F, cascades._AHEAD
    cascades._LOG_F = np.minimum(saved[0], math.log(1.3))
    cascades._AHEAD = np.maximum.accumulate(cascades._log_profile(cascades._GRID)[::-1])[::-1]
    try:
        yield
    finally:
        cascades._LOG_F, cascades._AHEAD = saved


@contextmanager
def one_snapshot():
    """Forecast from the last poll alone, as the scorer does when it first meets a mention
    with counts (``Scorer.score_new``), whereas the fit saw every poll."""
    global polls
    saved = polls
    polls = lambda cascade, age: saved(cascade, age)[-1:]  # noqa: E731
    try:
        yield
    finally:
        polls = saved


def verdict(name: str, held: dict, real: dict | None) -> list[str]:
    """Why candidate ``name`` must not ship (empty: it may), against the calibration that
    shipped before ("before") on the held-out simulation and the SEISMIC example."""
    why = []
    for where, got in (("simulation", held), ("SEISMIC example", real)):
        if got is None:
            continue
        new, old = got[name], got["before"]
        if new["brier"] > old["brier"]:
            why.append(f"a worse Brier score on the {where}")
        if new["ece"] > old["ece"]:
            why.append(f"a worse calibration error on the {where}")
        if new["gap"] > max(old["gap"], 0.05):
            why.append(f"a wider gap at the top on the {where}")
    # Alerts fire at 0.5: those at 0.5 or more must come true at least as often as before.
    if held[name]["hit"] < held["before"]["hit"] - 0.05:
        why.append("forecasts >= 0.5 come true less often on the simulation")
    # 4-decimal outputs tie some forecasts the raw value tells apart; 1e-4 allows only that.
    if held[name]["auc"] < held["before"]["auc"] - 1e-4:
        why.append("it lowers the AUC")
    return [f"{name}: {w}" for w in why]


def print_bands(bands) -> None:
    print("_CALIBRATION: tuple[tuple[float, tuple[tuple[float, float], ...]], ...] = (")
    for anchor, table in bands:
        print(f"    (\n        {anchor:.0f},\n        (")
        for x, y in table:
            print(f"            ({x:.6g}, {y:.4f}),")
        print("        ),\n    ),")
    print(")")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cascades", type=int, default=3000, help="per set (default 3000)")
    parser.add_argument("--knots", type=int, default=20, help="most blocks per band")
    parser.add_argument("--fit-only", action="store_true", help="print the constants only")
    args = parser.parse_args()
    prof = seismic_profile()
    if prof is not None:
        knots_p, tail = prof
        print("# the SEISMIC example's infectiousness profile (cascades.PROFILE, PROFILE_TAIL)")
        print("PROFILE = (" + ", ".join(f"({t:.0f}, {f:.4f})" for t, f in knots_p) + ")")
        print(f"PROFILE_TAIL = {tail:.4f}")
        print()
    sim = dataset(12, args.cascades)
    seismic = seismic_rows()
    train = np.vstack([sim, seismic])
    print(f"# calibration fit: seed 12 ({args.cascades} cascades, {len(sim)} forecasts) and the"
          f" SEISMIC example ({len(seismic)} forecasts)")  # fmt: skip
    bands = fit_calibration(train, BANDS, args.knots)
    print("# the same, one band for all ages (to compare)")
    one = fit_calibration(train, ONE_BAND, args.knots)
    print_bands(bands)
    print()
    direct, damping, shrink_name = choose_shrink(sim)
    print(f"# shrink shipped: {shrink_name}")
    print("_SHRINK_DIRECT: tuple[tuple[float, tuple[float, ...]], ...] = (")
    for a, k in direct:
        print(f"    ({a:.0f}, ({', '.join(f'{x:.3f}' for x in k)})),")
    print(")")
    print(f"_SHRINK_BRANCHING = {damping}")
    print()
    if args.fit_only:
        return
    held = dataset(13, args.cascades)
    candidates = {"before": None, "two-sided, 3 age bands": bands, "two-sided, 1 band": one}
    h = report("held-out simulated cascades (seed 13)", held, candidates)
    size_ratios(held, direct, damping)
    print()
    r = None
    if len(seismic):
        r = report("SEISMIC example cascade (IN the fit)", seismic, candidates)
        # The one real check out of sample: the same fit without the example.
        alone = fit_calibration(sim, BANDS, args.knots, quiet=True)
        report("SEISMIC example, out of sample (3 bands fitted on the simulation alone)",
               seismic, {"before": None, "3 bands, simulation only": alone})  # fmt: skip
    with without_burst():
        report("what-if: held-out cascades WITHOUT the half-hour burst (seed 14)",
               dataset(14, args.cascades), candidates)  # fmt: skip
    with one_snapshot():
        report("what-if: held-out cascades (seed 13) seen in ONE snapshot, as first scored",
               dataset(13, args.cascades), candidates)  # fmt: skip
    shipped = virality._CALIBRATION
    print("# the shipped _CALIBRATION " + ("is" if shipped == bands else "DIFFERS from")
          + " the table fitted above")  # fmt: skip
    reasons = []
    for name in ("two-sided, 3 age bands", "two-sided, 1 band"):
        why = verdict(name, h, r)
        if not why:
            print(f"# verdict: ship the {name} calibration")
            return
        reasons += why
    print("# verdict: keep the calibration that shipped before: " + "; ".join(reasons))


if __name__ == "__main__":
    main()
