"""Language detection: what it costs per text, next to VADER, and what it gets right.

Run ``.venv/bin/python bench/language_speed.py`` (``--quick`` for fewer repeats). Not part of
``run_all.py``. Texts: the hand-written examples in ``tests/scoring/language_examples.py``
and the synthetic forum mentions of ``_common.mention_text`` (mean about 390 characters).
The baselines, on the same texts in the same process: raw vaderSentiment ``polarity_scores``
and the full ``Scorer.score`` (on VADER's tweet ground truth when ``../shared/data`` has it).

The classifier's model, in the compact form of ``emberwatch.scoring._langid`` against
py3langid's own: load time (derived on a first run, then from the cache), peak RSS of a
process that loads it and classifies one text, and µs per classified text. ``--same``
checks instead that both give the same answer, to the last bit of the confidence, on the
multilingual sample of ``tests/scoring/multilingual_examples.py``, the hand-written
examples and every text of ``../shared/data/sentiment``.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from emberwatch.mention import Mention
from emberwatch.scoring import Scorer, _langid, language

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "scoring"))
sys.path.insert(0, str(ROOT / "bench"))
from _common import mention_text  # noqa: E402
from language_examples import ENGLISH, FOREIGN, UNDETERMINED  # noqa: E402
from multilingual_examples import sample  # noqa: E402


def _us_per_text(fn: Callable[[Any], object], texts: Sequence[Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(3):  # best of three: the least disturbed run
        start = time.perf_counter()
        for _ in range(repeats):
            for text in texts:
                fn(text)
        best = min(best, time.perf_counter() - start)
    return best / (repeats * len(texts)) * 1e6


def _tweets() -> list[str]:
    """VADER's tweet ground truth (real English posts, a few in other languages), if present:
    used only for speed and for how many posts take each path, never to tune the detector."""
    env = os.environ.get("EMBERWATCH_SHARED_DATA")
    data = Path(env) if env else ROOT / ".." / "shared" / "data"
    path = data / "sentiment" / "tweets_GroundTruth.txt"
    if not path.exists():
        return []
    rows = path.read_text(encoding="utf-8-sig").splitlines()
    return [row.split("\t", 2)[2] for row in rows if row.strip()]


def _shared_texts() -> list[str]:
    """Every text of ``../shared/data/sentiment`` (English tweets and review snippets)."""
    env = os.environ.get("EMBERWATCH_SHARED_DATA")
    data = Path(env) if env else ROOT / ".." / "shared" / "data"
    found = []
    for path in sorted((data / "sentiment").glob("*.txt")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[2].strip():
                found.append(parts[2])
    return found


_LOAD_AND_CLASSIFY = (
    "from emberwatch.scoring import language\n"
    "language._identifier = {make}\n"
    "assert language.detect({text!r})[0] == {code!r}\n"
    "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])\n"
)


def _peak_rss_mib(
    make: str, env: dict[str, str], text: str = "Mon colis est arrivé abîmé"
) -> float:
    """Peak RSS of a process that imports the scorer, loads a model and classifies once
    (or reads an English text, which needs no model). Read as the child's own ``VmHWM``:
    ``wait4``'s figure would count this big process, which the child starts as a copy."""
    code = _LOAD_AND_CLASSIFY.format(make=make, text=text, code="fr" if "colis" in text else "en")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1]) / 1024


def _read(ident: _langid.Identifier, text: str) -> tuple[Any, int]:
    """A text's features and size as ``Identifier.classify`` reads them."""
    text = text.lower() if text.isupper() else text
    data = unicodedata.normalize("NFC", text).encode("utf8", errors="surrogatepass")
    return ident._visits(data), len(data)


def bench_model() -> dict[str, float]:
    """The compact model against py3langid's own: load, memory, µs per classified text
    (the compact one's float64 estimate, which spares numpy's import, and its exact
    float32 path)."""
    figures = {}
    thresholds = (language._MIN_CONFIDENCE,)
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "XDG_CACHE_HOME": cache}
        start = time.perf_counter()
        with _cache_home(cache):
            _langid.load(language.LANGUAGES, thresholds)
        figures["compact: derive (first run), s"] = time.perf_counter() - start
        start = time.perf_counter()
        with _cache_home(cache):
            compact = _langid.load(language.LANGUAGES, thresholds)
        figures["compact: load from the cache, s"] = time.perf_counter() - start
        start = time.perf_counter()
        own = language._py3langid()
        figures["py3langid: load, s"] = time.perf_counter() - start
        figures["compact: peak RSS, MiB"] = _peak_rss_mib("None", env)
        figures["py3langid: peak RSS, MiB"] = _peak_rss_mib("language._py3langid()", env)
        figures["no classifier: peak RSS, MiB"] = _peak_rss_mib(
            "None", env, "my order is late again, where is it?"
        )
        figures["compact: first text, CPU s (no numpy)"] = _first_text_cpu(env)
    assert compact is not None
    texts = [t for _, t in FOREIGN]
    ways = {  # each reads the text's features too
        "compact, exact": lambda: [compact._exact(*_read(compact, t)) for t in texts],
        "compact, estimate": lambda: [compact._estimate(*_read(compact, t)) for t in texts],
        "py3langid": lambda: [own.classify(t) for t in texts],
    }
    best = dict.fromkeys(ways, float("inf"))
    for _ in range(5):  # interleaved, CPU time: other load disturbs less
        for name, run in ways.items():
            start = time.process_time()
            run()
            best[name] = min(best[name], time.process_time() - start)
    for name, seconds in best.items():
        figures[f"{name}: classify µs, foreign examples"] = seconds / len(texts) * 1e6
    return figures


