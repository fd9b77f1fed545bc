"""Reading optional JSON fields: absent and null are None, a wrong type is a ParseError."""

from __future__ import annotations

from typing import Any

import pytest

from emberwatch.errors import ParseError
from emberwatch.sources._json import opt


@pytest.mark.parametrize(
    ("node", "kind", "expected"),
    [
        ({}, str, None),
        ({"k": None}, str, None),
        ({"k": "v"}, str, "v"),
        ({"k": ""}, str, ""),
        ({"k": 3}, int, 3),
        ({"k": 0}, int, 0),
        ({"k": 2.5}, (int, float), 2.5),
        ({"k": 2}, (int, float), 2),
        ({"k": {"a": 1}}, dict, {"a": 1}),
        ({"k": []}, list, []),
    ],
)
def test_it_returns_a_present_value_of_the_right_type_or_none(
    node: dict[str, Any], kind: Any, expected: Any
) -> None:
    assert opt(node, "k", kind, "src: item 1") == expected


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        (3, str, "src: item 1: 'k' is not a string"),
        ("3", int, "src: item 1: 'k' is not an integer"),
        (True, int, "src: item 1: 'k' is not an integer"),
        (2.5, int, "src: item 1: 'k' is not an integer"),
        (False, (int, float), "src: item 1: 'k' is not a number"),
        ("5", (int, float), "src: item 1: 'k' is not a number"),
        ([], dict, "src: item 1: 'k' is not an object"),
        ({}, list, "src: item 1: 'k' is not a list"),
    ],
)
def test_it_raises_parse_error_naming_the_item_and_field_on_a_wrong_type(
    value: Any, kind: Any, message: str
) -> None:
    with pytest.raises(ParseError) as caught:
        opt({"k": value}, "k", kind, "src: item 1")

    assert str(caught.value) == message
