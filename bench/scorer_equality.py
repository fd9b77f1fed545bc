"""Same scores, and how fast: a harness for changes to ``src/emberwatch/scoring``.

``python bench/scorer_equality.py dump FILE`` scores a fixed corpus of several thousand
texts in several ways (no brand; a brand whose name VADER scores; star ratings; a fitted
300-label learned layer) and writes every ``Scores`` as one JSON line. ``check FILE``
scores them again and reports the first line that differs: a speed-up must leave it at 0.

The corpus: every example in ``tests/scoring/*_examples.py``, synthetic mentions from
``bench/_common.py``, and the texts of ``../shared/data/sentiment/*.txt``, which serve
here only as inputs to compare and time, never to tune on.

``time`` prints the per-mention CPU time of ``Scorer.score`` (cues alone, and with the
300-label layer) in this process; ``compare SRC=LABEL ...`` runs ``time`` for several
source trees (``PYTHONPATH=SRC``) in interleaved rounds and prints the best of each, with
ratios to the first. A tree without a learned layer (before issue 12) reports cues only.

Scores include virality, so dump and check against the same ``virality.py``: to compare
only your change, score a tree made with ``git archive <base> src`` plus your files, by
``PYTHONPATH=that/src``. Example::

    PYTHONPATH=/tmp/base/src python bench/scorer_equality.py dump /tmp/base.jsonl
    PYTHONPATH=/tmp/mine/src python bench/scorer_equality.py check /tmp/base.jsonl
    python bench/scorer_equality.py compare --rounds 6 /tmp/orig/src=orig /tmp/mine/src=mine
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SENTIMENT = ROOT.parent / "shared" / "data" / "sentiment"
BRANDS = {
    "acme": ["Acme", "@acme", "#acme"],
    "united": ["United", "@united", "United Airlines"],
    "kestrel": ["@kestrelmobile", "Kestrel", "@KestrelHelp", "kestrel mobile", "@kestrel_uk"],
}
LEXICONS = {"acme": {"sick": 2.0}, "kestrel": {"class": 1.5}}


def _example_texts() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from tests.scoring import category_examples, complaint_examples, language_examples
    from tests.scoring.label_examples import examples

    out: list[str] = []
    for module in (category_examples, complaint_examples, language_examples):
        for value in vars(module).values():
            if isinstance(value, list):
                for item in value:
                    parts = item if isinstance(item, tuple) else (item,)
                    text = max((p for p in parts if isinstance(p, str)), key=len, default=None)
                    if text is not None:
                        out.append(text)
    out += [e.mention.text for e in examples(600)]
    return out


def _synthetic(n: int) -> list[str]:
    sys.path.insert(0, str(ROOT / "bench"))
    from _common import mention_text

    rng = random.Random(18)
    return [mention_text(rng, rng.choice(["Acme", "United", "Kestrel"]))[0] for _ in range(n)]


def _sentiment_texts() -> list[str]:
    out = []
    for path in sorted(SENTIMENT.glob("*.txt")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                out.append(parts[2])
    return out


def corpus() -> list[str]:
    return _example_texts() + _synthetic(3000) + _sentiment_texts()


def _layer():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT))
    from tests.scoring.label_examples import examples, split

    from emberwatch.scoring import Scorer, learned

    train, _ = split(examples(600))
    return learned.fit(train[:300], Scorer())


def _runs():  # type: ignore[no-untyped-def]
    """(name, scorer, mention kwargs, score kwargs) for each way the corpus is scored."""
    from emberwatch.scoring import Scorer

    layer = _layer()
    plain = Scorer()
    branded = Scorer(LEXICONS, brand_terms=BRANDS)
    taught = Scorer(LEXICONS, brand_terms=BRANDS, learned=layer)
    return [
        ("plain", plain, lambda i: {}, lambda i: {}),
        ("brand", branded, lambda i: {}, lambda i: {"brand": list(BRANDS)[i % 3]}),
        ("rated", branded, lambda i: {"rating": (i % 9) / 2 if i % 9 > 1 else None}, lambda i: {}),
        (
            "learned",
            taught,
            lambda i: {"rating": 1 + i % 5 if i % 7 == 0 else None},
            lambda i: {"brand": list(BRANDS)[i % 4] if i % 4 < 3 else None},
        ),
    ]


def lines() -> list[str]:
    from emberwatch.mention import Mention

    texts = corpus()
    out = []
    for name, scorer, mention_kw, score_kw in _runs():
        for i, text in enumerate(texts):
            m = Mention("x", str(i), None, None, None, None, text, None, **mention_kw(i))
            scores = scorer.score(m, **score_kw(i))
            out.append(json.dumps([name, i, scores.to_dict()], ensure_ascii=False))
    return out


def timing_texts() -> dict[str, list[str]]:
    """bench/learned.py's texts (complaint examples and held-out label examples) and
    synthetic mentions."""
    sys.path.insert(0, str(ROOT))
    from tests.scoring.complaint_examples import EXAMPLES
    from tests.scoring.label_examples import examples, split

    _, held = split(examples(600))
    return {
        "examples": [t for t, _ in EXAMPLES] + [e.mention.text for e in held],
        "synthetic": _synthetic(600),
    }


def timing(sets: dict[str, list[str]], rounds: int) -> dict[str, float]:
    """Best per-mention CPU microseconds of ``Scorer.score`` on each set of texts, cues
    alone and with the 300-label layer."""
    from emberwatch.mention import Mention
    from emberwatch.scoring import Scorer

    scorers = {"cues": Scorer()}
    with contextlib.suppress(ImportError, TypeError):  # a tree from before the layer
        scorers["layer"] = Scorer(learned=_layer())
    best: dict[str, float] = {}
    for _ in range(rounds):
        for set_name, texts in sets.items():
            mentions = [
                Mention("x", str(i), None, None, None, None, t, None)
                for i, t in enumerate(texts * 3)
            ]
            for name, scorer in scorers.items():
                started = time.process_time()
                for m in mentions:
                    scorer.score(m)
                per = (time.process_time() - started) / len(mentions) * 1e6
                key = f"{set_name}/{name}"
                best[key] = min(best.get(key, float("inf")), per)
    return best


def compare(trees: list[str], rounds: int) -> None:
    best: dict[str, dict[str, float]] = {}
    texts = Path(f"/tmp/scorer_equality_texts_{os.getpid()}.json")
    texts.write_text(json.dumps(timing_texts()), encoding="utf-8")
    for _ in range(rounds):
        for tree in trees:
            src, label = tree.split("=", 1)
            env = {**os.environ, "PYTHONPATH": src}
            out = subprocess.run(
                [sys.executable, __file__, "time", str(texts), "2"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            for key, value in json.loads(out.splitlines()[-1]).items():
                slot = best.setdefault(label, {})
                slot[key] = min(slot.get(key, float("inf")), value)
    labels = [t.split("=", 1)[1] for t in trees]
    base = best[labels[0]]
    keys = sorted({k for b in best.values() for k in b})
    print(f"{'us a mention':<20}" + "".join(f"{label:>22}" for label in labels))
    for key in keys:
        cells = []
        for label in labels:
            value = best[label].get(key)
            ref = base.get(key) or base.get(key.split("/")[0] + "/cues")
            cells.append("-" if value is None else f"{value:7.1f} ({value / ref:4.2f}x)")
        print(f"{key:<20}" + "".join(f"{c:>22}" for c in cells))


def main() -> None:
    command = sys.argv[1]
    if command == "dump":
        data = "\n".join(lines()) + "\n"
        Path(sys.argv[2]).write_text(data, encoding="utf-8")
        print(
            f"{data.count(chr(10))} scores, sha256 {hashlib.sha256(data.encode()).hexdigest()[:16]}"
        )
    elif command == "check":
        want = Path(sys.argv[2]).read_text(encoding="utf-8").splitlines()
        got = lines()
        diff = [i for i, (a, b) in enumerate(zip(want, got, strict=True)) if a != b]
        print(f"{len(got)} scores compared, {len(diff)} differ")
        for i in diff[:3]:
            print("want", want[i][:600], "\ngot ", got[i][:600], sep="")
        sys.exit(1 if diff else 0)
    elif command == "time":
        if len(sys.argv) > 2:
            sets = json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))
            rounds = int(sys.argv[3])
        else:
            sets, rounds = timing_texts(), 5
        for key, value in (best := timing(sets, rounds)).items():
            print(f"{key}: {value:.1f} us a mention", file=sys.stderr)
        print(json.dumps(best))
    elif command == "compare":
        rounds = 5
        args = sys.argv[2:]
        if args[0] == "--rounds":
            rounds, args = int(args[1]), args[2:]
        compare(args, rounds)


if __name__ == "__main__":
    main()
