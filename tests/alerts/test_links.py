"""Action links: HMAC-signed, bound to incident, episode, action and recipient."""

from urllib.parse import parse_qs, urlsplit

import pytest

from emberwatch.alerts.links import action_url, action_urls, signature, verify

SECRET = "s" * 32


def test_it_builds_one_signed_link_per_action():
    urls = action_urls("https://ew.example/", SECRET, 7, 2, "ana@acme.example")
    assert set(urls) == {"ack", "snooze", "resolve"}
    parts = urlsplit(urls["ack"])
    assert parts.path == "/actions/7/2/ack"
    query = parse_qs(parts.query)
    assert query["who"] == ["ana@acme.example"]
    assert verify(SECRET, 7, 2, "ack", "ana@acme.example", query["sig"][0])


@pytest.mark.parametrize(
    "tampered",
    [
        dict(incident_id=8),
        dict(episode=3),
        dict(action="resolve"),
        dict(who="mallory@evil.example"),
        dict(secret="t" * 32),
    ],
)
def test_it_refuses_a_link_with_any_part_changed(tampered):
    good = signature(SECRET, 7, 2, "ack", "ana")
    values = dict(secret=SECRET, incident_id=7, episode=2, action="ack", who="ana")
    values.update(tampered)
    assert not verify(sig=good, **values)


def test_it_refuses_a_truncated_or_empty_signature():
    good = signature(SECRET, 7, 2, "ack", "ana")
    assert not verify(SECRET, 7, 2, "ack", "ana", good[:-1])
    assert not verify(SECRET, 7, 2, "ack", "ana", "")


def test_the_recipient_is_quoted_in_the_link():
    url = action_url("https://ew.example", SECRET, 1, 1, "ack", "a b&c=d@x")
    assert parse_qs(urlsplit(url).query)["who"] == ["a b&c=d@x"]
