"""Silences mute matching alerts for a while; the alerts are still stored."""

from datetime import timedelta

import pytest
from sqlmodel import Session
from tests.alerts.test_incidents import T0

from emberwatch.alerts.routing import Facts as AlertFacts
from emberwatch.alerts.silences import (
    active_silence,
    add_silence,
    matches,
    parse_matchers,
)

HN = AlertFacts("acme", "hn", "hackernews", "complaint", "warning")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("brand=acme", {"brand": "acme"}),
        (" brand = acme , source=reddit ", {"brand": "acme", "source": "reddit"}),
    ],
)
def test_it_parses_key_value_matchers(text, expected):
    assert parse_matchers(text) == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [("brand", "not key=value"), ("colour=red", "unknown key"), ("", "at least one")],
)
def test_it_says_how_to_write_matchers(text, error):
    with pytest.raises(ValueError, match=error):
        parse_matchers(text)


@pytest.mark.parametrize(
    ("matchers", "hit"),
    [
        ({"brand": "ACME"}, True),
        ({"source": "hn"}, True),
        ({"source": "hackernews"}, True),
        ({"source": "reddit"}, False),
        ({"brand": "acme", "severity": "critical"}, False),
        ({"category": "complaint", "severity": "warning"}, True),
    ],
)
def test_every_matcher_must_match(matchers, hit):
    assert matches(matchers, HN) is hit


def test_a_silence_is_active_only_until_it_ends(engine):
    with Session(engine) as session:
        silence = add_silence(
            session, {"source": "hn"}, T0 + timedelta(hours=1), " launch day ", "ana", T0
        )
        session.commit()
        assert silence.comment == "launch day"
        assert active_silence(session, HN, T0 + timedelta(minutes=59)).id == silence.id
        assert active_silence(session, HN, T0 + timedelta(hours=1)) is None
        other = AlertFacts("acme", "feed", "rss", "complaint", "warning")
        assert active_silence(session, other, T0 + timedelta(minutes=1)) is None


@pytest.mark.parametrize(
    ("ends", "comment", "error"),
    [(timedelta(hours=1), "  ", "needs a comment"), (timedelta(0), "why", "end in the future")],
)
def test_a_silence_needs_a_reason_and_an_end(engine, ends, comment, error):
    with Session(engine) as session, pytest.raises(ValueError, match=error):
        add_silence(session, {"brand": "acme"}, T0 + ends, comment, "ana", T0)