def _first_text_cpu(env: dict[str, str]) -> float:
    """CPU seconds of a process's first classified text, the model's load included."""
    code = (
        "import time; from emberwatch.scoring import language; t = time.process_time(); "
        "language.detect('Mon colis est arrivé abîmé'); print(time.process_time() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.split()[-1])


class _cache_home:
    def __init__(self, path: str) -> None:
        self.path, self.old = path, os.environ.get("XDG_CACHE_HOME")

    def __enter__(self) -> None:
        os.environ["XDG_CACHE_HOME"] = self.path

    def __exit__(self, *exc: object) -> None:
        if self.old is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = self.old


def same_answers() -> tuple[int, int, int, int]:
    """(texts, answers that differ, texts that reached the classifier in ``detect``,
    estimates that needed the exact path). An answer differs when the compact model's
    exact path is not py3langid's to the last bit, when ``detect`` says otherwise with
    it, or when its float64 estimate gives another label or side of the threshold."""
    compact = _langid.load(language.LANGUAGES, (language._MIN_CONFIDENCE,))
    own = language._py3langid()
    assert compact is not None
    texts = sample() + ENGLISH + [t for _, t in FOREIGN] + UNDETERMINED + _shared_texts()
    differ = reached = unsettled = 0
    for text in texts:
        clean = language._NOISE.sub(" ", text[: language._MAX_CHARS])
        code, confidence = own.classify(clean)
        visits, size = _read(compact, clean)
        differ += compact._exact(visits, size) != (code, confidence)
        estimate = compact._estimate(visits, size) if visits else None
        unsettled += visits is not None and estimate is None
        if estimate is not None:
            differ += estimate[0] != code or (estimate[1] < 0.5) != (confidence < 0.5)
        language._identifier = own
        before = language.detect(text)
        language._identifier = compact
        differ += language.detect(text) != before
        reached += before[1] not in (
            0.0,
            language._FAST_EN_CONFIDENCE,
            language._LIKELY_EN_CONFIDENCE,
        )
    return len(texts), differ, reached, unsettled


def _fast(text: str) -> bool:
    return language.detect(text) == ("en", language._FAST_EN_CONFIDENCE)


def bench_language(quick: bool = False) -> dict[str, float]:
    """Figures by name: µs per text for each path, with VADER and the full scorer on the same
    texts as baselines, and the share of texts the fast path answers."""
    repeats = 3 if quick else 10
    rng = random.Random(12)
    forum = [mention_text(rng)[0] for _ in range(200 if quick else 1000)]
    social = [t for t in ENGLISH if t.isascii()]
    foreign = [t for _, t in FOREIGN]
    tweets = _tweets() or ENGLISH * 40

    language._identifier = None
    start = time.perf_counter()
    language.detect("Mon colis est arrivé abîmé")
    load_s = time.perf_counter() - start

    vader, scorer = SentimentIntensityAnalyzer(), Scorer()
    mentions = [
        Mention("twitter", str(i), None, "someone", 800, None, text, None)
        for i, text in enumerate(tweets)
    ]
    return {
        "classifier load, s": load_s,
        "fast-path share, forum mentions": sum(map(_fast, forum)) / len(forum),
        "fast-path share, tweets": sum(map(_fast, tweets)) / len(tweets),
        "detect µs, English social posts": _us_per_text(language.detect, social, repeats * 10),
        "detect µs, forum mentions (fast path)": _us_per_text(language.detect, forum, repeats),
        "VADER µs, forum mentions": _us_per_text(vader.polarity_scores, forum, 1),
        "detect µs, non-English (classifier)": _us_per_text(language.detect, foreign, repeats),
        "detect µs, too short (und)": _us_per_text(language.detect, UNDETERMINED, repeats * 10),
        "detect µs, tweets (all paths)": _us_per_text(language.detect, tweets, 1),
        "Scorer.score µs, tweets": _us_per_text(scorer.score, mentions, 1),
    }


def accuracy() -> list[tuple[str, int, int]]:
    detect = language.detect
    return [
        ("foreign: right language", sum(detect(t)[0] == c for c, t in FOREIGN), len(FOREIGN)),
        ("English: en", sum(detect(t)[0] == "en" for t in ENGLISH), len(ENGLISH)),
        ("too short: und", sum(detect(t)[0] == "und" for t in UNDETERMINED), len(UNDETERMINED)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and texts")
    parser.add_argument("--same", action="store_true", help="compare answers with py3langid's")
    args = parser.parse_args()
    if args.same:
        n, differ, reached, unsettled = same_answers()
        print(f"{n} texts ({reached} reach the classifier in detect): {differ} answers differ;")
        print(f"{unsettled} float64 estimates too near a tie or threshold to keep")
        return
    print("## The classifier's model: compact form against py3langid's own")
    for name, value in bench_model().items():
        print(f"{name:<44}{value:>10.3g}")
    print()
    figures = bench_language(args.quick)
    print("## Language detection: cost per text (best of 3)")
    for name, value in figures.items():
        print(f"{name:<40}{value:>10.3g}")
    for what, over in (
        ("forum mentions (fast path)", "VADER µs, forum mentions"),
        ("tweets (all paths)", "Scorer.score µs, tweets"),
    ):
        share = figures[f"detect µs, {what}"] / figures[over]
        print(
            f"{'detect / ' + over.split(' µs')[0] + ', ' + what.split(' (')[0]:<40}{share:>10.1%}"
        )
    print("\n## On the hand-written examples")
    for name, right, total in accuracy():
        print(f"{name:<40}{right:>5}/{total}")
    found = sorted({c for c, _ in FOREIGN})
    print(f"\nlanguages the classifier may answer ({len(language.LANGUAGES)}):")
    print(" ".join(language.LANGUAGES))
    print(f"checked by the examples ({len(found)}): {' '.join(found)}")


if __name__ == "__main__":
    main()
