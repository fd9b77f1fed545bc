"""Webhook, Teams and Apprise go where the other channels go: named in routes, sent by the
delivery worker to a real loopback server, counted in metrics, and listed in the digest
when they fail."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import Session

from emberwatch import metrics
from emberwatch.alerts.routing import Facts, channels_for
from emberwatch.delivery import deliver_due
from emberwatch.digest import build_digest, render
from emberwatch.errors import ConfigError
from emberwatch.outbox import enqueue_message
from tests.alerts.test_incidents import T0
from tests.channels.test_conformance import SECRET, Loopback
from tests.helpers import make_config

NEW = ("webhook", "teams", "apprise")


def config_for(port: int):
    url = f"http://127.0.0.1:{port}/hooks/{SECRET}"
    return make_config(
        channels={
            "webhook": {"url": url, "secret": SECRET},
            "teams": {"webhook_url": url},
            "apprise": {"urls": [f"json://127.0.0.1:{port}/hooks/{SECRET}"]},
        },
        routes=[{"name": "everyone", "channels": list(NEW)}],
    )


def sent(channel: str, outcome: str) -> float:
    labels = {"channel": channel, "outcome": outcome}
    return metrics.REGISTRY.get_sample_value("emberwatch_delivery_attempts_total", labels) or 0


def test_routes_name_the_new_channels_and_the_digest_still_hears_everything():
    config = config_for(9)
    facts = Facts("acme", "hn", "hackernews", "complaint", "warning")
    assert list(channels_for(config.effective_routes(), facts)) == [*NEW, "digest"]


def test_a_route_naming_an_unknown_channel_names_the_known_ones():
    with pytest.raises(ConfigError) as caught:
        make_config(routes=[{"name": "legal", "channels": ["pager"]}])
    assert "route 'legal' uses undefined channel 'pager'" in str(caught.value)
    assert "webhook" in str(caught.value)


async def test_the_worker_sends_counts_and_the_digest_reports_the_new_channels(engine):
    server = Loopback()
    try:
        config = config_for(server.port)
        before = {name: sent(name, "sent") for name in NEW}
        with Session(engine) as session:
            for name in NEW:
                enqueue_message(
                    session,
                    config,
                    channel=name,
                    key=f"rollup:{name}:1",
                    now=T0,
                    kind="rollup",
                    payload={"lines": ["3 more negative mentions about acme on hn"], "total": 3},
                )
            session.commit()
        async with httpx.AsyncClient() as http:
            report = await deliver_due(config, engine, http, T0)
        assert report.sent == 3 and len(server.received) == 3
        assert {name: sent(name, "sent") - before[name] for name in NEW} == dict.fromkeys(NEW, 1)

        server.status = 400  # the webhook refuses the next message for good
        with Session(engine) as session:
            enqueue_message(
                session,
                config,
                channel="webhook",
                key="rollup:webhook:2",
                now=T0,
                kind="rollup",
                payload={"lines": ["x"], "total": 1},
            )
            session.commit()
        async with httpx.AsyncClient() as http:
            report = await deliver_due(config, engine, http, T0)
        assert report.failed == 1
    finally:
        server.stop()
    digest = build_digest(engine, T0.date(), "UTC", config=config)
    [failed] = digest.failed_deliveries
    assert failed.channel == "webhook" and "HTTP 400" in failed.last_error
    _subject, text, _html = render(digest)
    assert "webhook" in text


def test_naming_apprise_without_the_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr("emberwatch.channels.apprise.installed", lambda: False)
    with pytest.raises(ConfigError) as caught:
        make_config(channels={"apprise": {"urls": ["json://127.0.0.1:9/"]}})
    [line] = [line for line in str(caught.value).splitlines() if "apprise" in line]
    assert "pip install 'emberwatch[apprise]'" in line


def test_a_teams_card_shows_a_mentions_markdown_as_written():
    from emberwatch.channels import teams
    from tests.channels.test_slack import incident_view, mention

    forged = "[click here](https://evil.example) **urgent** _now_"
    card = teams.card(incident_view(1, mentions=[mention(1, text=forged, author="**boss**")]))
    body = card["attachments"][0]["content"]["body"]
    assert {block["type"] for block in body} == {"RichTextBlock"}  # no Markdown TextBlock
    runs = [run["text"] for block in body for run in block["inlines"]]
    assert "**boss**" in runs
    assert any(forged in run for run in runs)
