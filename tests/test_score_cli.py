"""``emberwatch score --config C --brand NAME``: the brand's own terms are neutral."""

import json

from click.testing import CliRunner

from emberwatch.cli import SCORE_KEYS, cli

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
