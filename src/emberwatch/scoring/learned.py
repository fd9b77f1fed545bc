"""The learned layer: what the team's labels teach the scorer, on top of the cues.

Staff label mentions (``emberwatch labels import``, ``emberwatch mentions label``); each
installation fits its own layer from its own labels, on its own machine. With no layer,
:class:`~emberwatch.scoring.Scorer` gives the cue scores alone, unchanged.

**Features.** A mention is read as a set of binary features: its words (as
:func:`~emberwatch.scoring._cues.prepare` already split them), the complaint cue families
found in it (:func:`~emberwatch.scoring.complaint.find_cues`), and the category the rules
gave it. A text in a script other than Latin also gives its pairs of adjacent letters,
since its words are not separated by spaces. The vocabulary is the features seen in at
least :data:`MIN_COUNT` labelled mentions, at most :data:`MAX_FEATURES` of them. Scoring
is one set intersection and a sum over the few words the vocabulary knows, each word's
weights packed into one integer (fixed-point lanes: the sum is exact, so the same in
every process whatever order a set gives): about 4 us a mention. Word pairs and
character n-grams of English text were tried and dropped: they cost 3 to 15 us more a
mention (the budget is 10% of about 100 us) and, on the examples in
``tests/scoring/label_examples.py``, gained nothing over words and cues.

**Complaint.** A logistic regression whose offset is the cues' log-odds ``z``::

    z' = z + (a - 1) z + b + sum of the weights of the mention's features

so the layer learns a correction to the cues, not a rival to them. Its penalty pulls the
feature weights to 0 and ``a, b`` to ``1, 0``: with a handful of labels the correction is
small, and it grows as labels agree. The reason names it: "learned from 212 team labels:
+1.3 -> complaint 0.81".

**Category.** A multinomial (softmax) regression on the same features, plus the cues'
log-odds and the sentiment. It overrides the rules' category only when it is confident
(probability at least :data:`CONFIDENT`) and its class had at least
:data:`MIN_CLASS_LABELS` labels; otherwise the rules' category stands. The rules' category
itself is computed with the corrected complaint probability, so complaint labels move
mentions in and out of "complaint" before the category model is asked.

**Labels.** A mention's newest label of each field counts. A ``category`` label of
``complaint`` also counts as ``complaint: true`` and one of ``praise`` as
``complaint: false``, unless the mention has its own complaint label.

**Fitting** is full-batch L-BFGS on sparse binary features with numpy, already a
dependency (scikit-learn would add a large one and slow the CLI's start-up): a few
seconds for 10,000 labels, most of it reading each mention with the rules.
:func:`fit` returns a :class:`LearnedLayer`, which is small, immutable and picklable (the
scoring process gets a copy); :meth:`LearnedLayer.to_bytes` and :func:`from_bytes` store it
(``numpy.savez``, no pickle: the database holds no code). :func:`evaluate` gives the
precision, recall and F1 of complaint detection with and without a layer, for
``bench/scoring.py`` and the tests.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import operator
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from emberwatch.scoring._cues import Prepared
from emberwatch.scoring.complaint import Complaint
from emberwatch.scoring.triage import CATEGORIES

if TYPE_CHECKING:
    import numpy as np

    from emberwatch.mention import Mention
    from emberwatch.scoring.scorer import Scorer
else:

    class _Numpy:
        """numpy, imported on first use: a scorer without a learned layer never needs it,
        and importing it is about a tenth of a second of ``emberwatch score``'s start-up.
        The first attribute read puts numpy itself in ``np``'s place."""

        def __getattr__(self, name: str) -> Any:
            import numpy

            globals()["np"] = numpy
            return getattr(numpy, name)

    np = _Numpy()

FORMAT = "emberwatch-learned-1"
MIN_COUNT = 2  # a feature must occur in this many labelled mentions to enter the vocabulary
MAX_FEATURES = 200_000
CONFIDENT = 0.7  # category probability from which the learned category may override
MIN_CLASS_LABELS = 20  # labels a category needs before the layer may give it
FIELDS = ("complaint", "category")
# Penalties (on the summed log-loss): feature weights, and the cues' scale and shift.
L2_FEATURES = 1.0
L2_CALIBRATION = 20.0

