"""Hypothesis strategies and the parse property, shared by the connector tests.

``test_conformance.py`` runs the property over every connector with generic JSON; a
connector's own test module adds generators shaped like its API (its keys, its nesting),
which reach deeper into its ``parse``.
"""

from __future__ import annotations

from types import ModuleType

from hypothesis import strategies as st

from emberwatch.errors import ParseError
from emberwatch.mention import Mention

# Any JSON value ``json.dumps`` writes, NaN and Infinity included (``json.loads`` reads them).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


def keyed_json(keys: str) -> st.SearchStrategy[object]:
    """JSON whose objects use only ``keys`` (space-separated), the names an API's body uses."""
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.sampled_from(keys.split()), children, max_size=5)
        ),
        max_leaves=25,
    )


def assert_parse_returns_mentions_or_raises_parse_error(module: ModuleType, body: bytes) -> None:
    """``module.parse(body)`` gives well-formed mentions of its own source, or ParseError."""
    try:
        result = module.parse(body)
    except ParseError:
        return
    assert isinstance(result, list)
    assert all(isinstance(m, Mention) for m in result)
    for m in result:
        assert m.source == module.TYPE and isinstance(m.external_id, str)
        assert m.published_at is None or m.published_at.utcoffset().total_seconds() == 0
