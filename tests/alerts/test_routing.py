"""Routes: which channels hear about an incident. Pure matching, plus config checks."""

import pytest
from tests.helpers import make_config

from emberwatch.alerts.routing import Facts, channels_for, route_matches
from emberwatch.config import Route
from emberwatch.errors import ConfigError

HN = Facts("acme", "hn", "hackernews", "complaint", "warning")
SOURCES = [
    {"name": "hn", "type": "hackernews", "query": "acme", "base_url": "https://hn.example"},
    {"name": "feed", "type": "rss", "url": "https://feeds.example/acme.xml"},
]


def route(name="r", channels=("slack",), **match) -> Route:
    return Route(name=name, channels=list(channels), match=match)


@pytest.mark.parametrize(
    ("match", "facts", "matches"),
    [
        ({}, HN, True),
        ({"brand": ["acme"]}, HN, True),
        ({"brand": ["globex"]}, HN, False),
        ({"source": ["hn"]}, HN, True),  # by name
        ({"source": ["hackernews"]}, HN, True),  # by type
        ({"source": ["feed", "rss"]}, HN, False),
        ({"category": ["complaint", "legal_threat"]}, HN, True),
        ({"category": ["legal_threat"]}, HN, False),
        ({"min_severity": "warning"}, HN, True),
        ({"min_severity": "critical"}, HN, False),
        (
            {"min_severity": "warning"},
            Facts("acme", "hn", "hackernews", "complaint", "info"),
            False,
        ),
        # Every listed key must match.
        ({"brand": ["acme"], "source": ["rss"]}, HN, False),
    ],
)
def test_it_matches_routes_on_brand_source_category_and_min_severity(match, facts, matches):
    assert route_matches(route(**match), facts) is matches


@pytest.mark.parametrize(
    ("routes", "facts", "expected"),
    [
        # The first match wins ...
        (
            [
                route("legal", ["slack"], category=["legal_threat"]),
                route("hn", ["email"], source=["hn"]),
                route("all", ["slack", "email"]),
            ],
            HN,
            {"email": "hn", "digest": "legal"},
        ),
        # ... unless it says continue_matching.
        (
            [
                Route(
                    name="hn",
                    channels=["email"],
                    match={"source": ["hn"]},
                    continue_matching=True,
                ),
                route("all", ["slack", "email"]),
                route("never", ["digest"]),
            ],
            HN,
            {"email": "hn", "slack": "all", "digest": "hn"},
        ),
        # Nothing matches: the incident still reaches the digest.
        ([route("critical", ["slack"], min_severity="critical")], HN, {"digest": "critical"}),
        ([], HN, {"digest": "digest"}),
        ([route("d", ["digest", "slack"])], HN, {"digest": "d", "slack": "d"}),
    ],
)
def test_it_picks_the_first_matching_route_and_never_leaves_an_incident_unroutable(
    routes, facts, expected
):
    chosen = channels_for(routes, facts)
    assert {channel: r.name for channel, r in chosen.items()} == expected


SLACK = {"webhook_url": "https://hooks.example/x"}
EMAIL = {"host": "smtp.example", "sender": "ew@acme.example", "recipients": ["m@acme.example"]}
BOTH = {"slack": SLACK, "email": EMAIL}


@pytest.mark.parametrize(
    ("channels", "severity", "expected"),
    [
        # Without [[routes]]: on-call Slack hears of critical incidents, marketing email
        # of warning and critical ones, the digest of everything.
        (BOTH, "info", {"digest"}),
        (BOTH, "warning", {"email", "digest"}),
        (BOTH, "critical", {"slack", "email", "digest"}),
        # A channel that is not configured has no route.
        ({"slack": SLACK}, "warning", {"digest"}),
        ({"slack": SLACK}, "critical", {"slack", "digest"}),
        ({"email": EMAIL}, "critical", {"email", "digest"}),
        ({}, "critical", {"digest"}),
    ],
)
def test_default_routes_give_each_channel_its_role(channels, severity, expected):
    config = make_config(channels=channels)
    facts = Facts("acme", "hn", "hackernews", "complaint", severity)
    assert set(channels_for(config.effective_routes(), facts)) == expected


def test_default_routes_are_named_after_their_roles():
    config = make_config(channels=BOTH)
    assert [(r.name, r.channels, r.match.min_severity) for r in config.effective_routes()] == [
        ("on-call", ["slack"], "critical"),
        ("marketing", ["email"], "warning"),
        ("digest", ["digest"], "info"),
    ]


@pytest.mark.parametrize(
    ("channels", "routes", "message"),
    [
        (
            {"slack": {"webhook_url": "https://hooks.example/x"}},
            [{"name": "legal", "channels": ["email"]}],
            "route 'legal' uses channel 'email', but [channels.email] is not configured",
        ),
        (
            {},
            [{"name": "pager", "channels": ["slack"]}],
            "route 'pager' uses channel 'slack', but [channels.slack] is not configured",
        ),
        (
            {},
            [{"name": "x", "channels": ["digest"], "match": {"brand": ["globex"]}}],
            "route 'x' matches undefined brand 'globex'",
        ),
        (
            {},
            [{"name": "x", "channels": ["digest"], "match": {"source": ["reddit"]}}],
            "route 'x' matches undefined source 'reddit'",
        ),
        (
            {},
            [{"name": "x", "channels": ["digest"]}, {"name": "x", "channels": ["digest"]}],
            "route name 'x' is used twice",
        ),
    ],
)
def test_the_config_rejects_a_route_it_cannot_deliver_and_says_how_to_fix_it(
    channels, routes, message
):
    with pytest.raises(ConfigError) as caught:
        make_config(channels=channels, routes=routes, sources=SOURCES)
    assert message in str(caught.value)


def test_a_route_to_a_configured_channel_is_accepted():
    config = make_config(
        channels={"slack": {"webhook_url": "https://hooks.example/x"}},
        routes=[{"name": "hn", "channels": ["slack"], "match": {"source": ["hn"]}}],
        sources=SOURCES,
    )
    assert [r.name for r in config.effective_routes()] == ["hn"]