_FAMILY = attrgetter("family")  # a cue's family name

# A letter of a script other than Latin (not an emoji, which is no letter).
_NON_LATIN = re.compile(r"[^\W\d_a-z\u00c0-\u024f]")


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the scorer found by rules, which the layer reads with the text."""

    prepared: Prepared
    sentiment: float
    complaint: Complaint
    category: str


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled mention: ``complaint`` and/or ``category``, and the brand it was for."""

    mention: Mention
    complaint: bool | None = None
    category: str | None = None
    brand: str | None = None


class Judgement(NamedTuple):
    """The layer's view of one mention: the corrected complaint probability and log-odds
    shift, and a category when the layer is confident enough to give one."""

    complaint: float
    shift: float
    reasons: tuple[str, ...]
    category: str | None = None
    category_probability: float = 0.0


def feature_keys(evidence: Evidence) -> list[str]:
    """The mention's features: its words (as :func:`_cues.prepare` splits them), pairs of
    adjacent characters of a text in a script other than Latin, and its cue families and
    the rules' category (with a ``\\x00`` prefix, which no word has)."""
    lower = evidence.prepared.lower
    # Sorted: a set's order changes from process to process (string hashing is seeded),
    # and with it the vocabulary's order and the last bits of the fitted weights.
    keys = sorted(evidence.prepared.words)
    if not lower.isascii() and _NON_LATIN.search(lower):
        keys.extend(_wide_pairs(lower))
    keys.extend("\x00" + cue.family for cue in evidence.complaint.cues)
    keys.append("\x00=" + evidence.category)
    return keys


def _wide_pairs(lower: str) -> list[str]:
    letters = [ch for ch in lower if ch.isalnum()]
    return [a + b for a, b in itertools.pairwise(letters)]


