"""Measure categories and complaint detection on the project's own hand-written examples.

Run ``python bench/categories.py``. The functions are reusable from ``bench/scoring.py``:
:func:`confusion` and :func:`format_confusion` for the 7x7 category matrix,
:func:`prf` for complaint precision/recall/F1 and :func:`reliability` for the
calibration table. The examples live in ``tests/scoring/category_examples.py`` and
``tests/scoring/complaint_examples.py``; the ``HELD_OUT`` lists there were not looked at
while the cues were tuned.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path

from emberwatch.mention import Mention
from emberwatch.scoring import Scorer
from emberwatch.scoring.triage import CATEGORIES

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "scoring"))
import category_examples  # noqa: E402
import complaint_examples  # noqa: E402

ORDER = ("legal_threat", "freebie_seeking", "abuse", "complaint", "question", "praise", "other")
assert set(ORDER) == set(CATEGORIES)


def mention(text: str, i: int = 0) -> Mention:
    return Mention("twitter", str(i), None, "someone", 400, None, text, None)


def categorize_all(
    examples: Iterable[tuple[str, str]], scorer: Scorer | None = None
) -> list[tuple[str, str, str]]:
    """``(text, expected, predicted)`` for each example, scored end to end."""
    scorer = scorer or Scorer()
    return [(t, y, scorer.score(mention(t, i)).category) for i, (t, y) in enumerate(examples)]


def confusion(results: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str], int]:
    """Counts by (expected, predicted)."""
    out: dict[tuple[str, str], int] = {}
    for _, y, p in results:
        out[y, p] = out.get((y, p), 0) + 1
    return out


def format_confusion(matrix: dict[tuple[str, str], int]) -> str:
    """Rows are the expected category, columns the predicted one."""
    short = {c: c.split("_")[0][:7] for c in ORDER}
    lines = [f"{'expected/got':<16}" + "".join(f"{short[c]:>8}" for c in ORDER) + "  correct"]
    for y in ORDER:
        row = [matrix.get((y, p), 0) for p in ORDER]
        total = sum(row)
        lines.append(
            f"{y:<16}" + "".join(f"{n:>8}" for n in row) + f"  {row[ORDER.index(y)]}/{total}"
        )
    right = sum(matrix.get((c, c), 0) for c in ORDER)
    lines.append(f"accuracy {right}/{sum(matrix.values())}")
    return "\n".join(lines)


def complaint_probabilities(
    examples: Iterable[tuple[str, bool]], scorer: Scorer | None = None
) -> list[tuple[str, bool, float]]:
    """``(text, is complaint, complaint probability)``, scored end to end."""
    scorer = scorer or Scorer()
    return [(t, y, scorer.score(mention(t, i)).complaint) for i, (t, y) in enumerate(examples)]


def prf(results: Sequence[tuple[str, bool, float]], at: float = 0.5) -> tuple[float, ...]:
    """Precision, recall, F1 and Brier score of ``probability >= at``."""
    tp = sum(1 for _, y, p in results if y and p >= at)
    fp = sum(1 for _, y, p in results if not y and p >= at)
    fn = sum(1 for _, y, p in results if y and p < at)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    brier = sum((p - y) ** 2 for _, y, p in results) / max(1, len(results))
    return precision, recall, f1, brier


def reliability(
    results: Sequence[tuple[str, bool, float]], edges: Sequence[float] = (0.2, 0.4, 0.6, 0.8)
) -> list[tuple[str, int, float, float]]:
    """Per bin of predicted probability: label, count, mean prediction, observed rate."""
    bounds = [0.0, *edges, 1.0000001]
    rows = []
    for lo, hi in pairwise(bounds):
        inside = [(y, p) for _, y, p in results if lo <= p < hi]
        if not inside:
            rows.append((f"{lo:.1f}-{min(hi, 1):.1f}", 0, float("nan"), float("nan")))
            continue
        mean = sum(p for _, p in inside) / len(inside)
        rate = sum(1 for y, _ in inside if y) / len(inside)
        rows.append((f"{lo:.1f}-{min(hi, 1):.1f}", len(inside), mean, rate))
    return rows


def format_reliability(rows: list[tuple[str, int, float, float]]) -> str:
    lines = [f"{'predicted p':<12}{'n':>5}{'mean p':>9}{'observed':>10}"]
    for label, n, mean, rate in rows:
        lines.append(f"{label:<12}{n:>5}{mean:>9.2f}{rate:>10.2f}")
    return "\n".join(lines)


def complaint_sets() -> dict[str, list[tuple[str, bool]]]:
    ce = complaint_examples
    return {
        "design (EXAMPLES + MARKER_EXAMPLES)": ce.EXAMPLES + ce.MARKER_EXAMPLES,
        "fresh + held out (never tuned on)": ce.FRESH_EXAMPLES + ce.MARKER_HELD_OUT,
    }


def main(show_failures: bool = True) -> None:
    scorer = Scorer()
    for name, examples in (
        ("design set", category_examples.EXAMPLES),
        ("held-out set", category_examples.HELD_OUT),
    ):
        results = categorize_all(examples, scorer)
        print(f"## Categories, {name} ({len(examples)} examples)")
        print(format_confusion(confusion(results)))
        if show_failures and name == "design set":
            for text, y, p in results:
                if y != p:
                    print(f"  expected {y}, got {p}: {text}")
        print()
    everything: list[tuple[str, bool, float]] = []
    for name, examples in complaint_sets().items():
        results = complaint_probabilities(examples, scorer)
        everything += results
        p, r, f, brier = prf(results)
        print(
            f"## Complaints, {name}: n={len(results)} P={p:.2f} R={r:.2f} F1={f:.2f} "
            f"Brier={brier:.3f}"
        )
        if show_failures and name.startswith("design"):
            for text, y, prob in results:
                if (prob >= 0.5) != y:
                    kind = "missed" if y else "false alarm"
                    print(f"  {kind} p={prob:.2f}: {text}")
    print("\n## Reliability, all complaint examples")
    print(format_reliability(reliability(everything)))


if __name__ == "__main__":
    main(show_failures="--quiet" not in sys.argv)
