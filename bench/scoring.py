"""Benchmark the scorer: sentiment, categories, complaints, learning from labels, language,
SEISMIC, polling, throughput.

Run ``python bench/scoring.py``. Ground truth is read from ``../shared/data`` next to the
repository (or ``$EMBERWATCH_SHARED_DATA``); sections whose data is absent say so. The
category and complaint figures come from the project's own hand-written examples
(``tests/scoring/category_examples.py``, ``complaint_examples.py``; their ``HELD_OUT`` lists
were not looked at while the cues were set), measured by ``bench/categories.py``.
"""

from __future__ import annotations

import csv
import math
import os
import statistics
import sys
import time
from bisect import bisect_right
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from emberwatch.mention import Mention
from emberwatch.scoring import Scorer
from emberwatch.scoring.sentiment import SentimentModel
from emberwatch.scoring.virality import (
    PlatformPrior,
    forecast_from_polls,
    infectiousness,
    platform_prior,
    predict_final_size,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "scoring"))
import categories  # noqa: E402
import language_speed  # noqa: E402
from complaint_examples import EXAMPLES  # noqa: E402
from learned import bench_learned  # noqa: E402  (bench/learned.py)

SENTIMENT_FILES = ("tweets", "movieReviewSnippets", "amazonReviewSnippets", "nytEditorialSnippets")
TRUE_FINAL = 15_562


def shared_data() -> Path | None:
    env = os.environ.get("EMBERWATCH_SHARED_DATA")
    path = Path(env) if env else ROOT / ".." / "shared" / "data"
    return path if path.is_dir() else None


def load_ground_truth(path: Path) -> tuple[list[float], list[str]]:
    rows = path.read_text(encoding="utf-8-sig").splitlines()
    parts = [row.split("\t", 2) for row in rows if row.strip()]
    return [float(p[1]) for p in parts], [p[2] for p in parts]


def paper_f1(gold: list[float], pred: list[float]) -> float:
    """The VADER paper's classification F1: both cut at +-0.05, precision and recall pooled
    over the positive and negative classes (reproduces the shared README's figures)."""

    def cls(x: float) -> int:
        return 1 if x >= 0.05 else -1 if x <= -0.05 else 0

    tp = predicted = actual = 0
    for g, p in zip(gold, pred, strict=True):
        cg, cp = cls(g), cls(p)
        predicted += cp != 0
        actual += cg != 0
        tp += cg != 0 and cg == cp
    precision, recall = tp / predicted, tp / actual
    return 2 * precision * recall / (precision + recall)


def bench_sentiment(data: Path | None) -> None:
    print("## Sentiment (Pearson r and paper-style F1 against human ratings)")
    if data is None:
        print("skipped: ../shared/data not found\n")
        return
    vader, ours = SentimentIntensityAnalyzer(), SentimentModel()
    print(f"{'file':<22}{'n':>7}{'VADER r':>10}{'VADER F1':>10}{'ours r':>9}{'ours F1':>9}")
    for name in SENTIMENT_FILES:
        gold, texts = load_ground_truth(data / "sentiment" / f"{name}_GroundTruth.txt")
        raw = [vader.polarity_scores(t)["compound"] for t in texts]
        mine = [ours.compound(t) for t in texts]
        print(
            f"{name:<22}{len(texts):>7}{statistics.correlation(gold, raw):>10.3f}"
            f"{paper_f1(gold, raw):>10.3f}{statistics.correlation(gold, mine):>9.3f}"
            f"{paper_f1(gold, mine):>9.3f}"
        )
    print()


def bench_categories() -> None:
    print("## Categories on the project's own examples (rows expected, columns predicted)")
    categories.main(show_failures=False)
    print()


def bench_language() -> None:
    print("## Language detection (hand-written examples; cost per text)")
    for name, right, total in language_speed.accuracy():
        print(f"{name:<40}{right:>5}/{total}")
    figures = language_speed.bench_language(quick=True)
    for name in (
        "fast-path share, tweets",
        "detect µs, English social posts",
        "detect µs, non-English (classifier)",
        "Scorer.score µs, tweets",
    ):
        print(f"{name:<40}{figures[name]:>10.3g}")
    print()