class LearnedLayer:
    """A fitted layer: the vocabulary, the weights and how many labels taught them."""

    def __init__(
        self,
        *,
        vocabulary: dict[Any, int],
        complaint_weights: np.ndarray | None,
        calibration: tuple[float, float],
        classes: tuple[str, ...],
        category_weights: np.ndarray | None,
        category_dense: np.ndarray | None,
        class_labels: dict[str, int],
        n_labels: int,
        n_complaint: int,
        version: int = 0,
        fitted_at: datetime | None = None,
    ) -> None:
        self.vocabulary = vocabulary
        self.complaint_weights = complaint_weights
        self.calibration = calibration
        self.classes = classes
        self.category_weights = category_weights
        self.category_dense = category_dense
        self.class_labels = class_labels
        self.n_labels = n_labels
        self.n_complaint = n_complaint
        self.version = version
        self.fitted_at = fitted_at
        self._prepare()

    def _prepare(self) -> None:
        width = len(self.vocabulary)
        columns = [
            self.complaint_weights if self.complaint_weights is not None else np.zeros(width),
        ]
        self._allowed = frozenset(
            c for c in self.classes if self.class_labels.get(c, 0) >= MIN_CLASS_LABELS
        )
        self._dense: list[tuple[float, float, float]] = []
        if self.category_weights is not None and self.category_dense is not None:
            columns.extend(self.category_weights.T)
            self._dense = [(a, b, c) for a, b, c in self.category_dense.tolist()]
        else:
            self._allowed = frozenset()
        # Each feature's weights (complaint, then each class) packed into one integer, a
        # fixed-point lane each (_pack). Judging a mention adds one integer a feature:
        # integer sums are exact, so the total is the same in any order (a sum of floats
        # taken in a set's order would differ in its last bits between processes), and
        # one addition a feature is cheaper than one a weight.
        table = np.column_stack(columns).tolist()
        self._packed = {key: _pack(table[i]) for key, i in self.vocabulary.items()}
        self._known = frozenset(self._packed)
        # The cue and category features by the name that follows their prefix, so that
        # judging a mention builds no key: _marked[name] is _packed["\x00" + name].
        self._marked = {
            key[1:]: row
            for key, row in self._packed.items()
            if isinstance(key, str) and key[:1] == "\x00"
        }
        # The rules' category's features, by category name (0 for one the vocabulary
        # lacks); and the complaint correction's constants.
        self._category_rows = {c: self._marked.get("=" + c, 0) for c in CATEGORIES}
        scale, offset = self.calibration
        self._scale_less_one = scale - 1.0 if self.complaint_weights is not None else None
        self._offset = offset
        self._learned_from = f"learned from {self.n_complaint} team labels: "
        self._category_heads = {
            c: f"learned from {self.n_labels} team labels ({self.class_labels.get(c, 0)} {c}): "
            for c in self.classes
        }

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in (
            "_packed",
            "_known",
            "_allowed",
            "_dense",
            "_marked",
            "_category_rows",
            "_scale_less_one",
            "_offset",
            "_learned_from",
            "_category_heads",
        ):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._prepare()

    def __repr__(self) -> str:
        return (
            f"LearnedLayer(version={self.version}, n_labels={self.n_labels}, "
            f"features={len(self.vocabulary)}, classes={list(self.classes)})"
        )

    def judge(self, evidence: Evidence) -> Judgement:
        """The corrected complaint probability and, when confident, a category.

        The features of :func:`feature_keys`, looked up without building the keys twice:
        this runs for every mention scored, so it adds each feature's packed weights
        (one integer) and unpacks the column totals once.
        """
        packed = self._packed
        prepared = evidence.prepared
        # Most words of a long mention are not in the vocabulary; a set intersection
        # drops them in one C call.
        total = sum(map(packed.__getitem__, prepared.words & self._known))
        lower = prepared.lower
        if not lower.isascii() and _NON_LATIN.search(lower):
            total += sum(map(packed.get, _wide_pairs(lower), _ZEROS))
        complaint = evidence.complaint
        if complaint.cues:
            total += sum(map(self._marked.get, map(_FAMILY, complaint.cues), _ZEROS))
        category_row = self._category_rows.get(evidence.category)
        if category_row is None:
            category_row = self._marked.get("=" + evidence.category, 0)
        total += category_row
        # The lanes, lowest (complaint) first: each lane's signed value, then what it
        # borrowed from the lanes above is given back (see _pack).
        lane = ((total + _LANE_HALF) & _LANE_MASK) - _LANE_HALF
        total = (total - lane) >> _LANE
        z = complaint.log_odds
        probability, shift, reasons = complaint.probability, 0.0, ()
        if self._scale_less_one is not None:
            shift = self._scale_less_one * z + self._offset + lane / _ONE
            probability = _logistic(z + shift)
            reasons = (f"{self._learned_from}{shift:+.1f} -> complaint {probability:.2f}",)
        if not self._allowed:
            return Judgement(probability, shift, reasons)
        sentiment = evidence.sentiment
        logits = []
        for dz, ds, d1 in self._dense:
            lane = ((total + _LANE_HALF) & _LANE_MASK) - _LANE_HALF
            total = (total - lane) >> _LANE
            logits.append(lane / _ONE + dz * z + ds * sentiment + d1)
        top = max(logits)
        chosen = self.classes[logits.index(top)]
        if chosen in self._allowed:
            confidence = 1.0 / sum(map(math.exp, map(operator.sub, logits, repeat(top))))
            if confidence >= CONFIDENT:
                return Judgement(probability, shift, reasons, chosen, confidence)
        return Judgement(probability, shift, reasons)

    def category_reason(self, judgement: Judgement, rules: str) -> str:
        """Why the layer's category replaced the rules' one."""
        category = judgement.category
        head = self._category_heads.get(category)  # type: ignore[arg-type]
        if head is None:
            count = self.class_labels.get(category or "", 0)
            head = f"learned from {self.n_labels} team labels ({count} {category}): "
        return f"{head}{judgement.category_probability:.2f} confident, over the rules' {rules}"

    def to_bytes(self) -> bytes:
        """The layer as ``numpy.savez`` bytes: arrays and a JSON header, no pickle."""
        keys = [k if isinstance(k, str) else [k[0], k[1]] for k in self.vocabulary]
        header = {
            "format": FORMAT,
            "calibration": list(self.calibration),
            "classes": list(self.classes),
            "class_labels": self.class_labels,
            "n_labels": self.n_labels,
            "n_complaint": self.n_complaint,
        }
        arrays: dict[str, np.ndarray] = {
            "header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
            "vocabulary": np.frombuffer(json.dumps(keys).encode(), dtype=np.uint8),
        }
        if self.complaint_weights is not None:
            arrays["complaint"] = self.complaint_weights.astype(np.float32)
        if self.category_weights is not None and self.category_dense is not None:
            arrays["category"] = self.category_weights.astype(np.float32)
            arrays["category_dense"] = self.category_dense.astype(np.float64)
        out = io.BytesIO()
        np.savez_compressed(out, **arrays)  # type: ignore[arg-type]
        return out.getvalue()


