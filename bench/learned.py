"""What team labels teach: complaint F1 of the cues alone against cues plus a learned layer,
on a held-out half of the labelled examples in ``tests/scoring/label_examples.py``; the
time to fit 10,000 labels; scoring speed with and without a layer.

Run ``python bench/learned.py`` (``bench/scoring.py`` runs it too). Process CPU time is
measured, best of several rounds, so other work on the machine disturbs it less.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.scoring.complaint_examples import EXAMPLES  # noqa: E402
from tests.scoring.label_examples import examples, split  # noqa: E402

from emberwatch.mention import Mention  # noqa: E402
from emberwatch.scoring import Scorer, learned  # noqa: E402


def bench_learned() -> None:
    print("## Learning from team labels (Kestrel Mobile examples, held-out half)")
    train, held = split(examples(600))
    plain = Scorer()
    print(f"{'labels':>7}  {'fit s':>6}  result on {len(held)} held-out mentions")
    print(f"{0:>7}  {'':>6}  {learned.evaluate(plain, held).line()}  (cues alone)")
    layer = None
    for n in (25, 50, 100, 200, 300):
        started = time.perf_counter()
        layer = learned.fit(train[:n], plain)
        seconds = time.perf_counter() - started
        print(f"{n:>7}  {seconds:>6.2f}  {learned.evaluate(Scorer(learned=layer), held).line()}")
    many = examples(10_000, seed=3)
    started = time.perf_counter()
    big = learned.fit(many, plain)
    print(f"fit from {len(many):,} labels: {time.perf_counter() - started:.1f} s ({big!r})")

    texts = [t for t, _ in EXAMPLES] + [e.mention.text for e in held]
    mentions = [
        Mention("x", str(i), None, None, None, None, t, None) for i, t in enumerate(texts * 6)
    ]
    taught = Scorer(learned=layer)
    best = {"cues alone": float("inf"), "with the 300-label layer": float("inf")}
    for _ in range(7):
        for name, scorer in zip(best, (plain, taught), strict=True):
            started = time.process_time()
            for m in mentions:
                scorer.score(m)
            best[name] = min(best[name], time.process_time() - started)
    base = best["cues alone"]
    for name, seconds in best.items():
        per = seconds / len(mentions) * 1e6
        print(f"Scorer.score, {name}: {per:.1f} us a mention ({seconds / base - 1:+.1%})")
    print()


if __name__ == "__main__":
    bench_learned()
