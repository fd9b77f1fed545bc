"""The learned layer: it learns an installation's words from team labels, beats the cues
alone on held-out examples of that installation, and leaves scores alone without labels."""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from tests.scoring.label_examples import examples, split

from emberwatch.mention import Mention
from emberwatch.scoring import Scorer, learned
from emberwatch.scoring.learned import Example


def mention(text: str, *, rating: float | None = None) -> Mention:
    return Mention("x", text[:20], None, None, None, None, text, None, rating=rating)


@pytest.fixture(scope="module")
def kestrel() -> tuple[list[Example], list[Example]]:
    return split(examples(600))


@pytest.fixture(scope="module")
def layer(kestrel) -> learned.LearnedLayer:
    train, _ = kestrel
    fitted = learned.fit(train[:250], Scorer())
    assert fitted is not None
    return fitted


def test_no_labels_fit_no_layer_and_scores_stay_the_cues():
    assert learned.fit([], Scorer()) is None
    text = mention("@kestrel zero bars at Leeds since Tuesday, order #88213 still not here")
    assert Scorer(learned=None).score(text) == Scorer().score(text)


def test_learned_beats_the_cues_alone_on_held_out_examples(kestrel, layer):
    _, held = kestrel
    cues = learned.evaluate(Scorer(), held)
    taught = learned.evaluate(Scorer(learned=layer), held)
    assert taught.f1 >= cues.f1 + 0.15, (cues.line(), taught.line())
    assert taught.precision >= cues.precision - 0.05
    assert taught.category_accuracy is not None and cues.category_accuracy is not None
    assert taught.category_accuracy > cues.category_accuracy + 0.1


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("@kestrelmobile zero bars at the campsite", True),
        ("Kestrel my phone says no service since the update", True),
        ("paying @kestrel_uk for unlimited and getting dial-up speeds at uni", True),
        ("charged my phone at the Kestrel store while I waited, lovely staff", False),
        ("dropped my phone in the bath but @KestrelHelp swapped it same day, legends", False),
    ],
)
def test_it_learns_the_trade_words_the_cues_miss(layer, text, complaint):
    scores = Scorer(learned=layer).score(mention(text))
    assert (scores.complaint >= 0.5) is complaint, scores.reasons


def test_reasons_name_the_learned_part_and_how_many_labels(layer):
    scores = Scorer(learned=layer).score(mention("@kestrelmobile zero bars at Leeds"))
    learned_reasons = [r for r in scores.reasons if r.startswith("learned from")]
    assert learned_reasons == [
        r for r in scores.reasons if r.startswith(f"learned from {layer.n_complaint} team labels:")
    ]
    assert len(learned_reasons) == 1 and "-> complaint" in learned_reasons[0]


def test_a_few_labels_move_the_cues_less_than_hundreds(kestrel, layer):
    train, held = kestrel
    few = learned.fit(train[:6], Scorer())
    assert few is not None
    plain = Scorer()

    def mean_change(taught: Scorer) -> float:
        changes = [
            abs(taught.score(e.mention).complaint - plain.score(e.mention).complaint)
            for e in held[:100]
        ]
        return sum(changes) / len(changes)

    assert 0 < mean_change(Scorer(learned=few)) < mean_change(Scorer(learned=layer))
    assert few.calibration[0] == pytest.approx(1.0, abs=0.1)


def test_category_overrides_only_with_enough_labels_of_that_class():
    rude = [
        f"{who} at @kestrel are a bunch of {word}, {tail}"
        for who in ("the lot", "everyone", "the people", "all of them", "staff")
        for word in ("cowboys", "crooks", "chancers", "muppets", "clowns of the highest order")
        for tail in ("honestly", "proper embarrassing")
    ]
    calm = [
        f"{what} at @kestrel {how}"
        for what in ("the signal", "coverage", "the new plan", "the app", "the store")
        for how in ("seems fine", "is ok i guess", "works for me", "is what it is")
    ]

    def fit(n_rude: int) -> learned.LearnedLayer:
        labelled = [Example(mention(t), category="abuse") for t in rude[:n_rude]] + [
            Example(mention(t), category="other") for t in calm
        ]
        fitted = learned.fit(labelled, Scorer())
        assert fitted is not None
        return fitted

    text = mention("honestly the whole lot at @kestrel are cowboys and chancers")
    assert Scorer().score(text).category != "abuse"
    assert Scorer(learned=fit(learned.MIN_CLASS_LABELS - 5)).score(text).category != "abuse"
    scores = Scorer(learned=fit(len(rude))).score(text)
    assert scores.category == "abuse"
    assert any("team labels" in r and "over the rules'" in r for r in scores.reasons)