def from_bytes(data: bytes, *, version: int = 0, fitted_at: datetime | None = None) -> LearnedLayer:
    """The layer :meth:`LearnedLayer.to_bytes` wrote. Raises ``ValueError`` for another
    format."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        header = json.loads(npz["header"].tobytes())
        if header.get("format") != FORMAT:
            raise ValueError(f"fitted model format {header.get('format')!r} is not {FORMAT!r}")
        keys = json.loads(npz["vocabulary"].tobytes())
        complaint = npz["complaint"].astype(np.float64) if "complaint" in npz else None
        category = npz["category"].astype(np.float64) if "category" in npz else None
        dense = npz.get("category_dense")
    vocabulary = {(k if isinstance(k, str) else (k[0], k[1])): i for i, k in enumerate(keys)}
    return LearnedLayer(
        vocabulary=vocabulary,
        complaint_weights=complaint,
        calibration=(float(header["calibration"][0]), float(header["calibration"][1])),
        classes=tuple(header["classes"]),
        category_weights=category,
        category_dense=dense,
        class_labels={str(k): int(v) for k, v in header["class_labels"].items()},
        n_labels=int(header["n_labels"]),
        n_complaint=int(header["n_complaint"]),
        version=version,
        fitted_at=fitted_at,
    )


def targets(example: Example) -> tuple[bool | None, str | None]:
    """The complaint and category an example teaches, with the category's implication."""
    complaint = example.complaint
    if complaint is None and example.category == "complaint":
        complaint = True
    elif complaint is None and example.category == "praise":
        complaint = False
    return complaint, example.category


def fit(examples: Sequence[Example], scorer: Scorer) -> LearnedLayer | None:
    """Fit a layer from labelled examples, reading each with ``scorer``'s rules; None when
    there are no labels. ``scorer`` should carry no layer of its own (its rules are read)."""
    rows = []
    for example in examples:
        complaint, category = targets(example)
        if complaint is None and category is None:
            continue
        if category is not None and category not in CATEGORIES:
            raise ValueError(f"category {category!r} is not one of {', '.join(CATEGORIES)}")
        evidence = scorer.evidence(example.mention, brand=example.brand)
        rows.append((evidence, complaint, category))
    return fit_evidence(rows)


