"""Every registered connector honours the same contract."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.sources._properties import (
    assert_parse_returns_mentions_or_raises_parse_error,
    json_values,
)

from emberwatch.sources import CONNECTORS


@pytest.mark.parametrize("source_type", sorted(CONNECTORS))
@settings(max_examples=200, deadline=None)
@given(body=st.binary())
def test_parse_on_arbitrary_bytes_returns_mentions_or_raises_parse_error(source_type, body):
    assert_parse_returns_mentions_or_raises_parse_error(CONNECTORS[source_type], body)


@pytest.mark.parametrize("source_type", sorted(CONNECTORS))
@settings(max_examples=200, deadline=None)
@given(data=json_values)
def test_parse_on_arbitrary_json_returns_mentions_or_raises_parse_error(source_type, data):
    assert_parse_returns_mentions_or_raises_parse_error(
        CONNECTORS[source_type], json.dumps(data).encode()
    )


@pytest.mark.parametrize("source_type", sorted(CONNECTORS))
def test_every_connector_has_the_same_shape(source_type):
    module = CONNECTORS[source_type]
    assert source_type == module.TYPE
    assert callable(module.parse) and callable(module.fetch)
    assert module.Settings.model_fields["type"].annotation.__args__ == (source_type,)
