"""Fit, and check, the virality forecast's calibration and size shrink on simulated cascades.

Run ``.venv/bin/python bench/virality_calibration.py`` (about a minute; ``--cascades N`` to
change the size). It

1. fits the infectiousness profile of the SEISMIC example (``../shared/data/virality``) from
   the R package's reference series, as :data:`cascades.PROFILE` (printed, to compare with the
   constants the simulator uses);
2. simulates two independent sets of cascades with ``tests/scoring/cascades.py`` (seed 12 to
   fit, seed 13 held out) and forecasts each at several ages from its polls, uncalibrated and
   unshrunk;
3. fits the shrink of the still-to-come engagement (:func:`virality.shrunk_to_come`): a
   damping of the branching factor and, per age, a factor on the direct reactions, so that the
   median expected/actual 7-day size is 1 at every age among forecasts with 5 or more
   engagements seen;
4. fits an isotonic map from the raw probability to the observed frequency of reaching the
   threshold within 24 h, on the seed-12 cascades and the SEISMIC example;
5. prints the constants to paste into ``emberwatch/scoring/virality.py`` and, on the held-out
   set, the reliability table, AUC, Brier score and share of forecasts at 0.5 or more before
   and after, the expected/actual ratio by age before and after, and the SEISMIC example's
   expected/actual at 1, 2, 4 and 6 h.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from bisect import bisect_right
from itertools import pairwise
from pathlib import Path

import numpy as np

from emberwatch.scoring import virality
from emberwatch.scoring.virality import forecast_from_polls, platform_prior

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "scoring"))
from cascades import draw_cascade, polls  # noqa: E402

AGES = (600.0, 1800.0, 3600.0, 7200.0, 14400.0, 21600.0, 28800.0, 43200.0)
THRESHOLDS = (100.0, 500.0, 1000.0)
BINS = (0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)
PRIOR = platform_prior("twitter")
MIN_SEEN = 5  # the shrink is fitted on forecasts with this much engagement seen
# Columns of a dataset row.
RAW_P, RAW_EXP, SEEN, PENDING, BRANCHING, REACHED, FINAL, TRUNCATED, AGE = range(9)
SEISMIC_FINAL = 15_562


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


def isotonic(x: np.ndarray, y: np.ndarray) -> list[tuple[float, float]]:
    """Pool-adjacent-violators on y sorted by x; one knot per pooled block at its mean x."""
    order = np.argsort(x, kind="stable")
    blocks: list[list[float]] = []  # [sum x, sum y, count]
    for xi, yi in zip(x[order], y[order], strict=True):
        blocks.append([xi, yi, 1.0])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] >= blocks[-1][1] / blocks[-1][2]:
            sx, sy, c = blocks.pop()
            blocks[-1][0] += sx
            blocks[-1][1] += sy
            blocks[-1][2] += c
    return [(b[0] / b[2], b[1] / b[2]) for b in blocks]


def thin(knots: list[tuple[float, float]], keep: int = 16) -> list[tuple[float, float]]:
    """At most ``keep`` knots, evenly spaced in rank, always the first and last."""
    if len(knots) <= keep:
        return knots
    idx = sorted({round(i * (len(knots) - 1) / (keep - 1)) for i in range(keep)})
    return [knots[i] for i in idx]


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


def report(name: str, rows: np.ndarray, knots, direct, damping) -> None:
    y = rows[:, REACHED]
    raw = rows[:, RAW_P]
    cal = np.array([virality.calibrated(round(p, 4), knots) for p in raw])
    print(f"## {name}: {len(rows)} forecasts, {y.mean():.1%} reached the threshold within 24 h")
    before, after = reliability(raw, y), reliability(cal, y)
    print(f"{'before (raw)':<38}| after (calibrated)")
    for a, b in zip(before, after + [""] * (len(before) - len(after)), strict=False):
        print(f"{a:<38}| {b}")
    for a in after[len(before) :]:
        print(f"{'':<38}| {a}")
    brier = [float(np.mean((q - y) ** 2)) for q in (raw, cal)]
    hi = [(q >= 0.5) for q in (raw, cal)]
    print(f"AUC {auc(raw, y):.4f} -> {auc(cal, y):.4f}; Brier {brier[0]:.4f} -> {brier[1]:.4f};"
          f" share >= 0.5 {hi[0].mean():.2%} -> {hi[1].mean():.2%}"
          f" (of which reached {y[hi[0]].mean():.2f} -> {y[hi[1]].mean():.2f})")  # fmt: skip
    expected = shrunk(rows, direct, damping)
    ok = (rows[:, TRUNCATED] == 0) & (rows[:, FINAL] >= 1)
    print("median expected/actual 7-day size by age, before -> after"
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
    print()


def seismic_sizes(direct, damping) -> None:
    found = seismic_times()
    if found is None:
        return
    times, followers = found
    print(f"## SEISMIC example, polled every 5 min: expected/actual ({SEISMIC_FINAL} retweets)")
    for hours in (1, 2, 4, 6):
        seen = [(t, float(bisect_right(times, t))) for t in range(300, hours * 3600 + 1, 300)]
        raw = forecast_from_polls(seen, threshold=10**6, poster_followers=followers,
                                  prior=platform_prior("x"), shrink=False)  # fmt: skip
        pending = (raw.expected_final - raw.engagement) * (
            1 - min(raw.branching, virality._BRANCHING_CAP)
        )
        new = raw.engagement + virality.shrunk_to_come(
            pending, raw.branching, raw.age, raw.engagement, direct=direct, damping=damping
        )
        print(f"  {hours} h: seen {raw.engagement:g}, branching {raw.branching:.2f}: "
              f"{raw.expected_final / SEISMIC_FINAL:.3f} -> {new / SEISMIC_FINAL:.3f}")  # fmt: skip
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cascades", type=int, default=3000, help="per set (default 3000)")
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
    direct, damping = fit_shrink(sim)
    train = np.vstack([sim, seismic_rows()])
    knots = thin(isotonic(train[:, RAW_P], train[:, REACHED]))
    knots = [k for i, k in enumerate(knots) if i == 0 or k[0] > knots[i - 1][0] + 1e-9]
    knots = [(round(x, 6), round(y, 4)) for x, y in knots]
    print("# paste into emberwatch/scoring/virality.py (fitted by bench/virality_calibration.py,")
    print(f"# seed 12, {args.cascades} simulated cascades + the SEISMIC example)")
    print("_CALIBRATION: tuple[tuple[float, float], ...] = (")
    for x, y in knots:
        print(f"    ({x:.6g}, {y:.4f}),")
    print(")")
    print("_SHRINK_DIRECT: tuple[tuple[float, float], ...] = (")
    for a, k in direct:
        print(f"    ({a:.0f}, ({', '.join(f'{x:.3f}' for x in k)})),")
    print(")")
    print(f"_SHRINK_BRANCHING = {damping}")
    print()
    if args.fit_only:
        return
    report("held-out simulated cascades (seed 13)", dataset(13, args.cascades), knots, direct,
           damping)  # fmt: skip
    seismic = seismic_rows()
    if len(seismic):
        report("SEISMIC example cascade (also in the fit)", seismic, knots, direct, damping)
    seismic_sizes(direct, damping)


if __name__ == "__main__":
    main()