def fit_evidence(rows: Sequence[tuple[Evidence, bool | None, str | None]]) -> LearnedLayer | None:
    """Fit from what the rules found in each mention and its labels."""
    if not rows:
        return None
    keyed = [feature_keys(evidence) for evidence, _, _ in rows]
    counts: Counter[Any] = Counter()
    for keys in keyed:
        counts.update(keys)
    common = [k for k, n in counts.most_common(MAX_FEATURES) if n >= MIN_COUNT]
    vocabulary = {k: i for i, k in enumerate(common)}
    width = len(vocabulary)
    columns = [[vocabulary[k] for k in keys if k in vocabulary] for keys in keyed]

    complaint_rows = [i for i, (_, c, _) in enumerate(rows) if c is not None]
    complaint_weights = None
    calibration = (1.0, 0.0)
    if complaint_rows:
        x = _Sparse([columns[i] for i in complaint_rows], width)
        z = np.array([rows[i][0].complaint.log_odds for i in complaint_rows])
        y = np.array([1.0 if rows[i][1] else 0.0 for i in complaint_rows])
        complaint_weights, calibration = _fit_binary(x, z, y)

    category_rows = [i for i, (_, _, k) in enumerate(rows) if k is not None]
    classes = tuple(sorted({rows[i][2] for i in category_rows}))  # type: ignore[type-var]
    class_labels = dict(Counter(rows[i][2] for i in category_rows))  # type: ignore[misc]
    category_weights = category_dense = None
    if len(classes) >= 2:
        x = _Sparse([columns[i] for i in category_rows], width)
        dense = np.array(
            [(rows[i][0].complaint.log_odds, rows[i][0].sentiment, 1.0) for i in category_rows]
        )
        y_class = np.array([classes.index(rows[i][2]) for i in category_rows])  # type: ignore[arg-type]
        category_weights, category_dense = _fit_softmax(x, dense, y_class, len(classes))
    return LearnedLayer(
        vocabulary=vocabulary,
        complaint_weights=complaint_weights,
        calibration=calibration,
        classes=classes,
        category_weights=category_weights,
        category_dense=category_dense,
        class_labels=class_labels,
        n_labels=len(rows),
        n_complaint=len(complaint_rows),
    )


@dataclass(frozen=True)
class Report:
    """Complaint detection measured on labelled examples (threshold 0.5)."""

    n: int
    precision: float
    recall: float
    f1: float
    category_accuracy: float | None
    category_n: int

    def line(self) -> str:
        cat = (
            f", category accuracy {self.category_accuracy:.3f} (n={self.category_n})"
            if self.category_accuracy is not None
            else ""
        )
        return (
            f"complaint P {self.precision:.3f} R {self.recall:.3f} F1 {self.f1:.3f} "
            f"(n={self.n}){cat}"
        )


def evaluate(scorer: Scorer, examples: Sequence[Example]) -> Report:
    """How ``scorer`` (with whatever layer it carries) does on labelled examples."""
    tp = fp = fn = n = right = n_cat = 0
    for example in examples:
        complaint, category = targets(example)
        scores = scorer.score(example.mention, brand=example.brand)
        if complaint is not None:
            n += 1
            said = scores.complaint >= 0.5
            tp += said and complaint
            fp += said and not complaint
            fn += complaint and not said
        if category is not None:
            n_cat += 1
            right += scores.category == category
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Report(n, precision, recall, f1, right / n_cat if n_cat else None, n_cat)


# Fixed-point lanes of a packed feature row (LearnedLayer._packed): _LANE bits each, of
# which _FRACTION after the point; weight j is lane j, a signed number (a negative lane
# borrows one from the lane above, which unpacking gives back). A weight is rounded to a
# multiple of 2**-64 (5e-20, far below what any score or reason shows), and a column
# total stays exact up to 2**63.
_LANE = 128
_FRACTION = 64
_ONE = float(2**_FRACTION)
_LANE_MASK = (1 << _LANE) - 1
_LANE_HALF = 1 << (_LANE - 1)
_ZEROS = repeat(0)  # map(dict.get, keys, _ZEROS): 0 for a missing key


def _pack(weights: Sequence[float]) -> int:
    """Weights as one integer: weight j, as a signed fixed-point number, in lane j. Raises
    ``ValueError`` for a weight that is not a finite number (a damaged stored layer)."""
    if not all(map(math.isfinite, weights)):
        raise ValueError(f"learned layer weight is not a finite number: {list(weights)}")
    return sum(round(w * _ONE) << (_LANE * j) for j, w in enumerate(weights))


def _logistic(z: float) -> float:
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


class _Sparse:
    """Rows of binary features as flat index arrays: enough for X @ w and X.T @ r."""

    def __init__(self, columns: list[list[int]], width: int) -> None:
        self.n = len(columns)
        self.width = width
        self.cols = np.fromiter((c for row in columns for c in row), dtype=np.int64)
        self.rows = np.repeat(np.arange(self.n), [len(row) for row in columns])

    def dot(self, w: np.ndarray) -> np.ndarray:
        return np.bincount(self.rows, weights=w[self.cols], minlength=self.n)

    def tdot(self, r: np.ndarray) -> np.ndarray:
        return np.bincount(self.cols, weights=r[self.rows], minlength=self.width)


