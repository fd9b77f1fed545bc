"""Fit, and check, the calibration of the virality forecast on simulated cascades.

Run ``.venv/bin/python bench/virality_calibration.py`` (about a minute; ``--cascades N`` to
change the size). It simulates two independent sets of cascades with
``tests/scoring/cascades.py`` (seed 12 to fit, seed 13 held out), forecasts each at several
ages from its polls with the *uncalibrated* forecast, fits an isotonic map from the raw
probability to the observed frequency of reaching the threshold within 24 h. It prints the
constants to paste into ``emberwatch/scoring/virality.py`` and, on the held-out
set, the reliability table, AUC, and the expected/actual size ratio before and after. The SEISMIC
example cascade (``../shared/data/virality``) is forecast too and its points join the fit.
"""

from __future__ import annotations

import argparse
import csv
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

AGES = (600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0)
THRESHOLDS = (100.0, 500.0, 1000.0)
BINS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)
PRIOR = platform_prior("twitter")


def dataset(seed: int, n: int) -> np.ndarray:
    """Rows of (raw p, calibrated p, raw expected, calibrated expected, reached, 7-day size,
    engagement seen), one per cascade, age and threshold with the count still below it."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        cascade = draw_cascade(rng)
        if cascade.truncated:
            continue
        threshold = float(rng.choice(THRESHOLDS))
        reached = cascade.count_at(virality.HORIZON) >= threshold
        for age in AGES:
            if age < cascade.poll_interval:
                continue
            seen = polls(cascade, age)
            if seen[-1][1] >= threshold:
                break
            rows.append(
                _row(seen, threshold, cascade.poster_followers, reached, cascade.times.size)
            )
    return np.array(rows, dtype=float)


def _row(seen, threshold, followers, reached, final) -> tuple[float, ...]:
    kw = dict(threshold=threshold, poster_followers=followers, prior=PRIOR)
    raw = forecast_from_polls(seen, calibrate=False, **kw)
    cal = forecast_from_polls(seen, **kw)
    return (raw.probability, cal.probability, raw.expected_final, cal.expected_final,
            float(reached), float(final), raw.engagement)  # fmt: skip


def seismic_rows() -> np.ndarray:
    """The SEISMIC example cascade polled every 5 minutes, for several thresholds and ages."""
    env = os.environ.get("EMBERWATCH_SHARED_DATA")
    data = Path(env) if env else ROOT / ".." / "shared" / "data"
    path = data / "virality" / "seismic_tweet_127001313513967616.csv"
    if not path.exists():
        return np.zeros((0, 7))
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    times = [float(r["relative_time_second"]) for r in rows][1:]
    followers = float(rows[0]["number_of_followers"])
    by_day, final = bisect_right(times, virality.HORIZON), len(times)
    out = []
    for threshold in (1000.0, 2000.0, 5000.0, 10000.0, 14000.0, 15000.0, 20000.0):
        for age in range(1800, 12 * 3600 + 1, 1800):
            seen = [(t, float(bisect_right(times, t))) for t in range(300, age + 1, 300)]
            if seen[-1][1] >= threshold:
                break
            out.append(_row(seen, threshold, followers, by_day >= threshold, final))
    return np.array(out, dtype=float)


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


def report(name: str, rows: np.ndarray) -> None:
    y = rows[:, 4]
    print(f"## {name}: {len(rows)} forecasts, {y.mean():.1%} reached the threshold within 24 h")
    before, after = reliability(rows[:, 0], y), reliability(rows[:, 1], y)
    print(f"{'before':<38}| after")
    for a, b in zip(before, after + [""] * (len(before) - len(after)), strict=False):
        print(f"{a:<38}| {b}")
    for a in after[len(before) :]:
        print(f"{'':<38}| {a}")
    brier = [float(np.mean((rows[:, k] - y) ** 2)) for k in (0, 1)]
    print(f"AUC {auc(rows[:, 0], y):.4f} -> {auc(rows[:, 1], y):.4f};"
          f" Brier {brier[0]:.4f} -> {brier[1]:.4f}")  # fmt: skip
    big = rows[:, 6] >= 5
    for label, m in (("engagement >= 5 seen", big), ("all", rows[:, 5] >= 1)):
        r0, r1 = rows[m, 2] / rows[m, 5], rows[m, 3] / rows[m, 5]
        print(f"median expected/actual 7-day size ({label}, n={m.sum()}): "
              f"{np.median(r0):.2f} -> {np.median(r1):.2f}"
              f" (IQR {np.percentile(r0, 25):.2f}-{np.percentile(r0, 75):.2f}"
              f" -> {np.percentile(r1, 25):.2f}-{np.percentile(r1, 75):.2f})")  # fmt: skip
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cascades", type=int, default=3000, help="per set (default 3000)")
    parser.add_argument("--fit-only", action="store_true", help="print the constants only")
    args = parser.parse_args()
    train = np.vstack([dataset(12, args.cascades), seismic_rows()])
    knots = thin(isotonic(train[:, 0], train[:, 4]))
    knots = [k for i, k in enumerate(knots) if i == 0 or k[0] > knots[i - 1][0] + 1e-9]
    print("# paste into emberwatch/scoring/virality.py (fitted by bench/virality_calibration.py,")
    print(f"# seed 12, {args.cascades} simulated cascades + the SEISMIC example)")
    print("_CALIBRATION: tuple[tuple[float, float], ...] = (")
    for x, y in knots:
        print(f"    ({x:.6g}, {y:.4f}),")
    print(")")
    print()
    if args.fit_only:
        return
    report("held-out simulated cascades (seed 13)", dataset(13, args.cascades))
    seismic = seismic_rows()
    if len(seismic):
        report("SEISMIC example cascade (also in the fit)", seismic)


if __name__ == "__main__":
    main()
