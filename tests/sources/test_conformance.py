"""Every registered connector honours the same contract."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emberwatch.errors import ParseError
from emberwatch.mention import Mention
from emberwatch.sources import CONNECTORS

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


def _parse_only_returns_mentions_or_raises_parse_error(module, body: bytes) -> None:
    try:
        result = module.parse(body)
    except ParseError:
        return
    assert isinstance(result, list)
    assert all(isinstance(m, Mention) for m in result)
    for m in result:
        assert m.source == module.TYPE and isinstance(m.external_id, str)
        assert m.published_at is None or m.published_at.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("source_type", sorted(CONNECTORS))
@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=300))
def test_parse_on_arbitrary_bytes_returns_mentions_or_raises_parse_error(source_type, body):
    _parse_only_returns_mentions_or_raises_parse_error(CONNECTORS[source_type], body)


@pytest.mark.parametrize("source_type", sorted(CONNECTORS))
@settings(max_examples=150, deadline=None)
@given(data=json_values)
def test_parse_on_arbitrary_json_returns_mentions_or_raises_parse_error(source_type, data):
    _parse_only_returns_mentions_or_raises_parse_error(
        CONNECTORS[source_type], json.dumps(data).encode()
    )


@pytest.mark.parametrize("source_type", sorted(CONNECTORS))
def test_every_connector_has_the_same_shape(source_type):
    module = CONNECTORS[source_type]
    assert source_type == module.TYPE
    assert callable(module.parse) and callable(module.fetch)
    assert module.Settings.model_fields["type"].annotation.__args__ == (source_type,)
