"""``emberwatch score --config C --brand NAME``: the brand's own terms are neutral."""

import json
import math
import subprocess
import sys

import pytest
from click.testing import CliRunner

from emberwatch.cli import SCORE_KEYS, _scored_line, cli
from emberwatch.mention import Mention
from emberwatch.scoring import Scorer, Scores
from emberwatch.text import jsonl

CONFIG = """
[[brands]]
name = "united"
include = ["United", "@united", "#UnitedAirlines"]

[[sources]]
type = "rss"
name = "feed"
brands = ["united"]
url = "https://example.test/feed.xml"
"""
LINE = '{"text": "@united my flight was cancelled and nobody at the desk knows anything"}\n'


def _score(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["score", *args], input=LINE)
    return result.exit_code, result.stdout, result.stderr


def test_score_with_brand_reads_its_name_as_neutral(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    code, plain, _ = _score()
    assert code == 0
    code, branded, _ = _score("--config", str(config), "--brand", "united")
    assert code == 0
    before = json.loads(plain)["scores"]["sentiment"]
    after = json.loads(branded)["scores"]["sentiment"]
    assert before > 0 >= after


def test_score_with_an_unknown_brand_is_one_clear_line(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    code, out, err = _score("--config", str(config), "--brand", "delta")
    assert code != 0
    assert out == ""
    expected = "emberwatch: --brand 'delta': no such brand in the config (brands: united)"
    assert err.strip() == expected


def test_score_adds_the_score_keys_in_order_and_keeps_the_input_keys_in_place():
    line = '{"scores": "old", "text": "Order #1234 still not here after 3 weeks", "x": 1}\n'
    result = CliRunner().invoke(cli, ["score"], input=line)
    assert result.exit_code == 0
    out = json.loads(result.stdout)
    assert list(out) == ["scores", "text", "x"]
    assert tuple(out["scores"]) == SCORE_KEYS


def test_score_reads_lines_as_json_loads_does():
    good = ['  {"text": "fine"}  \n', '{"text": "a"}\r\n', '{"text": "last"}']
    bad = ['{"text": "x"} y\n', '{"text": }\n', "\ufeff{}\n", "[1]\n", '{"text": "x"}\u3000\n']
    for line in good:
        result = CliRunner().invoke(cli, ["score"], input=line)
        assert result.exit_code == 0, line
        assert json.loads(result.stdout)["text"] == json.loads(line)["text"]
    for line in bad:
        result = CliRunner().invoke(cli, ["score"], input=line)
        assert result.exit_code != 0, line
        try:
            value = json.loads(line)
        except ValueError as exc:
            reason = str(exc)
        else:
            assert not isinstance(value, dict)
            reason = "each line must be a JSON object"
        assert result.stderr == f"emberwatch: stdin line 1: {reason}\n", line


def test_a_count_of_the_wrong_type_is_one_line_naming_it_not_a_traceback():
    lines = '{"text": "where is my order", "author_followers": "900"}\n{"text": "fine"}\n'
    result = CliRunner().invoke(cli, ["score"], input=lines)
    assert result.exit_code != 0
    assert result.stderr == (
        "emberwatch: stdin line 1: author_followers must be a whole number, not '900'\n"
    )
    assert json.loads(result.stdout)["text"] == "fine"  # the other lines are still scored


# Strings a reason, a category or an input field could hold: JSON escapes, DEL and C1, the
# line separators, bidi controls, non-ASCII, and an empty one.
AWKWARD = ['say "hi" \\ now\n\t\x00', "DEL\x7f C1\x85 LS\u2028 RLO\u202e", "café 注文 ☕", ""]


def _whole(data: dict, scores: Scores) -> str:
    """The line as jsonl writes the whole object: what _scored_line must equal."""
    out = {**data, "scores": {key: getattr(scores, key) for key in SCORE_KEYS}}
    return jsonl(out) + "\n"


@pytest.mark.parametrize(
    "data",
    [
        {"text": "plain"},
        {},
        {"text": AWKWARD[1], "n": 3, "x": 1.5, "nan": math.nan, "list": [None, True]},
        {"scores": "old", "text": "the input's own scores keep their place"},
        {"text": "x", "scores": None},
    ],
)
@pytest.mark.parametrize(
    "numbers",
    [
        (-0.128, 0.1439, 0.0, 0.2),
        (-0.0, 0.0, -0.0, 0.0),
        (math.nan, math.inf, -math.inf, 1e300),
        (5e-324, 1, True, 0.5),  # an int and a bool: not written as floats
    ],
)
def test_a_scored_line_is_the_whole_objects_jsonl(data, numbers):
    texts: dict[str, str] = {}
    floats: dict[float, str] = {}
    for category, reasons in [
        ("other", ["category other", *AWKWARD]),
        (AWKWARD[0], [*AWKWARD, "category other"]),  # the same strings, now looked up
        ("other", []),
        ("other", ("a", "tuple")),
    ]:
        scores = Scores(*numbers, category=category, severity=AWKWARD[1], reasons=reasons)
        for _ in range(2):  # met, then known
            assert _scored_line(data, scores, texts, floats) == _whole(data, scores)
    pieces = "scores" not in data and all(type(n) is float for n in numbers)
    assert ("category other" in texts) == pieces  # else the whole object was written
    assert 0.0 not in floats  # -0.0 would find it


def test_what_scored_lines_keep_is_bounded(monkeypatch):
    monkeypatch.setattr("emberwatch.cli.KNOWN_PIECES", 3)
    texts: dict[str, str] = {}
    floats: dict[float, str] = {}
    for i in range(10):
        scores = Scores(i + 0.5, 0.1, 0.2, 0.3, "other", "info", [f"reason {i}"])
        assert _scored_line({}, scores, texts, floats) == _whole({}, scores)
    assert (len(texts), len(floats)) == (3, 3)


def test_score_writes_what_the_scorer_says_as_jsonl():
    rows = [
        {"text": "Order #1234 still not here after 3 weeks \u202e\u2028", "likes": 4},
        {"source": "reddit", "text": "love the new app ☕", "title": 'say "hi"'},
        {},
    ]
    result = CliRunner().invoke(cli, ["score"], input="\n".join(map(json.dumps, rows)) + "\n")
    assert result.exit_code == 0, result.stderr
    scorer = Scorer()
    expected = [_whole(row, scorer.score(Mention.from_dict(row))) for row in rows]
    assert result.stdout == "".join(expected)


def test_a_lone_surrogate_escape_in_the_input_is_written_back_escaped_not_a_traceback():
    # json.loads reads "\ud800" as a lone surrogate, which the UTF-8 stdout cannot encode:
    # the real process, since CliRunner's stream would not fail the same way.
    line = '{"text": "my order \\ud800 never came, refund me"}\n{"text": "fine"}\n'
    done = subprocess.run(
        [sys.executable, "-m", "emberwatch", "score"],
        input=line.encode(),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stderr == b""
    first, second = done.stdout.decode("utf-8").splitlines()
    assert '"my order \\ud800 never came' in first
    assert json.loads(first)["text"] == "my order \ud800 never came, refund me"
    assert json.loads(second)["scores"]["category"]
