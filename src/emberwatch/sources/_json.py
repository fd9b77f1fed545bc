"""Decoding JSON bodies and reading their optional fields, for connectors' ``parse`` functions.

APIs leave fields out or send ``null`` freely, but a field of the wrong type means the
body is not what the connector was written for, and ``parse`` must say so with a
:class:`~emberwatch.errors.ParseError` rather than let a ``TypeError`` escape later.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar, overload

from emberwatch.errors import ParseError
from emberwatch.sources._text import snippet

T = TypeVar("T")

_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    dict: "an object",
    list: "a list",
}


def load_json(body: bytes, *, source: str) -> Any:
    """Decode a JSON body, or raise ParseError with a short excerpt (HTML pages, truncation).

    Here rather than beside the HTTP helper, so that ``parse`` loads no HTTP client.
    """
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ParseError(f"{source}: body is not JSON: {snippet(body)!r}") from None


@overload
def opt(node: dict[str, Any], key: str, kind: type[T], where: str) -> T | None: ...


@overload
def opt(node: dict[str, Any], key: str, kind: tuple[type, ...], where: str) -> Any: ...


def opt(node: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``node[key]`` if present and of ``kind``; None if absent or null; ParseError otherwise.

    ``where`` opens the error message and names the source and the item, as in
    ``"yelp: review abc"``; the message goes on with ``'rating' is not a number``. A JSON
    ``true`` or ``false`` never passes, even for ``int`` (Python counts bools as ints).
    Use ``opt(...) or {}`` for an optional object whose keys are read next.
    """
    value = node.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ParseError(f"{where}: {key!r} is not {_expected(kind)}")
    return value


def _expected(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds:
        return "a number"
    return " or ".join(_NAMES.get(k, k.__name__) for k in kinds)