def test_a_category_label_of_complaint_teaches_complaint_too():
    assert learned.targets(Example(mention("x"), category="complaint")) == (True, "complaint")
    assert learned.targets(Example(mention("x"), category="praise")) == (False, "praise")
    assert learned.targets(Example(mention("x"), False, "complaint")) == (False, "complaint")
    assert learned.targets(Example(mention("x"), category="question")) == (None, "question")


def test_the_layer_survives_bytes_and_pickle_with_the_same_scores(kestrel, layer):
    _, held = kestrel
    stored = learned.from_bytes(layer.to_bytes(), version=3)
    copied = pickle.loads(pickle.dumps(Scorer(learned=layer)))
    assert stored.version == 3 and stored.n_labels == layer.n_labels
    for example in held[:40]:
        want = Scorer(learned=layer).score(example.mention)
        assert copied.score(example.mention) == want
        got = Scorer(learned=stored).score(example.mention)  # float32 weights on disk
        assert got.category == want.category
        assert got.complaint == pytest.approx(want.complaint, abs=1e-3)


def test_an_unknown_format_is_refused(layer, monkeypatch):
    monkeypatch.setattr(learned, "FORMAT", "emberwatch-learned-0")
    old = layer.to_bytes()
    monkeypatch.undo()
    with pytest.raises(ValueError, match="format 'emberwatch-learned-0'"):
        learned.from_bytes(old)


def test_scoring_looks_up_the_same_features_it_was_fitted_on(kestrel, layer):
    _, held = kestrel
    scorer = Scorer()
    for example in held[:50]:
        evidence = scorer.evidence(example.mention)
        keys = [k for k in learned.feature_keys(evidence) if k in layer.vocabulary]
        expected = sum(float(layer.complaint_weights[layer.vocabulary[k]]) for k in keys)
        scale, offset = layer.calibration
        z = evidence.complaint.log_odds
        judged = layer.judge(evidence)
        assert judged.shift == pytest.approx((scale - 1) * z + offset + expected, abs=1e-9)


def test_fitting_10000_labels():
    # How long it takes is bench/learned.py's figure (issue 12: seconds), not a test's.
    many = examples(10_000, seed=3)
    fitted = learned.fit(many, Scorer())
    assert fitted is not None and fitted.n_labels == len(many)


def test_a_non_latin_text_learns_from_its_letters():
    complaints = [f"ケストレル 圏外 です {i} 日目" for i in range(15)]
    fine = [f"ケストレル 最高 です {i} 回目" for i in range(15)]
    labelled = [Example(mention(t), complaint=True) for t in complaints] + [
        Example(mention(t), complaint=False) for t in fine
    ]
    fitted = learned.fit(labelled, Scorer())
    taught = Scorer(learned=fitted)
    assert taught.score(mention("ケストレル また 圏外 です")).complaint > 0.5
    assert taught.score(mention("ケストレル また 最高 です")).complaint < 0.5


_SEEDED_RUN = """
from tests.scoring.label_examples import examples, split
from emberwatch.scoring import Scorer, learned
train, held = split(examples(300))
layer = learned.fit(train[:150], Scorer())
scorer = Scorer()
for example in held[:60]:
    judged = layer.judge(scorer.evidence(example.mention))
    print(repr(judged.shift), repr(judged.complaint))
    print(judged.category, repr(judged.category_probability))
"""


def test_fitting_and_judging_give_the_same_bits_whatever_the_string_hash_seed():
    # Sets iterate in an order that follows string hashes, seeded anew in each process: a
    # float sum in that order would change in its last bits from one process to the next.
    root = Path(__file__).resolve().parents[2]
    runs = [
        subprocess.run(
            [sys.executable, "-c", _SEEDED_RUN],
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    ]
    assert runs[0].count("\n") == 120
    assert runs[0] == runs[1] == runs[2]


def test_packed_weights_add_up_exactly_in_any_order():
    rows = [(0.1, -2.5, 3e-9, -0.0), (-0.3, 1e-12, 7.25, 4.0), (0.2, 2.5, -3e-9, -4.0)]
    packed = [learned._pack(r) for r in rows]
    forward, backward = sum(packed), sum(reversed(packed))
    assert forward == backward
    total, lanes = forward, []
    for _ in range(4):
        lane = ((total + learned._LANE_HALF) & learned._LANE_MASK) - learned._LANE_HALF
        total = (total - lane) >> learned._LANE
        lanes.append(lane / learned._ONE)
    assert lanes == pytest.approx([math.fsum(c) for c in zip(*rows, strict=True)], abs=1e-18)