def _cascade(data: Path) -> tuple[list[float], list[float]]:
    with (data / "virality" / "seismic_tweet_127001313513967616.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    times = [float(r["relative_time_second"]) for r in rows]
    followers = [float(r["number_of_followers"]) for r in rows]
    return times, followers


def bench_seismic(data: Path | None) -> None:
    print("## SEISMIC on event data vs the official R package (n.star = 100)")
    if data is None:
        print("skipped: ../shared/data not found\n")
        return
    times, followers = _cascade(data)
    with (data / "virality" / "seismic_reference_series_nstar100.csv").open() as fh:
        reference = list(csv.DictReader(fh))
    started = time.perf_counter()
    worst_p = worst_n = 0.0
    finite = inf_agree = inf_total = 0
    for row in reference:
        at = float(row["obs_time_s"])
        est = infectiousness(times, followers, at)
        pred = predict_final_size(at, est.value, times, followers)
        ref_pred = float(row["predicted_final_retweets"])
        if math.isinf(ref_pred):
            inf_total += 1
            inf_agree += math.isinf(pred)
            continue
        finite += 1
        ref_p = float(row["infectiousness"])
        if ref_p:
            worst_p = max(worst_p, abs(est.value - ref_p) / ref_p)
        if ref_pred:
            worst_n = max(worst_n, abs(pred - ref_pred) / ref_pred)
    elapsed = time.perf_counter() - started
    print(
        f"{finite} finite observation times: max relative error infectiousness {worst_p:.1e}, "
        f"final size {worst_n:.1e}; infinite predictions matched {inf_agree}/{inf_total} "
        f"({elapsed:.1f} s)"
    )
    print()


def bench_polling(data: Path | None) -> None:
    print("## Polling adaptation: the same cascade seen as counts every 5 minutes")
    if data is None:
        print("skipped: ../shared/data not found\n")
        return
    times, followers = _cascade(data)
    default = platform_prior("twitter")
    variants = [
        (f"platform default ({default.engager_followers:g}/engager)", default),
        ("engagers at n*=100", PlatformPrior(audience=200, engager_followers=100)),
        ("engagers at 500", PlatformPrior(audience=200, engager_followers=500)),
    ]
    print(f"true final size {TRUE_FINAL}; relative error of the predicted final size")
    header = f"{'observed for':<40}" + "".join(f"{h:>9}" for h in ("1 h", "2 h", "4 h", "6 h"))
    print(header)
    event_row, rows = [], {name: [] for name, _ in variants}
    for hours in (1, 2, 4, 6):
        end = hours * 3600
        est = infectiousness(times, followers, end)
        pred = predict_final_size(end, est.value, times, followers)
        event_row.append(pred / TRUE_FINAL - 1)
        polls = [(t, bisect_right(times, t) - 1) for t in range(300, end + 1, 300)]
        for name, prior in variants:
            forecast = forecast_from_polls(
                polls, threshold=500, poster_followers=followers[0], prior=prior
            )
            rows[name].append(forecast.expected_final / TRUE_FINAL - 1)
    print(f"{'SEISMIC, events + followers':<40}" + "".join(f"{e:>+9.3f}" for e in event_row))
    for name, errors in rows.items():
        print(f"{'polling, ' + name:<40}" + "".join(f"{e:>+9.3f}" for e in errors))
    print()


def bench_throughput(data: Path | None) -> None:
    print("## Throughput (same texts, same run, best of 3)")
    if data is not None:
        _, texts = load_ground_truth(data / "sentiment" / "tweets_GroundTruth.txt")
    else:
        texts = [text for text, _ in EXAMPLES] * 40
    mentions = [
        Mention("twitter", str(i), None, "someone", 800, None, text, None)
        for i, text in enumerate(texts)
    ]
    vader, scorer = SentimentIntensityAnalyzer(), Scorer()

    def best(fn) -> float:
        rates = []
        for _ in range(3):
            started = time.perf_counter()
            fn()
            rates.append(len(texts) / (time.perf_counter() - started))
        return max(rates)

    raw = best(lambda: [vader.polarity_scores(t) for t in texts])
    full = best(lambda: [scorer.score(m) for m in mentions])
    print(f"raw vaderSentiment: {raw:,.0f} mentions/s")
    print(f"full Scorer.score:  {full:,.0f} mentions/s ({full / raw:.0%} of raw VADER)")
    print()


def main() -> None:
    data = shared_data()
    bench_sentiment(data)
    bench_categories()
    bench_learned()
    bench_language()
    bench_seismic(data)
    bench_polling(data)
    bench_throughput(data)


if __name__ == "__main__":
    main()