def _fit_binary(x: _Sparse, z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Feature weights and (scale, shift) of the cues' log-odds; penalized log-loss."""
    width = x.width

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, a, b = theta[:width], theta[width], theta[width + 1]
        margin = (1 + a) * z + b + x.dot(w)
        p = _sigmoid(margin)
        value = float(np.sum(np.logaddexp(0, margin) - y * margin))
        value += 0.5 * L2_FEATURES * float(w @ w) + 0.5 * L2_CALIBRATION * (a * a + b * b)
        r = p - y
        grad = np.empty_like(theta)
        grad[:width] = x.tdot(r) + L2_FEATURES * w
        grad[width] = float(r @ z) + L2_CALIBRATION * a
        grad[width + 1] = float(r.sum()) + L2_CALIBRATION * b
        return value, grad

    theta = _lbfgs(loss, np.zeros(width + 2))
    return theta[:width].copy(), (1.0 + float(theta[width]), float(theta[width + 1]))


def _fit_softmax(
    x: _Sparse, dense: np.ndarray, y: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Feature weights (width x k) and dense weights (k x 3) of a multinomial model."""
    width = x.width
    onehot = np.zeros((x.n, k))
    onehot[np.arange(x.n), y] = 1.0
    size = width * k

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[:size].reshape(width, k)
        d = theta[size:].reshape(k, 3)
        logits = dense @ d.T
        for j in range(k):
            logits[:, j] += x.dot(w[:, j])
        top = logits.max(axis=1, keepdims=True)
        shifted = logits - top
        log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        log_p = shifted - log_norm
        value = -float((onehot * log_p).sum())
        value += 0.5 * L2_FEATURES * float((w * w).sum() + (d[:, :2] ** 2).sum())
        r = np.exp(log_p) - onehot
        gw = np.empty((width, k))
        for j in range(k):
            gw[:, j] = x.tdot(r[:, j])
        gw += L2_FEATURES * w
        gd = r.T @ dense
        gd[:, :2] += L2_FEATURES * d[:, :2]
        return value, np.concatenate([gw.ravel(), gd.ravel()])

    theta = _lbfgs(loss, np.zeros(size + 3 * k))
    return theta[:size].reshape(width, k).copy(), theta[size:].reshape(k, 3).copy()


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * v))


def _lbfgs(
    f: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    *,
    iterations: int = 300,
    memory: int = 10,
    tolerance: float = 1e-4,
) -> np.ndarray:
    """Minimize a smooth convex ``f`` (returning value and gradient) by L-BFGS with a
    backtracking line search."""
    value, grad = f(x)
    history: list[tuple[np.ndarray, np.ndarray, float]] = []
    for _ in range(iterations):
        if float(np.abs(grad).max()) < tolerance:
            break
        q = grad.copy()
        alphas = []
        for s, y, rho in reversed(history):
            alpha = rho * float(s @ q)
            q -= alpha * y
            alphas.append(alpha)
        if history:
            s, y, _ = history[-1]
            q *= float(s @ y) / float(y @ y)
        else:
            q /= max(1.0, float(np.linalg.norm(q)))
        for (s, y, rho), alpha in zip(history, reversed(alphas), strict=True):
            q += s * (alpha - rho * float(y @ q))
        direction = -q
        slope = float(grad @ direction)
        if slope >= 0:  # not a descent direction: start over from the gradient
            history.clear()
            direction = -grad / max(1.0, float(np.linalg.norm(grad)))
            slope = float(grad @ direction)
        step = 1.0
        while True:
            candidate = x + step * direction
            new_value, new_grad = f(candidate)
            if new_value <= value + 1e-4 * step * slope:
                break
            step *= 0.5
            if step < 1e-12:
                return x
        s, y = candidate - x, new_grad - grad
        sy = float(s @ y)
        if sy > 1e-12:
            history.append((s, y, 1.0 / sy))
            if len(history) > memory:
                history.pop(0)
        x, value, grad = candidate, new_value, new_grad
        if abs(value) > 0 and float(-(step * slope)) < 1e-10 * abs(value):
            break
    return x
