"""What team labels teach: complaint F1 of the cues alone against cues plus a learned layer,
on a held-out half of the labelled examples in ``tests/scoring/label_examples.py``; the
time to fit 10,000 labels; scoring speed with and without a layer.

Run ``python bench/learned.py`` (``bench/scoring.py`` runs it too). Process CPU time is
measured, best of several rounds, so other work on the machine disturbs it less.
``--baseline SRC`` also times the cues-alone scorer of another source tree (say the one
from before the layer existed) on the same mentions, in a process of its own with
``PYTHONPATH=SRC``, in the same rounds, and prints both scorers here as a multiple of it:
issue 12 asks the layer to keep scoring within 10% of that.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.scoring.complaint_examples import EXAMPLES  # noqa: E402
from tests.scoring.label_examples import examples, split  # noqa: E402

from emberwatch.mention import Mention  # noqa: E402
from emberwatch.scoring import Scorer, learned  # noqa: E402

# Run with PYTHONPATH=SRC: that tree's Scorer, cues alone, on the mentions in argv[1]; the
# CPU microseconds a mention of one pass over them.
_TIME_ELSEWHERE = """
import json, sys, time
from emberwatch.mention import Mention
from emberwatch.scoring import Scorer
texts = json.load(open(sys.argv[1], encoding="utf-8"))
mentions = [Mention("x", str(i), None, None, None, None, t, None) for i, t in enumerate(texts)]
scorer = Scorer()
for m in mentions[:200]:
    scorer.score(m)
started = time.process_time()
for m in mentions:
    scorer.score(m)
print((time.process_time() - started) / len(mentions) * 1e6)
"""


def _elsewhere(src: str, texts_file: str) -> float:
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run(
        [sys.executable, "-c", _TIME_ELSEWHERE, texts_file],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.split()[-1])


def bench_learned(baseline: str | None = None) -> None:
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
    other = float("inf")
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as texts_file:
        json.dump([m.text for m in mentions], texts_file)
        texts_file.flush()
        for _ in range(7):
            for name, scorer in zip(best, (plain, taught), strict=True):
                started = time.process_time()
                for m in mentions:
                    scorer.score(m)
                best[name] = min(best[name], time.process_time() - started)
            if baseline:
                other = min(other, _elsewhere(baseline, texts_file.name))
    base = best["cues alone"]
    for name, seconds in best.items():
        per = seconds / len(mentions) * 1e6
        line = f"Scorer.score, {name}: {per:.1f} us a mention ({seconds / base - 1:+.1%})"
        if baseline:
            line += f", {per / other:.2f}x the baseline's"
        print(line)
    if baseline:
        print(f"Scorer.score, cues alone, {baseline}: {other:.1f} us a mention (the baseline)")
    print()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="SRC", help="time this source tree's scorer too")
    bench_learned(parser.parse_args().baseline)
