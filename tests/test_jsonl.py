"""``text.jsonl`` writes what ``json.dumps(value, ensure_ascii=False, default=str)`` does,
with the characters a terminal or line reader would act on escaped as ``\\uXXXX``."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime

import pytest

from emberwatch.text import jsonl

# DEL and C1, the line and paragraph separators, the bidi controls.
RAW = "".join(map(chr, [*range(0x7F, 0xA0), 0x2028, 0x2029, 0x61C, 0x200E, 0x200F]))
RAW += "".join(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))


def dumped(value: object) -> str:
    line = json.dumps(value, ensure_ascii=False, default=str)
    for ch in RAW:
        line = line.replace(ch, f"\\u{ord(ch):04x}")
    return line


@pytest.mark.parametrize(
    "value",
    [
        {"text": "plain ascii", "scores": {"sentiment": -0.3, "reasons": ["a", "b"]}},
        {"text": "café ☕ 注文", "n": 3, "ok": True, "none": None},
        [math.nan, math.inf, -math.inf, -0.0, 1e300, 5e-324, 10**30],
        {1: "int key", 2.5: "float key", None: "null key", False: "bool key"},
        {"at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)},
        {"text": "DEL\x7f C1\x85 LS\u2028 RLO\u202e LRM\u200e", "q": 'quote " back \\ nul \x00'},
        "a bare string\x7f",
        [],
        {},
    ],
)
def test_a_line_is_json_dumps_with_raw_controls_escaped(value):
    line = jsonl(value)
    assert line == dumped(value)
    assert not any(ch in line for ch in RAW)
    assert "\n" not in line


def test_random_texts_in_many_scripts_come_out_the_same():
    rng = random.Random(5)
    for _ in range(500):
        text = "".join(chr(rng.randint(0, 0x3000)) for _ in range(rng.randint(0, 40)))
        value = {"text": text, "x": rng.random() * 10 ** rng.randint(-8, 8)}
        assert jsonl(value) == dumped(value)
        assert json.loads(jsonl(value)) == value


def test_a_lone_surrogate_is_escaped_so_the_line_can_be_written_as_utf8():
    # json.loads("\"\\ud800\"") gives a lone surrogate, which UTF-8 cannot encode.
    value = {"text": "bad \ud800 and \udfff end", "ok": "caf\u00e9"}
    line = jsonl(value)
    assert "\\ud800" in line and "\\udfff" in line
    line.encode("utf-8")  # raises on a raw surrogate
    assert json.loads(line) == value
